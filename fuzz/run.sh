#!/usr/bin/env bash
# Builds and runs the `consumer` fuzz target (needs a nightly toolchain and
# cargo-fuzz: `rustup toolchain install nightly && cargo install cargo-fuzz --locked`).
# `consumer_mutating` (a peer mutating published records) runs the same way:
# `cargo +nightly fuzz run consumer_mutating -- -max_total_time=30`.
# `lean_line` (the lean4export reader over arbitrary lines) likewise:
# `cargo +nightly fuzz build lean_line && cargo +nightly fuzz run lean_line -- -max_total_time=30`.
# Usage: fuzz/run.sh [seconds]   (default 30)
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-30}"
cargo +nightly fuzz build consumer
cargo +nightly fuzz run consumer -- -max_total_time="$secs"
