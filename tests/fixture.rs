//! The worker the integration tests run: `ringworker-child`'s built-in
//! commands, plus test-only startup behaviour chosen by environment:
//! `FIXTURE_STARTUP_DELAY_MS` (sleep before the handshake) and
//! `FIXTURE_PROTOCOL` (announce another protocol version).
#![forbid(unsafe_code)]

use std::process::ExitCode;

use ringworker_child::{ChildRuntime, builtins};

fn main() -> ExitCode {
    if let Some(ms) = env_number("FIXTURE_STARTUP_DELAY_MS") {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    let mut worker = builtins::register(ChildRuntime::new(
        "ringworker-fixture",
        env!("CARGO_PKG_VERSION"),
    ));
    if let Some(protocol) = env_number("FIXTURE_PROTOCOL") {
        worker = worker.announce_protocol(protocol as u32);
    }
    match worker.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ringworker-fixture: {err}");
            ExitCode::from(2)
        }
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}
