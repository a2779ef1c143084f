//! The suite's children: this executable re-executed with a hidden
//! subcommand, so every binary that runs the suite has to parse them.

use anyhow::Result;
use clap::Subcommand;

#[cfg(feature = "peers")]
use crate::peer_iceoryx2;
use crate::rows::SizeSpec;
use crate::{baseline, ceiling, e2e, latency, pin, ring_case};

/// Hidden subcommands: the child processes of the suite. The parent passes
/// exactly these names and arguments (see the modules' `CHILD_SUBCOMMAND`
/// and [`e2e::WORKER_SUBCOMMAND`]).
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum ChildCmd {
    /// Ring producer.
    #[command(name = ring_case::CHILD_SUBCOMMAND, hide = true)]
    Ring {
        /// Rows to write.
        #[arg(long)]
        rows: u64,
        /// Row sizes.
        #[arg(long)]
        size: SizeSpec,
        /// Seed of the row templates.
        #[arg(long)]
        seed: u64,
        /// Publication batch in bytes (default: shm-proto's).
        #[arg(long)]
        publish_every: Option<usize>,
    },
    /// Baseline producer (frames on stdout).
    #[command(name = baseline::CHILD_SUBCOMMAND, hide = true)]
    Baseline {
        /// Rows to write.
        #[arg(long)]
        rows: u64,
        /// Row sizes.
        #[arg(long)]
        size: SizeSpec,
        /// Seed of the row templates.
        #[arg(long)]
        seed: u64,
        /// Flush after every frame (the replaced design).
        #[arg(long)]
        flush_each: bool,
    },
    /// A ringworker worker serving the built-in commands (end-to-end case).
    #[command(name = e2e::WORKER_SUBCOMMAND, hide = true)]
    Worker,
    /// Ceiling producer (fixed-slot SPSC ring).
    #[command(name = ceiling::CHILD_SUBCOMMAND, hide = true)]
    Ceiling {
        /// Rows to write.
        #[arg(long)]
        rows: u64,
        /// Row sizes.
        #[arg(long)]
        size: SizeSpec,
        /// Seed of the row templates.
        #[arg(long)]
        seed: u64,
    },
    /// iceoryx2 publisher (the peer).
    #[cfg(feature = "peers")]
    #[command(name = peer_iceoryx2::CHILD_SUBCOMMAND, hide = true)]
    Iceoryx2 {
        /// The iceoryx2 service to publish on.
        #[arg(long)]
        service: String,
        /// Rows to write.
        #[arg(long)]
        rows: u64,
        /// Row sizes.
        #[arg(long)]
        size: SizeSpec,
        /// Seed of the row templates.
        #[arg(long)]
        seed: u64,
        /// Pack rows, length-prefixed, into 64 KiB samples.
        #[arg(long)]
        packed: bool,
    },
    /// Wake-up latency sender.
    #[command(name = latency::CHILD_SUBCOMMAND, hide = true)]
    Wake {
        /// Wake-ups per mechanism.
        #[arg(long)]
        samples: usize,
        /// Sleep before each wake-up, µs (plus up to 50% jitter).
        #[arg(long)]
        gap_us: u64,
    },
}

/// Runs one child of the suite: moves it to the child CPU if its parent was
/// pinned, then runs it to the end.
pub fn run_child(cmd: ChildCmd) -> Result<()> {
    pin::pin_child();
    match cmd {
        ChildCmd::Ring {
            rows,
            size,
            seed,
            publish_every,
        } => ring_case::run_child(rows, size, seed, publish_every),
        ChildCmd::Baseline {
            rows,
            size,
            seed,
            flush_each,
        } => baseline::run_child(rows, size, seed, flush_each),
        ChildCmd::Ceiling { rows, size, seed } => ceiling::run_child(rows, size, seed),
        #[cfg(feature = "peers")]
        ChildCmd::Iceoryx2 {
            service,
            rows,
            size,
            seed,
            packed,
        } => peer_iceoryx2::run_child(&service, rows, size, seed, packed),
        ChildCmd::Wake { samples, gap_us } => latency::run_wake_child(samples, gap_us),
        ChildCmd::Worker => e2e::run_worker(),
    }
}
