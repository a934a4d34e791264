//! Seeded generation of charts full of what Go templates and YAML make
//! hard to reproduce: documents, templates, notes, batches.

/// SplitMix64: small, seeded, reproducible.
pub(crate) use helm_bulk::testing::SplitMix64 as Rng;

/// Pieces of text inside a YAML scalar or comment line (no line breaks):
/// `helm_bulk::testing::TEMPLATE_DELIMITERS`, then those of `INLINE_MORE`.
pub(crate) static INLINE: std::sync::LazyLock<Vec<&str>> = std::sync::LazyLock::new(|| {
    helm_bulk::testing::TEMPLATE_DELIMITERS
        .iter()
        .chain(INLINE_MORE)
        .copied()
        .collect()
});

const INLINE_MORE: &[&str] = &[
    "{}",
    "{}}",
    "{{{",
    "}}}",
    "{{ .Values.x }}",
    "{{ end }}",
    "`",
    "'",
    "\"",
    "\\",
    "<no value>",
    "<no ",
    "value>",
    "<no <no value>value>",
    "\t",
    "é",
    "日本",
    "😀",
    "ß",
    "---",
    "# ",
    ": ",
    "- ",
    "a",
    "b",
    "x",
    " ",
    "  ",
    "0",
    "%",
    "@",
    "&",
    "*",
    "!",
    "|",
    ">",
    "$",
    "[",
    "]",
];

/// Brace patterns of JSON dashboards (Grafana) and logging annotations.
pub(crate) const JSON_BITS: &[&str] = &[
    r#"{"options":{}}"#,
    r#"{"legendFormat":"{{instance}}"}"#,
    r#"[{"container":{}},{"a":[{}]}]"#,
    r#"{"a":{"b":{"c":{}}}}"#,
    r#""expr":"sum(rate(x{job=\"{{job}}\"}[5m]))""#,
    r#"{{{"#,
    r#"}}}"#,
    r#"{"panels":[]}"#,
    r#"{"templating":{"list":[{"query":"label_values({{cluster}})"}]}}"#,
];

/// `(apiVersion, kind)`: kinds Helm orders and kinds it does not know (it
/// sorts those last, by name). A real install must accept every document,
/// so the custom kinds have CRDs in the test's API server.
pub(crate) const KINDS: &[(&str, &str)] = &[
    ("v1", "Namespace"),
    ("v1", "ServiceAccount"),
    ("v1", "Secret"),
    ("v1", "ConfigMap"),
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("batch/v1", "Job"),
    ("fid.helm-bulk.test/v1", "Widget"),
    ("fid.helm-bulk.test/v1", "Gadget"),
];

/// The CRDs of the custom kinds above.
pub(crate) fn custom_kind_crds() -> String {
    let mut list = Vec::new();
    for (kind, plural) in [("Widget", "widgets"), ("Gadget", "gadgets")] {
        list.push(serde_json::json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{plural}.fid.helm-bulk.test")},
            "spec": {
                "group": "fid.helm-bulk.test",
                "scope": "Namespaced",
                "names": {"plural": plural, "kind": kind},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object",
                        "x-kubernetes-preserve-unknown-fields": true}}}],
            },
        }));
    }
    serde_json::json!({"apiVersion": "v1", "kind": "List", "items": list}).to_string()
}

pub(crate) fn inline_text(rng: &mut Rng, max: usize) -> String {
    let n = rng.below(max + 1);
    let mut s = String::new();
    for _ in 0..n {
        s.push_str(rng.pick(&INLINE));
    }
    s
}

/// A line of a block scalar (after its indentation): never starts with white
/// space, so it cannot change the block's indentation.
pub(crate) fn block_line(rng: &mut Rng) -> String {
    let mut s = String::new();
    if rng.chance(2) {
        // A long line.
        let len = 2000 + rng.below(12000);
        while s.len() < len {
            s.push_str(rng.pick(&INLINE));
            s.push_str(rng.pick(JSON_BITS));
        }
    } else if rng.chance(30) {
        for _ in 0..1 + rng.below(4) {
            s.push_str(rng.pick(JSON_BITS));
        }
    } else {
        s = inline_text(rng, 12);
    }
    let trimmed = s.trim_start();
    if trimmed.is_empty() {
        "x".to_owned()
    } else {
        format!("x{trimmed}")
    }
}

pub(crate) fn double_quoted(rng: &mut Rng) -> String {
    let raw = inline_text(rng, 10);
    let mut s = String::from("\"");
    for c in raw.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

pub(crate) fn single_quoted(rng: &mut Rng) -> String {
    format!("'{}'", inline_text(rng, 10).replace('\'', "''"))
}

/// One generated document (no trailing line break), lines joined by `nl`.
pub(crate) fn document(rng: &mut Rng, name: &str, hook: bool, nl: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    if rng.chance(10) {
        lines.push(format!("# a comment {}", inline_text(rng, 6)));
    }
    let (api_version, kind) = KINDS[rng.below(KINDS.len())];
    lines.extend([
        format!("apiVersion: {api_version}"),
        format!("kind: {kind}"),
        "metadata:".to_owned(),
        format!("  name: {name}"),
    ]);
    if hook || rng.chance(20) {
        lines.push("  annotations:".to_owned());
        if hook {
            let events = rng.pick(&[
                "pre-install",
                "post-install",
                "pre-install,pre-upgrade",
                "test",
                "pre-delete",
            ]);
            lines.push(format!("    helm.sh/hook: {events}"));
            if rng.chance(60) {
                lines.push(format!(
                    "    helm.sh/hook-weight: \"{}\"",
                    rng.below(11) as i64 - 5
                ));
            }
            if rng.chance(50) {
                lines.push("    helm.sh/hook-delete-policy: before-hook-creation".to_owned());
            }
        }
        lines.push(format!("    note: {}", double_quoted(rng)));
    }
    lines.push("data:".to_owned());
    let keys = 1 + rng.below(4);
    for k in 0..keys {
        match rng.below(6) {
            0 => lines.push(format!("  k{k}: {}", double_quoted(rng))),
            1 => lines.push(format!("  k{k}: {}", single_quoted(rng))),
            2 => lines.push(format!("  k{k}: plain-{}", rng.below(1000))),
            _ => {
                let style = rng.pick(&["|", "|-", "|+", ">", ">-", "|+", "|"]);
                lines.push(format!("  k{k}: {style}"));
                for _ in 0..1 + rng.below(5) {
                    if rng.chance(10) {
                        lines.push(String::new());
                    } else if rng.chance(10) {
                        lines.push(format!("    ---{}", inline_text(rng, 3).trim_end()));
                    } else {
                        lines.push(format!("    {}", block_line(rng)));
                    }
                }
                // Keep-chomped blocks at a document's end keep blank lines.
                if style == "|+" && rng.chance(50) {
                    lines.push(String::new());
                }
            }
        }
        if rng.chance(10) {
            lines.push(format!("# {}", inline_text(rng, 8)));
        }
    }
    lines.join(nl)
}

/// What one template prints: several documents, `---` lines of different
/// shapes between them, with or without a final newline.
pub(crate) fn template_output(rng: &mut Rng, id: usize, docs: usize) -> String {
    let nl = if rng.chance(12) { "\r\n" } else { "\n" };
    let mut out = String::new();
    out.push_str(rng.pick(&["", "", "\n", "---\n", "\n\n---\n", "--- \n", "---\n---\n"]));
    for k in 0..docs {
        if k > 0 {
            out.push_str(rng.pick(&[
                "\n---\n",
                "\n---\n",
                "\n--- \n",
                "\n---\n\n",
                "\n\n---\n",
                "\n---  # a {{ comment }}\n",
                "\n---\n---\n",
                "\r\n---\r\n",
                "\n---\t\n",
            ]));
        }
        let hook = rng.chance(15);
        out.push_str(&document(rng, &format!("d{id}-{k}"), hook, nl));
    }
    out.push_str(rng.pick(&["", "\n", "\n", "\n\n", nl, "\n\n\n"]));
    out
}

/// Free text for NOTES.txt: anything, line breaks of every kind included.
pub(crate) fn notes_text(rng: &mut Rng) -> String {
    // Sometimes with a byte order mark in front (Helm's loader drops one at
    // the start of a file: the frozen NOTES.txt must print it).
    let mut s = if rng.chance(20) {
        "\u{feff}".to_owned()
    } else {
        String::new()
    };
    for _ in 0..rng.below(30) {
        s.push_str(rng.pick(&INLINE));
        s.push_str(rng.pick(&["", "", "\n", "\r\n", "\r", " "]));
    }
    s
}

/// A generated chart: template path (under the chart directory) → what it
/// prints, and the notes.
pub(crate) struct Batch {
    pub(crate) templates: Vec<(String, String)>,
    pub(crate) notes: String,
}

pub(crate) fn batch(rng: &mut Rng, first_id: usize, docs: usize) -> Batch {
    let mut templates = Vec::new();
    let mut id = first_id;
    let mut left = docs;
    while left > 0 {
        let n = (1 + rng.below(4)).min(left);
        left -= n;
        let dir = if rng.chance(15) {
            "charts/sub/templates"
        } else {
            "templates"
        };
        templates.push((format!("{dir}/t{id}.yaml"), template_output(rng, id, n)));
        id += 1;
    }
    Batch {
        templates,
        notes: notes_text(rng),
    }
}
