//! Helm 2 release records as Helm 3 release records, the way the `helm 2to3`
//! plugin converts them (`pkg/v3/release.go` of helm/helm-2to3): used by
//! `load` to write the history of a Helm 2 release migrated to Helm 3/4.
//!
//! The Helm 3 record (Helm's `release.Release` JSON):
//!
//! * `name`, `namespace`, `version`, `manifest`: as in Helm 2;
//! * `info`: `first_deployed`, `last_deployed`, `deleted` (RFC 3339, `""`
//!   when unset, as Helm's time type writes a zero time), `description`,
//!   `status` (Helm 3's name of Tiller's code: `DELETED` is `uninstalled`),
//!   `notes`;
//! * `chart`: `metadata` (Helm 2's fields under Helm 3's names, `type:
//!   application`, as 2to3 sets it), `lock: null`, `templates` and `files`
//!   (`{name, data}`, data base64; a Helm 2 file's name is its `type_url`),
//!   `values` (Helm 2's YAML, parsed), `schema: null`. Subcharts are not
//!   kept, as Helm 3 never stores them;
//! * `config`: the user values, Helm 2's YAML parsed (left out when empty);
//! * `hooks`: name, kind, path, manifest, weight, `events` and
//!   `delete_policies` under Helm 3's names (`pre-install`,
//!   `before-hook-creation`, …; `crd-install`, which Helm 3 ignores, keeps its
//!   name), `last_run` with Helm 2's last run time as `started_at`.

use base64::Engine as _;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::tiller::hapi::chart::{Chart, Config};
use crate::tiller::hapi::release::hook::{DeletePolicy, Event};
use crate::tiller::hapi::release::{Hook, Release};
use crate::tiller::record::{RecordError, code, rfc3339, status_name};

/// Why a Helm 2 record cannot be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The record does not decode.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// Its values (or its chart's) are not YAML.
    #[error("{what} are not valid YAML: {source}")]
    Values {
        /// Which values.
        what: &'static str,
        /// The parser's error.
        source: serde_norway::Error,
    },
    /// The release has no chart.
    #[error("release {0} has no chart")]
    NoChart(String),
    /// The Helm 3 record could not be written as JSON.
    #[error("{0}")]
    Json(#[source] serde_json::Error),
}

fn time(ts: Option<&prost_types::Timestamp>) -> Value {
    Value::from(rfc3339(ts).unwrap_or_default())
}

fn yaml_map(c: Option<&Config>, what: &'static str) -> Result<Value, ConvertError> {
    let raw = c.map(|c| c.raw.as_str()).unwrap_or("");
    let v: Value =
        serde_norway::from_str(raw).map_err(|source| ConvertError::Values { what, source })?;
    Ok(match v {
        Value::Null => Value::Object(Map::new()),
        other => other,
    })
}

fn b64(data: &[u8]) -> Value {
    Value::from(base64::engine::general_purpose::STANDARD.encode(data))
}

fn chart(c: &Chart) -> Result<Value, ConvertError> {
    let metadata = match &c.metadata {
        Some(m) => {
            let mut out = super::frozen_helm2::chart_yaml(m);
            if !m.kube_version.is_empty() {
                out.insert(
                    "kubeVersion".to_owned(),
                    Value::from(m.kube_version.as_str()),
                );
            }
            out.insert("type".to_owned(), Value::from("application"));
            Value::Object(out)
        }
        None => Value::Null,
    };
    let templates: Vec<Value> = c
        .templates
        .iter()
        .map(|t| serde_json::json!({"name": t.name, "data": b64(&t.data)}))
        .collect();
    let files: Vec<Value> = c
        .files
        .iter()
        .map(|f| serde_json::json!({"name": f.type_url, "data": b64(&f.value)}))
        .collect();
    let mut out = Map::new();
    out.insert("metadata".to_owned(), metadata);
    out.insert("lock".to_owned(), Value::Null);
    out.insert("templates".to_owned(), Value::from(templates));
    out.insert(
        "values".to_owned(),
        yaml_map(c.values.as_ref(), "the chart's default values")?,
    );
    out.insert("schema".to_owned(), Value::Null);
    out.insert("files".to_owned(), Value::from(files));
    Ok(Value::Object(out))
}

/// Helm 3's name of a Helm 2 hook event.
pub fn event_name(e: i32) -> &'static str {
    match Event::try_from(e).unwrap_or(Event::Unknown) {
        Event::Unknown => "unknown",
        Event::PreInstall => "pre-install",
        Event::PostInstall => "post-install",
        Event::PreDelete => "pre-delete",
        Event::PostDelete => "post-delete",
        Event::PreUpgrade => "pre-upgrade",
        Event::PostUpgrade => "post-upgrade",
        Event::PreRollback => "pre-rollback",
        Event::PostRollback => "post-rollback",
        Event::ReleaseTestSuccess => "test",
        Event::ReleaseTestFailure => "test-failure",
        Event::CrdInstall => "crd-install",
    }
}

fn policy_name(p: i32) -> &'static str {
    match DeletePolicy::try_from(p).unwrap_or(DeletePolicy::Succeeded) {
        DeletePolicy::Succeeded => "hook-succeeded",
        DeletePolicy::Failed => "hook-failed",
        DeletePolicy::BeforeHookCreation => "before-hook-creation",
    }
}

fn hook(h: &Hook) -> Value {
    let mut out = Map::new();
    let mut text = |k: &str, v: &str| {
        if !v.is_empty() {
            out.insert(k.to_owned(), Value::from(v));
        }
    };
    text("name", &h.name);
    text("kind", &h.kind);
    text("path", &h.path);
    text("manifest", &h.manifest);
    if !h.events.is_empty() {
        let events: Vec<Value> = h.events.iter().map(|e| event_name(*e).into()).collect();
        out.insert("events".to_owned(), Value::from(events));
    }
    out.insert(
        "last_run".to_owned(),
        serde_json::json!({
            "started_at": time(h.last_run.as_ref()),
            "completed_at": "",
            "phase": "",
        }),
    );
    if h.weight != 0 {
        out.insert("weight".to_owned(), Value::from(h.weight));
    }
    if !h.delete_policies.is_empty() {
        let p: Vec<Value> = h
            .delete_policies
            .iter()
            .map(|p| policy_name(*p).into())
            .collect();
        out.insert("delete_policies".to_owned(), Value::from(p));
    }
    Value::Object(out)
}

/// The Helm 3 record (JSON) of a Helm 2 release.
pub fn to_helm3(r: &Release) -> Result<Zeroizing<Vec<u8>>, ConvertError> {
    let c = r
        .chart
        .as_ref()
        .ok_or_else(|| ConvertError::NoChart(r.name.clone()))?;
    let info = r.info.as_ref();
    let status = info.and_then(|i| i.status.as_ref());
    let mut i = Map::new();
    i.insert(
        "first_deployed".to_owned(),
        time(info.and_then(|i| i.first_deployed.as_ref())),
    );
    i.insert(
        "last_deployed".to_owned(),
        time(info.and_then(|i| i.last_deployed.as_ref())),
    );
    i.insert(
        "deleted".to_owned(),
        time(info.and_then(|i| i.deleted.as_ref())),
    );
    if let Some(d) = info
        .map(|i| i.description.as_str())
        .filter(|d| !d.is_empty())
    {
        i.insert("description".to_owned(), Value::from(d));
    }
    i.insert("status".to_owned(), Value::from(status_name(code(r))));
    if let Some(n) = status.map(|s| s.notes.as_str()).filter(|n| !n.is_empty()) {
        i.insert("notes".to_owned(), Value::from(n));
    }
    let mut out = Map::new();
    out.insert("name".to_owned(), Value::from(r.name.as_str()));
    out.insert("info".to_owned(), Value::Object(i));
    out.insert("chart".to_owned(), chart(c)?);
    let config = yaml_map(r.config.as_ref(), "the release's values")?;
    if config.as_object().is_none_or(|m| !m.is_empty()) {
        out.insert("config".to_owned(), config);
    }
    if !r.manifest.is_empty() {
        out.insert("manifest".to_owned(), Value::from(r.manifest.as_str()));
    }
    if !r.hooks.is_empty() {
        out.insert(
            "hooks".to_owned(),
            Value::from(r.hooks.iter().map(hook).collect::<Vec<_>>()),
        );
    }
    out.insert("version".to_owned(), Value::from(r.version));
    out.insert("namespace".to_owned(), Value::from(r.namespace.as_str()));
    let mut v = Value::Object(out);
    let bytes = serde_json::to_vec(&v).map_err(ConvertError::Json);
    crate::release::wipe_json(&mut v);
    Ok(Zeroizing::new(bytes?))
}

/// [`to_helm3`] of a Helm 2 record's protobuf bytes.
pub fn record_to_helm3(data: &[u8]) -> Result<Zeroizing<Vec<u8>>, ConvertError> {
    let r = crate::tiller::record::decode_wiped(data)?;
    to_helm3(&r.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiller::hapi::release::{Info, Status};
    use crate::tiller::record::samples::{chart, metadata, values};

    #[test]
    fn a_helm2_release_as_helm3_reads_it() {
        let r = Release {
            name: "web".into(),
            namespace: "apps".into(),
            version: 2,
            manifest: "---\nkind: ConfigMap\n".into(),
            info: Some(Info {
                status: Some(Status {
                    code: 3,
                    notes: "hello".into(),
                    ..Default::default()
                }),
                first_deployed: Some(prost_types::Timestamp {
                    seconds: 1_600_000_000,
                    nanos: 0,
                }),
                last_deployed: Some(prost_types::Timestamp {
                    seconds: 1_600_000_100,
                    nanos: 0,
                }),
                deleted: None,
                description: "Upgrade complete".into(),
            }),
            chart: chart(
                metadata("legacy", "1.0.0", "2.0"),
                ("templates/cm.yaml", b"kind: ConfigMap"),
                "image: x\n",
            ),
            config: values("password: hunter2\n"),
            hooks: vec![Hook {
                name: "migrate".into(),
                kind: "Job".into(),
                path: "legacy/templates/job.yaml".into(),
                manifest: "kind: Job".into(),
                events: vec![1, 5, 11],
                delete_policies: vec![2],
                weight: -5,
                ..Default::default()
            }],
        };
        let json = to_helm3(&r).unwrap();
        let v: Value = serde_json::from_slice(&json).unwrap();
        let s = crate::release::Summary::from_helm_json(&json).unwrap();
        assert_eq!(
            (s.name.as_str(), s.namespace.as_str(), s.revision),
            ("web", "apps", 2)
        );
        assert_eq!(s.status, "superseded");
        assert_eq!(
            (
                s.chart.as_str(),
                s.chart_version.as_str(),
                s.app_version.as_str()
            ),
            ("legacy", "1.0.0", "2.0")
        );
        assert_eq!(v["info"]["last_deployed"], "2020-09-13T12:28:20Z");
        assert_eq!(v["info"]["deleted"], "");
        assert_eq!(v["info"]["description"], "Upgrade complete");
        assert_eq!(v["info"]["notes"], "hello");
        assert_eq!(v["config"]["password"], "hunter2");
        assert_eq!(v["chart"]["values"]["image"], "x");
        assert_eq!(v["chart"]["metadata"]["type"], "application");
        assert_eq!(v["chart"]["templates"][0]["data"], "a2luZDogQ29uZmlnTWFw");
        assert_eq!(
            v["hooks"][0]["events"],
            serde_json::json!(["pre-install", "pre-upgrade", "crd-install"])
        );
        assert_eq!(
            v["hooks"][0]["delete_policies"],
            serde_json::json!(["before-hook-creation"])
        );
        assert_eq!(v["hooks"][0]["weight"], -5);
        assert_eq!(v["manifest"], "---\nkind: ConfigMap\n");
    }
}
