//! `helm bulk keygen`: a new age identity file.

use std::path::PathBuf;

use clap::Args;

use super::{Failure, fail, print_stdout};

/// Arguments of `keygen`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  # the default identity, used by show and load when no -i is given
  helm bulk keygen
  # a key for a team vault; print only the recipient
  helm bulk keygen -o ~/keys/dr-2026.txt

The file is created with mode 0600 and never overwritten. Keep it (or an
escrowed copy) somewhere other than the cluster it protects: see keys/README.md.")]
pub struct KeygenArgs {
    /// Where to write the identity [default: $HELM_CONFIG_HOME/bulk/identity.txt]
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub(super) fn run(args: KeygenArgs) -> Result<(), Failure> {
    let path = match args.output {
        Some(p) => p,
        None => helm_bulk::vault::default_identity_path().ok_or_else(|| {
            fail("cannot find Helm's config directory (set HELM_CONFIG_HOME or pass -o FILE)")
        })?,
    };
    let now = helm_bulk::timefmt::now_rfc3339();
    let recipient = helm_bulk::vault::generate_identity(&path, &now)?;
    eprintln!(
        "Wrote a new identity to {} (mode 0600). Its recipient (public key) follows; give it to `helm bulk save -r`.",
        path.display()
    );
    print_stdout(&format!("{recipient}\n"))
}
