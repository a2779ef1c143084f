//! The per-request context: which row writer the exported functions write
//! into, on which thread, for how long.
//!
//! # Design
//!
//! One thread-local [`State`] per thread. [`with_row_context`] lends the
//! command's `&mut RowWriter` to it for the duration of `f` (as a raw
//! pointer with its lifetime erased) and puts the previous state back when
//! `f` returns or unwinds (a drop guard). The exported functions reach the
//! writer only through [`with_emitter`], which turns the pointer back into a
//! `&mut` for the duration of one call.
//!
//! Why there are never two `&mut RowWriter` at once:
//!
//! - the writer is lent with a `&mut` borrow that lasts all of
//!   [`with_row_context`], so the command cannot touch it while `f` runs,
//!   and `f` cannot reach it except through the exported functions;
//! - the state is thread-local, so another thread sees no writer (it gets
//!   [`Status::NoRequest`]);
//! - [`with_emitter`] sets the state to `Busy` before it makes the `&mut`
//!   and back to `Ready` after its last use, so a re-entrant call on the
//!   same thread (only possible if the writer called back into C, which it
//!   never does) finds `Busy` and gets [`Status::Internal`] instead of a
//!   second `&mut`;
//! - only [`with_row_context`] installs a pointer, and its guard removes it
//!   before the borrow it came from ends.
//!
//! Nested contexts are allowed: a [`with_row_context`] inside `f` (with
//! another writer; the same one is still borrowed) shadows the outer one
//! until it returns, then the outer one is back. A panic inside an exported
//! function (a bug) poisons the context: every later call until the
//! context ends returns [`Status::Internal`], since the writer's state is
//! suspect. A panic of `f` itself unwinds through [`with_row_context`] as
//! usual, after the guard restored the previous state.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;

use ringworker_child::{CommandError, Level, RowWriter};

use crate::status::Status;

/// What the exported functions need of a row writer. Implemented by
/// [`RowWriter`]; the unit tests implement it with a recording writer to
/// drive the context's states in-process.
pub(crate) trait Emit {
    /// [`RowWriter::row`].
    fn row(&mut self, stream: u16, payload: &[u8]) -> Result<(), CommandError>;
    /// [`RowWriter::progress`] without a message.
    fn progress(&mut self, done: u64, total: Option<u64>) -> Result<(), CommandError>;
    /// [`RowWriter::diagnostic`].
    fn diagnostic(&mut self, level: Level, message: &str) -> Result<(), CommandError>;
    /// [`RowWriter::is_cancelled`].
    fn is_cancelled(&self) -> bool;
    /// [`RowWriter::max_row`].
    fn max_row(&self) -> usize;
}

impl Emit for RowWriter<'_> {
    #[inline]
    fn row(&mut self, stream: u16, payload: &[u8]) -> Result<(), CommandError> {
        RowWriter::row(self, stream, payload)
    }

    fn progress(&mut self, done: u64, total: Option<u64>) -> Result<(), CommandError> {
        RowWriter::progress(self, done, total, None)
    }

    fn diagnostic(&mut self, level: Level, message: &str) -> Result<(), CommandError> {
        RowWriter::diagnostic(self, level, message)
    }

    #[inline]
    fn is_cancelled(&self) -> bool {
        RowWriter::is_cancelled(self)
    }

    #[inline]
    fn max_row(&self) -> usize {
        RowWriter::max_row(self)
    }
}

/// An installed writer: the lent pointer (lifetime erased, see
/// [`install`]) and the command's largest stream id.
#[derive(Clone, Copy)]
struct Installed {
    emitter: NonNull<dyn Emit + 'static>,
    max_stream: u16,
}

/// The calling thread's context.
#[derive(Clone, Copy)]
enum State {
    /// No request on this thread.
    Idle,
    /// A request is running; the writer is free.
    Ready(Installed),
    /// An exported function is using the writer right now.
    Busy,
    /// An exported function panicked during this context.
    Poisoned,
}

thread_local! {
    static STATE: Cell<State> = const { Cell::new(State::Idle) };
}

/// Runs `f` with `out` installed as this thread's request context: during
/// `f`, on this thread, the exported `ringworker_*` functions write into
/// `out` (rows on streams `0..=max_stream`); outside it, and on every other
/// thread, they return `RINGWORKER_NO_REQUEST`.
///
/// Nested calls are allowed (the inner writer shadows the outer one until
/// it returns). The previous context is restored when `f` returns or
/// panics.
///
/// When the Lean code returns after `RINGWORKER_CANCELLED`, end the command
/// with `ringworker_child::check_cancelled(out)?`: the request then ends as
/// cancelled, as for any command that saw the flag.
///
/// See the crate docs for an example.
pub fn with_row_context<R>(out: &mut RowWriter<'_>, max_stream: u16, f: impl FnOnce() -> R) -> R {
    install(out, max_stream, f)
}

/// [`with_row_context`] over any [`Emit`].
pub(crate) fn install<'a, R>(
    emitter: &'a mut (dyn Emit + 'a),
    max_stream: u16,
    f: impl FnOnce() -> R,
) -> R {
    let lent: NonNull<dyn Emit + 'a> = NonNull::from(emitter);
    // Only the trait object's lifetime bound changes (the fat pointer's
    // layout is the same). The pointer is dereferenced only through
    // `with_emitter` while `STATE` holds it, and `_restore` takes it out of
    // `STATE` before this function returns, within `'a`.
    // SAFETY: same layout; the pointer is used only while `'a` lasts (above).
    let lent: NonNull<dyn Emit + 'static> = unsafe { std::mem::transmute(lent) };
    let installed = Installed {
        emitter: lent,
        max_stream,
    };
    let _restore = Restore(STATE.replace(State::Ready(installed)));
    f()
}

/// Puts the previous state back when the context ends, also by unwinding.
struct Restore(State);

impl Drop for Restore {
    fn drop(&mut self) {
        // `try_with`: never panic in a drop; a thread whose locals are
        // being destroyed has no context left to restore anyway.
        let _ = STATE.try_with(|state| state.set(self.0));
    }
}

/// Runs `f` with this thread's writer and the command's largest stream, if
/// a request is installed and the writer is free; catches a panic of `f`
/// (it poisons the context). Outside a request, or on a thread whose
/// locals are being destroyed, [`Status::NoRequest`]; busy (re-entrant) or
/// poisoned, [`Status::Internal`].
pub(crate) fn with_emitter(f: impl FnOnce(&mut dyn Emit, u16) -> Result<(), Status>) -> Status {
    let Ok(state) = STATE.try_with(Cell::get) else {
        return Status::NoRequest;
    };
    let installed = match state {
        State::Idle => return Status::NoRequest,
        State::Busy | State::Poisoned => return Status::Internal,
        State::Ready(installed) => installed,
    };
    STATE.set(State::Busy);
    let result = catch_unwind(AssertUnwindSafe(|| {
        // `Ready` holds a pointer lent by `install` whose guard has not run
        // (it would have replaced `Ready`), so the writer is alive and its
        // `&mut` borrow is held by `install`. No other `&mut` from it
        // exists: the state is `Busy` until this one's last use below, and
        // it is thread-local.
        // SAFETY: the writer is alive and this is its only `&mut` (above).
        let emitter = unsafe { &mut *installed.emitter.as_ptr() };
        f(emitter, installed.max_stream)
    }));
    match result {
        Ok(outcome) => {
            STATE.set(State::Ready(installed));
            match outcome {
                Ok(()) => Status::Ok,
                Err(status) => status,
            }
        }
        Err(_panic) => {
            STATE.set(State::Poisoned);
            Status::Internal
        }
    }
}

/// Whether a request context is installed on this thread (ready, busy or
/// poisoned).
pub fn in_request() -> bool {
    STATE
        .try_with(|state| !matches!(state.get(), State::Idle))
        .unwrap_or(false)
}

#[cfg(test)]
pub(crate) mod tests {
    use ringworker_child::CommandError;

    use super::*;

    /// A writer that records what it was asked to write.
    #[derive(Default)]
    pub(crate) struct Recorder {
        pub rows: Vec<(u16, Vec<u8>)>,
        pub progress: Vec<(u64, Option<u64>)>,
        pub diagnostics: Vec<(Level, String)>,
        pub cancelled: bool,
        pub max_row: usize,
        /// `row` calls this first (re-entrancy and panic tests).
        pub on_row: Option<fn() -> Option<u32>>,
        pub inner: Vec<u32>,
    }

    impl Recorder {
        pub fn new(max_row: usize) -> Recorder {
            Recorder {
                max_row,
                ..Recorder::default()
            }
        }
    }

    impl Emit for Recorder {
        fn row(&mut self, stream: u16, payload: &[u8]) -> Result<(), CommandError> {
            if let Some(hook) = self.on_row
                && let Some(status) = hook()
            {
                self.inner.push(status);
            }
            self.rows.push((stream, payload.to_vec()));
            Ok(())
        }

        fn progress(&mut self, done: u64, total: Option<u64>) -> Result<(), CommandError> {
            self.progress.push((done, total));
            Ok(())
        }

        fn diagnostic(&mut self, level: Level, message: &str) -> Result<(), CommandError> {
            self.diagnostics.push((level, message.to_owned()));
            Ok(())
        }

        fn is_cancelled(&self) -> bool {
            self.cancelled
        }

        fn max_row(&self) -> usize {
            self.max_row
        }
    }

    fn emit(stream: u16) -> Status {
        with_emitter(|out, _| out.row(stream, b"x").map_err(|_| Status::Internal))
    }

    #[test]
    fn outside_a_context_there_is_no_request() {
        assert!(!in_request());
        assert_eq!(emit(0), Status::NoRequest);
    }

    #[test]
    fn the_context_ends_with_its_closure_even_when_it_panics() {
        let mut rec = Recorder::new(8);
        let panicked = catch_unwind(AssertUnwindSafe(|| {
            install(&mut rec, 0, || {
                assert_eq!(emit(0), Status::Ok);
                panic!("the Lean side failed");
            })
        }));
        assert!(panicked.is_err());
        assert!(!in_request());
        assert_eq!(emit(0), Status::NoRequest);
        assert_eq!(rec.rows.len(), 1);
    }

    #[test]
    fn nested_contexts_shadow_and_restore_the_outer_one() {
        let mut outer = Recorder::new(8);
        let mut inner = Recorder::new(8);
        install(&mut outer, 3, || {
            assert_eq!(emit(1), Status::Ok);
            install(&mut inner, 0, || assert_eq!(emit(2), Status::Ok));
            assert_eq!(emit(3), Status::Ok);
        });
        assert_eq!(outer.rows.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(inner.rows.iter().map(|r| r.0).collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn another_thread_sees_no_request() {
        let mut rec = Recorder::new(8);
        install(&mut rec, 0, || {
            let other = std::thread::spawn(|| (in_request(), emit(0)))
                .join()
                .unwrap();
            assert_eq!(other, (false, Status::NoRequest));
            assert!(in_request());
        });
        assert!(rec.rows.is_empty());
    }

    #[test]
    fn a_reentrant_call_gets_internal_not_a_second_writer() {
        let mut rec = Recorder::new(8);
        rec.on_row = Some(|| Some(emit(0).code()));
        install(&mut rec, 0, || assert_eq!(emit(0), Status::Ok));
        // The inner call found the writer busy; the outer row was written.
        assert_eq!(rec.inner, [Status::Internal.code()]);
        assert_eq!(rec.rows.len(), 1);
    }

    #[test]
    fn a_panic_inside_an_exported_call_poisons_the_context_until_it_ends() {
        let mut rec = Recorder::new(8);
        rec.on_row = Some(|| panic!("a bug in the writer"));
        install(&mut rec, 0, || {
            assert_eq!(emit(0), Status::Internal);
            assert_eq!(emit(0), Status::Internal, "poisoned");
            assert!(in_request());
        });
        assert_eq!(emit(0), Status::NoRequest);
        // A new context starts clean.
        let mut fresh = Recorder::new(8);
        install(&mut fresh, 0, || assert_eq!(emit(0), Status::Ok));
        assert_eq!(fresh.rows.len(), 1);
    }
}
