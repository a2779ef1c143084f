//! The template side of warm templates, in process: fork requests carry
//! their four fds and values over a socketpair, and a multi-threaded
//! process refuses to fork (giving its control socket back).

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;

use shm_proto::fork::{self, ForkError, ForkRequest};

fn pipe() -> (OwnedFd, OwnedFd) {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap()
}

#[test]
fn a_fork_request_carries_its_values_and_four_fds() {
    let (supervisor, template) = UnixStream::pair().unwrap();
    let (ring_r, ring_w) = pipe();
    let (control, _control_peer) = UnixStream::pair().unwrap();
    let (out_r, out_w) = pipe();
    let (err_r, err_w) = pipe();
    let request = ForkRequest::new(7, 1234, 1 << 20)
        .with_contain_tree(true)
        .with_rlimits(Some(0), Some(1 << 30), None);
    fork::send_fork_request(
        supervisor.as_fd(),
        &request,
        [
            ring_w.as_fd(),
            control.as_fd(),
            out_w.as_fd(),
            err_w.as_fd(),
        ],
    )
    .unwrap();
    let (received, fds) = fork::recv_fork_request(template.as_fd())
        .unwrap()
        .expect("a request");
    assert_eq!(received, request);
    // Each received fd is the one sent: write through it, read the original.
    for (fd, reader) in [
        (&fds.ring, &ring_r),
        (&fds.stdout, &out_r),
        (&fds.stderr, &err_r),
    ] {
        assert_eq!(rustix::io::write(fd, b"x").unwrap(), 1);
        let mut byte = [0u8; 1];
        assert_eq!(rustix::io::read(reader, &mut byte).unwrap(), 1);
    }
    // Received close-on-exec.
    let flags = rustix::io::fcntl_getfd(&fds.control).unwrap();
    assert!(flags.contains(rustix::io::FdFlags::CLOEXEC));
    // A closed channel is the end, not an error.
    drop(supervisor);
    assert!(fork::recv_fork_request(template.as_fd()).unwrap().is_none());
}

#[test]
fn a_multi_threaded_process_refuses_to_fork() {
    let (keep, stop) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let _ = stop.recv();
    });
    let (template, _peer) = UnixStream::pair().unwrap();
    let (ring, _) = pipe();
    let (control, _) = pipe();
    let (stdout, _) = pipe();
    let (stderr, _) = pipe();
    let fds = fork::WorkerFds {
        ring,
        control,
        stdout,
        stderr,
    };
    let template = OwnedFd::from(template);
    let raw = std::os::fd::AsRawFd::as_raw_fd(&template);
    match fork::fork_worker(
        template,
        fds,
        &ForkRequest::new(1, std::process::id(), 1 << 20),
    ) {
        Err((ForkError::MultiThreaded { threads }, back)) => {
            assert!(threads >= 2, "{threads}");
            assert_eq!(
                std::os::fd::AsRawFd::as_raw_fd(&back),
                raw,
                "the socket comes back"
            );
        }
        other => panic!("forked in a multi-threaded process: {other:?}"),
    }
    assert!(fork::thread_count().unwrap() >= 2);
    drop(keep);
    thread.join().unwrap();
}
