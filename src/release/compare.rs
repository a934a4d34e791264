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
}
