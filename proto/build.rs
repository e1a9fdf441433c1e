//! Generates the Rust code of every contract in `proto/dibao`, plus one
//! encoded descriptor set that servers hand to gRPC reflection.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The vendored protoc keeps the build free of a system protoc.
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    unsafe_env_set("PROTOC", protoc.as_os_str());
    let include = protoc_bin_vendored::include_path()?;

    let include = include.to_str().ok_or("protoc include path is not UTF-8")?;
    let files = [
        "dibao/common/v1/common.proto",
        "dibao/events/v1/events.proto",
        "dibao/civil_affairs/v1/civil_affairs.proto",
        "dibao/civil_affairs/v1/complaints.proto",
        "dibao/civil_affairs/v1/payments.proto",
        "dibao/civil_affairs/v1/reports.proto",
        "dibao/poverty_alleviation/v1/poverty_alleviation.proto",
        "dibao/verification/v1/verification.proto",
        "dibao/department/v1/department.proto",
        "dibao/comparison/v1/comparison.proto",
        "dibao/ops/v1/ops.proto",
        "dibao/access/v1/access.proto",
        "dibao/gateway/v1/gateway.proto",
        "dibao/sync/v1/sync.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("dibao_descriptor.bin"))
        // An upward report is encoded in one order only, so the same
        // figures are the same bytes (a hash map writes in any order).
        .btree_map(".dibao.civil_affairs.v1.DivisionFigures.comparison_lists")
        .compile_protos(&files, &[".", include])?;
    Ok(())
}

#[allow(unsafe_code)]
fn unsafe_env_set(key: &str, value: &std::ffi::OsStr) {
    // Edition 2024 marks set_var unsafe because other threads may read the
    // environment; a build script runs this before starting any thread.
    unsafe { std::env::set_var(key, value) }
}
