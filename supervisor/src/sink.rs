//! Where rows go: the [`Sink`] trait, closures, typed decoding, per-stream
//! routing.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
pub use shm_proto::payload::{Diagnostic, Level, Progress};

/// One row as delivered: borrowed from the ring, valid during the call only.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    /// Stream id the child wrote it to.
    pub stream: u16,
    /// Position of the row within its request, from 0, over all streams.
    pub sequence: u64,
    /// The payload (untrusted bytes: whoever parses them validates them).
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
    /// One row.
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
pub struct TypedSink<T, F> {
    handler: F,
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
        let value = serde_json::from_slice(row.payload).map_err(|source| {
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
