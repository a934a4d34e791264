//! The `helm-bulk` binary: parse, run, exit. The binary owns the command
//! line ([`cli`]); the library (`helm_bulk`) does the work and never names it.
#![forbid(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
