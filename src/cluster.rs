//! Cluster access through kube-rs, honouring what Helm passes to plugins
//! (HELM_KUBECONTEXT, HELM_KUBEAPISERVER, HELM_KUBETOKEN, HELM_KUBECAFILE,
//! HELM_KUBEINSECURE_SKIP_TLS_VERIFY) and what kubectl users expect
//! (KUBECONFIG, in-cluster service accounts).

use std::path::PathBuf;

use kube::config::{
    AuthInfo, Cluster as KubeCluster, Context, KubeConfigOptions, Kubeconfig, NamedAuthInfo,
    NamedCluster, NamedContext,
};

/// How to reach the cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// `--kubeconfig`; otherwise KUBECONFIG or ~/.kube/config.
    pub kubeconfig: Option<PathBuf>,
    /// `--kube-context` / HELM_KUBECONTEXT.
    pub context: Option<String>,
    /// HELM_KUBEAPISERVER: overrides the server URL.
    pub api_server: Option<String>,
    /// HELM_KUBETOKEN: a bearer token.
    pub token: Option<secrecy::SecretString>,
    /// HELM_KUBECAFILE: the CA bundle for the API server.
    pub ca_file: Option<PathBuf>,
    /// HELM_KUBEINSECURE_SKIP_TLS_VERIFY.
    pub insecure_skip_tls_verify: bool,
}

impl ClusterOptions {
    /// Fills the Helm variables from the environment (flags set the rest).
    pub fn with_helm_env(mut self) -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        self.api_server = self.api_server.or_else(|| var("HELM_KUBEAPISERVER"));
        if self.token.is_none() {
            self.token = var("HELM_KUBETOKEN").map(secrecy::SecretString::from);
        }
        self.ca_file = self
            .ca_file
            .or_else(|| var("HELM_KUBECAFILE").map(PathBuf::from));
        self.insecure_skip_tls_verify |= var("HELM_KUBEINSECURE_SKIP_TLS_VERIFY")
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
        self
    }
}

/// A connected cluster.
#[derive(Clone)]
pub struct Cluster {
    /// The client.
    pub client: kube::Client,
    /// The API server URL.
    pub server: String,
    /// The context name (empty in-cluster).
    pub context: String,
    /// The namespace of the context (or of the service account).
    pub default_namespace: String,
}

/// Why the cluster could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// Neither a kubeconfig nor in-cluster configuration was found.
    #[error("no cluster configuration: kubeconfig: {kubeconfig}; in-cluster: {incluster}")]
    NoConfig {
        /// Why the kubeconfig failed.
        kubeconfig: String,
        /// Why in-cluster configuration failed.
        incluster: String,
    },
    /// The kubeconfig was found but is unusable.
    #[error("invalid cluster configuration: {0}")]
    Config(String),
    /// The API server did not answer.
    #[error("cannot reach the Kubernetes API at {server}: {cause}")]
    Unreachable {
        /// The URL.
        server: String,
        /// Why.
        cause: String,
    },
}

/// A Kubernetes API error. Its text is [`describe`]'s one line (the
/// server's message and HTTP code, or the error with its causes); the error
/// itself is [`KubeFailure::cause`]. It reports no `source()`: its text
/// already holds the chain.
#[derive(Debug)]
pub struct KubeFailure(pub kube::Error);

impl KubeFailure {
    /// The API client's error.
    pub fn cause(&self) -> &kube::Error {
        &self.0
    }
}

impl std::fmt::Display for KubeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&describe(&self.0))
    }
}

impl std::error::Error for KubeFailure {}

impl From<kube::Error> for KubeFailure {
    fn from(e: kube::Error) -> KubeFailure {
        KubeFailure(e)
    }
}

/// One line describing a kube error, with its causes.
pub fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => {
            let msg = if s.message.is_empty() {
                s.reason.clone()
            } else {
                s.message.clone()
            };
            format!("{msg} (HTTP {})", s.code)
        }
        other => crate::errors::with_causes(other.to_string(), std::error::Error::source(other)),
    }
}

fn apply_overrides(kc: &mut Kubeconfig, context: &str, opts: &ClusterOptions) {
    let (cluster_name, user_name) = match kc.contexts.iter().find(|c| c.name == context) {
        Some(NamedContext {
            context: Some(c), ..
        }) => (c.cluster.clone(), c.user.clone().unwrap_or_default()),
        _ => return,
    };
    if let Some(nc) = kc.clusters.iter_mut().find(|c| c.name == cluster_name) {
        let cl = nc.cluster.get_or_insert_with(KubeCluster::default);
        if let Some(s) = &opts.api_server {
            cl.server = Some(s.clone());
        }
        if let Some(ca) = &opts.ca_file {
            cl.certificate_authority = Some(ca.to_string_lossy().into_owned());
            cl.certificate_authority_data = None;
        }
        if opts.insecure_skip_tls_verify {
            cl.insecure_skip_tls_verify = Some(true);
        }
    }
    if let Some(token) = &opts.token {
        match kc.auth_infos.iter_mut().find(|a| a.name == user_name) {
            Some(a) => {
                let ai = a.auth_info.get_or_insert_with(AuthInfo::default);
                ai.token = Some(token.clone());
                ai.client_certificate = None;
                ai.client_certificate_data = None;
                ai.client_key = None;
                ai.client_key_data = None;
            }
            None => kc.auth_infos.push(NamedAuthInfo {
                name: user_name,
                auth_info: Some(AuthInfo {
                    token: Some(token.clone()),
                    ..Default::default()
                }),
                other: Default::default(),
            }),
        }
    }
}

/// A kubeconfig made only of Helm's variables (when no file exists).
fn synthetic(opts: &ClusterOptions, server: &str) -> Kubeconfig {
    Kubeconfig {
        clusters: vec![NamedCluster {
            name: "helm".to_owned(),
            cluster: Some(KubeCluster {
                server: Some(server.to_owned()),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        auth_infos: vec![NamedAuthInfo {
            name: "helm".to_owned(),
            auth_info: Some(AuthInfo::default()),
            other: Default::default(),
        }],
        contexts: vec![NamedContext {
            name: opts.context.clone().unwrap_or_else(|| "helm".to_owned()),
            context: Some(Context {
                cluster: "helm".to_owned(),
                user: Some("helm".to_owned()),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        current_context: Some(opts.context.clone().unwrap_or_else(|| "helm".to_owned())),
        ..Default::default()
    }
}

/// Builds a client and checks that the API server answers.
pub async fn connect(opts: &ClusterOptions) -> Result<Cluster, ClusterError> {
    let file = match &opts.kubeconfig {
        Some(p) => Kubeconfig::read_from(p),
        None => Kubeconfig::read(),
    };
    let (config, context) = match file {
        Ok(mut kc) => {
            let context = opts
                .context
                .clone()
                .or_else(|| kc.current_context.clone())
                .unwrap_or_default();
            if !context.is_empty() && !kc.contexts.iter().any(|c| c.name == context) {
                return Err(ClusterError::Config(format!(
                    "context `{context}` is not in the kubeconfig"
                )));
            }
            apply_overrides(&mut kc, &context, opts);
            let options = KubeConfigOptions {
                context: Some(context.clone()).filter(|c| !c.is_empty()),
                ..Default::default()
            };
            let config = kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|e| ClusterError::Config(crate::errors::one_line(&e)))?;
            (config, context)
        }
        Err(kerr) => {
            if let Some(server) = &opts.api_server {
                let mut kc = synthetic(opts, server);
                let context = kc.current_context.clone().unwrap_or_default();
                apply_overrides(&mut kc, &context, opts);
                let config = kube::Config::from_custom_kubeconfig(
                    kc,
                    &KubeConfigOptions {
                        context: Some(context.clone()),
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| ClusterError::Config(crate::errors::one_line(&e)))?;
                (config, context)
            } else {
                match kube::Config::incluster() {
                    Ok(c) => (c, String::new()),
                    Err(ierr) => {
                        return Err(ClusterError::NoConfig {
                            kubeconfig: crate::errors::one_line(&kerr),
                            incluster: crate::errors::one_line(&ierr),
                        });
                    }
                }
            }
        }
    };
    let server = config
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_owned();
    let default_namespace = config.default_namespace.clone();
    let client = kube::Client::try_from(config).map_err(|e| ClusterError::Config(describe(&e)))?;
    client
        .apiserver_version()
        .await
        .map_err(|e| ClusterError::Unreachable {
            server: server.clone(),
            cause: describe(&e),
        })?;
    Ok(Cluster {
        client,
        server,
        context,
        default_namespace,
    })
}
