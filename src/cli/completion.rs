//! `helm bulk completion`: shell completion scripts generated from the same
//! clap definitions as the parser, so they never drift from the flags.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::{Cli, Failure};

/// Arguments of `completion`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  helm-bulk completion bash > ~/.local/share/bash-completion/completions/helm-bulk
  helm-bulk completion zsh > \"${fpath[1]}/_helm-bulk\"
  helm-bulk completion fish > ~/.config/fish/completions/helm-bulk.fish")]
pub struct CompletionArgs {
    /// The shell to generate completions for
    #[arg(value_enum)]
    pub shell: Shell,
}

pub(super) fn run(args: CompletionArgs) -> Result<(), Failure> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "helm-bulk", &mut out);
    super::print_stdout(&String::from_utf8_lossy(&out))
}
