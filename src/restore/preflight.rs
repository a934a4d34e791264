//! Preflight: before load installs anything, every frozen chart it is about
//! to install is rendered with the real helm, client side (`helm template`:
//! nothing reaches the cluster), and every object it renders must have an API
//! (group, version, kind) that will exist when it is installed: one the
//! cluster serves now, or one a CustomResourceDefinition will provide (a CRD
//! stored in the snapshot, which load creates before the installs, or a CRD
//! in the `crds/` or templates of a release being restored). A problem stops
//! the load before the first change, with one line per release.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Instant;

use zeroize::Zeroizing;

use super::frozen::ChartHandle;
use super::helm::HelmRunner;
use super::plan::Step;
use crate::release::{ReleaseId as _, ReleaseKey};
use crate::snapshot::IndexCrd;

/// An object's API: `(group, version, kind)`; the core group is `""`.
pub type Gvk = (String, String, String);

/// What rendering one frozen chart found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The API of every object rendered (manifest, hooks and `crds/`).
    pub objects: BTreeSet<Gvk>,
    /// The APIs its CRDs define (served versions).
    pub defines: BTreeSet<Gvk>,
}

/// `group/version` (or `version` for the core group) as an apiVersion.
pub fn api_version(gvk: &Gvk) -> String {
    if gvk.0.is_empty() {
        gvk.1.clone()
    } else {
        format!("{}/{}", gvk.0, gvk.1)
    }
}

/// Why the preflight could not read a rendered chart or the cluster's APIs.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// `helm template` printed a document that is not YAML.
    #[error("helm rendered a document that is not YAML: {0}")]
    NotYaml(#[source] serde_norway::Error),
    /// The API server's discovery failed.
    #[error("cannot read the cluster's API discovery: {0}")]
    Discovery(#[source] crate::cluster::KubeFailure),
}

/// Reads the objects of `helm template --include-crds` output.
pub fn parse_rendered(text: &str) -> Result<Rendered, PreflightError> {
    let mut out = Rendered::default();
    for doc in crate::release::split_documents(text) {
        let value: serde_json::Value =
            serde_norway::from_str(doc).map_err(PreflightError::NotYaml)?;
        let (Some(av), Some(kind)) = (
            value.get("apiVersion").and_then(|v| v.as_str()),
            value.get("kind").and_then(|v| v.as_str()),
        ) else {
            continue;
        };
        let (group, version) = av.rsplit_once('/').unwrap_or(("", av));
        out.objects
            .insert((group.to_owned(), version.to_owned(), kind.to_owned()));
        if kind == "CustomResourceDefinition" && group == "apiextensions.k8s.io" {
            out.defines.extend(crd_defines(&value));
        }
    }
    Ok(out)
}

/// The APIs a CustomResourceDefinition object defines: its group and kind,
/// in each served version (`v1`), or its single `version` (`v1beta1`).
pub fn crd_defines(crd: &serde_json::Value) -> Vec<Gvk> {
    let spec = &crd["spec"];
    let (Some(group), Some(kind)) = (spec["group"].as_str(), spec["names"]["kind"].as_str()) else {
        return Vec::new();
    };
    let mut versions: Vec<&str> = spec["versions"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .filter(|v| v["served"].as_bool() != Some(false))
                .filter_map(|v| v["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    if let Some(v) = spec["version"].as_str() {
        versions.push(v);
    }
    versions
        .into_iter()
        .map(|v| (group.to_owned(), v.to_owned(), kind.to_owned()))
        .collect()
}

/// Why a frozen chart cannot be installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// It cannot be built, rendered or read.
    Render(String),
    /// helm refused the chart helm-bulk generated: a helm-bulk defect (see
    /// [`super::execute::Outcome::Defect`]); the message says where and how
    /// to report it.
    Defect(String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Render(e) => write!(f, "the frozen chart does not render: {e}"),
            Problem::Defect(e) => f.write_str(e),
        }
    }
}

/// Renders the frozen chart of `step` (its stored `record`) as the install
/// would, client side.
pub fn render(runner: &HelmRunner, step: &Step, record: &[u8]) -> Result<Rendered, Problem> {
    let frozen = (runner.freezer)(record).map_err(|e| Problem::Render(e.to_string()))?;
    let handle = ChartHandle::new(&frozen.archive).map_err(|e| Problem::Render(e.to_string()))?;
    let chart = handle.path();
    let out = runner
        .output(
            &[
                "template",
                &step.name,
                &chart,
                "--namespace",
                &step.namespace,
                "--values",
                "-",
                "--include-crds",
            ],
            Some(&frozen.values),
        )
        .map_err(|e| {
            let e = e.to_string();
            match super::helm::defect(&frozen, &e) {
                Some(d) => Problem::Defect(d),
                None => Problem::Render(e),
            }
        })?;
    let text = Zeroizing::new(String::from_utf8_lossy(&out).into_owned());
    parse_rendered(&text).map_err(|e| Problem::Render(e.to_string()))
}

/// The APIs an object of `rendered` needs that will not exist: neither
/// `served` by the cluster nor in `provided`.
pub fn missing<F>(rendered: &Rendered, served: F, provided: &BTreeSet<Gvk>) -> Vec<Gvk>
where
    F: Fn(&Gvk) -> bool,
{
    rendered
        .objects
        .iter()
        .filter(|g| !served(g) && !provided.contains(*g))
        .cloned()
        .collect()
}

/// The problem with one release, in one line.
pub fn describe_missing(missing: &[Gvk]) -> String {
    let list: Vec<String> = missing
        .iter()
        .map(|g| format!("{} {}", api_version(g), g.2))
        .collect();
    format!(
        "the cluster does not serve {} and no CRD in the snapshot or in the releases being restored defines {}",
        list.join(", "),
        if missing.len() == 1 { "it" } else { "them" }
    )
}

/// Renders every step with `jobs` helm processes at a time; returns the
/// result per release.
pub fn render_all<R>(
    runner: &HelmRunner,
    steps: &[&Step],
    jobs: usize,
    record: R,
) -> BTreeMap<ReleaseKey, Result<Rendered, Problem>>
where
    R: Fn(&Step) -> Option<Zeroizing<Vec<u8>>> + Sync,
{
    let queue = Mutex::new(steps.iter());
    let results = Mutex::new(BTreeMap::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.next().copied());
                    let Some(step) = next else { break };
                    let result = match record(step) {
                        Some(r) => render(runner, step, &r),
                        None => Err(Problem::Render(
                            "the snapshot has no record for this revision".to_owned(),
                        )),
                    };
                    if let Ok(mut res) = results.lock() {
                        res.insert(step.release_key(), result);
                    }
                }
            });
        }
    });
    results.into_inner().unwrap_or_default()
}

/// Which of `wanted` the cluster serves, asking its discovery API once per
/// group version.
pub async fn served(
    client: &kube::Client,
    wanted: &BTreeSet<Gvk>,
) -> Result<BTreeSet<Gvk>, PreflightError> {
    let mut by_gv: BTreeMap<(String, String), Vec<&Gvk>> = BTreeMap::new();
    for g in wanted {
        by_gv.entry((g.0.clone(), g.1.clone())).or_default().push(g);
    }
    let mut out = BTreeSet::new();
    for ((group, version), gvks) in by_gv {
        let list = if group.is_empty() {
            client.list_core_api_resources(&version).await
        } else {
            client
                .list_api_group_resources(&format!("{group}/{version}"))
                .await
        };
        let kinds: BTreeSet<String> = match list {
            Ok(l) => l.resources.into_iter().map(|r| r.kind).collect(),
            Err(kube::Error::Api(s)) if s.code == 404 => BTreeSet::new(),
            Err(e) => return Err(PreflightError::Discovery(e.into())),
        };
        out.extend(gvks.into_iter().filter(|g| kinds.contains(&g.2)).cloned());
    }
    Ok(out)
}

/// What the preflight found.
#[derive(Debug)]
pub struct Preflight {
    /// Releases checked.
    pub checked: usize,
    /// Each release that would fail, with the reason.
    pub problems: Vec<(ReleaseKey, String)>,
    /// How many of them fail because of a helm-bulk defect.
    pub defects: usize,
    /// How long it took.
    pub elapsed: std::time::Duration,
}

/// Renders the frozen chart of every step that installs or upgrades a
/// release, client side, and checks the APIs its objects need.
pub fn run_preflight<R>(
    runtime: &tokio::runtime::Runtime,
    cluster: &crate::cluster::Cluster,
    runner: &HelmRunner,
    steps: &[Step],
    crds: &[(IndexCrd, Vec<u8>)],
    jobs: usize,
    record: &R,
) -> Result<Preflight, PreflightError>
where
    R: Fn(&Step) -> Option<Zeroizing<Vec<u8>>> + Sync,
{
    let started = Instant::now();
    let changing: Vec<&Step> = steps.iter().filter(|s| s.action.changes()).collect();
    // Rendering is client side: use every CPU, whatever --jobs allows the cluster.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rendered = render_all(runner, &changing, jobs.max(cpus), record);
    // APIs that will exist: stored CRDs (created before the installs) and
    // CRDs in the charts being restored.
    let mut provided: BTreeSet<Gvk> = BTreeSet::new();
    for (_, json) in crds {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(json) {
            provided.extend(crd_defines(&v));
        }
    }
    let mut wanted = BTreeSet::new();
    for r in rendered.values().flatten() {
        provided.extend(r.defines.iter().cloned());
        wanted.extend(r.objects.iter().cloned());
    }
    let served = runtime.block_on(served(&cluster.client, &wanted))?;
    let mut problems = Vec::new();
    let mut defects = 0;
    for step in &changing {
        match rendered.get(step.release_id()) {
            Some(Ok(r)) => {
                let missing = missing(r, |g| served.contains(g), &provided);
                if !missing.is_empty() {
                    problems.push((step.release_key(), describe_missing(&missing)));
                }
            }
            Some(Err(e)) => {
                if matches!(e, Problem::Defect(_)) {
                    defects += 1;
                }
                problems.push((step.release_key(), e.to_string()))
            }
            None => problems.push((step.release_key(), "was not rendered".to_owned())),
        }
    }
    let elapsed = started.elapsed();
    crate::debug::note(|| {
        format!(
            "preflight: {} frozen charts rendered and checked in {:.2}s",
            changing.len(),
            elapsed.as_secs_f64()
        )
    });
    Ok(Preflight {
        checked: changing.len(),
        problems,
        defects,
        elapsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gvk(g: &str, v: &str, k: &str) -> Gvk {
        (g.to_owned(), v.to_owned(), k.to_owned())
    }

    #[test]
    fn reads_objects_and_the_apis_crds_define() {
        let text = "---\n# Source: c/crds/w.yaml\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\nspec:\n  group: example.com\n  names:\n    kind: Widget\n  versions:\n  - name: v1\n    served: true\n  - name: v0\n    served: false\n---\n# Source: c/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n---\n# Source: c/templates/w.yaml\napiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n";
        let r = parse_rendered(text).unwrap();
        assert!(r.objects.contains(&gvk("", "v1", "ConfigMap")));
        assert!(r.objects.contains(&gvk("example.com", "v1", "Widget")));
        assert_eq!(
            r.defines.into_iter().collect::<Vec<_>>(),
            [gvk("example.com", "v1", "Widget")]
        );
        assert!(parse_rendered("a: [unclosed\n").is_err());
    }

    #[test]
    fn an_api_nobody_provides_is_missing() {
        let r = Rendered {
            objects: [
                gvk("", "v1", "ConfigMap"),
                gvk("example.com", "v1", "Widget"),
                gvk("policy", "v1beta1", "PodSecurityPolicy"),
            ]
            .into(),
            defines: Default::default(),
        };
        let served = |g: &Gvk| g.0.is_empty();
        let provided: BTreeSet<Gvk> = [gvk("example.com", "v1", "Widget")].into();
        let m = missing(&r, served, &provided);
        assert_eq!(m, [gvk("policy", "v1beta1", "PodSecurityPolicy")]);
        assert_eq!(
            describe_missing(&m),
            "the cluster does not serve policy/v1beta1 PodSecurityPolicy and no CRD in the snapshot or in the releases being restored defines it"
        );
    }
}
