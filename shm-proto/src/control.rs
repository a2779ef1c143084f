//! The control channel: a socketpair on [`CONTROL_FD`](crate::CONTROL_FD),
//! never the child's stdout, carrying length-prefixed JSON frames.
//!
//! Only the handshake and requests travel here. Everything a child says about
//! a request (rows, progress, diagnostics, the end marker with its summary or
//! error) goes through the ring, so it is ordered in one place; those record
//! payloads are in [`payload`](crate::payload).
//!
//! Frame: a 4-byte little-endian length, then that many bytes of JSON. The
//! length is checked against a hard cap before any buffer is allocated.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::ErrorKind;

/// Version of the control protocol and of the payloads of ring records
/// ([`payload`](crate::payload)). A child that speaks another version is
/// refused at handshake. 2: failure codes say whether the runtime or the
/// command reported them. 3: rows larger than the maximum record travel as
/// fragments, and [`Hello`] echoes the per-row limit ([`ENV_MAX_ROW_BYTES`]).
/// 4: the child's runtime stores the id of each request it reads into the
/// ring's accepted-request word before running it
/// ([`ConsumerRemote::accepted_request`](crate::ConsumerRemote::accepted_request)),
/// and supervisors rely on it to classify a death; an older child never
/// stores it (ring layout 3).
pub const PROTOCOL_VERSION: u32 = 4;

/// Largest control frame either side accepts.
pub const MAX_FRAME_BYTES: usize = 1 << 20;

/// Environment variable through which a supervisor tells the child the
/// generation of its ring (checked on attach).
pub const ENV_GENERATION: &str = "RINGWORKER_GENERATION";

/// Environment variable through which a supervisor tells the child the
/// largest row (in bytes, decimal) it accepts; the child echoes it in
/// [`Hello::max_row_bytes`] and refuses larger rows itself.
pub const ENV_MAX_ROW_BYTES: &str = "RINGWORKER_MAX_ROW_BYTES";

/// The per-row limit when none is configured: 256 MiB.
pub const DEFAULT_MAX_ROW_BYTES: u64 = 256 << 20;

fn default_max_row_bytes() -> u64 {
    DEFAULT_MAX_ROW_BYTES
}

/// Environment variable holding the supervisor's pid, which the child
/// re-checks after registering for the parent-death signal.
pub const ENV_PARENT_PID: &str = "RINGWORKER_PARENT_PID";

/// A command a worker offers, as announced in its handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CommandInfo {
    /// Name used in requests.
    pub name: String,
    /// One line for humans.
    pub description: String,
    /// The Rust type its request decodes into (`std::any::type_name`);
    /// empty from a child that does not say.
    #[serde(default)]
    pub request: String,
    /// The Rust type of its summary; empty from a child that does not say.
    #[serde(default)]
    pub summary: String,
    /// The Rust type of its rows, for typed commands (`Command::Row`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<String>,
}

impl CommandInfo {
    /// A command named `name`.
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        CommandInfo {
            name: name.into(),
            description: description.into(),
            request: String::new(),
            summary: String::new(),
            row: None,
        }
    }

    /// Names its request and summary types.
    #[must_use]
    pub fn with_types(mut self, request: impl Into<String>, summary: impl Into<String>) -> Self {
        self.request = request.into();
        self.summary = summary.into();
        self
    }
}

/// The child's first frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Hello {
    /// [`PROTOCOL_VERSION`] of the child's build.
    pub protocol: u32,
    /// Worker name.
    pub worker: String,
    /// Worker version.
    pub version: String,
    /// Generation read from the ring the child attached to.
    pub generation: u64,
    /// The child's pid as it sees itself.
    pub pid: u32,
    /// Commands the worker serves.
    pub commands: Vec<CommandInfo>,
    /// The largest row the child writes (fragmented when it exceeds the
    /// ring's maximum record): the limit it was given in
    /// [`ENV_MAX_ROW_BYTES`], echoed so the supervisor can check both sides
    /// agree. Defaulted when absent, so a child of an older protocol is
    /// refused for its version, not for a missing field.
    #[serde(default = "default_max_row_bytes")]
    pub max_row_bytes: u64,
}

impl Hello {
    /// The handshake of worker `worker` at `version`, speaking this build's
    /// [`PROTOCOL_VERSION`], attached to a ring of `generation`.
    pub fn new(
        worker: impl Into<String>,
        version: impl Into<String>,
        generation: u64,
        pid: u32,
        commands: Vec<CommandInfo>,
    ) -> Self {
        Hello {
            protocol: PROTOCOL_VERSION,
            worker: worker.into(),
            version: version.into(),
            generation,
            pid,
            commands,
            max_row_bytes: DEFAULT_MAX_ROW_BYTES,
        }
    }

    /// Announces the per-row limit the child enforces.
    pub fn with_max_row_bytes(mut self, max_row_bytes: u64) -> Self {
        self.max_row_bytes = max_row_bytes;
        self
    }

    /// Announces another protocol version (for testing version checks).
    pub fn with_protocol(mut self, protocol: u32) -> Self {
        self.protocol = protocol;
        self
    }
}

/// Frames from child to supervisor (externally tagged: `{"hello": {..}}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChildFrame {
    /// The handshake.
    Hello(Hello),
    /// The child could not start serving (e.g. its ring would not attach).
    Fatal {
        /// What went wrong.
        message: String,
    },
}

/// A request as sent to the child.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RequestFrame {
    /// Request id, unique per worker; every record of the request carries it.
    pub id: u64,
    /// Command name.
    pub command: String,
    /// The command's arguments, JSON, decoded by the command itself.
    pub args: Box<RawValue>,
}

impl RequestFrame {
    /// Request `id` of `command` with `args`.
    pub fn new(id: u64, command: impl Into<String>, args: Box<RawValue>) -> Self {
        RequestFrame {
            id,
            command: command.into(),
            args,
        }
    }
}

/// Frames from supervisor to child (externally tagged, because an
/// internally tagged enum cannot carry the raw JSON arguments).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ParentFrame {
    /// Run a command.
    Request(RequestFrame),
    /// Finish and exit cleanly.
    Shutdown,
}

/// Failures reading or writing control frames.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The peer closed the channel at a frame boundary.
    #[error("control channel closed")]
    Closed,
    /// A length prefix above the cap (nothing was allocated for it).
    #[error("control frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// The announced length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The channel ended or failed in the middle of a frame, or timed out.
    #[error("control channel I/O failed: {source}")]
    Io {
        /// The I/O error (`TimedOut`/`WouldBlock` on a read timeout).
        #[source]
        source: io::Error,
    },
    /// A frame's bytes are not the expected JSON message.
    #[error("malformed control frame: {source}")]
    Malformed {
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A well-formed frame that has no meaning at this point of the
    /// conversation (e.g. a frame this side's protocol version does not know).
    #[error("unexpected control frame: {frame}")]
    Unexpected {
        /// The frame, for the report.
        frame: String,
    },
}

impl FrameError {
    /// Classifies this error, in the same classes as [`RingError`](crate::RingError).
    pub fn kind(&self) -> ErrorKind {
        match self {
            FrameError::Closed => ErrorKind::Closed,
            // Either peer announcing a frame above the cap is out of
            // protocol; we never write one (checked before sending).
            FrameError::TooLarge { .. }
            | FrameError::Malformed { .. }
            | FrameError::Unexpected { .. } => ErrorKind::Corruption,
            FrameError::Io { .. } if self.is_timeout() => ErrorKind::Timeout,
            FrameError::Io { source } => match source.kind() {
                io::ErrorKind::UnexpectedEof
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted => ErrorKind::Closed,
                _ => ErrorKind::System,
            },
        }
    }

    /// True if the peer is gone: it closed the channel at a frame boundary,
    /// in the middle of a frame, or died with bytes we sent still unread
    /// (the kernel then resets the connection instead of signalling
    /// end-of-file). Match on this, never on [`FrameError::Closed`] alone.
    pub fn is_closed(&self) -> bool {
        self.kind() == ErrorKind::Closed
    }

    /// True if the error is a read timeout (the peer said nothing in time).
    pub fn is_timeout(&self) -> bool {
        matches!(self, FrameError::Io { source } if matches!(source.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock))
    }
}

/// Writes one frame.
pub fn write_frame<W: Write, T: Serialize>(writer: &mut W, message: &T) -> Result<(), FrameError> {
    let body = serde_json::to_vec(message).map_err(|source| FrameError::Malformed { source })?;
    if body.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge {
            len: body.len(),
            max: MAX_FRAME_BYTES,
        });
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&body);
    writer
        .write_all(&frame)
        .and_then(|()| writer.flush())
        .map_err(|source| FrameError::Io { source })
}

/// Reads one frame of at most `max` bytes into `T`.
pub fn read_frame<R: Read, T: for<'de> Deserialize<'de>>(
    reader: &mut R,
    max: usize,
) -> Result<T, FrameError> {
    let mut prefix = [0u8; 4];
    let mut got = 0;
    while got < prefix.len() {
        match reader.read(&mut prefix[got..]) {
            Ok(0) if got == 0 => return Err(FrameError::Closed),
            Ok(0) => {
                return Err(FrameError::Io {
                    source: io::ErrorKind::UnexpectedEof.into(),
                });
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => return Err(FrameError::Io { source }),
        }
    }
    let len = u32::from_le_bytes(prefix) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let mut body = vec![0u8; len];
    reader
        .read_exact(&mut body)
        .map_err(|source| FrameError::Io { source })?;
    serde_json::from_slice(&body).map_err(|source| FrameError::Malformed { source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let hello = ChildFrame::Hello(Hello::new(
            "w",
            "1",
            3,
            42,
            vec![CommandInfo::new("echo", "echoes")],
        ));
        let mut buf = Vec::new();
        write_frame(&mut buf, &hello).unwrap();
        write_frame(
            &mut buf,
            &ChildFrame::Fatal {
                message: "x".into(),
            },
        )
        .unwrap();
        let mut r = &buf[..];
        assert_eq!(
            read_frame::<_, ChildFrame>(&mut r, MAX_FRAME_BYTES).unwrap(),
            hello
        );
        assert!(matches!(
            read_frame::<_, ChildFrame>(&mut r, MAX_FRAME_BYTES).unwrap(),
            ChildFrame::Fatal { .. }
        ));
        assert!(matches!(
            read_frame::<_, ChildFrame>(&mut r, MAX_FRAME_BYTES),
            Err(FrameError::Closed)
        ));
    }

    #[test]
    fn requests_carry_raw_arguments() {
        let request = ParentFrame::Request(RequestFrame::new(
            9,
            "synthetic",
            serde_json::value::to_raw_value(&serde_json::json!({"rows": 3})).unwrap(),
        ));
        let mut buf = Vec::new();
        write_frame(&mut buf, &request).unwrap();
        write_frame(&mut buf, &ParentFrame::Shutdown).unwrap();
        let mut r = &buf[..];
        match read_frame::<_, ParentFrame>(&mut r, MAX_FRAME_BYTES).unwrap() {
            ParentFrame::Request(frame) => {
                assert_eq!((frame.id, frame.command.as_str()), (9, "synthetic"));
                assert_eq!(frame.args.get(), r#"{"rows":3}"#);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            read_frame::<_, ParentFrame>(&mut r, MAX_FRAME_BYTES).unwrap(),
            ParentFrame::Shutdown
        ));
    }

    #[test]
    fn oversized_prefix_is_rejected_before_allocation() {
        let bytes = u32::MAX.to_le_bytes();
        let err = read_frame::<_, ChildFrame>(&mut &bytes[..], MAX_FRAME_BYTES).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len, .. } if len == u32::MAX as usize));
    }

    #[test]
    fn truncated_and_garbage_frames_are_typed_errors() {
        let mut buf = 10u32.to_le_bytes().to_vec();
        buf.extend_from_slice(b"{\"ty");
        assert!(matches!(
            read_frame::<_, ChildFrame>(&mut &buf[..], MAX_FRAME_BYTES),
            Err(FrameError::Io { .. })
        ));
        let mut buf = 5u32.to_le_bytes().to_vec();
        buf.extend_from_slice(b"hello");
        assert!(matches!(
            read_frame::<_, ChildFrame>(&mut &buf[..], MAX_FRAME_BYTES),
            Err(FrameError::Malformed { .. })
        ));
        assert!(matches!(
            read_frame::<_, ChildFrame>(&mut &[1u8, 0][..], MAX_FRAME_BYTES),
            Err(FrameError::Io { .. })
        ));
    }

    #[test]
    fn frame_errors_are_classified() {
        let kind = |bytes: &[u8]| {
            read_frame::<_, ChildFrame>(&mut &bytes[..], MAX_FRAME_BYTES)
                .unwrap_err()
                .kind()
        };
        assert_eq!(kind(&[]), ErrorKind::Closed);
        assert_eq!(kind(&[1, 0]), ErrorKind::Closed);
        assert_eq!(kind(&u32::MAX.to_le_bytes()), ErrorKind::Corruption);
        let mut garbage = 5u32.to_le_bytes().to_vec();
        garbage.extend_from_slice(b"hello");
        assert_eq!(kind(&garbage), ErrorKind::Corruption);
        let timeout = FrameError::Io {
            source: io::ErrorKind::WouldBlock.into(),
        };
        assert_eq!(timeout.kind(), ErrorKind::Timeout);
        let refused = FrameError::Io {
            source: io::ErrorKind::PermissionDenied.into(),
        };
        assert_eq!(refused.kind(), ErrorKind::System);
    }

    /// A peer that closes its end with our bytes unread resets the
    /// connection: the read fails with `ECONNRESET`, not end-of-file, and
    /// that is still a closed channel.
    #[test]
    fn a_peer_closing_with_our_frame_unread_is_closed() {
        let (mut ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        write_frame(&mut ours, &ParentFrame::Shutdown).unwrap();
        drop(theirs);
        let err = read_frame::<_, ChildFrame>(&mut ours, MAX_FRAME_BYTES).unwrap_err();
        assert!(
            matches!(&err, FrameError::Io { source } if source.kind() == io::ErrorKind::ConnectionReset),
            "{err:?}"
        );
        assert!(err.is_closed());
        assert!(
            !FrameError::Malformed {
                source: serde_json::from_slice::<u8>(b"x").unwrap_err()
            }
            .is_closed()
        );
    }
}
