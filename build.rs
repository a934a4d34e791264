//! Compiles helm-bulk's own `hapi` protos (proto/hapi, Helm 2's Tiller API)
//! into Rust with protox (a protobuf compiler in Rust, so no system protoc)
//! and tonic-prost-build. The generated modules are included by src/tiller/mod.rs.

include!("proto/protos.rs");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/hapi");
    println!("cargo:rerun-if-changed=proto/protos.rs");
    for p in PROTOS {
        println!("cargo:rerun-if-changed=proto/{p}");
    }
    let files = protox::compile(PROTOS, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        // The server side is used by the stand-in Tiller of the tests.
        .build_server(true)
        .build_transport(false)
        // Deterministic encoding of map fields (annotations, legacy values).
        .btree_map(".")
        .compile_fds(files)?;
    Ok(())
}
