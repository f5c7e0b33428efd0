//! Generates `include/napi_ownership_rust_core.h` from `src/lib.rs` with cbindgen.
//!
//! The header is committed so C / C++ consumers (the seed 003 program in CMake) need no Rust tools
//! to read it. It is rewritten only when its content changes, so its mtime does not trigger
//! rebuilds downstream.

use std::path::PathBuf;

const HEADER: &str = "include/napi_ownership_rust_core.h";

fn main() {
    println!("cargo::rerun-if-changed=src/lib.rs");
    println!("cargo::rerun-if-changed=cbindgen.toml");
    println!("cargo::rerun-if-changed=build.rs");

    let crate_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .unwrap_or_else(|e| panic!("cannot read cbindgen.toml: {e}"));
    // Parse the one source file directly instead of `with_crate`, which would run `cargo metadata`
    // from inside the build.
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/lib.rs"))
        .generate()
        .unwrap_or_else(|e| panic!("cbindgen could not generate {HEADER}: {e}"));

    let header = crate_dir.join(HEADER);
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    if std::fs::read(&header).ok().as_deref() != Some(generated.as_slice()) {
        std::fs::create_dir_all(header.parent().expect("HEADER has a directory"))
            .and_then(|()| std::fs::write(&header, &generated))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", header.display()));
    }
}
