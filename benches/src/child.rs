//! Child processes of the benchmark: this very binary, re-executed with a
//! hidden subcommand. The harness is the test kit's
//! ([`ringworker_testkit::harness`]).

pub use ringworker_testkit::harness::{
    ChildProc, READY_LINE, child_ready_then_wait_go, self_command,
};
