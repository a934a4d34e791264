//! What the recording Tiller stores for an install or upgrade: the frozen
//! chart's templates, "rendered" (literal text and the escapes helm-bulk's
//! frozen charts use only), and its hooks.

use super::*;

/// Renders a frozen template: literal text and `{{"{{"}}`/`{{"}}"}}` only.
pub fn render(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("{{") {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(r) = tail.strip_prefix(r#"{{"{{"}}"#) {
            out.push_str("{{");
            rest = r;
        } else if let Some(r) = tail.strip_prefix(r#"{{"}}"}}"#) {
            out.push_str("}}");
            rest = r;
        } else {
            let end = tail.find('\n').unwrap_or(tail.len()).min(40);
            return Err(format!(
                "the test Tiller renders only literal templates, not `{}`",
                &tail[..end]
            ));
        }
    }
    out.push_str(rest);
    Ok(out)
}

pub(super) fn hook_event(name: &str) -> Option<hook::Event> {
    Some(match name.trim() {
        "pre-install" => hook::Event::PreInstall,
        "post-install" => hook::Event::PostInstall,
        "pre-delete" => hook::Event::PreDelete,
        "post-delete" => hook::Event::PostDelete,
        "pre-upgrade" => hook::Event::PreUpgrade,
        "post-upgrade" => hook::Event::PostUpgrade,
        "pre-rollback" => hook::Event::PreRollback,
        "post-rollback" => hook::Event::PostRollback,
        "test-success" => hook::Event::ReleaseTestSuccess,
        "test-failure" => hook::Event::ReleaseTestFailure,
        "crd-install" => hook::Event::CrdInstall,
        _ => return None,
    })
}

/// Renders a chart into a release as Tiller would store it.
pub(super) fn build(
    name: &str,
    namespace: &str,
    version: i32,
    chart: Chart,
    values: Option<Config>,
    description: &str,
) -> Result<Release, GrpcStatus> {
    let chart_name = chart
        .metadata
        .as_ref()
        .map(|m| m.name.clone())
        .unwrap_or_default();
    let mut manifest = String::new();
    let mut hooks = Vec::new();
    let mut notes = String::new();
    for t in &chart.templates {
        let text = String::from_utf8(t.data.clone())
            .map_err(|_| GrpcStatus::invalid_argument("template is not UTF-8"))?;
        let rendered = render(&text).map_err(GrpcStatus::invalid_argument)?;
        if t.name.ends_with("NOTES.txt") {
            notes = rendered;
            continue;
        }
        // The `helm.sh/hook` annotation, key quoted or not, makes a hook.
        let annotation = rendered.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim().trim_matches('"').trim_matches('\'') == "helm.sh/hook")
                .then(|| v.trim().trim_matches('"').trim_matches('\'').to_owned())
        });
        if let Some(events) = annotation {
            let events = events
                .split(',')
                .filter_map(hook_event)
                .map(|e| e as i32)
                .collect();
            let field = |key: &str| {
                rendered
                    .lines()
                    .find_map(|l| {
                        l.trim_start()
                            .strip_prefix(key)
                            .map(|v| v.trim().to_owned())
                    })
                    .unwrap_or_default()
            };
            hooks.push(Hook {
                name: field("name:"),
                kind: field("kind:"),
                path: t.name.clone(),
                manifest: rendered,
                events,
                ..Default::default()
            });
        } else {
            manifest.push_str(&format!(
                "---\n# Source: {chart_name}/{}\n{rendered}\n",
                t.name
            ));
        }
    }
    Ok(Release {
        name: name.to_owned(),
        namespace: namespace.to_owned(),
        version,
        info: Some(Info {
            status: Some(Status {
                code: Code::Deployed as i32,
                notes,
                ..Default::default()
            }),
            first_deployed: Some(now()),
            last_deployed: Some(now()),
            description: description.to_owned(),
            ..Default::default()
        }),
        chart: Some(chart),
        config: values,
        manifest,
        hooks,
    })
}
