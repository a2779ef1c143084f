//! The `ringworker-child` worker: the built-in commands (synthetic rows and
//! echo). Started by a ringworker supervisor, never by hand.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use ringworker_child::{ChildRuntime, builtins};

fn main() -> ExitCode {
    let worker = builtins::register(ChildRuntime::new(
        "ringworker-child",
        env!("CARGO_PKG_VERSION"),
    ));
    match worker.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ringworker-child: {err}");
            ExitCode::from(2)
        }
    }
}
