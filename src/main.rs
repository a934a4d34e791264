//! The `helm-bulk` binary: parse, run, exit.
fn main() -> std::process::ExitCode {
    helm_bulk::cli::main()
}
