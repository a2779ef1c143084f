//! Startup behaviour of the fixture worker chosen by environment, for tests
//! of a supervisor's startup, handshake and control handling. Included by
//! `fixture.rs` with `#[path]`.
//!
//! Every mode below applies only to children whose generation
//! (`RINGWORKER_GENERATION`, set by the supervisor) is at most
//! `FIXTURE_MODE_GENERATIONS` (unset: every generation; a child without a
//! generation counts as applying), so a test can make only the first child
//! misbehave and check that its replacement is served:
//!
//! - `FIXTURE_STARTUP_DELAY_MS=N`: sleep N ms before the handshake.
//! - `FIXTURE_PROTOCOL=V`: announce protocol version V.
//! - `FIXTURE_DRIBBLE_HELLO_MS=N`: write the (valid) Hello frame one byte
//!   every N ms, then serve normally
//!   (`ChildRuntime::dribble_hello`).
//! - `FIXTURE_DEAF=1`: send a valid Hello, then never read the control
//!   socket again while beating the ring's heartbeat every 10 ms, until
//!   killed (`ChildRuntime::deaf_after_hello`).
//!
//! Not gated: `FIXTURE_RING_SQUATTER=1` (the test kit's
//! `faults::ENV_RING_SQUATTER`) makes the process a ring squatter instead of
//! a worker; the `fault` command's `ring_producer` grandchild sets it.

use std::time::Duration;

use ringworker_child::ChildRuntime;
use ringworker_testkit::faults;
use shm_proto::control::ENV_GENERATION;

/// Limits the modes to generations up to this.
pub const ENV_MODE_GENERATIONS: &str = "FIXTURE_MODE_GENERATIONS";
/// Sleep before the handshake, in ms.
pub const ENV_STARTUP_DELAY_MS: &str = "FIXTURE_STARTUP_DELAY_MS";
/// Protocol version to announce.
pub const ENV_PROTOCOL: &str = "FIXTURE_PROTOCOL";
/// Milliseconds between the bytes of the Hello frame.
pub const ENV_DRIBBLE_HELLO_MS: &str = "FIXTURE_DRIBBLE_HELLO_MS";
/// `1`: handshake, then never read the control socket.
pub const ENV_DEAF: &str = "FIXTURE_DEAF";

/// How often a deaf child beats.
pub const DEAF_BEAT: Duration = Duration::from_millis(10);

/// Becomes a ring squatter (never returns) if asked to.
pub fn squat_if_asked() {
    if std::env::var(faults::ENV_RING_SQUATTER).as_deref() == Ok("1") {
        faults::squat_inherited();
    }
}

/// Applies the modes the environment asks for (and this generation is
/// subject to) to `worker`; sleeps the startup delay here.
pub fn apply(mut worker: ChildRuntime) -> ChildRuntime {
    if !applies() {
        return worker;
    }
    if let Some(ms) = env_number(ENV_STARTUP_DELAY_MS) {
        std::thread::sleep(Duration::from_millis(ms));
    }
    if let Some(protocol) = env_number(ENV_PROTOCOL) {
        worker = worker.announce_protocol(protocol as u32);
    }
    if let Some(ms) = env_number(ENV_DRIBBLE_HELLO_MS) {
        worker = worker.dribble_hello(Duration::from_millis(ms));
    }
    if env_number(ENV_DEAF) == Some(1) {
        worker = worker.deaf_after_hello(DEAF_BEAT);
    }
    worker
}

/// Whether this child's generation is subject to the modes.
fn applies() -> bool {
    match (env_number(ENV_GENERATION), env_number(ENV_MODE_GENERATIONS)) {
        (Some(generation), Some(limit)) => generation <= limit,
        _ => true,
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}
