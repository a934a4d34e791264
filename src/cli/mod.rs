//! The command line: clap definitions and one module per subcommand. This
//! layer parses, resolves configuration, calls the library and reports. It
//! belongs to the binary: the library never names it.

mod args;
mod check;
mod completion;
mod diff;
mod interrupt;
mod keygen;
mod list;
mod load;
mod output;
mod prune;
mod recipients;
mod rekey;
mod save;
mod show;
mod verify;

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

pub use args::{DEFAULT_SNAPSHOT, DecryptArgs, EncryptArgs, OutputFormat};
pub(crate) use interrupt::exit_cleanly_on_interrupt;
pub(crate) use output::{human_bytes, print_stdout, printable};

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: the command failed; nothing was changed or written.
pub const EXIT_ERROR: u8 = 1;
/// Exit code: the command line was invalid.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the command completed, but some releases or records failed
/// (each is listed); the rest were done.
pub const EXIT_PARTIAL: u8 = 3;

const ABOUT: &str = "Encrypted disaster-recovery snapshots of every Helm release in a cluster";

const LONG_ABOUT: &str = "\
helm bulk saves every Helm release of a cluster into one age-encrypted snapshot
and restores it into the same or a brand-new cluster.

Snapshots are never written in plaintext: they are encrypted to age recipients
(X25519, SSH or plugin keys) or a passphrase, so they can sit in buckets nobody
fully trusts.";

const EXAMPLES: &str = "\
Examples:
  # make a key, save the cluster to it, look into the snapshot
  helm bulk keygen
  helm bulk save -r age1...
  helm bulk show helm-releases.tar.gz.age

  # encrypt to a team's recipients file, read with an SSH key
  helm bulk recipients -R team.txt
  helm bulk show -i ~/.ssh/id_ed25519 snapshot.age

Exit codes: 0 success, 1 failure (nothing half-done), 2 invalid command line,
3 completed but some releases failed or are not deployed (each is listed),
128+N interrupted by signal N (130 for Ctrl-C).
Configuration: --config FILE, $HELM_BULK_CONFIG, ./.helm-bulk.yaml or
$HELM_CONFIG_HOME/bulk/config.yaml (see README).";

/// The `helm bulk` command line.
#[derive(Debug, Parser)]
#[command(
    name = "helm-bulk",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = EXAMPLES,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Configuration file [default: $HELM_BULK_CONFIG, else ./.helm-bulk.yaml, else
    /// $HELM_CONFIG_HOME/bulk/config.yaml]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,

    /// Print which configuration is used and each list request (Helm sets HELM_DEBUG for
    /// `helm --debug`)
    #[arg(
        long,
        global = true,
        env = "HELM_DEBUG",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub debug: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Save every release of the cluster into an encrypted snapshot
    Save(save::SaveArgs),
    /// Restore the releases of a snapshot that the cluster lacks
    Load(load::LoadArgs),
    /// List what a snapshot holds (decrypts in memory)
    Show(show::ShowArgs),
    /// List the snapshots in a bucket (s3://, gs://, az://, file://)
    List(list::ListArgs),
    /// Delete old snapshots from a bucket, keeping the newest and one per day
    Prune(prune::PruneArgs),
    /// Check that every cluster in a bucket has a recent, verified snapshot (for alerting)
    Check(check::CheckArgs),
    /// Prove a snapshot opens and is complete: decrypt in memory, check every entry and the signature
    Verify(verify::VerifyCmdArgs),
    /// Re-encrypt snapshots to new recipients (key rotation), streaming, and re-sign them
    Rekey(rekey::RekeyArgs),
    /// Compare a snapshot with the live cluster, per release (exit 0 equal, 1 differ, 2 error)
    Diff(diff::DiffArgs),
    /// Create a new age identity (private key) file and print its recipient
    Keygen(keygen::KeygenArgs),
    /// Print the recipients a save would encrypt to
    Recipients(recipients::RecipientsArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completion(completion::CompletionArgs),
}

/// An error already phrased for the user, with the exit code to use.
#[derive(Debug)]
pub struct Failure {
    /// The one-line message.
    pub message: String,
    /// The exit code.
    pub code: u8,
}

impl<E: std::error::Error + 'static> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            message: one_line(&e),
            code: EXIT_ERROR,
        }
    }
}

/// The user's line for an error chain: the library says what is wrong,
/// [`hint`] adds which flag or setting changes it.
pub(crate) fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    helm_bulk::errors::one_line_with(e, hint)
}

/// What the command line can do about a library error, appended right
/// after that error's own text.
fn hint(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    use helm_bulk::{cluster::ClusterError, tiller::TillerError, vault::VaultError};
    if let Some(save) = e.downcast_ref::<helm_bulk::save::SaveError>() {
        return save.inner().and_then(hint);
    }
    if let Some(input) = e.downcast_ref::<helm_bulk::store::input::InputError>() {
        return match input {
            helm_bulk::store::input::InputError::SignedFromStdin => {
                Some(" (or pass --insecure-skip-verify)".to_owned())
            }
            other => other.inner().and_then(hint),
        };
    }
    let hint = if let Some(v) = e.downcast_ref::<VaultError>() {
        match v {
            VaultError::NoRecipients => {
                ": pass -r/--recipient KEY or -R/--recipients-file FILE, set `recipients:` in the config file, or use -p/--passphrase (create a key with `helm bulk keygen`)"
            }
            VaultError::NoIdentities => {
                ": pass -i/--identity FILE or set `identities:` in the config file"
            }
            VaultError::WrongIdentity => "; check -i/--identity",
            _ => return None,
        }
    } else if let Some(helm_bulk::vault::sign::VerifyError::Unsigned(_)) = e.downcast_ref() {
        " (--insecure-skip-verify overrides)"
    } else if let Some(ClusterError::NoConfig { .. }) = e.downcast_ref() {
        " (set KUBECONFIG or --kubeconfig, or --kube-context)"
    } else if let Some(TillerError::NoHost) = e.downcast_ref() {
        ": pass --tiller-host HOST:PORT or set TILLER_HOST (e.g. after `kubectl -n kube-system port-forward svc/tiller-deploy 44134`), or read Tiller's storage with --source tiller-storage"
    } else if e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
        .is_some_and(|inner| inner.is::<helm_bulk::store::BinaryToTerminal>())
    {
        " or use -a/--armor"
    } else {
        return None;
    };
    Some(hint.to_owned())
}

/// Builds a failure from a message.
pub fn fail(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        code: EXIT_ERROR,
    }
}

fn command() -> clap::Command {
    let mut cmd = Cli::command();
    // Helm runs plugins with HELM_PLUGIN_NAME set; say `helm bulk` in usage lines then.
    if std::env::var_os("HELM_PLUGIN_NAME").is_some() {
        cmd = cmd.bin_name("helm bulk");
    }
    cmd
}

/// Parses the command line, runs the command and returns the exit code.
pub fn main() -> ExitCode {
    // kube-rs and object_store both bring rustls; choose its crypto provider
    // once for the process (ring), or rustls refuses to pick between them.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Decrypted release records must never reach a core file or a debugger
    // of the same user (see SECURITY.md). This cannot fail on Linux; where it
    // does, say so and go on rather than refuse to run.
    if let Err(e) = helm_bulk::hardening::protect_memory() {
        eprintln!("WARNING: cannot turn off core dumps for this process: {e}");
    }
    let matches = match command().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(f) => {
            // An interrupted command fails too (its upload was aborted
            // under it): report the interruption instead.
            interrupt::exit_if_interrupted();
            let _ = std::io::stdout().flush();
            eprintln!("Error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    // An empty HELM_BULK_CONFIG counts as unset.
    let explicit = cli.config.or_else(|| {
        std::env::var_os("HELM_BULK_CONFIG")
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
    });
    let config = helm_bulk::config::load(explicit.as_deref())?;
    if cli.debug {
        helm_bulk::debug::enable();
        match &config.path {
            Some(p) => eprintln!("debug: config file {}", p.display()),
            None => eprintln!("debug: no config file"),
        }
        eprintln!("debug: helm-bulk {}", env!("CARGO_PKG_VERSION"));
    }
    match cli.command {
        Command::Save(a) => save::run(a, &config),
        Command::Load(a) => load::run(a, &config),
        Command::Show(a) => show::run(a, &config),
        Command::Keygen(a) => keygen::run(a),
        Command::List(a) => list::run(a, &config),
        Command::Prune(a) => prune::run(a, &config),
        Command::Check(a) => check::run(a, &config),
        Command::Verify(a) => verify::run(a, &config),
        Command::Rekey(a) => rekey::run(a, &config),
        Command::Diff(a) => diff::run(a, &config),
        Command::Recipients(a) => recipients::run(a, &config),
        Command::Completion(a) => completion::run(a),
    }
}
