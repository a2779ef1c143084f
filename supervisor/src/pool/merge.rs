//! [`Pool::run_merged`]: many jobs streamed into one sink on the caller's
//! thread, each row tagged with its job and attempt.
//!
//! Pool worker threads copy rows into chunks (at most 2048 rows or 256 KiB
//! each) and send them over a bounded channel (two chunks per worker); the
//! caller's thread runs the sink. A chunk is one byte buffer holding its
//! rows' payloads back to back plus one small entry per row (stream,
//! sequence, where its payload lies); the caller's thread hands emptied
//! chunks back through a free list, so in steady state no row and no chunk
//! allocates, and a row costs one copy into the buffer. A full channel blocks the worker's
//! request thread, which stops reading its ring, which blocks the child:
//! backpressure reaches the child and supervisor memory stays bounded by
//! the channel. A feeder thread submits the jobs, at most `workers +
//! queue_depth` of them unfinished at a time.
//!
//! In [`Order::Submission`] the rows of a job reach the sink only after
//! every row of every earlier job: rows of later jobs that arrive first
//! are held back. The hold-back is bounded in jobs (the window above) but
//! not in bytes: up to `workers + queue_depth - 1` later jobs' complete
//! rows may be held while an earlier job runs. [`Order::Completion`] holds
//! nothing back.

use std::collections::BTreeMap;
use std::sync::mpsc::{RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use crate::error::Error;
use crate::sink::{Row, Sink, SinkError};

use super::job::{Job, JobOutput, JobShared, Route};
use super::{Pool, unstarted};

/// Rows per chunk handed from a pool worker to the merged sink: each hand-
/// over wakes the caller's thread, so a chunk should cover a good fraction
/// of a millisecond of a fast child's output.
const CHUNK_ROWS: usize = 2048;
/// Payload bytes after which a chunk is handed over early.
const CHUNK_BYTES: usize = 256 << 10;
/// A chunk whose buffer grew past this (one very large row) is not kept
/// for reuse.
const KEEP_CHUNK_BYTES: usize = 2 * CHUNK_BYTES;

/// In which order [`Pool::run_merged`] hands rows to the sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Order {
    /// All rows of job `i` (all its attempts, in attempt order) before any
    /// row of job `i + 1`; later jobs' rows are held back meanwhile.
    Submission,
    /// Rows as they arrive: jobs interleave (in chunks); within one
    /// attempt of one job, commit order.
    Completion,
}

/// A row of a merged run: which job (its index in the iterator given to
/// [`Pool::run_merged`]) and which attempt (from 1) it belongs to.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct TaggedRow<'a> {
    /// The job's index in the submitted sequence, from 0.
    pub job: usize,
    /// The attempt, from 1; rows of a failed attempt keep their number, a
    /// retry's rows come with the next.
    pub attempt: u32,
    /// The row (a private copy; `sequence` counts within the attempt).
    pub row: Row<'a>,
}

/// What [`Pool::run_merged`] returns.
#[derive(Debug)]
#[non_exhaustive]
pub struct MergedOutput {
    /// Each job's output, by submission index (its `rows` are empty: they
    /// went to the sink).
    pub outputs: Vec<JobOutput>,
    /// Submission indices in the order the jobs finished.
    pub completion_order: Vec<usize>,
}

pub(crate) enum Msg {
    Submitted { index: usize, job: Arc<JobShared> },
    Rows(Chunk),
    Done { index: usize },
    End { count: usize },
}

/// Where one row of a [`Chunk`] lies in its buffer.
#[derive(Debug, Clone, Copy)]
struct Entry {
    stream: u16,
    sequence: u64,
    end: usize,
}

/// Rows of one attempt of one job, copied out of the ring: payloads back
/// to back in `bytes`, row `i` ending at `entries[i].end`.
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    index: usize,
    attempt: u32,
    bytes: Vec<u8>,
    entries: Vec<Entry>,
}

impl Chunk {
    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Its rows, in order.
    fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        let mut start = 0;
        self.entries.iter().map(move |entry| {
            let payload = &self.bytes[start..entry.end];
            start = entry.end;
            Row {
                stream: entry.stream,
                sequence: entry.sequence,
                payload,
            }
        })
    }
}

/// Emptied chunks on their way back from the caller's thread to the pool
/// workers: a free list, capped so that a burst (the hold-back of
/// [`Order::Submission`]) does not stay allocated.
#[derive(Debug)]
pub(crate) struct FreeChunks {
    chunks: Mutex<Vec<Chunk>>,
    keep: usize,
}

impl FreeChunks {
    fn new(keep: usize) -> Self {
        FreeChunks {
            chunks: Mutex::new(Vec::with_capacity(keep)),
            keep,
        }
    }

    fn take(&self) -> Chunk {
        self.chunks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default()
    }

    fn give(&self, mut chunk: Chunk) {
        if chunk.bytes.capacity() > KEEP_CHUNK_BYTES {
            return;
        }
        chunk.bytes.clear();
        chunk.entries.clear();
        let mut chunks = self.chunks.lock().unwrap_or_else(|e| e.into_inner());
        if chunks.len() < self.keep {
            chunks.push(chunk);
        }
    }
}

/// The sink of a merged job's attempt on a pool worker's thread.
pub(crate) struct ChunkSink<'a> {
    tx: &'a SyncSender<Msg>,
    free: &'a FreeChunks,
    index: usize,
    attempt: u32,
    chunk: Option<Chunk>,
    rows: u64,
}

/// The caller's thread is gone (its sink panicked).
#[derive(Debug, thiserror::Error)]
#[error("the merged sink is gone")]
struct MergeGone;

impl<'a> ChunkSink<'a> {
    pub(crate) fn new(
        tx: &'a SyncSender<Msg>,
        free: &'a FreeChunks,
        index: usize,
        attempt: u32,
    ) -> Self {
        ChunkSink {
            tx,
            free,
            index,
            attempt,
            chunk: None,
            rows: 0,
        }
    }

    /// Rows handed to this sink.
    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }

    /// Sends the rows buffered so far (blocks while the channel is full).
    pub(crate) fn flush(&mut self) -> bool {
        match self.chunk.take() {
            Some(chunk) if !chunk.is_empty() => self.tx.send(Msg::Rows(chunk)).is_ok(),
            Some(chunk) => {
                self.free.give(chunk);
                true
            }
            None => true,
        }
    }
}

impl Sink for ChunkSink<'_> {
    #[inline]
    fn row(&mut self, row: Row<'_>) -> Result<(), SinkError> {
        let chunk = self.chunk.get_or_insert_with(|| {
            let mut chunk = self.free.take();
            chunk.index = self.index;
            chunk.attempt = self.attempt;
            chunk
        });
        // One read of the shared bytes: the caller sees this private copy.
        chunk.bytes.extend_from_slice(row.payload);
        chunk.entries.push(Entry {
            stream: row.stream,
            sequence: row.sequence,
            end: chunk.bytes.len(),
        });
        self.rows += 1;
        if (chunk.entries.len() >= CHUNK_ROWS || chunk.bytes.len() >= CHUNK_BYTES) && !self.flush()
        {
            return Err(SinkError::new(MergeGone));
        }
        Ok(())
    }
}

/// How many merged jobs are unfinished, and whether the caller stopped.
#[derive(Default)]
struct Gate {
    state: Mutex<(usize, bool)>,
    changed: Condvar,
}

impl Gate {
    /// Waits for room in the window; false once stopped.
    fn enter(&self, window: usize) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while state.0 >= window && !state.1 {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        if state.1 {
            return false;
        }
        state.0 += 1;
        true
    }

    fn leave(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 = state.0.saturating_sub(1);
        self.changed.notify_all();
    }

    fn stop(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.changed.notify_all();
    }
}

/// Stops the feeder when the caller's loop ends, also by a panic of its sink.
struct StopOnDrop<'a>(&'a Gate);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.stop();
    }
}

struct Pending {
    job: Arc<JobShared>,
    buffered: Vec<Chunk>,
    done: bool,
}

impl Pool {
    /// Runs every job of `jobs` on the pool and streams all their rows into
    /// `sink` on this thread, each tagged with its job's index and attempt,
    /// in the chosen [`Order`]; returns every job's output by index.
    ///
    /// Admission always waits for room in the queue (up to the queue
    /// timeout, whatever [`PoolConfig::when_full`](crate::PoolConfig::when_full)
    /// says): at most `workers + queue_depth` jobs are unfinished at a
    /// time. A failed attempt's rows stay in the sink, tagged with their
    /// attempt; a retry's rows come with the next attempt number, so a
    /// consumer that wants only complete jobs keeps the rows of the job's
    /// last attempt (`outputs[job].attempts`) when its result is `Ok`.
    /// The sink runs on the caller's thread: a slow sink slows the
    /// children (bounded channel), never grows memory beyond it (plus the
    /// hold-back of [`Order::Submission`], see the module docs).
    ///
    /// ```no_run
    /// use ringworker::{Job, Order, Pool, PoolConfig, WorkerConfig};
    ///
    /// # fn main() -> Result<(), ringworker::Error> {
    /// let pool = Pool::new(PoolConfig::new(WorkerConfig::new("target/release/my-worker"), 2))?;
    /// let jobs = (0..10).map(|n| Job::new("squares", &serde_json::json!({ "n": n })).unwrap());
    /// let mut rows = 0;
    /// let out = pool.run_merged(jobs, Order::Submission, |tagged| {
    ///     rows += 1;
    ///     let _ = (tagged.job, tagged.attempt, tagged.row.payload);
    /// });
    /// assert_eq!(out.outputs.len(), 10);
    /// # Ok(())
    /// # }
    /// ```
    pub fn run_merged<I, F>(&self, jobs: I, order: Order, mut sink: F) -> MergedOutput
    where
        I: IntoIterator<Item = Job>,
        I::IntoIter: Send,
        F: FnMut(TaggedRow<'_>),
    {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(2 * self.workers + 2);
        // Every chunk that can be in flight: the channel's, one being filled
        // per worker, the one being emitted.
        let free = Arc::new(FreeChunks::new(3 * self.workers + 3));
        let gate = Gate::default();
        let window = self.workers + self.queue_depth;
        let jobs = jobs.into_iter();
        std::thread::scope(|scope| {
            let _stop = StopOnDrop(&gate);
            let feeder_gate = &gate;
            let free = &free;
            scope.spawn(move || {
                let mut count = 0;
                for (index, job) in jobs.enumerate() {
                    if !feeder_gate.enter(window) {
                        break;
                    }
                    let route = Route::Merge {
                        tx: tx.clone(),
                        free: Arc::clone(free),
                        index,
                    };
                    let job = self.make_job(job, route);
                    count = index + 1;
                    if tx
                        .send(Msg::Submitted {
                            index,
                            job: Arc::clone(&job),
                        })
                        .is_err()
                    {
                        break;
                    }
                    if self.push(&job, true).is_err() && tx.send(Msg::Done { index }).is_err() {
                        break;
                    }
                }
                let _ = tx.send(Msg::End { count });
            });
            let mut run = MergeRun {
                order,
                pending: BTreeMap::new(),
                outputs: Vec::new(),
                completion_order: Vec::new(),
                next: 0,
                finished: 0,
                gate: &gate,
                free,
            };
            let mut total = None;
            while total != Some(run.finished) {
                let nearest = run
                    .pending
                    .values()
                    .filter(|p| !p.done && p.job.is_queued())
                    .filter_map(|p| p.job.start_by)
                    .min();
                let received = match nearest {
                    Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
                    None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                };
                let msg = match received {
                    Ok(msg) => msg,
                    Err(RecvTimeoutError::Timeout) => {
                        let now = Instant::now();
                        let due: Vec<usize> = run
                            .pending
                            .iter()
                            .filter(|(_, p)| !p.done && p.job.start_by.is_some_and(|t| t <= now))
                            .map(|(&i, _)| i)
                            .collect();
                        for index in due {
                            if run.pending[&index].job.expire(&self.shared.queue) {
                                run.done(index, &self.shared.queue, &mut sink);
                            }
                        }
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                };
                match msg {
                    Msg::Submitted { index, job } => {
                        run.pending.insert(
                            index,
                            Pending {
                                job,
                                buffered: Vec::new(),
                                done: false,
                            },
                        );
                    }
                    Msg::Rows(chunk) => {
                        if order == Order::Completion || chunk.index == run.next {
                            emit(&mut sink, &chunk);
                            free.give(chunk);
                        } else if let Some(pending) = run.pending.get_mut(&chunk.index) {
                            pending.buffered.push(chunk);
                        }
                    }
                    Msg::Done { index } => run.done(index, &self.shared.queue, &mut sink),
                    Msg::End { count } => total = Some(count),
                }
            }
            let mut outputs = Vec::with_capacity(run.outputs.len());
            for (index, output) in run.outputs.into_iter().enumerate() {
                outputs.push(output.unwrap_or_else(|| {
                    let job = run.pending.get(&index).map(|p| &p.job);
                    match job {
                        Some(job) => unstarted(job, Error::PoolClosed),
                        None => JobOutput::unstarted(0, Error::PoolClosed, Default::default()),
                    }
                }));
            }
            MergedOutput {
                outputs,
                completion_order: run.completion_order,
            }
        })
    }
}

struct MergeRun<'g> {
    order: Order,
    pending: BTreeMap<usize, Pending>,
    outputs: Vec<Option<JobOutput>>,
    completion_order: Vec<usize>,
    /// The job whose rows go to the sink now (submission order).
    next: usize,
    finished: usize,
    gate: &'g Gate,
    free: &'g FreeChunks,
}

impl MergeRun<'_> {
    fn done<F: FnMut(TaggedRow<'_>)>(
        &mut self,
        index: usize,
        queue: &super::queue::Queue,
        sink: &mut F,
    ) {
        let Some(pending) = self.pending.get_mut(&index) else {
            return;
        };
        if pending.done {
            return;
        }
        pending.done = true;
        let output = pending.job.wait(queue);
        if self.outputs.len() <= index {
            self.outputs.resize_with(index + 1, || None);
        }
        self.outputs[index] = Some(output);
        self.completion_order.push(index);
        self.finished += 1;
        self.gate.leave();
        match self.order {
            Order::Completion => {
                self.pending.remove(&index);
            }
            Order::Submission => {
                while let Some(next) = self.pending.get_mut(&self.next) {
                    for chunk in next.buffered.drain(..) {
                        emit(sink, &chunk);
                        self.free.give(chunk);
                    }
                    if !next.done {
                        break;
                    }
                    self.pending.remove(&self.next);
                    self.next += 1;
                }
            }
        }
    }
}

fn emit<F: FnMut(TaggedRow<'_>)>(sink: &mut F, chunk: &Chunk) {
    for row in chunk.rows() {
        sink(TaggedRow {
            job: chunk.index,
            attempt: chunk.attempt,
            row,
        });
    }
}
