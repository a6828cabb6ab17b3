//! Compiles our CNPG-I `.proto` files into prost messages and tonic services. The parser is
//! protox (pure Rust) because these machines have no `protoc`; it supports proto3 `optional`,
//! which `check_empty_wal_archive` needs.

use std::error::Error;

const PROTOS: [&str; 5] = [
    "proto/identity.proto",
    "proto/wal.proto",
    "proto/restore_job.proto",
    "proto/backup.proto",
    "proto/metrics.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    // Both sides are generated: the server for `manager instance`, the client for
    // `manager healthcheck` and for the CNPG stand-in in tests/.
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
