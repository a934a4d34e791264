//! Frozen charts from Helm 2 releases (see [`crate::restore::frozen`]).
//!
//! * For Helm 3/4 ([`freeze_record`], the migration): the same frozen chart
//!   as for a Helm 3 record. The manifest, hooks and notes are reproduced
//!   literally as escaped templates; the Helm 2 chart's metadata becomes
//!   Chart.yaml (without Helm 2's `engine`, `tillerVersion` and
//!   `kubeVersion`); the chart's default values and the user's values are
//!   Helm 2's YAML text, unchanged. Helm 3 ignores Helm 2's `crd-install`
//!   hooks, so those CRDs go to the chart's `crds/` directory, which is where
//!   Helm 3 installs CRDs from.
//! * For Tiller ([`tiller_chart`], `load --to-tiller`): a `hapi.chart.Chart`
//!   with the same templates, every hook (crd-install included) kept as a
//!   hook, and the user's values as `Config.raw`.

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::restore::RestoreError;
use crate::restore::frozen::{
    FROZEN_ANNOTATION, FrozenChart, FrozenHook, Parts, assemble, escape_template,
};
use crate::tiller::hapi::chart::{Chart, Config, Metadata, Template};
use crate::tiller::hapi::release::{Release, hook::Event};

fn is_crd_install(events: &[i32]) -> bool {
    events.contains(&(Event::CrdInstall as i32))
}

/// The file name piece for a hook: its name with every character other than
/// an ASCII letter, digit or `-` replaced by `-`, at most 60 characters.
fn hook_piece(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(60)
        .collect()
}

/// Chart.yaml fields of a Helm 2 chart's metadata, as Helm 3 names them.
pub fn chart_yaml(m: &Metadata) -> Map<String, Value> {
    let mut out = Map::new();
    let mut text = |key: &str, v: &str| {
        if !v.is_empty() {
            out.insert(key.to_owned(), Value::from(v));
        }
    };
    text(
        "apiVersion",
        if m.api_version.is_empty() {
            "v1"
        } else {
            &m.api_version
        },
    );
    text("name", &m.name);
    text("version", &m.version);
    text("appVersion", &m.app_version);
    text("description", &m.description);
    text("home", &m.home);
    text("icon", &m.icon);
    text("condition", &m.condition);
    text("tags", &m.tags);
    if !m.sources.is_empty() {
        out.insert("sources".to_owned(), Value::from(m.sources.clone()));
    }
    if !m.keywords.is_empty() {
        out.insert("keywords".to_owned(), Value::from(m.keywords.clone()));
    }
    if !m.maintainers.is_empty() {
        let list = m
            .maintainers
            .iter()
            .map(|p| {
                let mut o = Map::new();
                for (k, v) in [("name", &p.name), ("email", &p.email), ("url", &p.url)] {
                    if !v.is_empty() {
                        o.insert(k.to_owned(), Value::from(v.as_str()));
                    }
                }
                Value::Object(o)
            })
            .collect::<Vec<_>>();
        out.insert("maintainers".to_owned(), Value::from(list));
    }
    if m.deprecated {
        out.insert("deprecated".to_owned(), Value::from(true));
    }
    if !m.annotations.is_empty() {
        let a: Map<String, Value> = m
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        out.insert("annotations".to_owned(), Value::Object(a));
    }
    out
}

/// The chart of a Helm 2 release and its metadata, which every release
/// record should have.
fn chart_of(r: &Release) -> Result<(&Chart, &Metadata), RestoreError> {
    let chart = r
        .chart
        .as_ref()
        .ok_or_else(|| RestoreError::ReleaseWithoutChart(r.name.clone()))?;
    let meta = chart
        .metadata
        .as_ref()
        .ok_or_else(|| RestoreError::ChartWithoutMetadata(r.name.clone()))?;
    Ok((chart, meta))
}

/// The parts of the frozen chart of a Helm 2 release, for Helm 3/4.
pub fn parts(r: &Release) -> Result<Parts, RestoreError> {
    let (chart, meta) = chart_of(r)?;
    let mut hooks = Vec::new();
    let mut crds = Vec::new();
    for (i, h) in r.hooks.iter().enumerate() {
        if is_crd_install(&h.events) {
            let piece = hook_piece(&h.name);
            crds.push((
                format!("{i:03}-{piece}.yaml"),
                Zeroizing::new(h.manifest.clone().into_bytes()),
            ));
        } else {
            hooks.push(FrozenHook {
                name: h.name.clone(),
                path: h.path.clone(),
                manifest: Zeroizing::new(h.manifest.clone()),
            });
        }
    }
    let defaults = chart.values.as_ref().map(|c| c.raw.as_str()).unwrap_or("");
    Ok(Parts {
        metadata: chart_yaml(meta),
        revision: u32::try_from(r.version).unwrap_or(0),
        defaults: Zeroizing::new(defaults.as_bytes().to_vec()),
        manifest: Zeroizing::new(r.manifest.clone()),
        hooks,
        notes: r
            .info
            .as_ref()
            .and_then(|i| i.status.as_ref())
            .map(|s| s.notes.clone())
            .unwrap_or_default(),
        crds,
        values: Zeroizing::new(crate::tiller::record::user_values(r).as_bytes().to_vec()),
    })
}

/// The frozen chart of a Helm 2 record (protobuf bytes), for `helm install`.
pub fn freeze_record(data: &[u8]) -> Result<FrozenChart, RestoreError> {
    let r = crate::tiller::record::decode_wiped(data)?;
    assemble(parts(&r)?)
}

/// The chart and values to send Tiller for a Helm 2 release: the frozen
/// chart as a `hapi.chart.Chart`.
pub fn tiller_chart(r: &Release) -> Result<(Chart, Config), RestoreError> {
    let (chart, meta) = chart_of(r)?;
    let mut meta = meta.clone();
    if meta.name.is_empty() {
        return Err(RestoreError::ReleaseChartUnnamed(r.name.clone()));
    }
    // The target Tiller and cluster may differ from the original ones.
    meta.kube_version.clear();
    meta.tiller_version.clear();
    meta.annotations
        .insert(FROZEN_ANNOTATION.to_owned(), r.version.to_string());
    let template = |name: String, text: &str| Template {
        name,
        data: escape_template(text).into_bytes(),
    };
    let mut templates = vec![template("templates/manifest.yaml".to_owned(), &r.manifest)];
    for (i, h) in r.hooks.iter().enumerate() {
        let piece = hook_piece(&h.name);
        templates.push(template(
            format!("templates/hook-{i:03}-{piece}.yaml"),
            &h.manifest,
        ));
    }
    let notes = r
        .info
        .as_ref()
        .and_then(|i| i.status.as_ref())
        .map(|s| s.notes.as_str())
        .unwrap_or("");
    if !notes.is_empty() {
        templates.push(template("templates/NOTES.txt".to_owned(), notes));
    }
    let frozen = Chart {
        metadata: Some(meta),
        templates,
        dependencies: Vec::new(),
        values: Some(Config {
            raw: chart
                .values
                .as_ref()
                .map(|c| c.raw.clone())
                .unwrap_or_default(),
            values: Default::default(),
        }),
        files: Vec::new(),
    };
    let values = Config {
        raw: crate::tiller::record::user_values(r).to_owned(),
        values: Default::default(),
    };
    Ok((frozen, values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiller::hapi::release::{Hook, Info, Status};
    use crate::tiller::record::samples::{chart, metadata, values};

    #[test]
    fn hook_piece_keeps_letters_digits_and_dashes() {
        assert_eq!(
            hook_piece("pre-install_db/migrate é"),
            "pre-install-db-migrate--"
        );
        assert_eq!(hook_piece(""), "");
        assert_eq!(hook_piece(&"a".repeat(80)), "a".repeat(60));
    }

    fn release() -> Release {
        Release {
            name: "web".into(),
            namespace: "prod".into(),
            version: 4,
            info: Some(Info {
                status: Some(Status {
                    code: 1,
                    notes: "see {{ .Values.x }}".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            chart: chart(
                Metadata {
                    engine: "gotpl".into(),
                    tiller_version: ">=2.10".into(),
                    kube_version: ">=1.10".into(),
                    ..metadata("nginx", "1.2.3", "1.27")
                },
                ("templates/cm.yaml", b"{{ .Values.x }}"),
                "replicas: 1\n",
            ),
            config: values("password: p\n"),
            manifest: "---\nkind: ConfigMap\ndata:\n  t: '{{ literal }}'\n".into(),
            hooks: vec![
                Hook {
                    name: "crd".into(),
                    manifest: "kind: CustomResourceDefinition\n".into(),
                    events: vec![Event::CrdInstall as i32],
                    ..Default::default()
                },
                Hook {
                    name: "pre".into(),
                    manifest: "kind: Secret\n".into(),
                    events: vec![Event::PreInstall as i32],
                    ..Default::default()
                },
            ],
        }
    }

    #[test]
    fn freezes_a_helm2_release_for_helm3() {
        use prost::Message;
        let f = freeze_record(&release().encode_to_vec()).unwrap();
        assert_eq!((f.name.as_str(), f.version.as_str()), ("nginx", "1.2.3"));
        assert_eq!(&f.values[..], b"password: p\n");
        let files = crate::restore::frozen::archive_files(&f.archive);
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names[..5], crate::restore::frozen::NGINX_WITH_PRE_HOOK);
        assert_eq!(names[5..], ["nginx/crds/000-crd.yaml"]);
        let chart: Value = serde_json::from_str(&files[0].1).unwrap();
        assert_eq!(chart["apiVersion"], "v1");
        assert_eq!(chart["appVersion"], "1.27");
        assert_eq!(chart["annotations"][FROZEN_ANNOTATION], "4");
        for gone in ["engine", "tillerVersion", "kubeVersion"] {
            assert!(chart.get(gone).is_none(), "{gone} kept");
        }
        assert_eq!(files[1].1, "replicas: 1\n");
        assert!(files[2].1.contains(r#"'{{"{{"}} literal {{"}}"}}'"#));
        assert_eq!(files[5].1, "kind: CustomResourceDefinition\n");
        assert!(freeze_record(b"\xff").is_err());
    }

    #[test]
    fn builds_the_chart_for_tiller() {
        let (chart, values) = tiller_chart(&release()).unwrap();
        let meta = chart.metadata.unwrap();
        assert!(meta.kube_version.is_empty() && meta.tiller_version.is_empty());
        assert_eq!(meta.annotations[FROZEN_ANNOTATION], "4");
        let names: Vec<&str> = chart.templates.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "templates/manifest.yaml",
                "templates/hook-000-crd.yaml",
                "templates/hook-001-pre.yaml",
                "templates/NOTES.txt"
            ]
        );
        assert_eq!(values.raw, "password: p\n");
        assert_eq!(chart.values.unwrap().raw, "replicas: 1\n");
    }
}
