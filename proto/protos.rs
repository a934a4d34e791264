// The hapi protos, relative to proto/: what build.rs compiles into the
// crate, and what tests/tiller/wire.rs compiles again with Python's
// grpc_tools to check the wire format against. Included by both.

/// The `.proto` files of Helm 2's Tiller API that helm-bulk uses.
const PROTOS: &[&str] = &[
    "hapi/chart/chart.proto",
    "hapi/chart/config.proto",
    "hapi/chart/metadata.proto",
    "hapi/chart/template.proto",
    "hapi/release/hook.proto",
    "hapi/release/info.proto",
    "hapi/release/release.proto",
    "hapi/release/status.proto",
    "hapi/release/test_run.proto",
    "hapi/release/test_suite.proto",
    "hapi/services/tiller.proto",
    "hapi/version/version.proto",
];
