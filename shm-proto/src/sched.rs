//! Scheduling of the supervisor's background threads.

use std::io;

/// Puts the calling thread under `SCHED_BATCH`: the same share of the CPU
/// as any other thread of nice 0, but it does not preempt the thread
/// that woke it (the scheduler treats it as a CPU-bound batch job). For
/// work that must get done soon but off the path of whoever queued it.
pub fn batch_current_thread() -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler reads one sched_param through a pointer to a local; pid 0 is the calling thread.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
