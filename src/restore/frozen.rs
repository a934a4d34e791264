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

/// Escapes Go template actions so the engine outputs `text` unchanged.
pub fn escape_template(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    loop {
        let open = rest.find("{{");
        let close = rest.find("}}");
        let (at, token) = match (open, close) {
            (None, None) => break,
            (Some(o), Some(c)) if c < o => (c, "}}"),
            (Some(o), _) => (o, "{{"),
            (None, Some(c)) => (c, "}}"),
        };
        out.push_str(&rest[..at]);
        out.push_str(if token == "{{" {
            "{{\"{{\"}}"
        } else {
            "{{\"}}\"}}"
        });
        rest = &rest[at + 2..];
    }
    out.push_str(rest);
    out
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
/// `crate::tiller::freeze` from a Helm 2 one.
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
    let r: Record = serde_json::from_slice(record)
        .map_err(|e| RestoreError::Record(format!("not a Helm release record: {e}")))?;
    let chart = r
        .chart
        .ok_or_else(|| RestoreError::Record("the record has no chart".to_owned()))?;
    let json =
        |v: &Value| serde_json::to_vec_pretty(v).map_err(|e| RestoreError::Record(e.to_string()));
    let mut crds = Vec::new();
    for f in chart.files.iter() {
        let Some(path) = f.name.strip_prefix("crds/") else {
            continue;
        };
        let data = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(&f.data)
                .map_err(|e| {
                    RestoreError::Record(format!("chart file {} is not base64: {e}", f.name))
                })?,
        );
        crds.push((path.to_owned(), data));
    }
    assemble(Parts {
        metadata: chart.metadata,
        revision: r.version,
        defaults: Zeroizing::new(json(&chart.values.unwrap_or(Value::Object(Map::new())))?),
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
        values: Zeroizing::new(json(&r.config.unwrap_or(Value::Object(Map::new())))?),
    })
}

/// Builds the chart archive from its parts: Chart.yaml, values.yaml, the
/// manifest, hooks and notes as escaped templates, and `crds/`.
pub fn assemble(parts: Parts) -> Result<FrozenChart, RestoreError> {
    let mut meta = parts.metadata;
    let name = meta
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| RestoreError::Record("the record's chart has no name".to_owned()))?
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
            Value::from(parts.revision.to_string()),
        );
    }
    let io =
        |e: std::io::Error| RestoreError::Record(format!("cannot build the frozen chart: {e}"));
    let json =
        |v: &Value| serde_json::to_vec_pretty(v).map_err(|e| RestoreError::Record(e.to_string()));

    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    add(
        &mut tar,
        &format!("{name}/Chart.yaml"),
        &json(&Value::Object(meta))?,
    )
    .map_err(io)?;
    add(&mut tar, &format!("{name}/values.yaml"), &parts.defaults).map_err(io)?;
    let mut templates = Templates::default();
    for (source, doc) in split_manifest(&parts.manifest) {
        match source.and_then(|p| template_path(&name, p)) {
            Some(path) => templates.push(path, doc),
            // No usable `# Source:` comment: the document keeps its own text.
            None => templates.push(UNSOURCED.to_owned(), doc),
        }
    }
    for (i, hook) in parts.hooks.iter().enumerate() {
        let path = template_path(&name, &hook.path)
            .unwrap_or_else(|| format!("templates/hook-{i:03}-{}.yaml", file_piece(&hook.name)));
        templates.push(path, &hook.manifest);
    }
    for dir in templates.subcharts() {
        let sub = dir.rsplit('/').next().unwrap_or(&dir);
        let chart_yaml = serde_json::json!({
            "apiVersion": "v2",
            "name": sub,
            "version": "0.0.0",
            "description": "A subchart's rendered output, frozen by helm-bulk",
        });
        add(
            &mut tar,
            &format!("{name}/{dir}/Chart.yaml"),
            &json(&chart_yaml)?,
        )
        .map_err(io)?;
    }
    for (path, docs) in &templates.files {
        // Helm 3 trims each document it splits from a template's output;
        // Helm 4 splits at lines starting with `---` and trims only leading
        // white space. Documents joined by `---` lines come back out of
        // either exactly as they went in.
        let mut text = Zeroizing::new(String::new());
        for (i, doc) in docs.iter().enumerate() {
            if i > 0 {
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str("---\n");
            }
            text.push_str(doc);
        }
        let body = Zeroizing::new(escape_template(&text));
        add(&mut tar, &format!("{name}/{path}"), body.as_bytes()).map_err(io)?;
    }
    if !parts.notes.is_empty() {
        add(
            &mut tar,
            &format!("{name}/templates/NOTES.txt"),
            escape_template(&parts.notes).as_bytes(),
        )
        .map_err(io)?;
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
    })
}

/// Where documents without a usable `# Source:` comment go.
const UNSOURCED: &str = "templates/helm-bulk-unsourced.yaml";

/// The frozen chart's template files, in the order first seen, each with
/// its documents in stored order.
#[derive(Default)]
struct Templates {
    files: Vec<(String, Vec<Zeroizing<String>>)>,
}

impl Templates {
    fn push(&mut self, path: String, doc: &str) {
        let doc = Zeroizing::new(doc.to_owned());
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
fn split_manifest(manifest: &str) -> Vec<(Option<&str>, &str)> {
    let mut chunks: Vec<&str> = Vec::new();
    let mut start = 0;
    let mut at = 0;
    for line in manifest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            chunks.push(&manifest[start..at]);
            start = at + line.len();
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
                .map_err(|e| {
                RestoreError::Helm(format!("cannot create an in-memory file: {e}"))
            })?;
            let mut file = std::fs::File::from(fd);
            file.write_all(archive)
                .map_err(|e| RestoreError::Helm(format!("cannot write the chart: {e}")))?;
            Ok(ChartHandle { file })
        }
        #[cfg(not(target_os = "linux"))]
        {
            // Without memfd the chart (no values: those go through stdin) is a
            // 0600 temp file, removed when the handle is dropped.
            let dir = std::env::temp_dir();
            let mut file = crate::store::private_temp_file(&dir)
                .map_err(|e| RestoreError::Helm(format!("cannot create a temp file: {e}")))?;
            file.write_all(archive)
                .map_err(|e| RestoreError::Helm(format!("cannot write the chart: {e}")))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips_through_go_template_syntax() {
        assert_eq!(escape_template("a {{ b }} c"), r#"a {{"{{"}} b {{"}}"}} c"#);
        assert_eq!(escape_template("}}{{"), r#"{{"}}"}}{{"{{"}}"#);
        assert_eq!(escape_template("{{{"), r#"{{"{{"}}{"#);
        assert_eq!(escape_template("plain"), "plain");
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
        let mut names = Vec::new();
        let mut chart_yaml = String::new();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f.archive.as_slice()));
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            if p.ends_with("Chart.yaml") {
                std::io::Read::read_to_string(&mut e, &mut chart_yaml).unwrap();
            }
            names.push(p);
        }
        assert_eq!(
            names,
            [
                "nginx/Chart.yaml",
                "nginx/values.yaml",
                "nginx/templates/helm-bulk-unsourced.yaml",
                "nginx/templates/hook-000-pre.yaml",
                "nginx/templates/NOTES.txt",
                "nginx/crds/crd.yaml"
            ]
        );
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
        // Documents of one source, in stored order, hooks after them.
        assert_eq!(
            file("app/templates/cm.yaml"),
            "kind: ConfigMap\nmetadata:\n  name: a\n---\nkind: ConfigMap\nmetadata:\n  name: b\n---\nkind: Job\n"
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
        assert_eq!(split_manifest(""), []);
        assert_eq!(split_manifest("kind: A\n"), [(None, "kind: A")]);
    }
}
