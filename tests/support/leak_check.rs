//! One leak check for every leak test: what this process holds (fds,
//! threads, children, zombies, `/dev/shm` entries and mappings) before and
//! after each scenario must be the same.
#![allow(dead_code)] // each test binary uses a part

use std::collections::BTreeSet;

use ringworker::Worker;

use crate::support::{self, assert_usable, fixture};

/// What the process holds that a failure could leak.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub fds: BTreeSet<String>,
    pub threads: usize,
    pub children: Vec<u32>,
    pub dev_shm: BTreeSet<String>,
    pub shm_mappings: Vec<String>,
}

pub fn snapshot() -> Snapshot {
    Snapshot {
        fds: support::open_fds(),
        threads: support::threads(),
        children: support::children(),
        dev_shm: support::dev_shm(),
        shm_mappings: support::shm_mappings(),
    }
}

/// Runs each scenario and asserts that it left the process as it was.
///
/// One clean worker run comes first: it starts the process-wide spawner
/// and watchdog threads, which live as long as the process by design.
pub fn assert_no_leaks<S: FnOnce()>(scenarios: Vec<(&str, S)>) {
    {
        let mut worker = Worker::spawn(fixture()).unwrap();
        assert_usable(&mut worker);
    }
    let before = snapshot();
    assert!(before.children.is_empty(), "{:?}", before.children);
    for (name, scenario) in scenarios {
        scenario();
        let after = snapshot();
        assert_eq!(
            after.fds.difference(&before.fds).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "fds leaked by: {name}"
        );
        assert_eq!(
            after.threads, before.threads,
            "threads left behind by: {name}"
        );
        assert!(
            support::zombie_children().is_empty(),
            "zombies after: {name}"
        );
        assert_eq!(
            after.children,
            Vec::<u32>::new(),
            "children left behind by: {name}"
        );
        assert_eq!(
            after
                .dev_shm
                .difference(&before.dev_shm)
                .collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "/dev/shm entries after: {name}"
        );
        assert_eq!(
            after.shm_mappings,
            Vec::<String>::new(),
            "/dev/shm mappings after: {name}"
        );
        assert_eq!(after, before, "process state changed by: {name}");
    }
}
