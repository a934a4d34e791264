//! Differential property test of the frozen chart (issue 13): whatever a
//! release's rendered documents and notes hold, the frozen chart helm-bulk
//! builds from the stored record renders back to exactly the stored bytes
//! with the real helm v4 and v3.
//!
//! Each batch is one generated chart whose templates print generated text
//! verbatim (`{{ .Files.Get "raw/…" }}`): documents full of `{`, `}`, `{{`,
//! `}}`, `{{-`, `-}}`, `{{/*`, `*/}}`, backticks, quotes, `<no value>`,
//! indented `---` lines, CRLF, tabs, non-ASCII and long lines, in quoted
//! strings, `|`/`|-`/`|+`/`>` block scalars, JSON dashboards and comments;
//! several documents per template with and without a final newline, joined
//! by different `---` lines, in kind orders Helm re-sorts, some of them hooks
//! (weights, delete policies, tests); a subchart; NOTES. The real helm
//! renders it (`install --dry-run=client -o json`: the release record Helm
//! would store), helm-bulk freezes that record, the same helm renders the
//! frozen chart, and the two records must hold byte-identical manifests,
//! hooks and notes. A failing template is minimised and printed with the
//! seed.
//!
//! `HELM_BULK_FIDELITY_SEED` (default 13) and `HELM_BULK_FIDELITY_CASES`
//! (documents per Helm version, default 3000) reproduce or widen a run.
//! helm v3 needs a reachable API server even for a client-side dry run, so
//! the test starts one (nothing is installed into it).

mod cluster;
mod no_cluster;

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use cluster::{Helm, TestEnv};
use serde_json::Value;

/// Documents (and template files) per chart: many per helm call, so process
/// starts do not dominate.
const DOCS_PER_BATCH: usize = 160;

// --- seeded generation --------------------------------------------------------------

/// SplitMix64: small, seeded, reproducible.
use helm_bulk::testing::SplitMix64 as Rng;

/// Pieces of text inside a YAML scalar or comment line (no line breaks).
const INLINE: &[&str] = &[
    "{",
    "}",
    "{{",
    "}}",
    "{{-",
    "-}}",
    "{{- ",
    " -}}",
    "{{/*",
    "*/}}",
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
const JSON_BITS: &[&str] = &[
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
const KINDS: &[(&str, &str)] = &[
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
fn custom_kind_crds() -> String {
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

fn inline_text(rng: &mut Rng, max: usize) -> String {
    let n = rng.below(max + 1);
    let mut s = String::new();
    for _ in 0..n {
        s.push_str(rng.pick(INLINE));
    }
    s
}

/// A line of a block scalar (after its indentation): never starts with white
/// space, so it cannot change the block's indentation.
fn block_line(rng: &mut Rng) -> String {
    let mut s = String::new();
    if rng.chance(2) {
        // A long line.
        let len = 2000 + rng.below(12000);
        while s.len() < len {
            s.push_str(rng.pick(INLINE));
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

fn double_quoted(rng: &mut Rng) -> String {
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

fn single_quoted(rng: &mut Rng) -> String {
    format!("'{}'", inline_text(rng, 10).replace('\'', "''"))
}

/// One generated document (no trailing line break), lines joined by `nl`.
fn document(rng: &mut Rng, name: &str, hook: bool, nl: &str) -> String {
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
fn template_output(rng: &mut Rng, id: usize, docs: usize) -> String {
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
fn notes_text(rng: &mut Rng) -> String {
    // Sometimes with a byte order mark in front (Helm's loader drops one at
    // the start of a file: the frozen NOTES.txt must print it).
    let mut s = if rng.chance(20) {
        "\u{feff}".to_owned()
    } else {
        String::new()
    };
    for _ in 0..rng.below(30) {
        s.push_str(rng.pick(INLINE));
        s.push_str(rng.pick(&["", "", "\n", "\r\n", "\r", " "]));
    }
    s
}

/// A generated chart: template path (under the chart directory) → what it
/// prints, and the notes.
struct Batch {
    templates: Vec<(String, String)>,
    notes: String,
}

fn batch(rng: &mut Rng, first_id: usize, docs: usize) -> Batch {
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

// --- charts and helm ------------------------------------------------------------------

fn write(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// Writes the original chart: each template prints its raw file verbatim.
fn write_chart(dir: &Path, b: &Batch) {
    let _ = std::fs::remove_dir_all(dir);
    write(
        &dir.join("Chart.yaml"),
        b"apiVersion: v2\nname: fid\nversion: 1.0.0\n",
    );
    write(&dir.join("values.yaml"), b"x: 1\n");
    write(
        &dir.join("charts/sub/Chart.yaml"),
        b"apiVersion: v2\nname: sub\nversion: 0.1.0\n",
    );
    for (path, text) in &b.templates {
        let (chart_dir, file) = match path.strip_prefix("charts/sub/templates/") {
            Some(f) => (dir.join("charts/sub"), f),
            None => (dir.to_path_buf(), path.strip_prefix("templates/").unwrap()),
        };
        write(&chart_dir.join("raw").join(file), text.as_bytes());
        write(
            &chart_dir.join("templates").join(file),
            format!("{{{{ .Files.Get \"raw/{file}\" }}}}").as_bytes(),
        );
    }
    if !b.notes.is_empty() {
        // The chart loader drops a file's leading byte order mark: the
        // template prints it.
        let (bom, rest) = match b.notes.strip_prefix('\u{feff}') {
            Some(rest) => ("{{ \"\\ufeff\" }}", rest),
            None => ("", b.notes.as_str()),
        };
        write(&dir.join("raw/NOTES.txt"), rest.as_bytes());
        write(
            &dir.join("templates/NOTES.txt"),
            format!("{bom}{{{{ .Files.Get \"raw/NOTES.txt\" }}}}").as_bytes(),
        );
    }
}

/// `helm install --dry-run=client -o json`: the release record Helm would
/// store, or helm's error.
fn render(env: &TestEnv, helm: Helm, chart: &Path, values: Option<&Path>) -> Result<Value, String> {
    let mut cmd = env.helm_cmd(helm);
    cmd.args([
        "install",
        "fid",
        "--namespace",
        "fid",
        "--dry-run=client",
        "--disable-openapi-validation",
        "-o",
        "json",
    ])
    .arg(chart);
    if let Some(v) = values {
        cmd.arg("--values").arg(v);
    }
    let out = no_cluster::run(&mut cmd);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("helm printed invalid JSON: {e}"))
}

/// What must survive: the manifest, every hook as Helm stored it, the notes.
fn essence(record: &Value) -> (String, Vec<Value>, String) {
    let hooks = record["hooks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|h| {
            serde_json::json!({
                "name": h["name"], "kind": h["kind"], "path": h["path"],
                "manifest": h["manifest"], "events": h["events"], "weight": h["weight"],
                "delete_policies": h["delete_policies"],
            })
        })
        .collect();
    (
        record["manifest"].as_str().unwrap_or_default().to_owned(),
        hooks,
        record["info"]["notes"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// Renders `b` with `helm`, freezes the record, renders the frozen chart:
/// `Ok(documents compared)`, or a description of the first difference.
fn check(env: &TestEnv, helm: Helm, work: &Path, b: &Batch) -> Result<usize, Mismatch> {
    let chart = work.join("chart");
    write_chart(&chart, b);
    let original = render(env, helm, &chart, None)
        .unwrap_or_else(|e| panic!("the generated chart does not render (a generator bug): {e}"));
    let record = serde_json::to_vec(&original).unwrap();
    // HELM_BULK_FIDELITY_DUMP=FILE: the first failing batch's record, for
    // looking into a failure (FILE.v3, FILE.v4).
    if let Some(dump) = std::env::var_os("HELM_BULK_FIDELITY_DUMP") {
        let dump = Path::new(&dump).with_extension(helm.tag());
        if !dump.exists() {
            write(&dump, &record);
        }
    }
    let frozen = helm_bulk::restore::frozen::freeze(&record).map_err(|e| Mismatch {
        path: String::new(),
        detail: format!("freeze failed: {e}"),
    })?;
    let archive = work.join("frozen.tgz");
    let values = work.join("values.json");
    write(&archive, &frozen.archive);
    write(&values, &frozen.values);
    let restored = render(env, helm, &archive, Some(&values)).map_err(|e| Mismatch {
        path: failing_path(&e),
        detail: format!("helm refused the frozen chart: {e}"),
    })?;
    let (want, got) = (essence(&original), essence(&restored));
    if want == got {
        return Ok(want.0.matches("\n# Source: ").count() + want.1.len());
    }
    let path = first_difference(&want, &got);
    Err(Mismatch {
        detail: diff_text(&want, &got),
        path,
    })
}

struct Mismatch {
    /// The template the difference is in (chart-relative), if known.
    path: String,
    detail: String,
}

fn failing_path(error: &str) -> String {
    // "…(fid/templates/t12.yaml:3)…" or "YAML parse error on fid/templates/t12.yaml"
    error
        .split(['(', ' ', ':', ')'])
        .find_map(|w| w.strip_prefix("fid/"))
        .unwrap_or_default()
        .to_owned()
}

/// Documents by `# Source:` path, in order.
fn by_source(e: &(String, Vec<Value>, String)) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for chunk in e.0.split("---\n# Source: ").skip(1) {
        let (path, doc) = chunk.split_once('\n').unwrap_or((chunk, ""));
        out.push((path.to_owned(), doc.to_owned()));
    }
    for h in &e.1 {
        out.push((
            h["path"].as_str().unwrap_or_default().to_owned(),
            h["manifest"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    out
}

fn first_difference(
    want: &(String, Vec<Value>, String),
    got: &(String, Vec<Value>, String),
) -> String {
    if want.2 != got.2 {
        return "templates/NOTES.txt".to_owned();
    }
    let (w, g) = (by_source(want), by_source(got));
    for (i, a) in w.iter().enumerate() {
        if g.get(i) != Some(a) {
            return a.0.strip_prefix("fid/").unwrap_or(&a.0).to_owned();
        }
    }
    g.get(w.len())
        .map(|a| a.0.strip_prefix("fid/").unwrap_or(&a.0).to_owned())
        .unwrap_or_default()
}

fn diff_text(want: &(String, Vec<Value>, String), got: &(String, Vec<Value>, String)) -> String {
    let mut s = String::new();
    if want.2 != got.2 {
        let _ = writeln!(
            s,
            "notes stored:   {:?}\nnotes restored: {:?}",
            want.2, got.2
        );
    }
    let (w, g) = (by_source(want), by_source(got));
    for i in 0..w.len().max(g.len()) {
        if w.get(i) != g.get(i) {
            let _ = writeln!(
                s,
                "document {i}\n  stored:   {:?}\n  restored: {:?}",
                w.get(i),
                g.get(i)
            );
            break;
        }
    }
    s
}

/// Shrinks the failing template of `b` to a small text that still fails on
/// its own (by lines, then by characters), within a budget of helm runs.
fn minimise(env: &TestEnv, helm: Helm, work: &Path, b: &Batch, path: &str) -> Option<Batch> {
    let alone = |text: &str| {
        if path == "templates/NOTES.txt" {
            Batch {
                templates: Vec::new(),
                notes: text.to_owned(),
            }
        } else {
            Batch {
                templates: vec![(path.to_owned(), text.to_owned())],
                notes: String::new(),
            }
        }
    };
    let fails = |text: &str| {
        let candidate = alone(text);
        write_chart(&work.join("chart"), &candidate);
        // A candidate the original chart cannot render proves nothing.
        if render(env, helm, &work.join("chart"), None).is_err() {
            return false;
        }
        check(env, helm, work, &candidate).is_err()
    };
    let text = if path == "templates/NOTES.txt" {
        b.notes.clone()
    } else {
        b.templates.iter().find(|(p, _)| p == path)?.1.clone()
    };
    if !fails(&text) {
        return None;
    }
    let mut budget = 400;
    let mut units: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
    for by_chars in [false, true] {
        if by_chars {
            units = units.concat().chars().map(String::from).collect();
        }
        let mut chunk = units.len() / 2;
        while chunk >= 1 && budget > 0 {
            let mut i = 0;
            while i < units.len() && budget > 0 {
                let mut candidate = units.clone();
                candidate.drain(i..(i + chunk).min(units.len()));
                budget -= 1;
                if !candidate.is_empty() && fails(&candidate.concat()) {
                    units = candidate;
                } else {
                    i += chunk;
                }
            }
            chunk /= 2;
        }
    }
    Some(alone(&units.concat()))
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}"))
        })
        .unwrap_or(default)
}

fn fidelity(env: &TestEnv, helm: Helm) {
    let seed = env_number("HELM_BULK_FIDELITY_SEED", 13);
    let cases = env_number("HELM_BULK_FIDELITY_CASES", 3000) as usize;
    let work = tempfile::Builder::new()
        .prefix(&format!("helm-bulk-fidelity-{}.", helm.tag()))
        .tempdir()
        .unwrap();
    let mut rng = Rng(seed);
    let started = Instant::now();
    let (mut documents, mut batches) = (0, 0);
    let mut id = 0;
    while id < cases {
        let n = DOCS_PER_BATCH.min(cases - id);
        let b = batch(&mut rng, id, n);
        id += n;
        batches += 1;
        match check(env, helm, work.path(), &b) {
            Ok(d) => documents += d,
            Err(m) => {
                let small = minimise(env, helm, work.path(), &b, &m.path);
                let shown = match &small {
                    Some(s) => format!(
                        "minimised: templates {:?}, notes {:?}\n{}",
                        s.templates,
                        s.notes,
                        check(env, helm, work.path(), s)
                            .err()
                            .map(|m| m.detail)
                            .unwrap_or_default()
                    ),
                    None => "(does not fail on its own; the whole batch is needed)".to_owned(),
                };
                panic!(
                    "helm {}: the frozen chart does not render the stored release back \
                     (HELM_BULK_FIDELITY_SEED={seed}, batch {batches}, template {:?}):\n{}\n{shown}",
                    helm.tag(),
                    m.path,
                    m.detail
                );
            }
        }
    }
    eprintln!(
        "fidelity {}: {cases} generated documents in {batches} charts ({documents} stored documents and hooks compared, notes too), seed {seed}: identical, in {:.1}s",
        helm.tag(),
        started.elapsed().as_secs_f64()
    );
    assert!(documents >= cases / 2, "too few documents were compared");
}

#[test]
fn frozen_charts_render_back_byte_for_byte() {
    let env = TestEnv::shared();
    let crds = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(crds.path(), custom_kind_crds()).unwrap();
    env.kubectl([
        std::ffi::OsStr::new("create"),
        "-f".as_ref(),
        crds.path().as_os_str(),
    ]);
    env.kubectl([
        "wait",
        "--for=condition=Established",
        "crd/widgets.fid.helm-bulk.test",
        "crd/gadgets.fid.helm-bulk.test",
    ]);
    std::thread::scope(|s| {
        for helm in Helm::ALL {
            s.spawn(move || fidelity(env, helm));
        }
    });
}
