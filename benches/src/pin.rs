//! CPU placement of the two processes of a measurement.
//!
//! With two CPUs, the scheduler's wake-affine placement often puts a woken
//! consumer on its producer's CPU, where a spinning consumer then eats the
//! producer's time: throughput of the very same run swings by 5×. Pinning the
//! parent to CPU 0 and every child to CPU 1 makes runs comparable; it is
//! applied to the ring, the baseline and the end-to-end case alike. Idle CPU
//! and wake-up latency are measured unpinned: a pinned sleeper can only be
//! woken on its own, idle, CPU, which on this virtual machine adds some
//! 50 µs to every wake-up, ring and bare futex alike.

use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};

/// CPU of the parent (consumer) side.
const PARENT_CPU: usize = 0;
/// CPU of the child (producer) side.
const CHILD_CPU: usize = 1;

fn pin(cpu: usize) -> bool {
    let mut set = CpuSet::new();
    set.set(cpu);
    sched_setaffinity(None, &set).is_ok()
}

/// Pins the calling process (before it starts any thread) to the parent CPU
/// if the machine has a second CPU for the children. True if pinned.
pub fn pin_parent() -> bool {
    match sched_getaffinity(None) {
        Ok(set) if set.is_set(PARENT_CPU) && set.is_set(CHILD_CPU) => pin(PARENT_CPU),
        _ => false,
    }
}

/// Lets the calling process run on every CPU again (children spawned
/// afterwards are left free too).
pub fn unpin() {
    let mut set = CpuSet::new();
    for cpu in 0..CpuSet::MAX_CPU {
        set.set(cpu);
    }
    let _ = sched_setaffinity(None, &set);
}

/// Lets every thread of the calling process run on every CPU again (the
/// supervisor's long-lived threads, such as its watchdog and spawner, keep
/// the mask they were started with; children they spawn inherit it).
pub fn unpin_all_threads() {
    let mut set = CpuSet::new();
    for cpu in 0..CpuSet::MAX_CPU {
        set.set(cpu);
    }
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return;
    };
    for tid in tasks
        .flatten()
        .filter_map(|t| t.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
    {
        let _ = sched_setaffinity(rustix::process::Pid::from_raw(tid), &set);
    }
}

/// In a child: if it inherited a parent's pinning (its mask is exactly the
/// parent CPU), moves to the child CPU. Unpinned parents leave children free.
pub fn pin_child() {
    if let Ok(set) = sched_getaffinity(None)
        && set.count() == 1
        && set.is_set(PARENT_CPU)
    {
        pin(CHILD_CPU);
    }
}
