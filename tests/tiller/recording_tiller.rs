//! A recording Tiller: a gRPC server of Tiller's `ReleaseService` that
//! records every request helm-bulk sends and plays versions and states the
//! real Tiller cannot be made to show here. It is not a test of Tiller's
//! behaviour (a hand-written fake never is): everything Tiller *does* with
//! helm-bulk's requests is tested against a real Tiller v2.17.0 and Helm 2
//! client built from source by `scripts/testenv` (`migrate.rs`, `tls.rs`).
//!
//! What only the recording Tiller shows, and why:
//!
//! * what helm-bulk sends: the call sequence (GetVersion first), the
//!   `x-helm-api-client` version on every call, how many ListReleases pages a
//!   `--page-size` makes, GetHistory's `max`, and the request flags of
//!   `load --to-tiller` (`reuse_name`, `purge`, `reset_values`). A real Tiller
//!   logs none of this in a form a test can read;
//! * a Tiller of another 2.x minor (v2.16.12), whose version helm-bulk must
//!   echo: only v2.17.0 is built here;
//! * a server that is not a Helm 2 Tiller (it reports v3.0.0);
//! * revisions in states a test cannot make a real Tiller produce on demand
//!   (a FAILED upgrade next to a DEPLOYED revision).
//!
//! It serves the same generated `hapi.services.tiller.ReleaseService` that
//! helm-bulk's client speaks (from helm-bulk's own proto/hapi, wire-compatible
//! with Helm 2.17, as tests/tiller/wire.rs checks against Python's protobuf), in
//! plaintext, with an in-memory release store. It follows Tiller's observable
//! rules where helm-bulk depends on them:
//!
//! * every method but GetVersion refuses a client whose `x-helm-api-client`
//!   version is not of the server's major.minor ("incompatible versions");
//! * ListReleases returns every stored revision with a status in
//!   `status_codes` (DEPLOYED when empty), sorted by name, paged by
//!   limit/offset/next, streamed in several chunks;
//! * GetHistory returns revisions newest first, at most `max`;
//! * InstallRelease refuses a name in use unless its release is deleted and
//!   `reuse_name` is set, and then supersedes the deleted revision;
//!   UpdateRelease supersedes the deployed revision;
//!   UninstallRelease marks DELETED, or with `purge` removes the history.
//!
//! "Rendering" accepts only literal text and the `{{"{{"}}`/`{{"}}"}}`
//! actions helm-bulk's frozen charts use; anything else is an error.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use helm_bulk::tiller::hapi::chart::{Chart, Config, Metadata};
use helm_bulk::tiller::hapi::release::status::Code;
use helm_bulk::tiller::hapi::release::{Hook, Info, Release, Status, hook};
use helm_bulk::tiller::hapi::services::tiller::release_service_server::{
    ReleaseService, ReleaseServiceServer,
};
use helm_bulk::tiller::hapi::services::tiller::*;
use helm_bulk::tiller::hapi::version::Version;
use tonic::transport::Server;
use tonic::{Request, Response, Status as GrpcStatus};

/// One call the server answered or refused.
#[derive(Debug, Clone)]
pub struct Call {
    /// The method name.
    pub method: &'static str,
    /// The `x-helm-api-client` metadata sent.
    pub client_version: String,
    /// Method-specific detail (e.g. `reuse_name`, `purge`).
    pub detail: String,
}

/// The server's store and call log.
#[derive(Debug, Default)]
pub struct State {
    /// Every revision of every release, by name, in revision order.
    pub releases: BTreeMap<String, Vec<Release>>,
    /// The calls, in order.
    pub calls: Vec<Call>,
}

/// A running recording Tiller; stopped when dropped.
pub struct RecordingTiller {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<State>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RecordingTiller {
    /// Starts a Tiller that reports `version`, on a free loopback port.
    pub fn start(version: &str) -> RecordingTiller {
        let state = Arc::new(Mutex::new(State::default()));
        let svc = Svc {
            state: state.clone(),
            version: version.to_owned(),
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a tokio runtime for the test Tiller");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind the test Tiller");
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                Server::builder()
                    .add_service(
                        ReleaseServiceServer::new(svc)
                            .max_decoding_message_size(64 << 20)
                            .max_encoding_message_size(64 << 20),
                    )
                    .serve_with_incoming_shutdown(
                        tokio_stream::wrappers::TcpListenerStream::new(listener),
                        async {
                            let _ = rx.await;
                        },
                    )
                    .await
                    .expect("the test Tiller failed");
            });
        });
        let addr = addr_rx.recv().expect("the test Tiller's address");
        RecordingTiller {
            addr,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT`, for `--tiller-host`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Stores a revision as if Tiller had made it.
    pub fn seed(&self, r: Release) {
        let mut s = self.state.lock().unwrap();
        let h = s.releases.entry(r.name.clone()).or_default();
        h.push(r);
        h.sort_by_key(|r| r.version);
    }

    /// The revisions of a release, oldest first.
    pub fn history(&self, name: &str) -> Vec<Release> {
        self.state
            .lock()
            .unwrap()
            .releases
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    /// The calls of one method.
    pub fn calls(&self, method: &str) -> Vec<Call> {
        self.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }
}

impl Drop for RecordingTiller {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Clone)]
struct Svc {
    state: Arc<Mutex<State>>,
    version: String,
}

fn major_minor(v: &str) -> Option<(u64, u64, bool)> {
    let v = v.strip_prefix('v').unwrap_or(v);
    let (core, pre) = match v.split_once('-') {
        Some((c, _)) => (c, true),
        None => (v, false),
    };
    let core = core.split('+').next()?;
    let mut it = core.split('.');
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?, pre))
}

impl Svc {
    /// Tiller's version check, then logs the call.
    fn check<T>(
        &self,
        req: &Request<T>,
        method: &'static str,
        detail: String,
    ) -> Result<(), GrpcStatus> {
        let client = req
            .metadata()
            .get("x-helm-api-client")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        self.state.lock().unwrap().calls.push(Call {
            method,
            client_version: client.clone(),
            detail,
        });
        if method == "GetVersion" {
            return Ok(());
        }
        let ok = match (major_minor(&client), major_minor(&self.version)) {
            (Some((cm, cn, false)), Some((sm, sn, false))) => cm == sm && cn == sn,
            (Some(_), Some(_)) => client == self.version,
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(GrpcStatus::unknown(format!(
                "incompatible versions client[{client}] server[{}]",
                self.version
            )))
        }
    }
}

fn code(r: &Release) -> i32 {
    r.info
        .as_ref()
        .and_then(|i| i.status.as_ref())
        .map(|s| s.code)
        .unwrap_or(0)
}

fn set_code(r: &mut Release, c: Code) {
    r.info
        .get_or_insert_with(Default::default)
        .status
        .get_or_insert_with(Default::default)
        .code = c as i32;
}

fn now() -> prost_types::Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    prost_types::Timestamp {
        seconds: d.as_secs() as i64,
        nanos: 0,
    }
}

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

fn hook_event(name: &str) -> Option<hook::Event> {
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
fn build(
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

type ListStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<ListReleasesResponse, GrpcStatus>> + Send>>;

#[tonic::async_trait]
impl ReleaseService for Svc {
    type ListReleasesStream = ListStream;

    async fn list_releases(
        &self,
        request: Request<ListReleasesRequest>,
    ) -> Result<Response<ListStream>, GrpcStatus> {
        let req = request.get_ref().clone();
        self.check(
            &request,
            "ListReleases",
            format!("limit={} offset={}", req.limit, req.offset),
        )?;
        let codes = if req.status_codes.is_empty() {
            vec![Code::Deployed as i32]
        } else {
            req.status_codes.clone()
        };
        let state = self.state.lock().unwrap();
        let mut rels: Vec<Release> = state
            .releases
            .values()
            .flatten()
            .filter(|r| codes.contains(&code(r)))
            .filter(|r| req.namespace.is_empty() || r.namespace == req.namespace)
            .cloned()
            .collect();
        drop(state);
        rels.sort_by(|a, b| a.name.cmp(&b.name));
        let total = rels.len() as i64;
        if !req.offset.is_empty() {
            let Some(i) = rels.iter().rposition(|r| r.name == req.offset) else {
                return Err(GrpcStatus::unknown(format!(
                    "offset {:?} not found",
                    req.offset
                )));
            };
            rels.drain(..i);
        }
        let limit = if req.limit == 0 { 512 } else { req.limit } as usize;
        let mut next = String::new();
        if rels.len() > limit {
            next = rels[limit].name.clone();
            rels.truncate(limit);
        }
        let count = rels.len() as i64;
        // Tiller streams a page in chunks that fit its message size; use
        // chunks of two releases so the client must put them together.
        let chunks: Vec<Result<ListReleasesResponse, GrpcStatus>> = rels
            .chunks(2)
            .map(|c| {
                Ok(ListReleasesResponse {
                    count,
                    next: next.clone(),
                    total,
                    releases: c.to_vec(),
                })
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }

    async fn get_release_status(
        &self,
        request: Request<GetReleaseStatusRequest>,
    ) -> Result<Response<GetReleaseStatusResponse>, GrpcStatus> {
        self.check(&request, "GetReleaseStatus", String::new())?;
        let req = request.into_inner();
        let state = self.state.lock().unwrap();
        let r = state
            .releases
            .get(&req.name)
            .and_then(|h| {
                h.iter()
                    .rev()
                    .find(|r| req.version == 0 || r.version == req.version)
            })
            .ok_or_else(|| GrpcStatus::unknown(format!("release: {:?} not found", req.name)))?;
        Ok(Response::new(GetReleaseStatusResponse {
            name: r.name.clone(),
            info: r.info.clone(),
            namespace: r.namespace.clone(),
        }))
    }

    async fn get_release_content(
        &self,
        request: Request<GetReleaseContentRequest>,
    ) -> Result<Response<GetReleaseContentResponse>, GrpcStatus> {
        self.check(&request, "GetReleaseContent", String::new())?;
        let req = request.into_inner();
        let state = self.state.lock().unwrap();
        let r = state
            .releases
            .get(&req.name)
            .and_then(|h| {
                h.iter()
                    .rev()
                    .find(|r| req.version == 0 || r.version == req.version)
            })
            .ok_or_else(|| GrpcStatus::unknown(format!("release: {:?} not found", req.name)))?;
        Ok(Response::new(GetReleaseContentResponse {
            release: Some(r.clone()),
        }))
    }

    async fn update_release(
        &self,
        request: Request<UpdateReleaseRequest>,
    ) -> Result<Response<UpdateReleaseResponse>, GrpcStatus> {
        let detail = format!("reset_values={}", request.get_ref().reset_values);
        self.check(&request, "UpdateRelease", detail)?;
        let req = request.into_inner();
        let mut state = self.state.lock().unwrap();
        let history = state
            .releases
            .get_mut(&req.name)
            .filter(|h| h.last().is_some_and(|r| code(r) != Code::Deleted as i32))
            .ok_or_else(|| {
                GrpcStatus::unknown(format!("\"{}\" has no deployed releases", req.name))
            })?;
        let last = history.last().unwrap().clone();
        let chart = req
            .chart
            .ok_or_else(|| GrpcStatus::invalid_argument("no chart"))?;
        let r = build(
            &req.name,
            &last.namespace,
            last.version + 1,
            chart,
            req.values,
            &req.description,
        )?;
        if !req.dry_run {
            for old in history.iter_mut() {
                if code(old) == Code::Deployed as i32 {
                    set_code(old, Code::Superseded);
                }
            }
            history.push(r.clone());
        }
        Ok(Response::new(UpdateReleaseResponse { release: Some(r) }))
    }

    async fn install_release(
        &self,
        request: Request<InstallReleaseRequest>,
    ) -> Result<Response<InstallReleaseResponse>, GrpcStatus> {
        let detail = format!(
            "namespace={} reuse_name={}",
            request.get_ref().namespace,
            request.get_ref().reuse_name
        );
        self.check(&request, "InstallRelease", detail)?;
        let req = request.into_inner();
        let mut state = self.state.lock().unwrap();
        let mut version = 1;
        if let Some(h) = state.releases.get(&req.name).filter(|h| !h.is_empty()) {
            let last = h.last().unwrap();
            if code(last) != Code::Deleted as i32 || !req.reuse_name {
                return Err(GrpcStatus::unknown(format!(
                    "a release named {} already exists.\nRun: helm ls --all {}; to check the status of the release\nOr run: helm del --purge {}; to delete it",
                    req.name, req.name, req.name
                )));
            }
            version = last.version + 1;
        }
        let chart = req
            .chart
            .ok_or_else(|| GrpcStatus::invalid_argument("no chart"))?;
        let r = build(
            &req.name,
            &req.namespace,
            version,
            chart,
            req.values,
            &req.description,
        )?;
        if !req.dry_run {
            let history = state.releases.entry(req.name.clone()).or_default();
            // Reusing a deleted release's name supersedes its last revision
            // (Tiller's release_install.go; the real-Tiller test sees it too).
            if let Some(old) = history.last_mut() {
                set_code(old, Code::Superseded);
            }
            history.push(r.clone());
        }
        Ok(Response::new(InstallReleaseResponse { release: Some(r) }))
    }

    async fn uninstall_release(
        &self,
        request: Request<UninstallReleaseRequest>,
    ) -> Result<Response<UninstallReleaseResponse>, GrpcStatus> {
        let detail = format!("purge={}", request.get_ref().purge);
        self.check(&request, "UninstallRelease", detail)?;
        let req = request.into_inner();
        let mut state = self.state.lock().unwrap();
        let Some(history) = state.releases.get_mut(&req.name) else {
            return Err(GrpcStatus::unknown(format!(
                "release: {:?} not found",
                req.name
            )));
        };
        let mut last = history.last().cloned().unwrap_or_default();
        if req.purge {
            state.releases.remove(&req.name);
        } else if let Some(l) = history.last_mut() {
            set_code(l, Code::Deleted);
            last = l.clone();
        }
        Ok(Response::new(UninstallReleaseResponse {
            release: Some(last),
            info: String::new(),
        }))
    }

    async fn get_version(
        &self,
        request: Request<GetVersionRequest>,
    ) -> Result<Response<GetVersionResponse>, GrpcStatus> {
        self.check(&request, "GetVersion", String::new())?;
        Ok(Response::new(GetVersionResponse {
            version: Some(Version {
                sem_ver: self.version.clone(),
                git_commit: "0000000000000000000000000000000000000000".to_owned(),
                git_tree_state: "clean".to_owned(),
            }),
        }))
    }

    async fn get_history(
        &self,
        request: Request<GetHistoryRequest>,
    ) -> Result<Response<GetHistoryResponse>, GrpcStatus> {
        let detail = format!("max={}", request.get_ref().max);
        self.check(&request, "GetHistory", detail)?;
        let req = request.into_inner();
        let state = self.state.lock().unwrap();
        let h = state
            .releases
            .get(&req.name)
            .filter(|h| !h.is_empty())
            .ok_or_else(|| GrpcStatus::unknown(format!("release: {:?} not found", req.name)))?;
        let releases = h
            .iter()
            .rev()
            .take(req.max.max(0) as usize)
            .cloned()
            .collect();
        Ok(Response::new(GetHistoryResponse { releases }))
    }
}

// --- sample Helm 2 releases ---------------------------------------------------------

/// A Helm 2 release revision as Tiller would have stored it: a ConfigMap
/// manifest, a pre-install ConfigMap hook, a crd-install hook when `crd` is
/// set, notes, default and user values.
pub fn sample_release(
    name: &str,
    namespace: &str,
    version: i32,
    status: Code,
    values: &str,
    crd: bool,
) -> Release {
    let manifest = format!(
        "---\n# Source: legacy/templates/configmap.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-config\n  labels:\n    app: {name}\n    revision: \"{version}\"\ndata:\n  greeting: \"hello {{{{ not a template }}}}\"\n  values: |\n{}\n",
        values
            .lines()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let mut hooks = vec![Hook {
        name: format!("{name}-pre-install"),
        kind: "ConfigMap".to_owned(),
        path: "legacy/templates/hook.yaml".to_owned(),
        manifest: format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-pre-install\n  annotations:\n    \"helm.sh/hook\": pre-install\n    \"helm.sh/hook-weight\": \"-5\"\ndata:\n  at: install\n"
        ),
        events: vec![hook::Event::PreInstall as i32],
        last_run: Some(prost_types::Timestamp {
            seconds: 1_577_836_800,
            nanos: 0,
        }),
        weight: -5,
        delete_policies: vec![hook::DeletePolicy::BeforeHookCreation as i32],
        delete_timeout: 0,
    }];
    if crd {
        hooks.insert(
            0,
            Hook {
                name: "widgets.legacy.example.com".to_owned(),
                kind: "CustomResourceDefinition".to_owned(),
                path: "legacy/templates/crd.yaml".to_owned(),
                manifest: "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.legacy.example.com\n  annotations:\n    \"helm.sh/hook\": crd-install\nspec:\n  group: legacy.example.com\n  names:\n    kind: Widget\n    plural: widgets\n    singular: widget\n  scope: Namespaced\n  versions:\n    - name: v1\n      served: true\n      storage: true\n      schema:\n        openAPIV3Schema:\n          type: object\n          x-kubernetes-preserve-unknown-fields: true\n".to_owned(),
                events: vec![hook::Event::CrdInstall as i32],
                ..Default::default()
            },
        );
    }
    Release {
        name: name.to_owned(),
        namespace: namespace.to_owned(),
        version,
        info: Some(Info {
            status: Some(Status {
                code: status as i32,
                notes: format!("{name} is installed. Try {{{{ .Release.Name }}}}."),
                ..Default::default()
            }),
            first_deployed: Some(prost_types::Timestamp {
                seconds: 1_577_836_800,
                nanos: 0,
            }),
            last_deployed: Some(prost_types::Timestamp {
                seconds: 1_577_836_800 + i64::from(version) * 3600,
                nanos: 0,
            }),
            deleted: None,
            description: "Install complete".to_owned(),
        }),
        chart: Some(Chart {
            metadata: Some(Metadata {
                name: "legacy".to_owned(),
                version: "1.4.2".to_owned(),
                app_version: "2.0.1".to_owned(),
                description: "A Helm 2 chart".to_owned(),
                api_version: "v1".to_owned(),
                engine: "gotpl".to_owned(),
                tiller_version: ">=2.10.0".to_owned(),
                keywords: vec!["legacy".to_owned()],
                ..Default::default()
            }),
            templates: vec![helm_bulk::tiller::hapi::chart::Template {
                name: "templates/configmap.yaml".to_owned(),
                data: b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\n".to_vec(),
            }],
            dependencies: vec![],
            values: Some(Config {
                raw: "replicas: 1\nimage: legacy:2.0.1\n".to_owned(),
                values: Default::default(),
            }),
            files: vec![prost_types::Any {
                type_url: "README.md".to_owned(),
                value: b"# legacy\n".to_vec(),
            }],
        }),
        config: Some(Config {
            raw: values.to_owned(),
            values: Default::default(),
        }),
        manifest,
        hooks,
    }
}
