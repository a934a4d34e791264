//! Argument groups shared by several subcommands.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{Failure, fail};
use crate::config::Loaded;
use crate::vault::{self, Protection};

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
    #[arg(short = 'p', long, conflicts_with_all = ["recipients", "recipients_files", "no_encrypt"])]
    pub passphrase: bool,

    /// Write ASCII-armored (PEM-like) output
    #[arg(short = 'a', long, conflicts_with = "no_encrypt")]
    pub armor: bool,

    /// Write the snapshot in PLAINTEXT (not encrypted); release values and secrets are exposed
    #[arg(long)]
    pub no_encrypt: bool,
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
        if self.no_encrypt {
            eprintln!(
                "WARNING: --no-encrypt writes the snapshot in plaintext; every release's values, including secrets, are readable by anyone who can read the file"
            );
            return Ok(Protection::Plaintext);
        }
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

    /// Read a plaintext (unencrypted) snapshot
    #[arg(long, conflicts_with = "identities")]
    pub no_encrypt: bool,
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
