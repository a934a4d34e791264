//! CLI output tests: the exact `--help` of every command and the exact text
//! of errors that need no cluster. Cases live in tests/cmd/*.md; regenerate
//! them after a deliberate change with `TRYCMD=overwrite cargo test --test cli`.

#[test]
fn cli_output() {
    let cases = trycmd::TestCases::new();
    cases
        .env("HELM_CONFIG_HOME", "/nonexistent/helm-config")
        .env("HELM_BULK_CONFIG", "")
        .env("HELM_KUBECONTEXT", "")
        .env("HELM_DEBUG", "")
        .env("HELM_DRIVER", "")
        .env("HELM_BULK_ORDER", "")
        .env("TILLER_NAMESPACE", "")
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env("NO_COLOR", "1")
        .case("tests/cmd/*.md");
}
