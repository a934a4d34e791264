//! The frozen chart: a chart rebuilt from a stored release so that
//! `helm install` reproduces that release exactly.
//!
//! Why not re-render the original chart? A Helm 3/4 release record does not
//! hold the subcharts, re-rendering would regenerate random values (a
//! `randAlphaNum` password would change), and install hooks must run again on
//! a fresh cluster. So the frozen chart's templates are the stored rendered
//! manifest, hooks and notes, reproduced literally (every `{{`/`}}` escaped),
//! with the original chart name, version, appVersion, default values and the
//! parent chart's `crds/`. Each document goes back to the template path its
//! `# Source:` comment names, in a minimal subchart directory when it came
//! from a subchart, so helm writes the same `# Source:` comments, in the same
//! order: the restored manifest and hooks are byte-identical to the stored
//! ones. Dependencies are dropped (their output is already
//! in the manifest), as are `kubeVersion` (the target cluster may be newer) and
//! the values schema (the values were validated when first installed).

use std::io::Write;

use base64::Engine;
use flate2::{Compression, write::GzEncoder};
use serde::Deserialize;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::RestoreError;

/// The annotation marking a chart as frozen by helm-bulk.
pub const FROZEN_ANNOTATION: &str = "helm-bulk.io/frozen-from-revision";

/// A chart archive (`.tgz`) and the values to install it with, in memory.
pub struct FrozenChart {
    /// Chart name.
    pub name: String,
    /// Chart version.
    pub version: String,
    /// The gzip'd tar of the chart.
    pub archive: Zeroizing<Vec<u8>>,
    /// The user-supplied values, as JSON (a YAML document Helm reads with `-f`).
    pub values: Zeroizing<Vec<u8>>,
    /// Which stored document went where, to explain an error of helm about
    /// the frozen chart in terms of the stored release.
    pub layout: Vec<FrozenFile>,
}

/// One template file of a frozen chart.
pub struct FrozenFile {
    /// Its path in the chart archive (`chart/templates/x.yaml`), as helm
    /// names it in errors.
    pub path: String,
    /// The stored documents it holds, in file order.
    pub docs: Vec<FrozenDoc>,
}

/// A stored document (or the notes) as placed in a frozen template.
pub struct FrozenDoc {
    /// What it is: `manifest document 3 (# Source: …)`, `hook NAME (…)`, `notes`.
    pub what: String,
    /// Its first line in the template file (1-based; escaping adds no lines).
    pub first_line: usize,
    /// Its stored text.
    pub text: Zeroizing<String>,
}

/// Where in a stored release a helm error about a frozen chart points.
pub struct Located<'a> {
    /// The template file.
    pub file: &'a FrozenFile,
    /// The document, when the error names a line.
    pub doc: Option<&'a FrozenDoc>,
    /// The line within that document (1-based).
    pub line: Option<usize>,
}

impl FrozenChart {
    /// Finds the stored document a helm error is about: helm names a
    /// template as `chart/templates/x.yaml`, with `:LINE` for template parse
    /// and execution errors. `None` if the error names no frozen template.
    pub fn locate(&self, error: &str) -> Option<Located<'_>> {
        let (file, after) = self.layout.iter().find_map(|f| {
            let at = error.find(&f.path)?;
            let after = &error[at + f.path.len()..];
            // Not a longer path that starts the same.
            match after.chars().next() {
                Some(c) if c.is_alphanumeric() || c == '/' || c == '.' => None,
                _ => Some((f, after)),
            }
        })?;
        let number = |text: &str| -> Option<usize> {
            text.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .ok()
        };
        if let Some(line) = after.strip_prefix(':').and_then(number) {
            // A template error: the line of the template file.
            let doc = file.docs.iter().rev().find(|d| d.first_line <= line);
            return Some(Located {
                file,
                line: doc.map(|d| line - d.first_line + 1),
                doc,
            });
        }
        // A YAML error (`yaml: line N`) counts lines in the document that
        // does not parse, which the error does not name: the one of the
        // template's stored documents that is not YAML.
        let broken: Vec<&FrozenDoc> = file
            .docs
            .iter()
            .filter(|d| serde_norway::from_str::<serde_norway::Value>(&d.text).is_err())
            .collect();
        let doc = match broken[..] {
            [one] => Some(one),
            _ => None,
        };
        let line = doc.and_then(|_| {
            let at = after.find("yaml: line ")?;
            number(&after[at + "yaml: line ".len()..])
        });
        Some(Located { file, doc, line })
    }
}

/// Go's encoding/json writes nil slices and maps as `null`: treat as empty.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Deserialize)]
struct Record {
    #[serde(default)]
    version: u32,
    #[serde(default, deserialize_with = "nullable")]
    manifest: String,
    #[serde(default, deserialize_with = "nullable")]
    hooks: Vec<Hook>,
    #[serde(default)]
    info: Option<Info>,
    #[serde(default)]
    config: Option<Value>,
    chart: Option<Chart>,
}

#[derive(Deserialize)]
struct Info {
    #[serde(default, deserialize_with = "nullable")]
    notes: String,
}

#[derive(Deserialize)]
struct Hook {
    #[serde(default, deserialize_with = "nullable")]
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    path: String,
    #[serde(default, deserialize_with = "nullable")]
    manifest: String,
}

#[derive(Deserialize)]
struct Chart {
    #[serde(default, deserialize_with = "nullable")]
    metadata: Map<String, Value>,
    #[serde(default)]
    values: Option<Value>,
    #[serde(default, deserialize_with = "nullable")]
    files: Vec<File>,
}

#[derive(Deserialize)]
struct File {
    name: String,
    #[serde(default, deserialize_with = "nullable")]
    data: String,
}

/// What Helm's engine deletes from every rendered file (Go's text/template
/// prints it for missing map keys, and Helm removes it afterwards).
const NO_VALUE: &str = "<no value>";

/// Writes `text` as a Go template that Helm renders back to exactly `text`.
///
/// The rules, each for one step between a template file and Helm's output:
/// * Go's lexer reads text up to the next `{{` and starts an action there,
///   whatever comes before it (a `{` just before `{{` is text, so `{{{` is `{`
///   then an action). So every maximal run of `{` and `}` characters that
///   holds `{{` or `}}` is written as one action printing that run as a Go
///   string, `{{"…"}}`. The characters on either side of such an action are
///   never braces, so no `{{` is left in text and no text brace touches an
///   action's delimiters (`{}}` stays text; `x{{{y` becomes `x{{"{{{"}}y`).
/// * Helm replaces every `<no value>` in a rendered file by nothing, once,
///   left to right. Each `<no value>` of `text` is written as
///   `<no <no value>value>`: the replacement removes the inner one and
///   leaves exactly the original.
/// * Helm's chart loader drops a UTF-8 byte order mark at the start of a
///   file, so one there is written as an action too.
pub fn escape_template(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    if let Some(after) = rest.strip_prefix('\u{feff}') {
        out.push_str("{{\"\\ufeff\"}}");
        rest = after;
    }
    let mut pieces = rest.split(NO_VALUE);
    if let Some(first) = pieces.next() {
        escape_braces(first, &mut out);
    }
    for piece in pieces {
        out.push_str("<no <no value>value>");
        escape_braces(piece, &mut out);
    }
    out
}

/// Appends `text` with every run of braces holding `{{` or `}}` written as a
/// Go string action (see [`escape_template`]).
fn escape_braces(text: &str, out: &mut String) {
    let bytes = text.as_bytes();
    let is_brace = |b: u8| b == b'{' || b == b'}';
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if !is_brace(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_brace(bytes[i]) {
            i += 1;
        }
        let run = &text[start..i];
        if run.contains("{{") || run.contains("}}") {
            out.push_str(&text[copied..start]);
            out.push_str("{{\"");
            out.push_str(run);
            out.push_str("\"}}");
            copied = i;
        }
    }
    out.push_str(&text[copied..]);
}

/// A safe file name piece from a hook name.
fn file_piece(s: &str) -> String {
    let p: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(60)
        .collect();
    if p.is_empty() { "hook".to_owned() } else { p }
}

fn add(tar: &mut tar::Builder<GzEncoder<Vec<u8>>>, path: &str, data: &[u8]) -> std::io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o600);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, path, data)
}

/// What a frozen chart is made of, whichever Helm generation stored the
/// release: [`freeze`] reads it from a Helm 3/4 record, and
/// [`super::frozen_helm2`] from a Helm 2 one.
pub struct Parts {
    /// The Chart.yaml fields (camelCase, as Helm 3 writes them). `name` is
    /// required; `dependencies` and `kubeVersion` are dropped.
    pub metadata: Map<String, Value>,
    /// The stored revision, recorded in the [`FROZEN_ANNOTATION`].
    pub revision: u32,
    /// The chart's default values: the content of `values.yaml`.
    pub defaults: Zeroizing<Vec<u8>>,
    /// The rendered manifest.
    pub manifest: Zeroizing<String>,
    /// The rendered hooks.
    pub hooks: Vec<FrozenHook>,
    /// The rendered notes (may be empty).
    pub notes: String,
    /// Files of the chart's `crds/` directory: `(path under crds/, content)`.
    pub crds: Vec<(String, Zeroizing<Vec<u8>>)>,
    /// The user-supplied values: a YAML (or JSON) document.
    pub values: Zeroizing<Vec<u8>>,
}

/// A rendered hook of the stored release.
pub struct FrozenHook {
    /// The hook's name (its object's name).
    pub name: String,
    /// The template it was rendered from, as its `# Source:` comment says
    /// (`chart/templates/job.yaml`); may be empty.
    pub path: String,
    /// The rendered document.
    pub manifest: Zeroizing<String>,
}

/// Builds the frozen chart of a Helm 3/4 release record.
pub fn freeze(record: &[u8]) -> Result<FrozenChart, RestoreError> {
    let r: Record = serde_json::from_slice(record).map_err(RestoreError::NotARecord)?;
    let chart = r.chart.ok_or(RestoreError::NoChart)?;
    let mut crds = Vec::new();
    for f in chart.files.iter() {
        let Some(path) = f.name.strip_prefix("crds/") else {
            continue;
        };
        let data = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(&f.data)
                .map_err(|source| RestoreError::ChartFile {
                    name: f.name.clone(),
                    source,
                })?,
        );
        crds.push((path.to_owned(), data));
    }
    // The parsed values are wiped once they are serialized into the chart.
    let mut defaults = chart.values.unwrap_or(Value::Object(Map::new()));
    let mut config = r.config.unwrap_or(Value::Object(Map::new()));
    let serialized = (json(&defaults), json(&config));
    crate::release::wipe_json(&mut defaults);
    crate::release::wipe_json(&mut config);
    let (defaults, values) = (serialized.0?, serialized.1?);
    assemble(Parts {
        metadata: chart.metadata,
        revision: r.version,
        defaults: Zeroizing::new(defaults),
        manifest: Zeroizing::new(r.manifest),
        hooks: r
            .hooks
            .into_iter()
            .map(|h| FrozenHook {
                name: h.name,
                path: h.path,
                manifest: Zeroizing::new(h.manifest),
            })
            .collect(),
        notes: r.info.map(|i| i.notes).unwrap_or_default(),
        crds,
        values: Zeroizing::new(values),
    })
}

/// Builds the chart archive from its parts: Chart.yaml, values.yaml, the
/// manifest, hooks and notes as escaped templates, and `crds/`.
pub fn assemble(parts: Parts) -> Result<FrozenChart, RestoreError> {
    let (name, version, meta) = frozen_metadata(parts.metadata, parts.revision)?;
    let io = RestoreError::Build;
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    add(&mut tar, &format!("{name}/Chart.yaml"), &json(&meta)?).map_err(io)?;
    add(&mut tar, &format!("{name}/values.yaml"), &parts.defaults).map_err(io)?;
    let templates = templates(&name, &parts.manifest, &parts.hooks);
    add_subcharts(&mut tar, &name, &templates)?;
    let mut layout = Vec::new();
    for (path, docs) in templates.files {
        let (text, placed) = join_documents(docs);
        let body = Zeroizing::new(escape_template(&text));
        let file = format!("{name}/{path}");
        add(&mut tar, &file, body.as_bytes()).map_err(io)?;
        layout.push(FrozenFile {
            path: file,
            docs: placed,
        });
    }
    if !parts.notes.is_empty() {
        let file = format!("{name}/templates/NOTES.txt");
        add(&mut tar, &file, escape_template(&parts.notes).as_bytes()).map_err(io)?;
        layout.push(FrozenFile {
            path: file,
            docs: vec![FrozenDoc {
                what: "notes".to_owned(),
                first_line: 1,
                text: Zeroizing::new(parts.notes.clone()),
            }],
        });
    }
    for (path, data) in &parts.crds {
        if path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            continue;
        }
        add(&mut tar, &format!("{name}/crds/{path}"), data).map_err(io)?;
    }
    let gz = tar.into_inner().map_err(io)?;
    let archive = Zeroizing::new(gz.finish().map_err(io)?);
    Ok(FrozenChart {
        name,
        version,
        archive,
        values: parts.values,
        layout,
    })
}

/// A part of the frozen chart as its (pretty) JSON text.
fn json(v: &Value) -> Result<Vec<u8>, RestoreError> {
    serde_json::to_vec_pretty(v).map_err(RestoreError::Json)
}

/// The frozen chart's name, version and Chart.yaml: the stored metadata
/// without `dependencies` and `kubeVersion`, with an `apiVersion` Helm 3/4
/// reads, a version (`0.0.0` when there is none) and the frozen revision as
/// [`FROZEN_ANNOTATION`].
fn frozen_metadata(
    mut meta: Map<String, Value>,
    revision: u32,
) -> Result<(String, String, Value), RestoreError> {
    let name = meta
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or(RestoreError::UnnamedChart)?
        .to_owned();
    let version = meta
        .get("version")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .unwrap_or("0.0.0")
        .to_owned();
    meta.remove("dependencies");
    meta.remove("kubeVersion");
    if !matches!(
        meta.get("apiVersion").and_then(Value::as_str),
        Some("v1" | "v2")
    ) {
        meta.insert("apiVersion".to_owned(), Value::from("v2"));
    }
    meta.insert("version".to_owned(), Value::from(version.clone()));
    let annotations = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(a) = annotations {
        a.insert(
            FROZEN_ANNOTATION.to_owned(),
            Value::from(revision.to_string()),
        );
    }
    Ok((name, version, Value::Object(meta)))
}

/// The templates of the chart `name`: each manifest document in the
/// template its `# Source:` comment names (or [`UNSOURCED`]), then each
/// hook in its own (or `templates/hook-NNN-<name>.yaml`).
fn templates(name: &str, manifest: &str, hooks: &[FrozenHook]) -> Templates {
    let mut templates = Templates::default();
    let stored = split_manifest(manifest);
    let count = stored.len();
    for (i, (source, doc)) in stored.into_iter().enumerate() {
        let what = format!(
            "manifest document {} of {count} (# Source: {})",
            i + 1,
            source.unwrap_or("none")
        );
        match source.and_then(|p| template_path(name, p)) {
            Some(path) => templates.push(path, what, doc),
            // No usable `# Source:` comment: the document keeps its own text.
            None => templates.push(UNSOURCED.to_owned(), what, doc),
        }
    }
    for (i, hook) in hooks.iter().enumerate() {
        let path = template_path(name, &hook.path)
            .unwrap_or_else(|| format!("templates/hook-{i:03}-{}.yaml", file_piece(&hook.name)));
        let what = format!("hook {} (# Source: {})", hook.name, hook.path);
        templates.push(path, what, &hook.manifest);
    }
    templates
}

/// A Chart.yaml for each subchart directory the templates need.
fn add_subcharts(
    tar: &mut tar::Builder<GzEncoder<Vec<u8>>>,
    name: &str,
    templates: &Templates,
) -> Result<(), RestoreError> {
    for dir in templates.subcharts() {
        let sub = dir.rsplit('/').next().unwrap_or(&dir);
        let chart_yaml = serde_json::json!({
            "apiVersion": "v2",
            "name": sub,
            "version": "0.0.0",
            "description": "A subchart's rendered output, frozen by helm-bulk",
        });
        add(
            tar,
            &format!("{name}/{dir}/Chart.yaml"),
            &json(&chart_yaml)?,
        )
        .map_err(RestoreError::Build)?;
    }
    Ok(())
}

/// The text of one template from its documents, joined by `---` lines, and
/// where each document starts in it.
fn join_documents(docs: Vec<Doc>) -> (Zeroizing<String>, Vec<FrozenDoc>) {
    // Helm 3 trims each document it splits from a template's output;
    // Helm 4 splits at lines starting with `---` and trims only leading
    // white space, so a document it stored ends without a newline only
    // if it was the last of its template (`{{- end -}}`). Such a
    // document goes last here too: joined to a `---` line it would gain
    // a newline with Helm 4. Moving it keeps Helm's order, which is
    // stable by kind: it came after every document of its kind from
    // the same template. Documents joined by `---` lines come back out
    // of either Helm exactly as they went in.
    let (ended, open): (Vec<_>, Vec<_>) = docs.into_iter().partition(|(_, d)| d.ends_with('\n'));
    let mut text = Zeroizing::new(String::new());
    let mut placed = Vec::new();
    let mut line = 1;
    // A Helm 3 document can start with a `---` line (see
    // split_manifest). Helm 3 splits a `---` at the very start of a
    // template away, so one first in its template gets a `---` before it.
    if ended
        .iter()
        .chain(&open)
        .next()
        .is_some_and(|(_, d)| d.starts_with("---"))
    {
        text.push_str("---\n");
        line += 1;
    }
    for (i, (what, doc)) in ended.into_iter().chain(open).enumerate() {
        if i > 0 {
            if !text.ends_with('\n') {
                text.push('\n');
                line += 1;
            }
            text.push_str("---\n");
            line += 1;
        }
        placed.push(FrozenDoc {
            what,
            first_line: line,
            text: doc.clone(),
        });
        line += doc.matches('\n').count();
        text.push_str(&doc);
    }
    (text, placed)
}

/// Where documents without a usable `# Source:` comment go.
const UNSOURCED: &str = "templates/helm-bulk-unsourced.yaml";

/// One stored document: what it is, and its text.
type Doc = (String, Zeroizing<String>);

/// The frozen chart's template files, in the order first seen, each with
/// its documents in stored order.
#[derive(Default)]
struct Templates {
    files: Vec<(String, Vec<Doc>)>,
}

impl Templates {
    fn push(&mut self, path: String, what: String, doc: &str) {
        let doc = (what, Zeroizing::new(doc.to_owned()));
        match self.files.iter_mut().find(|(p, _)| *p == path) {
            Some((_, docs)) => docs.push(doc),
            None => self.files.push((path, vec![doc])),
        }
    }

    /// Every subchart directory the templates need (`charts/a`,
    /// `charts/a/charts/b`, …), parents first.
    fn subcharts(&self) -> std::collections::BTreeSet<String> {
        let mut dirs = std::collections::BTreeSet::new();
        for (path, _) in &self.files {
            let parts: Vec<&str> = path.split('/').collect();
            let mut i = 0;
            while parts.get(i) == Some(&"charts") && i + 1 < parts.len() {
                dirs.insert(parts[..i + 2].join("/"));
                i += 2;
            }
        }
        dirs
    }
}

/// Splits a rendered manifest as Helm writes it (`---\n# Source: PATH\n`,
/// the document, `\n`, for each document) into `(PATH, document)`, each
/// document exactly as Helm split it from its template's output. A document
/// without the comment has no path.
///
/// A document itself never holds a line starting with `---`, but for its
/// first line with Helm 3: its split (`\s*\n---\s*`) eats the white space
/// after a `---`, so a template printing `---` twice in a row makes a
/// document that starts with the second `---` line. The line right after a
/// `# Source:` comment is therefore always part of the document.
fn split_manifest(manifest: &str) -> Vec<(Option<&str>, &str)> {
    let mut chunks: Vec<&str> = Vec::new();
    let mut start = 0;
    let mut at = 0;
    let mut after_separator = false;
    let mut after_source = false;
    for line in manifest.split_inclusive('\n') {
        if line.trim_end() == "---" && !after_source {
            chunks.push(&manifest[start..at]);
            start = at + line.len();
            after_separator = true;
        } else {
            after_source = after_separator && line.starts_with("# Source: ");
            after_separator = false;
        }
        at += line.len();
    }
    chunks.push(&manifest[start..]);
    chunks
        .into_iter()
        .filter(|c| !c.trim().is_empty())
        .map(|chunk| {
            let chunk = chunk.strip_suffix('\n').unwrap_or(chunk);
            match chunk.strip_prefix("# Source: ") {
                Some(rest) => {
                    let (path, doc) = rest.split_once('\n').unwrap_or((rest, ""));
                    (Some(path.trim_end()), doc)
                }
                None => (None, chunk),
            }
        })
        .filter(|(_, doc)| !doc.trim().is_empty())
        .collect()
}

/// The template path (inside the chart directory) that renders with
/// `# Source: source` in a chart named `chart`: `chart/templates/x.yaml` is
/// `templates/x.yaml`, `chart/charts/db/templates/y.yaml` is
/// `charts/db/templates/y.yaml`. `None` for anything helm could not have
/// rendered (partials, NOTES.txt, odd path components).
fn template_path(chart: &str, source: &str) -> Option<String> {
    let rest = source.strip_prefix(chart)?.strip_prefix('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    let safe = |c: &str| {
        !c.is_empty()
            && c != "."
            && c != ".."
            && !c.contains('\\')
            && !c.chars().any(char::is_control)
    };
    if !parts.iter().all(|c| safe(c)) {
        return None;
    }
    let mut i = 0;
    while parts.get(i) == Some(&"charts") {
        let sub = parts.get(i + 1)?;
        if !sub
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return None;
        }
        i += 2;
    }
    if parts.get(i) != Some(&"templates") || parts.len() < i + 2 {
        return None;
    }
    let file = parts.last()?;
    if file.starts_with('_') || (parts.len() == i + 2 && *file == "NOTES.txt") {
        return None;
    }
    Some(rest.to_owned())
}

/// Writes the chart archive somewhere `helm` can open by path without it
/// touching disk: an anonymous memory file (Linux memfd) inherited by the
/// child process and named `/dev/fd/N`.
pub struct ChartHandle {
    #[cfg(target_os = "linux")]
    file: std::fs::File,
    #[cfg(not(target_os = "linux"))]
    file: tempfile::NamedTempFile,
}

impl ChartHandle {
    /// Places the archive.
    pub fn new(archive: &[u8]) -> Result<ChartHandle, RestoreError> {
        #[cfg(target_os = "linux")]
        {
            // Deliberately without MFD_CLOEXEC: the helm child must inherit it.
            let fd = rustix::fs::memfd_create("helm-bulk-chart", rustix::fs::MemfdFlags::empty())
                .map_err(RestoreError::MemoryFile)?;
            let mut file = std::fs::File::from(fd);
            file.write_all(archive)
                .map_err(RestoreError::placing("cannot write the chart"))?;
            Ok(ChartHandle { file })
        }
        #[cfg(not(target_os = "linux"))]
        {
            // Without memfd the chart (no values: those go through stdin) is a
            // 0600 temp file, removed when the handle is dropped.
            let dir = std::env::temp_dir();
            let mut file = crate::store::private_temp_file(&dir)
                .map_err(RestoreError::placing("cannot create a temp file"))?;
            file.write_all(archive)
                .map_err(RestoreError::placing("cannot write the chart"))?;
            Ok(ChartHandle { file })
        }
    }

    /// The path to give helm.
    pub fn path(&self) -> String {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            format!("/dev/fd/{}", self.file.as_raw_fd())
        }
        #[cfg(not(target_os = "linux"))]
        {
            self.file.path().display().to_string()
        }
    }
}

/// The `(path, text)` of every file in a chart archive, in order (tests).
#[cfg(test)]
pub(crate) fn archive_files(archive: &[u8]) -> Vec<(String, String)> {
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    ar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut e, &mut text).unwrap();
            (p, text)
        })
        .collect()
}

/// The files of the frozen chart of an `nginx` release with one hook, `pre`,
/// before its CRDs: what the Helm 3/4 and the Helm 2 tests freeze (tests).
#[cfg(test)]
pub(crate) const NGINX_WITH_PRE_HOOK: [&str; 5] = [
    "nginx/Chart.yaml",
    "nginx/values.yaml",
    "nginx/templates/helm-bulk-unsourced.yaml",
    "nginx/templates/hook-000-pre.yaml",
    "nginx/templates/NOTES.txt",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// What Helm does with one template file of a frozen chart, for the
    /// subset of Go's template syntax [`escape_template`] writes: the chart
    /// loader drops a leading byte order mark, Go's lexer takes text up to
    /// the next `{{` and parses an action there (only a string literal is
    /// accepted here; anything else is the parse error Helm would report),
    /// and the engine deletes every `<no value>` of the output.
    fn helm_renders(template: &str) -> Result<String, String> {
        let mut rest = template.strip_prefix('\u{feff}').unwrap_or(template);
        let mut out = String::new();
        while let Some(at) = rest.find("{{") {
            out.push_str(&rest[..at]);
            let action = &rest[at + 2..];
            let Some(body) = action.strip_prefix('"') else {
                return Err(format!("an action that is not a string at {action:.20?}"));
            };
            let mut chars = body.char_indices();
            let end = loop {
                match chars.next() {
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => {
                        let escape: String = chars.by_ref().take(5).map(|(_, c)| c).collect();
                        if escape != "ufeff" {
                            return Err(format!("unknown escape \\{escape}"));
                        }
                        out.push('\u{feff}');
                    }
                    Some((_, c)) => out.push(c),
                    None => return Err("unterminated string".to_owned()),
                }
            };
            rest = body[end + 1..]
                .strip_prefix("}}")
                .ok_or_else(|| format!("unexpected {:.10?} in command", &body[end + 1..]))?;
        }
        out.push_str(rest);
        Ok(out.replace(NO_VALUE, ""))
    }

    /// A small seeded generator, so failures reproduce.
    use crate::testing::SplitMix64 as Rng;

    #[test]
    fn escaping_round_trips_through_go_template_syntax() {
        assert_eq!(escape_template("a {{ b }} c"), r#"a {{"{{"}} b {{"}}"}} c"#);
        assert_eq!(escape_template("}}{{"), r#"{{"}}{{"}}"#);
        assert_eq!(escape_template("{{{"), r#"{{"{{{"}}"#);
        assert_eq!(escape_template("plain"), "plain");
        // Issue 13: `{` before `}}` was read as the start of an action
        // (`{{{"}}"}}`); the whole run goes into the action.
        assert_eq!(
            escape_template(r#""options":{}}"#),
            r#""options":{{"{}}"}}"#
        );
        assert_eq!(
            escape_template(r#"[{\"container\":{}},"#),
            r#"[{\"container\":{{"{}}"}},"#
        );
        assert_eq!(escape_template("{}{}"), "{}{}");
        assert_eq!(escape_template("x{{{y}}}"), r#"x{{"{{{"}}y{{"}}}"}}"#);
        assert_eq!(escape_template("{}{{"), r#"{{"{}{{"}}"#);
        assert_eq!(
            escape_template("a <no value> b"),
            "a <no <no value>value> b"
        );
        assert_eq!(escape_template("\u{feff}x"), r#"{{"\ufeff"}}x"#);
        for text in [
            "{}}",
            "{{}",
            "{{-",
            " -}}",
            "{{/* c */}}",
            "}{",
            "<no <no value>value>",
            "<no {{ value>",
            "\u{feff}{{",
        ] {
            assert_eq!(helm_renders(&escape_template(text)).as_deref(), Ok(text));
        }
    }

    /// The escaping rules against the model of Helm above, on many seeded
    /// texts made of the pieces that matter. The differential test against
    /// the real helm binaries is `tests/frozen_fidelity/`.
    #[test]
    fn escaping_holds_for_generated_texts() {
        const MORE: [&str; 16] = [
            "\"",
            "`",
            "\\",
            "'",
            "<no value>",
            "<no ",
            "value>",
            "<",
            "\u{feff}",
            "\r\n",
            "\t",
            "\n",
            "é日😀",
            "a",
            " ",
            "---",
        ];
        let pieces: Vec<&str> = crate::testing::TEMPLATE_DELIMITERS
            .iter()
            .chain(&MORE)
            .copied()
            .collect();
        let mut rng = Rng(0x1e13_2026);
        for case in 0..20_000 {
            let len = rng.below(24);
            let text: String = (0..len).map(|_| pieces[rng.below(pieces.len())]).collect();
            let escaped = escape_template(&text);
            assert_eq!(
                helm_renders(&escaped).as_deref(),
                Ok(text.as_str()),
                "case {case}: {text:?} escaped as {escaped:?}"
            );
        }
    }

    #[test]
    fn freezes_a_record() {
        let rec = br#"{"name":"web","namespace":"prod","version":4,
          "info":{"status":"deployed","notes":"see {{ .Values.x }}"},
          "chart":{"metadata":{"name":"nginx","version":"1.2.3","appVersion":"1.27","apiVersion":"v2",
            "dependencies":[{"name":"sub","version":"1"}],"kubeVersion":">=1.20"},
            "values":{"replicas":1},
            "files":[{"name":"crds/crd.yaml","data":"a2luZDogQ1JE"},{"name":"README.md","data":"eA=="}]},
          "config":{"password":"p"},
          "manifest":"---\nkind: ConfigMap\ndata:\n  t: '{{ literal }}'\n",
          "hooks":[{"name":"pre","manifest":"kind: Secret\n"}]}"#;
        let f = freeze(rec).unwrap();
        assert_eq!((f.name.as_str(), f.version.as_str()), ("nginx", "1.2.3"));
        assert_eq!(&f.values[..], b"{\n  \"password\": \"p\"\n}");
        let files = archive_files(&f.archive);
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names[..5], NGINX_WITH_PRE_HOOK);
        assert_eq!(names[5..], ["nginx/crds/crd.yaml"]);
        let chart_yaml = &files[0].1;
        assert!(!chart_yaml.contains("dependencies"));
        assert!(!chart_yaml.contains("kubeVersion"));
        assert!(chart_yaml.contains(FROZEN_ANNOTATION));
    }

    #[test]
    fn documents_go_back_to_their_source_templates() {
        let manifest = "---\n# Source: app/templates/cm.yaml\nkind: ConfigMap\nmetadata:\n  name: a\n\
            ---\n# Source: app/charts/db/templates/s.yaml\nkind: Secret\ndata:\n  x: '{{ y }}'\n\
            ---\n# Source: app/templates/cm.yaml\nkind: ConfigMap\nmetadata:\n  name: b\n\
            ---\n# Source: app/charts/db/charts/cache/templates/c.yaml\nkind: Service\n\
            ---\nkind: Orphan\n";
        let rec = serde_json::json!({
            "name": "r", "namespace": "n", "version": 2,
            "chart": {"metadata": {"name": "app", "version": "1.0.0"}},
            "manifest": manifest,
            "hooks": [
                {"name": "job", "path": "app/templates/cm.yaml", "manifest": "kind: Job\n"},
                {"name": "odd", "path": "other/templates/x.yaml", "manifest": "kind: Pod"},
            ],
        });
        let f = freeze(rec.to_string().as_bytes()).unwrap();
        let files = archive_files(&f.archive);
        let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            names,
            [
                "app/Chart.yaml",
                "app/values.yaml",
                "app/charts/db/Chart.yaml",
                "app/charts/db/charts/cache/Chart.yaml",
                "app/templates/cm.yaml",
                "app/charts/db/templates/s.yaml",
                "app/charts/db/charts/cache/templates/c.yaml",
                "app/templates/helm-bulk-unsourced.yaml",
                "app/templates/hook-001-odd.yaml",
            ]
        );
        let file = |name: &str| &files.iter().find(|(p, _)| p == name).unwrap().1;
        // Documents of one source, in stored order, hooks after them; those
        // that end with a newline (here the hook) before those that do not.
        assert_eq!(
            file("app/templates/cm.yaml"),
            "kind: Job\n---\nkind: ConfigMap\nmetadata:\n  name: a\n---\nkind: ConfigMap\nmetadata:\n  name: b"
        );
        assert_eq!(
            file("app/charts/db/templates/s.yaml"),
            "kind: Secret\ndata:\n  x: '{{\"{{\"}} y {{\"}}\"}}'"
        );
        assert!(file("app/charts/db/charts/cache/Chart.yaml").contains("\"name\": \"cache\""));
        assert_eq!(
            file("app/templates/helm-bulk-unsourced.yaml"),
            "kind: Orphan"
        );
    }

    /// Issue 13: Helm 4 sorted a template's last document (no final
    /// newline, `{{- end -}}`) before the others; joined to the next `---`
    /// it gained a newline, and a `|+` value at its end an empty line.
    #[test]
    fn a_document_without_final_newline_goes_last_in_its_template() {
        let cm = "kind: ConfigMap\ndata:\n  keep: |+\n    echo hi";
        let svc = "kind: Service\nmetadata:\n  name: s\n";
        let manifest = format!(
            "---\n# Source: app/templates/both.yaml\n{cm}\n---\n# Source: app/templates/both.yaml\n{svc}\n"
        );
        let rec = serde_json::json!({
            "name": "r", "namespace": "n", "version": 1,
            "chart": {"metadata": {"name": "app", "version": "1.0.0"}},
            "manifest": manifest,
        });
        let f = freeze(rec.to_string().as_bytes()).unwrap();
        let files = archive_files(&f.archive);
        let both = &files
            .iter()
            .find(|(p, _)| p == "app/templates/both.yaml")
            .unwrap()
            .1;
        assert_eq!(both, &format!("{svc}---\n{cm}"));
    }

    #[test]
    fn a_helm_error_is_traced_to_the_stored_document_and_line() {
        let manifest = "---\n# Source: app/templates/cm.yaml\nkind: ConfigMap\nmetadata:\n  name: a\n\
            ---\n# Source: app/templates/cm.yaml\nkind: ConfigMap\nmetadata:\n  name: b\n  x: y\n";
        let rec = serde_json::json!({
            "name": "r", "namespace": "n", "version": 2,
            "chart": {"metadata": {"name": "app", "version": "1.0.0"}},
            "manifest": manifest,
            "info": {"notes": "hello"},
        });
        let f = freeze(rec.to_string().as_bytes()).unwrap();
        // cm.yaml: lines 1-3 document 1, line 4 `---`, lines 5-8 document 2.
        let at = f
            .locate(r#"parse error at (app/templates/cm.yaml:7): unexpected "{" in command"#)
            .unwrap();
        assert_eq!(at.file.path, "app/templates/cm.yaml");
        let doc = at.doc.unwrap();
        assert_eq!(
            doc.what,
            "manifest document 2 of 2 (# Source: app/templates/cm.yaml)"
        );
        assert_eq!(
            doc.text.as_str(),
            "kind: ConfigMap\nmetadata:\n  name: b\n  x: y"
        );
        assert_eq!(at.line, Some(3));
        let at = f
            .locate("YAML parse error on app/templates/cm.yaml: error converting YAML")
            .unwrap();
        assert!(at.doc.is_none() && at.line.is_none());
        assert_eq!(
            f.locate("template: app/templates/NOTES.txt:1:3: executing")
                .unwrap()
                .doc
                .unwrap()
                .what,
            "notes"
        );
        assert!(f.locate("app/templates/cm.yamlx:3").is_none());
        assert!(f.locate("Service \"x\" is invalid").is_none());
    }

    #[test]
    fn only_renderable_source_paths_are_used() {
        let t = |s: &str| template_path("app", s);
        assert_eq!(
            t("app/templates/a.yaml").as_deref(),
            Some("templates/a.yaml")
        );
        assert_eq!(
            t("app/templates/sub/a.yaml").as_deref(),
            Some("templates/sub/a.yaml")
        );
        assert_eq!(
            t("app/charts/db/templates/a.yaml").as_deref(),
            Some("charts/db/templates/a.yaml")
        );
        for bad in [
            "other/templates/a.yaml",
            "application/templates/a.yaml",
            "app/templates/_helpers.tpl",
            "app/templates/NOTES.txt",
            "app/templates/../../etc/passwd",
            "app/templates//a.yaml",
            "app/templates",
            "app/crds/a.yaml",
            "app/charts/db/a.yaml",
            "app/charts/d b/templates/a.yaml",
            "app/charts/../templates/a.yaml",
            "",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }

    #[test]
    fn splits_manifests_as_helm_writes_them() {
        let m = "---\n# Source: a/templates/x.yaml\nkind: A\n---\n# Source: a/templates/y.yaml\nkind: B\nk: |\n  ---x\n";
        assert_eq!(
            split_manifest(m),
            [
                (Some("a/templates/x.yaml"), "kind: A"),
                (Some("a/templates/y.yaml"), "kind: B\nk: |\n  ---x")
            ]
        );
        // Helm 4 keeps each document's trailing newline: so does the split.
        assert_eq!(
            split_manifest(
                "---\n# Source: a/templates/x.yaml\nkind: A\n\n---\n# Source: a/templates/x.yaml\nkind: B\n\n"
            ),
            [
                (Some("a/templates/x.yaml"), "kind: A\n"),
                (Some("a/templates/x.yaml"), "kind: B\n")
            ]
        );
        // Helm 3 stores `---` twice in a row as a document starting with `---`.
        assert_eq!(
            split_manifest(
                "---\n# Source: a/templates/x.yaml\n---\nkind: A\n---\n# Source: a/templates/x.yaml\nkind: B\n"
            ),
            [
                (Some("a/templates/x.yaml"), "---\nkind: A"),
                (Some("a/templates/x.yaml"), "kind: B")
            ]
        );
        assert_eq!(split_manifest(""), []);
        assert_eq!(split_manifest("kind: A\n"), [(None, "kind: A")]);
    }
}
