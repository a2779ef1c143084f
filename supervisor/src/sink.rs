//! Where rows go: the [`Sink`] trait, closures, typed decoding, per-stream
//! routing.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
pub use shm_proto::payload::{Diagnostic, Level, Progress};

/// One row as delivered: borrowed from the ring, valid during the call only.
///
/// # The payload is untrusted and may change during the call
///
/// [`payload`](Row::payload) points straight into the ring, memory the child
/// process shares. An honest child never writes a row the supervisor has not
/// released yet, but a buggy or hostile one can store into these bytes at
/// any moment, also while the sink reads them: two reads of the same byte
/// may differ, and a check made on the bytes (UTF-8, a checksum, a parse)
/// says nothing about what a later read sees. The bytes are plain `u8`s
/// (every bit pattern is a valid value, and their length and location were
/// fixed and checked before the call), so this cannot break safe code's
/// memory safety; what it can break is a sink that validates the bytes and
/// then uses them again, e.g. `std::str::from_utf8` followed by a copy into a
/// `String`, or a zero-copy deserializer that borrows `&str`s out of them.
///
/// A sink that parses rows or keeps their bytes should therefore work on a
/// private copy: [`TypedSink`] copies each row before decoding it, and
/// [`Copied`] wraps any sink so that it sees stable private bytes. The
/// aliasing argument for the borrow itself is in `shm-proto`'s consumer docs.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    /// Stream id the child wrote it to.
    pub stream: u16,
    /// Position of the row within its request, from 0, over all streams.
    pub sequence: u64,
    /// The payload: untrusted bytes the child may still change during the
    /// call (see the type's docs); whoever parses them validates a private
    /// copy.
    pub payload: &'a [u8],
}

/// A sink's failure; ends the request with [`Error::Sink`](crate::Error::Sink).
#[derive(Debug)]
pub struct SinkError(Box<dyn std::error::Error + Send + Sync>);

impl SinkError {
    /// Wraps any error.
    pub fn new(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        SinkError(err.into())
    }

    /// The wrapped error.
    pub fn inner(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl std::fmt::Display for SinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// Receives the rows (and progress and diagnostics) of a request, in the
/// order the child wrote them. Called on the thread that runs the request;
/// panics are caught and end the request with
/// [`Error::SinkPanicked`](crate::Error::SinkPanicked).
pub trait Sink {
    /// One row. Its payload is borrowed from the ring: untrusted bytes that
    /// a misbehaving child may change while this runs (see [`Row`]); wrap
    /// the sink in [`Copied`] to get stable private bytes instead.
    fn row(&mut self, row: Row<'_>) -> Result<(), SinkError>;

    /// A progress report (default: ignored).
    fn progress(&mut self, progress: &Progress) {
        let _ = progress;
    }

    /// A diagnostic (default: logged through `tracing`).
    fn diagnostic(&mut self, diagnostic: &Diagnostic) {
        match diagnostic.level {
            Level::Debug => tracing::debug!(target: "ringworker::worker", "{}", diagnostic.message),
            Level::Error => tracing::error!(target: "ringworker::worker", "{}", diagnostic.message),
            Level::Warn => tracing::warn!(target: "ringworker::worker", "{}", diagnostic.message),
            // Info, and levels added after this build.
            _ => tracing::info!(target: "ringworker::worker", "{}", diagnostic.message),
        }
    }
}

/// Any `FnMut(Row)` is a sink that never fails.
impl<F: FnMut(Row<'_>)> Sink for F {
    #[inline]
    fn row(&mut self, row: Row<'_>) -> Result<(), SinkError> {
        self(row);
        Ok(())
    }
}

/// Drops every row.
#[derive(Debug, Default, Clone, Copy)]
pub struct Discard;

impl Sink for Discard {
    #[inline]
    fn row(&mut self, _row: Row<'_>) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Decodes each row's payload as JSON into `T` and hands it, with its
/// stream, to a closure. A row that does not decode ends the request.
///
/// Each payload is first copied into a buffer the sink owns and reuses (it
/// grows to the largest row seen, then no row allocates for the copy) and
/// decoded from there, so a child that changes a row's bytes while it is
/// decoded yields a row that does not decode or a value decoded from one
/// consistent snapshot of its bytes, never a `String` that is not UTF-8.
pub struct TypedSink<T, F> {
    handler: F,
    buf: Vec<u8>,
    _row: PhantomData<fn(T)>,
}

impl<T, F> TypedSink<T, F>
where
    T: DeserializeOwned,
    F: FnMut(u16, T),
{
    /// A sink calling `handler(stream, row)`.
    pub fn new(handler: F) -> Self {
        TypedSink {
            handler,
            buf: Vec::new(),
            _row: PhantomData,
        }
    }
}

/// A row whose payload did not decode into the typed sink's type.
#[derive(Debug, thiserror::Error)]
#[error("row {sequence} on stream {stream} does not decode: {source}")]
pub struct RowDecodeError {
    /// The row's sequence.
    pub sequence: u64,
    /// Its stream.
    pub stream: u16,
    /// The decoder's error.
    #[source]
    pub source: serde_json::Error,
}

impl<T, F> Sink for TypedSink<T, F>
where
    T: DeserializeOwned,
    F: FnMut(u16, T),
{
    fn row(&mut self, row: Row<'_>) -> Result<(), SinkError> {
        copy_into(&mut self.buf, row.payload);
        let value = serde_json::from_slice(&self.buf).map_err(|source| {
            SinkError::new(RowDecodeError {
                sequence: row.sequence,
                stream: row.stream,
                source,
            })
        })?;
        (self.handler)(row.stream, value);
        Ok(())
    }
}

/// Hands the inner sink each row as a private copy: its payload is stable
/// bytes in a buffer this adapter owns, which the child cannot change, for
/// sinks that validate a row and then use it again, or borrow from it (a
/// zero-copy deserializer). Progress and diagnostics are passed through.
///
/// The buffer is reused: it grows to the largest row seen, after which the
/// copy costs one `memcpy` per row and no allocation.
///
/// ```
/// use ringworker::{Copied, Row};
///
/// let mut names = Vec::new();
/// let mut sink = Copied::new(|row: Row<'_>| {
///     // Checked and used on the same private bytes.
///     if let Ok(name) = std::str::from_utf8(row.payload) {
///         names.push(name.to_owned());
///     }
/// });
/// # let _ = &mut sink;
/// ```
#[derive(Debug, Default, Clone)]
pub struct Copied<S> {
    inner: S,
    buf: Vec<u8>,
}

impl<S: Sink> Copied<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Copied {
            inner,
            buf: Vec::new(),
        }
    }

    /// The wrapped sink.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The wrapped sink, mutably.
    pub fn inner_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner sink.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Sink> Sink for Copied<S> {
    #[inline]
    fn row(&mut self, row: Row<'_>) -> Result<(), SinkError> {
        copy_into(&mut self.buf, row.payload);
        self.inner.row(Row {
            payload: &self.buf,
            ..row
        })
    }

    fn progress(&mut self, progress: &Progress) {
        self.inner.progress(progress);
    }

    fn diagnostic(&mut self, diagnostic: &Diagnostic) {
        self.inner.diagnostic(diagnostic);
    }
}

/// Replaces `buf`'s contents with one read of `payload` (shared bytes that
/// may change under us): from here on, only the private copy is looked at.
#[inline]
fn copy_into(buf: &mut Vec<u8>, payload: &[u8]) {
    buf.clear();
    buf.extend_from_slice(payload);
}

/// Sends each stream's rows to its own sink; rows of streams without a
/// route go to the fallback, or fail the request if there is none.
#[derive(Default)]
pub struct Router<'a> {
    routes: Vec<Option<Box<dyn Sink + 'a>>>,
    fallback: Option<Box<dyn Sink + 'a>>,
    on_progress: Option<ProgressFn<'a>>,
}

/// A [`Router`]'s progress callback.
type ProgressFn<'a> = Box<dyn FnMut(&Progress) + 'a>;

/// A row arrived on a stream the [`Router`] has no route for.
#[derive(Debug, thiserror::Error)]
#[error("row {sequence} on unrouted stream {stream}")]
pub struct UnroutedStream {
    /// The row's sequence.
    pub sequence: u64,
    /// Its stream.
    pub stream: u16,
}

impl<'a> Router<'a> {
    /// A router with no routes.
    pub fn new() -> Self {
        Router::default()
    }

    /// Routes `stream` to `sink`.
    pub fn route(mut self, stream: u16, sink: impl Sink + 'a) -> Self {
        let index = usize::from(stream);
        if self.routes.len() <= index {
            self.routes.resize_with(index + 1, || None);
        }
        self.routes[index] = Some(Box::new(sink));
        self
    }

    /// Routes every other stream to `sink`.
    pub fn fallback(mut self, sink: impl Sink + 'a) -> Self {
        self.fallback = Some(Box::new(sink));
        self
    }

    /// Calls `f` on every progress report.
    pub fn on_progress(mut self, f: impl FnMut(&Progress) + 'a) -> Self {
        self.on_progress = Some(Box::new(f));
        self
    }
}

impl Sink for Router<'_> {
    fn row(&mut self, row: Row<'_>) -> Result<(), SinkError> {
        let target = match self.routes.get_mut(usize::from(row.stream)) {
            Some(Some(sink)) => sink,
            _ => match &mut self.fallback {
                Some(sink) => sink,
                None => {
                    return Err(SinkError::new(UnroutedStream {
                        sequence: row.sequence,
                        stream: row.stream,
                    }));
                }
            },
        };
        target.row(row)
    }

    fn progress(&mut self, progress: &Progress) {
        if let Some(f) = &mut self.on_progress {
            f(progress);
        }
    }
}
