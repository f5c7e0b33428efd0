//! Compiles the C++ dispatcher core (`native-cpp/core/src/dispatcher.cpp`, seed 000's "libdummy") into this crate
//! with the `cc` crate, so the Rust side links the very same dispatcher the C++ addon does: one implementation,
//! two bindings. The file stands alone (C++17 standard library and its public header), so no CMake is needed.

use std::path::PathBuf;

fn main() {
    let manifest_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let cpp_core = manifest_dir.join("../../native-cpp/core");
    let source = cpp_core.join("src/dispatcher.cpp");
    let include = cpp_core.join("include");
    let header = include.join("napi_ownership/dispatcher.h");

    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed={}", source.display());
    println!("cargo::rerun-if-changed={}", header.display());

    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .include(&include)
        .file(&source)
        .warnings(true)
        .extra_warnings(true)
        .flag_if_supported("-Wpedantic")
        // std::mutex, std::condition_variable, operator new: the dispatcher needs libstdc++ (dynamically linked, as
        // Node itself is). cc would pick it by default on linux-gnu; say so explicitly.
        .cpp_link_stdlib("stdc++")
        .compile("napi_ownership_dispatcher");
}
