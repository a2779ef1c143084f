//! The worker the integration tests run: `ringworker-child`'s built-in
//! commands, the test kit's `fault` command, the test-only commands of
//! `support/contract.rs`, plus test-only startup behaviour chosen by
//! environment (`support/fixture_modes.rs`: startup delay, another protocol
//! version, a dribbled Hello, a deaf child, limited to the first
//! generations if asked) and the ring squatter the `fault` command's
//! `ring_producer` grandchild runs.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use ringworker_child::{ChildRuntime, CommandError, RowWriter, builtins, check_cancelled};
use ringworker_testkit::faults;
use shm_proto::HeaderWord;

#[path = "support/big_rows.rs"]
mod big_rows;
#[path = "support/contract.rs"]
mod contract;
#[path = "support/fixture_modes.rs"]
mod fixture_modes;
#[path = "support/hostile.rs"]
mod hostile;
#[path = "support/pool_fixture.rs"]
mod pool_fixture;

use contract::{
    Fail, SELF_CANCEL, SLOTS, SlotsRequest, SlotsSummary, Square, Squares, SquaresSummary,
};

fn main() -> ExitCode {
    fixture_modes::squat_if_asked();
    let mut worker = faults::register(builtins::register(ChildRuntime::new(
        "ringworker-fixture",
        env!("CARGO_PKG_VERSION"),
    )))
    .command_typed::<Squares>(|upto, rows| {
        let mut sum = 0;
        for n in 0..upto.n {
            let square = n * n;
            rows.row(0, &Square { n, square })?;
            sum += square;
        }
        Ok(SquaresSummary { rows: upto.n, sum })
    })
    .command_typed::<Fail>(|request, rows| {
        for i in 0..request.rows {
            rows.row(0, &i)?;
        }
        Err(CommandError::new(request.code, "failed as asked"))
    })
    .command(SLOTS, "reserves rows, commits every other one", slots)
    .command(
        hostile::HOSTILE,
        "rows while a thread flips published bytes",
        hostile::hostile_mutate,
    )
    .command(
        SELF_CANCEL,
        "reports a cancellation the supervisor never asked for",
        self_cancel,
    )
    .command(
        pool_fixture::CRASH_ONCE,
        "the first run (no marker file) writes rows of seed 1 and SIGKILLs itself; later runs succeed with rows of seed 2",
        pool_fixture::crash_once,
    );
    worker = fixture_modes::apply(big_rows::register(worker));
    match worker.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ringworker-fixture: {err}");
            ExitCode::from(2)
        }
    }
}

fn slots(request: SlotsRequest, writer: &mut RowWriter<'_>) -> Result<SlotsSummary, CommandError> {
    for i in 0..request.reserved {
        let mut slot = writer.reserve(0, 64)?;
        if i % 2 == 1 {
            // Abandoned: must be neither delivered nor counted.
            drop(slot);
            continue;
        }
        slot.payload_mut()[..8].copy_from_slice(&i.to_le_bytes());
        slot.commit_len(request.committed_len);
    }
    Ok(SlotsSummary {
        rows: writer.rows(),
        bytes: writer.bytes(),
    })
}

fn self_cancel(rows: u64, writer: &mut RowWriter<'_>) -> Result<(), CommandError> {
    for i in 0..rows {
        writer.json(0, &i)?;
    }
    // Forges the supervisor's side of the cancel word.
    writer
        .ring_memory()
        .debug_store(HeaderWord::CancelRequest, writer.request());
    check_cancelled(writer)
}
