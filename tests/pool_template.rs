//! A pool on warm templates: every pooled worker is forked from one
//! template that ran the start-up step once, the pool's jobs are verified
//! as usual, a killed pooled worker and a killed template are replaced by
//! forks, and nothing is left after the pool's drop.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ringworker::{Job, Pool, PoolConfig, RetryPolicy};
use ringworker_child::builtins::startup::{
    ENV_STARTUP_COUNTER, ENV_STARTUP_MIB, ENV_STARTUP_MS, StartupState, expected_checksum,
};
use ringworker_testkit::procfs;
use ringworker_testkit::rows::{RowCheck, Sizes, SyntheticRequest, SyntheticSummary};

#[path = "support/mod.rs"]
mod support;

use support::{fixture, wait_until};

fn counter_file(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "ringworker-pool-template-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    path
}

/// Pids of the processes that ran the start-up step, one line each.
fn startups(path: &Path) -> Vec<u32> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

fn state(pool: &Pool) -> StartupState {
    let output = pool
        .submit(Job::new("startup_state", &()).unwrap())
        .unwrap()
        .wait();
    serde_json::from_value(output.result.unwrap()).unwrap()
}

fn verified_job(pool: &Pool, seed: u64) {
    let request = SyntheticRequest::new(3000, Sizes::Uniform { min: 0, max: 300 })
        .with_streams(2)
        .with_seed(seed);
    let output = pool
        .submit(Job::new("synthetic", &request).unwrap())
        .unwrap()
        .wait();
    let summary: SyntheticSummary =
        serde_json::from_value(output.result.unwrap_or_else(|e| panic!("{e}"))).unwrap();
    let mut check = RowCheck::for_request(&request);
    for row in &output.rows {
        check.check(row.stream, &row.payload).unwrap();
    }
    check.finish(&summary).unwrap();
}

fn sigkill(pid: u32) {
    let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
}

#[test]
fn a_pool_forks_every_worker_from_one_template() {
    let counter = counter_file("startups");
    let config = fixture()
        .with_template(true)
        .with_env("RINGWORKER_TEST_CASE", "pool-template")
        .with_env(ENV_STARTUP_MS, "300")
        .with_env(ENV_STARTUP_MIB, "8")
        .with_env(ENV_STARTUP_COUNTER, counter.as_os_str());
    let pool = Pool::new(PoolConfig::new(config, 2).with_retry(RetryPolicy::retries(1))).unwrap();
    let template = pool.template_pid().expect("a running template");
    // The start-up ran once, in the template, for both workers.
    assert_eq!(startups(&counter), vec![template]);
    let pids: Vec<u32> = pool.worker_pids().into_iter().flatten().collect();
    assert_eq!(pids.len(), 2);
    assert!(!pids.contains(&template));
    for _ in 0..4 {
        let s = state(&pool);
        assert_eq!(s.startup_pid, Some(template), "state built by the template");
        assert_ne!(s.pid, template);
        assert_eq!(s.checksum, expected_checksum(8));
    }
    for seed in 0..6 {
        verified_job(&pool, seed);
    }

    // A killed pooled worker is replaced by a fork: no second start-up.
    sigkill(pids[0]);
    for seed in 10..14 {
        verified_job(&pool, seed);
    }
    assert_eq!(startups(&counter), vec![template]);
    let stats = pool.stats();
    assert!(
        stats.total.template_forks >= 3,
        "two first forks and the replacement: {:?}",
        stats.total.template_forks
    );

    // A killed template: the workers keep serving; the next fork starts
    // a new template (one more start-up), and the pool goes on.
    sigkill(template);
    assert!(wait_until(Duration::from_secs(5), || {
        !procfs::children().contains(&template)
    }));
    for seed in 20..22 {
        verified_job(&pool, seed);
    }
    let live: Vec<u32> = pool.worker_pids().into_iter().flatten().collect();
    sigkill(live[0]);
    sigkill(live[1]);
    for seed in 30..34 {
        verified_job(&pool, seed);
    }
    let runs = startups(&counter);
    assert_eq!(runs.len(), 2, "one respawn of the template: {runs:?}");
    let respawned = pool.template_pid().expect("the respawned template");
    assert_eq!(runs[1], respawned);
    assert!(pool.stats().total.template_respawns >= 1);

    drop(pool);
    assert!(
        wait_until(Duration::from_secs(5), || {
            !procfs::children().contains(&respawned) && procfs::zombie_children().is_empty()
        }),
        "the template is stopped with the pool's last worker"
    );
    let _ = std::fs::remove_file(&counter);
}
