//! A connection to Tiller, Helm 2's in-cluster server.
//!
//! **Address.** `--tiller-host HOST:PORT`, else `TILLER_HOST` (which Helm 2
//! sets for plugins), else `HELM_HOST` (Helm 2's own variable). The port
//! defaults to 44134. helm-bulk does not port-forward to the Tiller pod: run
//! `kubectl -n kube-system port-forward svc/tiller-deploy 44134` first.
//!
//! **TLS.** Helm 2 placed its TLS files in `$HELM_HOME` (default `~/.helm`):
//! `ca.pem`, `cert.pem`, `key.pem`. helm-bulk uses TLS when any TLS flag or
//! variable is given (`--tls-ca-cert`, `--tls-cert`, `--tls-key`,
//! `-s/--tls-server-name`, or Helm 2's `HELM_TLS_ENABLE`/`HELM_TLS_VERIFY`
//! set to true) or when `$HELM_HOME/ca.pem` exists; otherwise it speaks
//! plaintext gRPC, as an unsecured Tiller (the default `helm init`) expects.
//! `-t/--disable-tls` forces plaintext whatever else is set. Unlike Helm 2's
//! bare `--tls`, helm-bulk always verifies Tiller's certificate, against the
//! CA certificate (so a CA is required for TLS) and for the server name
//! (`-s`, default the host of the address). A client certificate is sent
//! when `--tls-cert` and `--tls-key` are given, or when both default files
//! exist.
//!
//! **Version check.** Tiller refuses every call but GetVersion unless the
//! `x-helm-api-client` metadata holds a Helm version of its own major.minor.
//! helm-bulk asks GetVersion first and then sends Tiller's own version (any
//! 2.x), or [`CLIENT_VERSION`](super::CLIENT_VERSION) when Tiller does not say.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Request, Status};
use zeroize::Zeroizing;

use super::hapi::release::Release;
use super::hapi::release::status::Code;
use super::hapi::services::tiller::release_service_client::ReleaseServiceClient;
use super::hapi::services::tiller::{
    GetHistoryRequest, GetVersionRequest, InstallReleaseRequest, ListReleasesRequest,
    UninstallReleaseRequest, UpdateReleaseRequest, list_sort,
};
use super::{CLIENT_VERSION, DEFAULT_PORT, TillerError};

/// The metadata key Tiller reads the client's version from.
pub const API_CLIENT_HEADER: &str = "x-helm-api-client";

/// The largest message accepted from Tiller (Tiller itself sends at most 20 MiB).
const MAX_MESSAGE: usize = 64 << 20;

/// How to reach Tiller: the address and TLS settings as given (flags or
/// variables); unset fields fall back to Helm 2's variables and `$HELM_HOME`
/// (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct TillerOptions {
    /// Tiller's gRPC address (`HOST:PORT`, port default 44134).
    pub tiller_host: Option<String>,
    /// The namespace of Tiller and its release records.
    pub tiller_namespace: String,
    /// The name Tiller's certificate must be valid for.
    pub tls_server_name: Option<String>,
    /// CA certificate that signed Tiller's certificate.
    pub tls_ca_cert: Option<PathBuf>,
    /// Client certificate for Tiller.
    pub tls_cert: Option<PathBuf>,
    /// Client certificate's private key.
    pub tls_key: Option<PathBuf>,
    /// Plaintext gRPC, ignoring every TLS setting.
    pub disable_tls: bool,
}

/// The resolved transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// Plaintext gRPC.
    Plain,
    /// TLS, verifying Tiller against `ca`.
    Tls {
        /// The CA certificate file.
        ca: PathBuf,
        /// Client certificate and key files.
        identity: Option<(PathBuf, PathBuf)>,
        /// The name to verify, when not the address's host.
        server_name: Option<String>,
    },
}

fn var(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty())
}

fn truthy(key: &str) -> bool {
    var(key).is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true"))
}

/// `$HELM_HOME`, else `~/.helm`.
pub fn helm_home() -> PathBuf {
    if let Some(h) = var("HELM_HOME") {
        return PathBuf::from(h);
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join(".helm")
}

impl TillerOptions {
    /// The Tiller address as `host:port`.
    pub fn address(&self) -> Result<String, TillerError> {
        let raw = self
            .tiller_host
            .clone()
            .filter(|h| !h.trim().is_empty())
            .or_else(|| var("TILLER_HOST"))
            .or_else(|| var("HELM_HOST"))
            .ok_or(TillerError::NoHost)?;
        let raw = raw.trim();
        let raw = raw
            .strip_prefix("https://")
            .or_else(|| raw.strip_prefix("http://"))
            .unwrap_or(raw)
            .trim_end_matches('/');
        let has_port = match raw.rsplit_once(':') {
            // `[::1]:44134`, `host:44134`; a bare IPv6 address has more colons.
            Some((host, port)) => {
                !port.is_empty()
                    && port.bytes().all(|b| b.is_ascii_digit())
                    && (!host.contains(':') || host.ends_with(']'))
            }
            None => false,
        };
        if raw.is_empty() {
            return Err(TillerError::NoHost);
        }
        Ok(if has_port {
            raw.to_owned()
        } else if raw.contains(':') && !raw.starts_with('[') {
            format!("[{raw}]:{DEFAULT_PORT}")
        } else {
            format!("{raw}:{DEFAULT_PORT}")
        })
    }

    /// Decides between TLS and plaintext (see the module documentation).
    pub fn transport(&self) -> Result<Transport, TillerError> {
        self.transport_in(&helm_home())
    }

    fn transport_in(&self, home: &Path) -> Result<Transport, TillerError> {
        if self.disable_tls {
            return Ok(Transport::Plain);
        }
        let default_ca = home.join("ca.pem");
        let explicit = self.tls_ca_cert.is_some()
            || self.tls_cert.is_some()
            || self.tls_key.is_some()
            || self.tls_server_name.is_some()
            || truthy("HELM_TLS_ENABLE")
            || truthy("HELM_TLS_VERIFY");
        if !explicit && !default_ca.is_file() {
            return Ok(Transport::Plain);
        }
        let ca = self.tls_ca_cert.clone().unwrap_or(default_ca);
        if !ca.is_file() {
            return Err(TillerError::NoCaCert(ca));
        }
        let identity = self.tls_identity(home)?;
        Ok(Transport::Tls {
            ca,
            identity,
            server_name: self.tls_server_name.clone().filter(|s| !s.is_empty()),
        })
    }

    /// The client certificate and key: both flags, or neither and then both
    /// or neither of `cert.pem` and `key.pem` in `home`; each must exist.
    fn tls_identity(&self, home: &Path) -> Result<Option<(PathBuf, PathBuf)>, TillerError> {
        let identity = match (&self.tls_cert, &self.tls_key) {
            (Some(c), Some(k)) => Some((c.clone(), k.clone())),
            (Some(_), None) | (None, Some(_)) => {
                return Err(TillerError::HalfIdentity);
            }
            (None, None) => {
                let (c, k) = (home.join("cert.pem"), home.join("key.pem"));
                match (c.is_file(), k.is_file()) {
                    (true, true) => Some((c, k)),
                    (false, false) => None,
                    _ => {
                        return Err(TillerError::HalfDefaultIdentity(home.to_owned()));
                    }
                }
            }
        };
        if let Some((c, k)) = &identity {
            for f in [c, k] {
                if !f.is_file() {
                    return Err(TillerError::NoClientFile(f.clone()));
                }
            }
        }
        Ok(identity)
    }
}

/// A Tiller release in a list: just what identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Release name (unique across the cluster in Helm 2).
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The revision listed.
    pub version: i32,
    /// Its status code.
    pub code: i32,
}

/// GetHistoryResponse with each release left as the bytes Tiller sent:
/// field 1 holds embedded messages, which are length-delimited like `bytes`.
#[derive(Clone, PartialEq, prost::Message)]
struct RawHistory {
    #[prost(bytes = "vec", repeated, tag = "1")]
    releases: Vec<Vec<u8>>,
}

/// A connected Tiller.
#[derive(Clone)]
pub struct Tiller {
    channel: Channel,
    target: String,
    transport: Transport,
    api_version: AsciiMetadataValue,
    server_version: String,
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TillerError> {
    std::fs::read(path).map_err(|source| TillerError::TlsFile {
        what,
        path: path.to_owned(),
        source,
    })
}

/// A transport or gRPC failure below a [`TillerError`], kept as it came.
/// Its text is the failure with its causes on one line; it reports no
/// `source()`: its text already holds the chain.
#[derive(Debug)]
pub enum GrpcFailure {
    /// The address is not one a connection can be made to.
    Address(tonic::transport::Error),
    /// The transport (TCP, TLS) failed.
    Transport(tonic::transport::Error),
    /// Tiller answered with an error status.
    Status(Status),
}

impl std::fmt::Display for GrpcFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GrpcFailure::Address(e) => {
                write!(f, "invalid address: {}", crate::errors::one_line(e))
            }
            GrpcFailure::Transport(e) => f.write_str(&crate::errors::one_line(e)),
            GrpcFailure::Status(s) => f.write_str(&describe(s)),
        }
    }
}

impl std::error::Error for GrpcFailure {}

/// One line from a gRPC status: its message and the causes below it.
pub fn describe(s: &Status) -> String {
    let mut msg = crate::errors::with_causes(s.message().to_owned(), std::error::Error::source(s));
    if msg.is_empty() {
        msg = format!("{:?}", s.code());
    }
    msg.replace('\n', " ")
}

/// The version to send in `x-helm-api-client` given Tiller's own.
pub fn client_version_for(server: &str) -> Result<String, TillerError> {
    let v = server.trim();
    let numeric = v.strip_prefix('v').unwrap_or(v);
    let major = numeric.split('.').next().unwrap_or("");
    match major {
        "2" if numeric.split('.').count() >= 3 => Ok(v.to_owned()),
        "" | "2" => Ok(CLIENT_VERSION.to_owned()),
        _ => Err(TillerError::NotTiller(v.to_owned())),
    }
}

impl Tiller {
    /// Connects and asks Tiller's version.
    pub async fn connect(args: &TillerOptions) -> Result<Tiller, TillerError> {
        let address = args.address()?;
        let transport = args.transport()?;
        let scheme = match transport {
            Transport::Plain => "http",
            Transport::Tls { .. } => "https",
        };
        let target = match transport {
            Transport::Plain => format!("{address} (plaintext)"),
            Transport::Tls { .. } => format!("{address} (TLS)"),
        };
        let connect_err = |cause: GrpcFailure, transport: &Transport| TillerError::Connect {
            target: target.clone(),
            advice: match &cause {
                GrpcFailure::Address(_) => String::new(),
                _ => advice(&cause.to_string(), transport),
            },
            cause,
        };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{address}"))
            .map_err(|e| connect_err(GrpcFailure::Address(e), &transport))?
            .connect_timeout(Duration::from_secs(30))
            .tcp_nodelay(true);
        if let Transport::Tls {
            ca,
            identity,
            server_name,
        } = &transport
        {
            let mut tls = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(read(ca, "TLS CA certificate")?));
            if let Some((cert, key)) = identity {
                let cert = read(cert, "TLS client certificate")?;
                let key = Zeroizing::new(read(key, "TLS client key")?);
                tls = tls.identity(Identity::from_pem(cert, key.as_slice()));
            }
            if let Some(name) = server_name {
                tls = tls.domain_name(name.clone());
            }
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| TillerError::TlsSettings(GrpcFailure::Transport(e)))?;
        }
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| connect_err(GrpcFailure::Transport(e), &transport))?;
        let mut tiller = Tiller {
            channel,
            target: target.clone(),
            transport,
            api_version: AsciiMetadataValue::from_static(CLIENT_VERSION),
            server_version: String::new(),
        };
        let version = tiller
            .client()
            .get_version(tiller.request(GetVersionRequest {}))
            .await
            .map_err(|s| connect_err(GrpcFailure::Status(s), &tiller.transport))?
            .into_inner()
            .version
            .map(|v| v.sem_ver)
            .unwrap_or_default();
        let client_version = client_version_for(&version)?;
        tiller.api_version = client_version
            .parse()
            .unwrap_or_else(|_| AsciiMetadataValue::from_static(CLIENT_VERSION));
        tiller.server_version = version;
        Ok(tiller)
    }

    /// `host:port (TLS)` or `host:port (plaintext)`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The version Tiller reported (may be empty).
    pub fn server_version(&self) -> &str {
        &self.server_version
    }

    /// The URL-like name of this Tiller for the snapshot index.
    pub fn url(&self) -> String {
        let address = self.target.split(' ').next().unwrap_or_default();
        match self.transport {
            Transport::Plain => format!("grpc://{address}"),
            Transport::Tls { .. } => format!("grpcs://{address}"),
        }
    }

    fn request<T>(&self, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        r.metadata_mut()
            .insert(API_CLIENT_HEADER, self.api_version.clone());
        r
    }

    fn client(&self) -> ReleaseServiceClient<Channel> {
        ReleaseServiceClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    fn call_err(&self, call: &'static str) -> impl Fn(Status) -> TillerError + '_ {
        move |s| TillerError::Call {
            call,
            cause: {
                let msg = describe(&s);
                let advice = advice(&msg, &self.transport);
                msg + &advice
            },
        }
    }

    /// One page of ListReleases, sorted by name: the releases and the next offset.
    pub async fn list_page(
        &self,
        statuses: &[Code],
        namespace: Option<&str>,
        limit: i64,
        offset: &str,
    ) -> Result<(Vec<Listed>, String), TillerError> {
        let req = ListReleasesRequest {
            limit,
            offset: offset.to_owned(),
            sort_by: list_sort::SortBy::Name as i32,
            sort_order: list_sort::SortOrder::Asc as i32,
            status_codes: statuses.iter().map(|c| *c as i32).collect(),
            namespace: namespace.unwrap_or_default().to_owned(),
            filter: String::new(),
        };
        let mut stream = self
            .client()
            .list_releases(self.request(req))
            .await
            .map_err(self.call_err("ListReleases"))?
            .into_inner();
        let mut out = Vec::new();
        let mut next = String::new();
        while let Some(chunk) = stream
            .message()
            .await
            .map_err(self.call_err("ListReleases"))?
        {
            if !chunk.next.is_empty() {
                next = chunk.next;
            }
            out.extend(chunk.releases.into_iter().map(|r| Listed {
                code: super::record::code(&r),
                name: r.name,
                namespace: r.namespace,
                version: r.version,
            }));
        }
        Ok((out, next))
    }

    /// Every release ListReleases returns, following `next` page by page.
    pub async fn list_all(
        &self,
        statuses: &[Code],
        namespace: Option<&str>,
        page_size: u32,
    ) -> Result<Vec<Listed>, TillerError> {
        let mut out = Vec::new();
        let mut offset = String::new();
        let mut seen = std::collections::HashSet::new();
        loop {
            let (items, next) = self
                .list_page(statuses, namespace, i64::from(page_size.max(1)), &offset)
                .await?;
            out.extend(items);
            if next.is_empty() {
                return Ok(out);
            }
            if !seen.insert(next.clone()) {
                return Err(TillerError::Call {
                    call: "ListReleases",
                    cause: format!("Tiller returned the page offset `{next}` twice"),
                });
            }
            offset = next;
        }
    }

    /// Every revision of a release, newest first, as the exact bytes Tiller sent.
    pub async fn history_raw(&self, name: &str) -> Result<Vec<Zeroizing<Vec<u8>>>, TillerError> {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        grpc.ready().await.map_err(|e| TillerError::Call {
            call: "GetHistory",
            cause: crate::errors::one_line(&e),
        })?;
        let codec = tonic_prost::ProstCodec::<GetHistoryRequest, RawHistory>::default();
        let path = PathAndQuery::from_static("/hapi.services.tiller.ReleaseService/GetHistory");
        let req = self.request(GetHistoryRequest {
            name: name.to_owned(),
            max: i32::MAX,
        });
        let resp = grpc
            .unary(req, path, codec)
            .await
            .map_err(self.call_err("GetHistory"))?
            .into_inner();
        Ok(resp.releases.into_iter().map(Zeroizing::new).collect())
    }

    /// InstallRelease.
    pub async fn install(
        &self,
        req: InstallReleaseRequest,
    ) -> Result<Option<Release>, TillerError> {
        Ok(self
            .client()
            .install_release(self.request(req))
            .await
            .map_err(self.call_err("InstallRelease"))?
            .into_inner()
            .release)
    }

    /// UpdateRelease.
    pub async fn update(&self, req: UpdateReleaseRequest) -> Result<Option<Release>, TillerError> {
        Ok(self
            .client()
            .update_release(self.request(req))
            .await
            .map_err(self.call_err("UpdateRelease"))?
            .into_inner()
            .release)
    }

    /// UninstallRelease.
    pub async fn uninstall(&self, req: UninstallReleaseRequest) -> Result<(), TillerError> {
        self.client()
            .uninstall_release(self.request(req))
            .await
            .map_err(self.call_err("UninstallRelease"))?;
        Ok(())
    }
}

/// What to do about a common TLS failure, given its message: text to put
/// right after it (empty when there is no advice).
fn advice(msg: &str, transport: &Transport) -> String {
    let lower = msg.to_ascii_lowercase();
    match transport {
        Transport::Tls {
            ca,
            identity,
            server_name,
        } => {
            if lower.contains("unknownissuer") || lower.contains("unknown issuer") {
                format!(
                    " (Tiller's certificate is not signed by the CA in {}; pass the right --tls-ca-cert)",
                    ca.display()
                )
            } else if lower.contains("notvalidforname") || lower.contains("not valid for name") {
                format!(
                    " (Tiller's certificate is not valid for {}; pass the name it holds with -s/--tls-server-name)",
                    server_name
                        .as_deref()
                        .unwrap_or("the host of --tiller-host")
                )
            } else if identity.is_none()
                && (lower.contains("certificaterequired")
                    || lower.contains("certificate required")
                    || lower.contains("handshakefailure")
                    || lower.contains("bad certificate")
                    || lower.contains("badcertificate"))
            {
                " (Tiller requires a client certificate: pass --tls-cert and --tls-key)".to_owned()
            } else if identity.is_none()
                && (lower.contains("broken pipe")
                    || lower.contains("connection reset")
                    || lower.contains("stream closed")
                    || lower.contains("connection closed"))
            {
                // With TLS 1.3 a refused client certificate shows up as the
                // server hanging up after the handshake.
                " (Tiller closed the connection; if it requires a client certificate, pass --tls-cert and --tls-key)".to_owned()
            } else if lower.contains("corrupt message") || lower.contains("invalidcontenttype") {
                " (is Tiller serving plaintext? try -t/--disable-tls)".to_owned()
            } else {
                String::new()
            }
        }
        Transport::Plain => {
            if lower.contains("connection reset")
                || lower.contains("frame with invalid size")
                || lower.contains("broken pipe")
                || lower.contains("connection closed")
                || lower.contains("h2 protocol error")
            {
                " (does Tiller require TLS? pass --tls-ca-cert and the client certificate)"
                    .to_owned()
            } else {
                String::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(host: &str) -> TillerOptions {
        TillerOptions {
            tiller_host: Some(host.to_owned()),
            ..Default::default()
        }
    }

    #[test]
    fn addresses_get_the_default_port() {
        assert_eq!(args("127.0.0.1").address().unwrap(), "127.0.0.1:44134");
        assert_eq!(args("tiller:1234").address().unwrap(), "tiller:1234");
        assert_eq!(args("[::1]:9").address().unwrap(), "[::1]:9");
        assert_eq!(args("::1").address().unwrap(), "[::1]:44134");
        assert_eq!(args("http://t:1/").address().unwrap(), "t:1");
    }

    #[test]
    fn tls_is_chosen_from_flags_and_helm_home() {
        let home = tempfile::tempdir().unwrap();
        let a = args("t");
        assert_eq!(a.transport_in(home.path()).unwrap(), Transport::Plain);
        std::fs::write(home.path().join("ca.pem"), "x").unwrap();
        match a.transport_in(home.path()).unwrap() {
            Transport::Tls { identity: None, .. } => {}
            other => panic!("{other:?}"),
        }
        std::fs::write(home.path().join("cert.pem"), "x").unwrap();
        assert!(a.transport_in(home.path()).is_err(), "cert without key");
        std::fs::write(home.path().join("key.pem"), "x").unwrap();
        match a.transport_in(home.path()).unwrap() {
            Transport::Tls {
                identity: Some(_), ..
            } => {}
            other => panic!("{other:?}"),
        }
        let mut plain = a.clone();
        plain.disable_tls = true;
        assert_eq!(plain.transport_in(home.path()).unwrap(), Transport::Plain);
        let empty = tempfile::tempdir().unwrap();
        let mut named = a.clone();
        named.tls_server_name = Some("tiller-server".into());
        let e = named.transport_in(empty.path()).unwrap_err().to_string();
        assert!(e.contains("--tls-ca-cert"), "{e}");
    }

    #[test]
    fn speaks_tillers_own_version() {
        assert_eq!(client_version_for("v2.16.12").unwrap(), "v2.16.12");
        assert_eq!(client_version_for("").unwrap(), CLIENT_VERSION);
        assert!(client_version_for("v3.1.0").is_err());
    }

    #[test]
    fn a_refused_connection_keeps_its_cause_and_reads_as_one_line() {
        // Port 1 on the loopback address: nothing listens there.
        let mut a = args("127.0.0.1:1");
        a.disable_tls = true;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let e = match rt.block_on(Tiller::connect(&a)) {
            Ok(_) => panic!("connected to port 1"),
            Err(e) => e,
        };
        let cause = std::error::Error::source(&e)
            .and_then(|c| c.downcast_ref::<GrpcFailure>())
            .expect("the transport failure is the cause");
        assert!(matches!(cause, GrpcFailure::Transport(_)), "{cause:?}");
        let line = crate::errors::one_line(&e);
        assert_eq!(line, e.to_string());
        assert!(
            line.starts_with("cannot connect to Tiller at 127.0.0.1:1 (plaintext): "),
            "{line}"
        );
        let missing = tempfile::tempdir().unwrap().path().join("ca.pem");
        let e = read(&missing, "TLS CA certificate").unwrap_err();
        assert_eq!(
            crate::errors::one_line(&e),
            format!(
                "cannot read the TLS CA certificate {}: {}",
                missing.display(),
                std::fs::read(&missing).unwrap_err()
            )
        );
    }
}
