//! Argument groups shared by several subcommands.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{Failure, fail};
use helm_bulk::config::Loaded;
pub use helm_bulk::store::input::SnapshotSource;
use helm_bulk::vault::{self, Protection};

/// The default snapshot file name for save, show and load.
pub const DEFAULT_SNAPSHOT: &str = "helm-releases.tar.gz.age";

/// Output formats, as Helm spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A table for people
    Table,
    /// JSON
    Json,
    /// YAML
    Yaml,
}

/// How a snapshot is encrypted.
#[derive(Debug, Clone, Args)]
pub struct EncryptArgs {
    /// Encrypt to this recipient (age1…, "ssh-ed25519 …", "ssh-rsa …", age1<plugin>1…); repeatable
    #[arg(short = 'r', long = "recipient", value_name = "RECIPIENT")]
    pub recipients: Vec<String>,

    /// Encrypt to the recipients listed in FILE, one per line; repeatable
    #[arg(short = 'R', long = "recipients-file", value_name = "FILE")]
    pub recipients_files: Vec<PathBuf>,

    /// Encrypt with a passphrase (prompted twice on the terminal) instead of recipients
    #[arg(short = 'p', long, conflicts_with_all = ["recipients", "recipients_files"])]
    pub passphrase: bool,

    /// Write ASCII-armored (PEM-like) output
    #[arg(short = 'a', long)]
    pub armor: bool,
}

impl EncryptArgs {
    /// Flags first, then the config file. Errors (bad recipient, no recipient)
    /// come before any work is done.
    pub fn recipient_sources(&self, config: &Loaded) -> (Vec<String>, Vec<PathBuf>) {
        let mut recipients = self.recipients.clone();
        recipients.extend(config.config.recipients.iter().cloned());
        let mut files = self.recipients_files.clone();
        files.extend(config.config.recipients_files.iter().cloned());
        (recipients, files)
    }

    /// Resolves how to protect the snapshot. Prompts for a passphrase with `-p`.
    pub fn protection(&self, config: &Loaded) -> Result<Protection, Failure> {
        if self.passphrase {
            return Ok(Protection::Passphrase(vault::prompt_new_passphrase()?));
        }
        let (recipients, files) = self.recipient_sources(config);
        if recipients.is_empty() && files.is_empty() {
            return Err(vault::VaultError::NoRecipients.into());
        }
        let parsed = vault::read_recipients(&recipients, &files)?;
        if parsed.is_empty() {
            return Err(fail(
                "the recipients files list no recipient; add one or pass -r/--recipient",
            ));
        }
        Ok(Protection::Recipients(parsed))
    }
}

/// How a snapshot is decrypted.
#[derive(Debug, Clone, Args)]
pub struct DecryptArgs {
    /// Decrypt with this identity: an age identity file (possibly passphrase-protected), an SSH
    /// private key or a plugin identity; repeatable [default: $HELM_CONFIG_HOME/bulk/identity.txt]
    #[arg(short = 'i', long = "identity", value_name = "FILE")]
    pub identities: Vec<PathBuf>,
}

impl DecryptArgs {
    /// Identity files from flags, then config, then the default identity file if present.
    pub fn identity_files(&self, config: &Loaded) -> Vec<PathBuf> {
        let mut ids = self.identities.clone();
        ids.extend(config.config.identities.iter().cloned());
        if ids.is_empty()
            && let Some(p) = vault::default_identity_path()
            && p.is_file()
        {
            ids.push(p);
        }
        ids
    }
}

/// How to reach the cluster (Helm's flags and variables).
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Path to the kubeconfig file [default: $KUBECONFIG or ~/.kube/config]
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use
    #[arg(long, value_name = "NAME", env = "HELM_KUBECONTEXT")]
    pub kube_context: Option<String>,

    /// Only this namespace [default: all namespaces]
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// All namespaces (the default; overrides a namespace Helm passes in)
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
}

impl ClusterArgs {
    /// The options for [`helm_bulk::cluster::connect`].
    pub fn options(&self) -> helm_bulk::cluster::ClusterOptions {
        helm_bulk::cluster::ClusterOptions {
            kubeconfig: self.kubeconfig.clone(),
            context: self.kube_context.clone().filter(|c| !c.is_empty()),
            ..Default::default()
        }
        .with_helm_env()
    }

    /// The namespace scope: `-n`, or HELM_NAMESPACE when Helm was given `-n`
    /// (Helm always sets it, to the context's namespace by default, so a value
    /// equal to the context's namespace is taken as "not given"), else all.
    pub fn scope(&self, context_namespace: &str) -> Option<String> {
        if self.all_namespaces {
            return None;
        }
        if let Some(ns) = &self.namespace {
            return Some(ns.clone());
        }
        std::env::var("HELM_NAMESPACE")
            .ok()
            .filter(|ns| !ns.is_empty() && ns != context_namespace)
    }
}

/// Which releases to act on.
#[derive(Debug, Clone, Args)]
pub struct SelectArgs {
    /// Only releases matching this `namespace/name` glob (`name` alone matches any namespace); repeatable
    #[arg(long, value_name = "PATTERN")]
    pub include: Vec<String>,

    /// Skip releases matching this `namespace/name` glob; repeatable
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,
}

impl SelectArgs {
    /// Flags and config patterns together.
    pub fn selection(&self, config: &Loaded) -> Result<helm_bulk::select::Selection, Failure> {
        let mut include = self.include.clone();
        include.extend(config.config.include.iter().cloned());
        let mut exclude = self.exclude.clone();
        exclude.extend(config.config.exclude.iter().cloned());
        Ok(helm_bulk::select::Selection::new(&include, &exclude)?)
    }
}

/// Who may have made a snapshot, and how old it may be.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// OpenSSH allowed_signers file of keys trusted to sign snapshots; when set (here or as
    /// `trustedSigners:` in the config), unsigned or wrongly signed snapshots are refused
    #[arg(long, value_name = "FILE")]
    pub trusted_signers: Option<PathBuf>,

    /// The detached signature [default: the snapshot's path with `.sig` appended]
    #[arg(long, value_name = "FILE")]
    pub signature: Option<PathBuf>,

    /// Read the snapshot even if its signature cannot be verified (prints a warning)
    #[arg(long)]
    pub insecure_skip_verify: bool,

    /// Refuse snapshots created longer ago than this (e.g. 36h, 7d), against rollback and replay
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub max_age: Option<std::time::Duration>,
}

/// The result of checking a snapshot's signature before reading it.
pub enum Origin {
    /// Verified: signed by a trusted key.
    Signed(helm_bulk::vault::sign::Signer),
    /// Not checked: no trusted signers are configured.
    Unverified,
    /// Not checked: `--insecure-skip-verify`.
    Skipped,
}

impl VerifyArgs {
    /// Checks the signature of the snapshot (before anything is decrypted)
    /// when trusted signers are configured.
    pub fn check(&self, source: &SnapshotSource, config: &Loaded) -> Result<Origin, Failure> {
        let signers = self
            .trusted_signers
            .clone()
            .or_else(|| config.config.trusted_signers.clone());
        let Some(signers) = signers else {
            return Ok(Origin::Unverified);
        };
        if self.insecure_skip_verify {
            eprintln!(
                "WARNING: --insecure-skip-verify: the snapshot's signature is not checked; anyone who knows a recipient could have written it"
            );
            return Ok(Origin::Skipped);
        }
        let allowed = helm_bulk::vault::sign::read_allowed_signers(&signers)?;
        let signer = source.verify(self.signature.as_deref(), &allowed)?;
        eprintln!(
            "Signed by {} ({} {})",
            signer.principals, signer.algorithm, signer.fingerprint
        );
        Ok(Origin::Signed(signer))
    }

    /// Refuses an index older than `--max-age`.
    pub fn check_age(&self, index: &helm_bulk::snapshot::Index) -> Result<(), Failure> {
        let Some(max) = self.max_age else {
            return Ok(());
        };
        let created = helm_bulk::timefmt::parse_rfc3339(&index.created_at).ok_or_else(|| {
            fail(format!(
                "the snapshot's creation time `{}` cannot be read, so --max-age cannot be checked",
                index.created_at.escape_debug()
            ))
        })?;
        let age = time::OffsetDateTime::now_utc() - created;
        if age > time::Duration::try_from(max).unwrap_or(time::Duration::MAX) {
            return Err(fail(format!(
                "the snapshot was created {} ({} ago), which is older than --max-age {}; refusing it",
                helm_bulk::timefmt::human(&index.created_at),
                humantime::format_duration(std::time::Duration::from_secs(
                    age.whole_seconds().max(0) as u64
                )),
                humantime::format_duration(max)
            )));
        }
        Ok(())
    }
}

/// How to reach Tiller (flags shared by `save` and `load`).
#[derive(Debug, Clone, Args)]
pub struct TillerArgs {
    /// Tiller's gRPC address [env: TILLER_HOST, else HELM_HOST; port default 44134]
    #[arg(long, value_name = "HOST:PORT")]
    pub tiller_host: Option<String>,

    /// The namespace of Tiller and its release records
    #[arg(
        long,
        value_name = "NAMESPACE",
        env = "TILLER_NAMESPACE",
        default_value = "kube-system"
    )]
    pub tiller_namespace: String,

    /// The name Tiller's certificate must be valid for [default: the host of --tiller-host]
    #[arg(short = 's', long, value_name = "NAME", env = "HELM_TLS_HOSTNAME")]
    pub tls_server_name: Option<String>,

    /// CA certificate that signed Tiller's certificate [default: $HELM_HOME/ca.pem]
    #[arg(long, value_name = "FILE", env = "HELM_TLS_CA_CERT")]
    pub tls_ca_cert: Option<PathBuf>,

    /// Client certificate for Tiller [default: $HELM_HOME/cert.pem]
    #[arg(long, value_name = "FILE", env = "HELM_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// Client certificate's private key [default: $HELM_HOME/key.pem]
    #[arg(long, value_name = "FILE", env = "HELM_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// Talk to Tiller in plaintext gRPC, ignoring every TLS setting
    #[arg(short = 't', long)]
    pub disable_tls: bool,
}

impl TillerArgs {
    /// The library's options, as given.
    pub fn options(&self) -> helm_bulk::tiller::client::TillerOptions {
        helm_bulk::tiller::client::TillerOptions {
            tiller_host: self.tiller_host.clone(),
            tiller_namespace: self.tiller_namespace.clone(),
            tls_server_name: self.tls_server_name.clone(),
            tls_ca_cert: self.tls_ca_cert.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            disable_tls: self.disable_tls,
        }
    }
}

/// Reading a snapshot: the store it may be in, how to decrypt it, whom to
/// trust to have made it.
#[derive(Debug, Clone, Args)]
pub struct OpenArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    #[command(flatten)]
    pub decrypt: DecryptArgs,

    #[command(flatten)]
    pub verify: VerifyArgs,
}

impl OpenArgs {
    /// The snapshot `arg` names (a file, `-` or a bucket URL), its signature
    /// checked, opened for decryption.
    pub fn open(
        &self,
        arg: &str,
        config: &Loaded,
    ) -> Result<(SnapshotSource, Origin, helm_bulk::vault::Opened), Failure> {
        let identities = self.decrypt.identity_files(config);
        let source = resolve_input(arg, &self.store, config)?;
        let origin = self.verify.check(&source, config)?;
        let opened = helm_bulk::vault::open(source.open()?, &identities)?;
        Ok((source, origin, opened))
    }
}

/// Object storage options.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Endpoint of an S3-compatible store for s3:// URLs (e.g. http://127.0.0.1:9000) [config: endpoint]
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
}

impl StoreArgs {
    /// Opens a bucket URL with the endpoint from the flag or the config.
    pub fn open(
        &self,
        url: &str,
        config: &Loaded,
    ) -> Result<helm_bulk::store::bucket::Bucket, Failure> {
        Ok(helm_bulk::store::bucket::Bucket::open(
            url,
            self.endpoint(config).as_deref(),
        )?)
    }

    /// The endpoint from the flag, else the config.
    pub fn endpoint(&self, config: &Loaded) -> Option<String> {
        self.endpoint
            .clone()
            .or_else(|| config.config.endpoint.clone())
    }
}

/// A file path, or a bucket URL (`…/<timestamp>.tar.gz.age` or `…/latest`)
/// opened with the endpoint from the flag or the config.
pub fn resolve_input(
    arg: &str,
    store: &StoreArgs,
    config: &Loaded,
) -> Result<SnapshotSource, Failure> {
    let endpoint = store.endpoint(config);
    Ok(SnapshotSource::resolve(arg, |url| {
        helm_bulk::store::bucket::Bucket::open(url, endpoint.as_deref())
    })?)
}

/// A runtime for the async parts (cluster and object storage).
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    helm_bulk::store::input::runtime()
        .map_err(|e| fail(format!("cannot start the async runtime: {e}")))
}

/// A clap value parser for a library type that parses from its name
/// (`FromStr`): the possible values are `values`, each `(name, help)`, as
/// `--help` lists them.
pub fn library_values<T>(
    values: &[(&'static str, &'static str)],
) -> impl clap::builder::TypedValueParser<Value = T> + use<T>
where
    T: std::str::FromStr + Clone + Send + Sync + 'static,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser as _};
    PossibleValuesParser::new(
        values
            .iter()
            .map(|(name, help)| PossibleValue::new(*name).help(*help)),
    )
    .try_map(|name| name.parse::<T>())
}
