//! Process-tree containment through `ChildFds`: the per-worker subreaper shim
//! (`contain_tree`), `own_process_group` and `rlimit`, against real processes
//! (`/bin/sh`, `sleep`, util-linux `setsid` when present).
//!
//! Every test that spawns keeps its processes in a [`Tree`], whose drop asks
//! the shim to take the tree down and, if a test failed half-way, kills what
//! it recorded, so a failing run leaves no `sleep 1000` behind.
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};
use shm_proto::{ChildFds, Rlimit, shim_worker_pid, tree_containment_available};

/// A private directory for pid files, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "shm-proto-containment-{}-{name}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self, file: &str) -> String {
        self.0.join(file).to_str().unwrap().to_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A spawned shim (or plain child) and the descendants a test learned of.
struct Tree {
    child: Child,
    exited: Option<ExitStatus>,
    descendants: Vec<u32>,
}

impl Tree {
    fn spawn(mut command: Command, fds: ChildFds) -> Self {
        fds.apply(&mut command);
        let child = command.spawn().expect("spawn");
        Self {
            child,
            exited: None,
            descendants: Vec::new(),
        }
    }

    fn sh(script: &str, fds: ChildFds) -> Self {
        let mut command = Command::new("/bin/sh");
        command.arg("-c").arg(script);
        Self::spawn(command, fds)
    }

    fn shim(&self) -> u32 {
        self.child.id()
    }

    /// The worker under the shim; it has exec'd by the time `spawn` returned.
    fn worker(&mut self) -> u32 {
        let worker = shim_worker_pid(self.shim()).expect("the shim has a worker child");
        self.descendants.push(worker);
        worker
    }

    fn track(&mut self, pid: u32) -> u32 {
        self.descendants.push(pid);
        pid
    }

    fn signal_shim(&self, signal: Signal) {
        kill_process(pid(self.shim()), signal).unwrap();
    }

    fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.exited = Some(status);
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the shim {} did not exit within {within:?}",
                self.shim()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn assert_all_gone(&self) {
        for &p in &self.descendants {
            assert!(gone(p), "descendant {p} outlived the shim: {}", describe(p));
        }
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = kill_process(pid(self.shim()), Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(3);
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Only after a failure can any of these still run; the cmdline check
        // keeps a reused pid from being hit.
        for &p in &self.descendants {
            if std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.windows(5).any(|w| w == b"sleep"))
            {
                let _ = kill_process(pid(p), Signal::KILL);
            }
        }
    }
}

fn pid(raw: u32) -> Pid {
    Pid::from_raw(raw as i32).unwrap()
}

/// Reaped: the shim reaps everything, so "dead" means "no /proc entry".
fn gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

fn describe(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default()
}

/// Fields of `/proc/<pid>/stat` after the command name: state, ppid, pgrp,
/// session, ...
fn stat_fields(pid: u32) -> Vec<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    rest.split_whitespace().map(str::to_owned).collect()
}

fn ppid(pid: u32) -> u32 {
    stat_fields(pid)[1].parse().unwrap()
}

fn pgrp(pid: u32) -> u32 {
    stat_fields(pid)[2].parse().unwrap()
}

fn session(pid: u32) -> u32 {
    stat_fields(pid)[3].parse().unwrap()
}

/// Waits for a shell to write a pid into `file` (written whole via `mv`).
fn read_pid(file: &str) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(text) = std::fs::read_to_string(file)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "no pid appeared in {file}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn contained() -> ChildFds {
    ChildFds::new().die_with_parent(true).contain_tree(true)
}

/// The shim tests need the kernel features; elsewhere they pass vacuously
/// (the degraded mode has its own test).
fn shim_available() -> bool {
    let available = tree_containment_available();
    if !available {
        eprintln!("tree containment unavailable here; skipping");
    }
    available
}

/// `echo $! > F` is not atomic; the readers want whole pids.
fn write_pid(var: &str, file: &str) -> String {
    format!("echo {var} > {file}.tmp && mv {file}.tmp {file}")
}

#[test]
fn sigterm_to_the_shim_kills_the_tree_and_mirrors_sigkill() {
    if !shim_available() {
        return;
    }
    let dir = Scratch::new("sigterm");
    let bg = dir.path("bg");
    let mut tree = Tree::sh(
        &format!("sleep 1000 & {}; exec sleep 1000", write_pid("$!", &bg)),
        contained(),
    );
    let worker = tree.worker();
    let background = tree.track(read_pid(&bg));
    assert!(!gone(worker) && !gone(background));

    tree.signal_shim(Signal::TERM);
    let status = tree.wait_exit(Duration::from_secs(1));
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    tree.assert_all_gone();
}

#[test]
fn worker_exit_code_is_mirrored_after_a_setsid_grandchild_is_killed() {
    if !shim_available() {
        return;
    }
    let dir = Scratch::new("setsid");
    let (gc, go) = (dir.path("gc"), dir.path("go"));
    // util-linux setsid, or the shell's own job control (`set -m` puts the
    // background job in a new group, not a new session, but still out of
    // the worker's group) where it is missing.
    let have_setsid = Path::new("/usr/bin/setsid").exists();
    let escape = if have_setsid {
        format!("setsid sh -c '{}; exec sleep 1000' &", write_pid("$$", &gc))
    } else {
        format!(
            "set -m; sh -c '{}; exec sleep 1000' &",
            write_pid("$$", &gc)
        )
    };
    let mut tree = Tree::sh(
        &format!("{escape} while [ ! -e {go} ]; do sleep 0.01; done; exit 3"),
        contained(),
    );
    let worker = tree.worker();
    let grandchild = tree.track(read_pid(&gc));
    assert_ne!(
        pgrp(grandchild),
        pgrp(worker),
        "the grandchild left the group"
    );
    if have_setsid {
        assert_eq!(session(grandchild), grandchild, "setsid made a new session");
    }

    std::fs::write(&go, b"").unwrap();
    let status = tree.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(3), "{status:?}");
    tree.assert_all_gone();
}

#[test]
fn a_double_forked_orphan_reparents_to_the_shim_and_dies_with_it() {
    if !shim_available() {
        return;
    }
    let dir = Scratch::new("double-fork");
    let (orphan, go) = (dir.path("orphan"), dir.path("go"));
    let mut tree = Tree::sh(
        &format!(
            "(sleep 1000 & {}) & while [ ! -e {go} ]; do sleep 0.01; done; exit 0",
            write_pid("$!", &orphan)
        ),
        contained(),
    );
    tree.worker();
    let orphan = tree.track(read_pid(&orphan));
    let shim = tree.shim();
    // Its parent, the subshell, exits right after writing the pid.
    wait_until(
        "the orphan to reparent to the shim",
        Duration::from_secs(5),
        || ppid(orphan) == shim,
    );

    std::fs::write(&go, b"").unwrap();
    let status = tree.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "{status:?}");
    tree.assert_all_gone();
}

#[test]
fn sigkill_of_the_worker_kills_the_tree_and_is_mirrored() {
    if !shim_available() {
        return;
    }
    let dir = Scratch::new("kill-worker");
    let bg = dir.path("bg");
    let mut tree = Tree::sh(
        &format!("sleep 1000 & {}; exec sleep 1000", write_pid("$!", &bg)),
        contained(),
    );
    let worker = tree.worker();
    tree.track(read_pid(&bg));

    kill_process(pid(worker), Signal::KILL).unwrap();
    let status = tree.wait_exit(Duration::from_secs(2));
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    tree.assert_all_gone();
}

#[test]
fn a_signal_exit_of_the_worker_other_than_sigkill_is_mirrored() {
    if !shim_available() {
        return;
    }
    let mut tree = Tree::sh("kill -USR1 $$; sleep 1000", contained());
    let status = tree.wait_exit(Duration::from_secs(5));
    assert_eq!(status.signal(), Some(libc::SIGUSR1), "{status:?}");
}

#[test]
fn spawn_returns_promptly_and_mapped_fds_reach_the_worker() {
    if !shim_available() {
        return;
    }
    let (ring_read, ring_write) = std::io::pipe().unwrap();
    let (control_read, control_write) = std::io::pipe().unwrap();
    let started = Instant::now();
    let mut tree = Tree::sh(
        "echo ring >&3; echo control >&4; exec sleep 1000",
        contained()
            .map(ring_write.as_fd(), shm_proto::RING_FD)
            .map(control_write.as_fd(), shm_proto::CONTROL_FD),
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "spawn took {:?}",
        started.elapsed()
    );
    drop((ring_write, control_write));
    // No polling: `spawn` returns only once the worker has exec'd.
    let worker = tree.worker();
    assert_eq!(ppid(worker), tree.shim());

    let mut line = String::new();
    BufReader::new(ring_read).read_line(&mut line).unwrap();
    assert_eq!(line, "ring\n");
    line.clear();
    BufReader::new(control_read).read_line(&mut line).unwrap();
    assert_eq!(line, "control\n");
}

#[test]
fn a_failed_exec_of_the_worker_fails_the_spawn() {
    if !shim_available() {
        return;
    }
    let mut command = Command::new("/nonexistent/ringworker-worker");
    contained().apply(&mut command);
    let err = command.spawn().expect_err("the worker cannot exec");
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
}

/// `(soft, hard)` of the `/proc/<pid>/limits` line starting with `name`,
/// "unlimited" as `u64::MAX`.
fn limits(pid: &str, name: &str) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = text.lines().find(|l| l.starts_with(name)).unwrap();
    let value = |v: &str| {
        if v == "unlimited" {
            u64::MAX
        } else {
            v.parse().unwrap()
        }
    };
    let mut fields = line[name.len()..].split_whitespace();
    (value(fields.next().unwrap()), value(fields.next().unwrap()))
}

#[test]
fn rlimits_apply_to_the_worker_only() {
    let data = 1u64 << 34;
    let address_space = 1u64 << 36;
    for contain in [false, true] {
        if contain && !shim_available() {
            continue;
        }
        let (_, data_hard) = limits("self", "Max data size");
        let (_, as_hard) = limits("self", "Max address space");
        let mut tree = Tree::sh(
            "exec sleep 1000",
            ChildFds::new()
                .die_with_parent(true)
                .contain_tree(contain)
                .rlimit(Rlimit::Core, Some(0))
                .rlimit(Rlimit::Data, Some(data))
                .rlimit(Rlimit::AddressSpace, Some(address_space)),
        );
        let worker = if contain { tree.worker() } else { tree.shim() }.to_string();
        assert_eq!(limits(&worker, "Max core file size"), (0, 0));
        let data = data.min(data_hard);
        assert_eq!(limits(&worker, "Max data size"), (data, data));
        let address_space = address_space.min(as_hard);
        assert_eq!(
            limits(&worker, "Max address space"),
            (address_space, address_space)
        );
        if contain {
            // The shim itself runs with core dumps off and the host's other limits.
            let shim = tree.shim().to_string();
            assert_eq!(limits(&shim, "Max core file size").0, 0);
            assert_eq!(
                limits(&shim, "Max data size"),
                limits("self", "Max data size")
            );
        }
    }
}

#[test]
fn own_process_group_makes_the_worker_a_group_leader() {
    for contain in [false, true] {
        if contain && !shim_available() {
            continue;
        }
        let mut tree = Tree::sh(
            "exec sleep 1000",
            ChildFds::new()
                .die_with_parent(true)
                .contain_tree(contain)
                .own_process_group(true),
        );
        let worker = if contain { tree.worker() } else { tree.shim() };
        assert_eq!(pgrp(worker), worker);
        kill_process(pid(worker), Signal::KILL).unwrap();
        let status = tree.wait_exit(Duration::from_secs(2));
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }
}

#[test]
fn by_default_the_worker_stays_in_the_spawners_group() {
    let mut tree = Tree::sh("exec sleep 1000", ChildFds::new().die_with_parent(true));
    assert_eq!(pgrp(tree.shim()), pgrp(std::process::id()));
    tree.signal_shim(Signal::KILL);
    tree.wait_exit(Duration::from_secs(2));
}

#[test]
fn the_shim_holds_no_fds_so_the_workers_stdout_ends_with_the_tree() {
    if !shim_available() {
        return;
    }
    let dir = Scratch::new("stdout");
    let bg = dir.path("bg");
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(format!(
            "sleep 1000 & {}; echo ready; exec sleep 1000",
            write_pid("$!", &bg)
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut tree = Tree::spawn(command, contained());
    tree.worker();
    tree.track(read_pid(&bg));
    let mut stdout = BufReader::new(tree.child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");

    let fds: Vec<_> = std::fs::read_dir(format!("/proc/{}/fd", tree.shim()))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(fds.is_empty(), "the shim holds fds {fds:?}");

    // Both sleeps hold the pipe; EOF means both are gone.
    let (done, eof) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut rest = Vec::new();
        let _ = done.send(stdout.read_to_end(&mut rest).map(|_| rest));
    });
    tree.signal_shim(Signal::TERM);
    let rest = eof
        .recv_timeout(Duration::from_secs(2))
        .expect("stdout reached EOF")
        .unwrap();
    assert!(rest.is_empty());
    tree.wait_exit(Duration::from_secs(1));
    tree.assert_all_gone();
}

#[test]
fn the_tree_dies_with_the_spawning_thread() {
    if !shim_available() {
        return;
    }
    let dir = Scratch::new("supervisor-death");
    let bg = dir.path("bg");
    let script = format!("sleep 1000 & {}; exec sleep 1000", write_pid("$!", &bg));
    let spawner = std::thread::spawn(move || {
        let mut tree = Tree::sh(&script, contained());
        tree.worker();
        tree.track(read_pid(&bg));
        tree
    });
    let mut tree = spawner.join().unwrap();
    let status = tree.wait_exit(Duration::from_secs(2));
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    tree.assert_all_gone();
}

#[test]
fn shim_worker_pid_of_a_process_without_children_is_none() {
    let mut tree = Tree::sh("exec sleep 1000", ChildFds::new().die_with_parent(true));
    assert_eq!(shim_worker_pid(tree.shim()), None);
    assert_eq!(shim_worker_pid(u32::MAX), None);
    tree.signal_shim(Signal::KILL);
    tree.wait_exit(Duration::from_secs(2));
}

#[test]
fn the_shim_alone_leaves_the_worker_in_the_shims_group() {
    if !shim_available() {
        return;
    }
    let mut tree = Tree::sh("exec sleep 1000", contained());
    let worker = tree.worker();
    assert_eq!(pgrp(worker), pgrp(tree.shim()));
    tree.signal_shim(Signal::TERM);
    tree.wait_exit(Duration::from_secs(2));
}

/// Shared mappings (`rw-s` and the like) listed in `/proc/<pid>/maps`.
fn shared_mappings(pid: &str) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap()
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|p| p.ends_with('s'))
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_shim_keeps_no_shared_mapping_of_the_host_alive() {
    if !shim_available() {
        return;
    }
    // A ring the host holds at the spawn: if the shim kept its mapping, the
    // memfd's memory would outlive the host dropping the ring.
    let ring = shm_proto::RingMemory::create(&shm_proto::RingConfig::default()).unwrap();
    // More than the shim unmaps per round.
    let small = shm_proto::RingConfig::with_capacity(shm_proto::MIN_CAPACITY);
    let more: Vec<_> = (0..150)
        .map(|_| shm_proto::RingMemory::create(&small).unwrap())
        .collect();
    assert!(shared_mappings("self").len() > 150);
    let mut tree = Tree::sh("exec sleep 1000", contained());
    tree.worker();
    let left = shared_mappings(&tree.shim().to_string());
    assert!(left.is_empty(), "the shim maps {left:?}");
    drop((ring, more));
    tree.signal_shim(Signal::TERM);
    assert_eq!(
        tree.wait_exit(Duration::from_secs(2)).signal(),
        Some(libc::SIGKILL)
    );
}

#[test]
fn sigint_sighup_and_sigquit_to_the_shim_stop_the_tree_too() {
    if !shim_available() {
        return;
    }
    for signal in [Signal::INT, Signal::HUP, Signal::QUIT] {
        let mut tree = Tree::sh("exec sleep 1000", contained());
        tree.worker();
        tree.signal_shim(signal);
        let status = tree.wait_exit(Duration::from_secs(1));
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "{signal:?}: {status:?}"
        );
        tree.assert_all_gone();
    }
}

#[test]
fn without_die_with_parent_the_tree_outlives_the_spawning_thread() {
    if !shim_available() {
        return;
    }
    let spawner = std::thread::spawn(|| {
        let mut tree = Tree::sh("exec sleep 1000", ChildFds::new().contain_tree(true));
        tree.worker();
        tree
    });
    let mut tree = spawner.join().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(tree.child.try_wait().unwrap().is_none(), "the shim went");
    assert!(tree.descendants.iter().all(|&p| !gone(p)));
    tree.signal_shim(Signal::TERM);
    tree.wait_exit(Duration::from_secs(1));
    tree.assert_all_gone();
}

/// A `/proc/<pid>/status` (or `/proc/thread-self/status`) field.
fn status_field(pid: &str, name: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(name)).unwrap();
    line[name.len()..].trim().to_owned()
}

#[test]
fn the_worker_gets_the_spawners_signal_mask_back_and_the_shim_blocks_all() {
    if !shim_available() {
        return;
    }
    let mut tree = Tree::sh("exec sleep 1000", contained());
    let worker = tree.worker().to_string();
    assert_eq!(
        status_field(&worker, "SigBlk:"),
        status_field("thread-self", "SigBlk:")
    );
    let shim = tree.shim().to_string();
    let blocked = u64::from_str_radix(&status_field(&shim, "SigBlk:"), 16).unwrap();
    // The signals the shim waits for are not among these: while a thread
    // sits in sigwaitinfo the kernel lists them as unblocked (they still
    // reach only sigwaitinfo, never a handler).
    for signal in [
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGPIPE,
        libc::SIGALRM,
        libc::SIGTSTP,
        libc::SIGWINCH,
    ] {
        assert_ne!(
            blocked & (1 << (signal - 1)),
            0,
            "signal {signal} open in the shim"
        );
    }
}

fn rss_anon_kib(pid: &str) -> u64 {
    let value = status_field(pid, "RssAnon:");
    value.trim_end_matches("kB").trim().parse().unwrap()
}

#[test]
fn the_shim_lets_go_of_the_hosts_private_memory() {
    if !shim_available() {
        return;
    }
    // 64 MiB the host has written: a plain fork shares every page of it,
    // and keeps each old copy once the host writes it again.
    let mut ballast = vec![1u8; 64 << 20];
    let mut tree = Tree::sh("exec sleep 1000", contained());
    tree.worker();
    ballast.iter_mut().step_by(4096).for_each(|b| *b = 2);
    let shim = rss_anon_kib(&tree.shim().to_string());
    assert!(
        shim < 8 << 10,
        "the shim holds {shim} KiB of anonymous memory"
    );
    assert!(rss_anon_kib("self") > 64 << 10);
    std::hint::black_box(&ballast);
    // The shim still works after letting go.
    tree.signal_shim(Signal::TERM);
    assert_eq!(
        tree.wait_exit(Duration::from_secs(1)).signal(),
        Some(libc::SIGKILL)
    );
    tree.assert_all_gone();
}
