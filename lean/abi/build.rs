//! Compiles the tests' C driver (`tests/c/driver.c`, C11 with
//! `-Wall -Wextra -Werror -pedantic`, which also checks that
//! `include/ringworker_lean.h` compiles cleanly) and a C++ translation unit
//! that includes the header (`tests/c/header_check.cpp`: its `extern "C"`
//! block must give the C names, or the probe does not link) into static
//! libraries. Only the `abi-probe` binary links them (`#[link]` in its
//! source): the library itself never depends on their symbols, so this
//! script emits a search path but no `rustc-link-lib`.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=include/ringworker_lean.h");
    println!("cargo::rerun-if-changed=tests/c/driver.c");
    println!("cargo::rerun-if-changed=tests/c/header_check.cpp");

    let strict = ["-Wall", "-Wextra", "-Werror", "-pedantic"];
    let mut c = cc::Build::new();
    c.file("tests/c/driver.c")
        .include("include")
        .std("c11")
        .cargo_metadata(false)
        .warnings(false);
    for flag in strict {
        c.flag(flag);
    }
    c.compile("ringworker_abi_driver");

    let mut cxx = cc::Build::new();
    cxx.cpp(true)
        .file("tests/c/header_check.cpp")
        .include("include")
        .std("c++17")
        .cargo_metadata(false)
        .warnings(false);
    // No exception tables: the object needs nothing of the C++ runtime.
    cxx.flag("-fno-exceptions");
    for flag in strict {
        cxx.flag(flag);
    }
    cxx.compile("ringworker_abi_header_check");

    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    println!("cargo::rustc-link-search=native={out}");
}
