//! Link settings of the worker binary when the `runtime` feature is on.
//!
//! lean-sys links `libleanshared` and prints an rpath for it, but
//! `cargo:rustc-link-arg` applies only to the package whose build script
//! prints it, so lean-sys's rpath never reaches this package's binaries and
//! tests. This script asks `lean --print-prefix` itself (as lean-sys does)
//! and adds the rpath, so the worker runs without `LD_LIBRARY_PATH`.
//!
//! The Lake-built shared library calls the plain-C ABI functions
//! (`ringworker_emit_row`, ...) that `ringworker-lean-abi` defines in this
//! executable. A `dlopen`ed library resolves undefined symbols against the
//! executable's dynamic symbol table, which a Rust executable leaves empty
//! of them: `--export-dynamic-symbol` puts each one there, and `-u` makes
//! the linker keep it even where no Rust code calls it.

use std::process::Command;

/// The functions `lean/abi/include/ringworker_lean.h` declares.
const ABI_SYMBOLS: [&str; 6] = [
    "ringworker_emit_row",
    "ringworker_emit_row_bytes",
    "ringworker_emit_row_string",
    "ringworker_emit_progress",
    "ringworker_emit_diagnostic",
    "ringworker_check_cancelled",
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PATH");
    if std::env::var_os("CARGO_FEATURE_RUNTIME").is_none() {
        return;
    }
    let output = Command::new("lean").arg("--print-prefix").output();
    let prefix = match output {
        Ok(out) if out.status.success() => String::from_utf8(out.stdout)
            .expect("`lean --print-prefix` printed a path that is not UTF-8")
            .trim()
            .to_owned(),
        Ok(out) => panic!(
            "`lean --print-prefix` failed ({}): the `runtime` feature needs a Lean toolchain on PATH",
            out.status
        ),
        Err(err) => panic!(
            "cannot run `lean --print-prefix` ({err}): the `runtime` feature needs a Lean toolchain on PATH"
        ),
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{prefix}/lib/lean");
    // Lean's `findSysroot` (the import's search path) runs `lean
    // --print-prefix` unless `LEAN_SYSROOT` is set: the worker sets it to this
    // toolchain's prefix, so it runs where `lean` is not on PATH.
    println!("cargo:rustc-env=RINGWORKER_LEAN_PREFIX={prefix}");
    for symbol in ABI_SYMBOLS {
        println!("cargo:rustc-link-arg-bins=-Wl,-u,{symbol}");
        println!("cargo:rustc-link-arg-bins=-Wl,--export-dynamic-symbol={symbol}");
    }
}
