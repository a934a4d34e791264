//! Which parts of two Helm 3/4 release records differ: what `diff` reports
//! between a snapshot and a live cluster.

use serde_json::Value;

/// The parts compared, in report order.
pub const PARTS: [&str; 4] = ["chart", "values", "manifest", "hooks"];

fn part(record: &Value, name: &str) -> Value {
    match name {
        "chart" => {
            let m = &record["chart"]["metadata"];
            Value::Array(vec![m["name"].clone(), m["version"].clone()])
        }
        // Helm stores no user values as null or {}; both mean "none".
        "values" => match &record["config"] {
            Value::Null => Value::Object(Default::default()),
            v => v.clone(),
        },
        "manifest" => match &record["manifest"] {
            Value::String(s) => Value::String(s.trim().to_owned()),
            v => v.clone(),
        },
        // A hook's last run (times, phase) is history, not state.
        "hooks" => match &record["hooks"] {
            Value::Array(hooks) => Value::Array(
                hooks
                    .iter()
                    .map(|h| {
                        let mut h = h.clone();
                        if let Value::Object(m) = &mut h {
                            m.remove("last_run");
                        }
                        h
                    })
                    .collect(),
            ),
            _ => Value::Array(Vec::new()),
        },
        _ => Value::Null,
    }
}

/// The names of the parts ([`PARTS`]) in which `a` and `b` differ.
pub fn differing_parts(a: &[u8], b: &[u8]) -> Result<Vec<&'static str>, serde_json::Error> {
    let a: Value = serde_json::from_slice(a)?;
    let b: Value = serde_json::from_slice(b)?;
    Ok(PARTS
        .into_iter()
        .filter(|p| part(&a, p) != part(&b, p))
        .collect())
}

/// The placeholder for a value that is not shown.
pub const REDACTED: &str = "<redacted>";

fn sensitive(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "token", "secret", "key"]
        .iter()
        .any(|w| k.contains(w))
}

/// Replaces every scalar whose key looks sensitive (password, token, secret,
/// key) with [`REDACTED`], at any depth.
fn redact_values(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                if sensitive(k) && !matches!(child, Value::Object(_) | Value::Array(_)) {
                    *child = Value::String(REDACTED.to_owned());
                } else {
                    redact_values(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_values),
        _ => {}
    }
}

fn yaml(v: &Value) -> String {
    serde_norway::to_string(v).unwrap_or_else(|e| format!("# cannot be shown: {e}\n"))
}

/// The user-supplied values of a record as YAML, sensitive keys redacted
/// unless `show_secrets`.
pub fn values_text(record: &[u8], show_secrets: bool) -> Result<String, serde_json::Error> {
    let r: Value = serde_json::from_slice(record)?;
    let mut v = part(&r, "values");
    if !show_secrets {
        redact_values(&mut v);
    }
    Ok(yaml(&v))
}

/// The manifest of a record, one YAML document after another, with the
/// `data` and `stringData` values of Secrets redacted unless `show_secrets`.
/// A document that does not parse is withheld unless `show_secrets` (it
/// could be a Secret).
pub fn manifest_text(record: &[u8], show_secrets: bool) -> Result<String, serde_json::Error> {
    let r: Value = serde_json::from_slice(record)?;
    let manifest = r["manifest"].as_str().unwrap_or_default();
    if show_secrets {
        return Ok(format!("{}\n", manifest.trim()));
    }
    let mut out = String::new();
    for doc in super::split_documents(manifest) {
        let doc = doc.trim();
        if doc.is_empty() {
            continue;
        }
        out.push_str("---\n");
        match serde_norway::from_str::<Value>(doc) {
            Ok(mut v) => {
                if v["kind"] == "Secret"
                    && let Value::Object(m) = &mut v
                {
                    for field in ["data", "stringData"] {
                        if let Some(Value::Object(d)) = m.get_mut(field) {
                            for val in d.values_mut() {
                                *val = Value::String(REDACTED.to_owned());
                            }
                        }
                    }
                }
                // Comments (`# Source: …`) are lost in parsing; keep the source line.
                if let Some(src) = doc.lines().find(|l| l.starts_with("# Source:")) {
                    out.push_str(src);
                    out.push('\n');
                }
                out.push_str(&yaml(&v));
            }
            Err(_) => out.push_str("# a document that is not valid YAML (withheld)\n"),
        }
    }
    Ok(out)
}

/// A unified diff (3 lines of context) from `a` to `b`; empty when equal.
pub fn unified(a: &str, b: &str, from: &str, to: &str) -> String {
    let x: Vec<&str> = a.lines().collect();
    let y: Vec<&str> = b.lines().collect();
    // Longest common subsequence table, from the ends.
    let (n, m) = (x.len(), y.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if x[i] == y[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    // The edit script: (' ' | '-' | '+', line), deletions before insertions.
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && x[i] == y[j] {
            ops.push((' ', x[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', x[i]));
            i += 1;
        } else {
            ops.push(('+', y[j]));
            j += 1;
        }
    }
    if ops.iter().all(|(c, _)| *c == ' ') {
        return String::new();
    }
    let mut out = format!("--- {from}\n+++ {to}\n");
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k].0 != ' ').collect();
    let mut k = 0;
    while k < changed.len() {
        let start = changed[k].saturating_sub(3);
        let mut end = changed[k];
        while k + 1 < changed.len() && changed[k + 1] <= end + 7 {
            k += 1;
            end = changed[k];
        }
        let end = (end + 4).min(ops.len());
        let old_start = ops[..start].iter().filter(|(c, _)| *c != '+').count();
        let new_start = ops[..start].iter().filter(|(c, _)| *c != '-').count();
        let old_len = ops[start..end].iter().filter(|(c, _)| *c != '+').count();
        let new_len = ops[start..end].iter().filter(|(c, _)| *c != '-').count();
        out.push_str(&format!(
            "@@ -{},{old_len} +{},{new_len} @@\n",
            old_start + usize::from(old_len > 0),
            new_start + usize::from(new_len > 0)
        ));
        for (c, line) in &ops[start..end] {
            out.push(*c);
            out.push_str(line);
            out.push('\n');
        }
        k += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::differing_parts;

    #[test]
    fn parts_that_differ_are_named() {
        let a = br#"{"chart":{"metadata":{"name":"c","version":"1"}},"config":null,"manifest":"x\n","hooks":[{"name":"h","last_run":{"phase":"Succeeded"}}]}"#;
        let b = br#"{"chart":{"metadata":{"name":"c","version":"1"}},"config":{},"manifest":"x","hooks":[{"name":"h"}]}"#;
        assert!(differing_parts(a, b).unwrap().is_empty());
        let c = br#"{"chart":{"metadata":{"name":"c","version":"2"}},"config":{"a":1},"manifest":"y","hooks":[]}"#;
        assert_eq!(
            differing_parts(a, c).unwrap(),
            ["chart", "values", "manifest", "hooks"]
        );
    }

    #[test]
    fn unified_diffs_and_redaction() {
        let d = super::unified("a\nb\nc\n", "a\nB\nc\n", "old", "new");
        assert_eq!(d, "--- old\n+++ new\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
        assert_eq!(super::unified("a\n", "a\n", "o", "n"), "");
        let r = br#"{"config":{"db":{"password":"hunter2","host":"h"},"apiToken":"t0k","n":1},"manifest":"---\n# Source: c/s.yaml\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  password: aHVudGVyMg==\n"}"#;
        let v = super::values_text(r, false).unwrap();
        assert!(!v.contains("hunter2") && !v.contains("t0k"), "{v}");
        assert!(
            v.contains("host: h") && v.contains("password: <redacted>"),
            "{v}"
        );
        assert!(super::values_text(r, true).unwrap().contains("hunter2"));
        let m = super::manifest_text(r, false).unwrap();
        assert!(!m.contains("aHVudGVyMg=="), "{m}");
        assert!(
            m.contains("# Source: c/s.yaml") && m.contains("password: <redacted>"),
            "{m}"
        );
    }

    #[test]
    fn manifests_are_split_into_documents_and_secrets_redacted() {
        let manifest = "---\n# Source: c/templates/s.yaml\napiVersion: v1\nkind: Secret\ndata:\n  k: dg==\n---\n# Source: c/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\ndata:\n  text: |\n    ---\n    kept\n";
        let record = serde_json::json!({ "manifest": manifest }).to_string();
        let text = super::manifest_text(record.as_bytes(), false).unwrap();
        assert_eq!(text.matches("---\n").count(), 3, "{text}");
        assert!(text.contains("# Source: c/templates/s.yaml"), "{text}");
        assert!(!text.contains("dg=="), "{text}");
        assert!(text.contains("kept"), "{text}");
    }
}
