//! `helm bulk recipients`: the recipients a save would encrypt to.

use clap::Args;

use super::{EncryptArgs, Failure, print_stdout};
use helm_bulk::config::Loaded;

/// Arguments of `recipients`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  helm bulk recipients
  helm bulk recipients -r age1... -R team-recipients.txt

Recipients come from -r and -R, then `recipients:` and `recipientsFiles:` in the
config file. Each is parsed, so a typo is reported here rather than at save time.")]
pub struct RecipientsArgs {
    /// Also include this recipient; repeatable
    #[arg(short = 'r', long = "recipient", value_name = "RECIPIENT")]
    pub recipients: Vec<String>,
    /// Also include the recipients in FILE; repeatable
    #[arg(short = 'R', long = "recipients-file", value_name = "FILE")]
    pub recipients_files: Vec<std::path::PathBuf>,
}

pub(super) fn run(args: RecipientsArgs, config: &Loaded) -> Result<(), Failure> {
    let enc = EncryptArgs {
        recipients: args.recipients,
        recipients_files: args.recipients_files,
        passphrase: false,
        armor: false,
    };
    let (recipients, files) = enc.recipient_sources(config);
    if recipients.is_empty() && files.is_empty() {
        return Err(helm_bulk::vault::VaultError::NoRecipients.into());
    }
    let list = helm_bulk::vault::recipient_strings(&recipients, &files)?;
    let mut out = String::new();
    for r in list {
        out.push_str(&r);
        out.push('\n');
    }
    print_stdout(&out)
}
