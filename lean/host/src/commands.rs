//! The commands of a Lean worker: their names, request and summary types,
//! their typed contracts, and the decoder of a `decls` row.
//!
//! Both commands write rows whose bytes may come from Lean itself (through
//! the C ABI of `ringworker-lean-abi`), so a row is specified by its bytes:
//!
//! - `decls`: stream 0, one row per constant of the shard, the UTF-8 JSON of
//!   [`ringworker_lean::DeclRow`] with its serde field names (the row shape
//!   of the lean4export workload, so both feed the same Parquet writer);
//!   `line` and `record` are 0 (there is no export file). Decode one with
//!   [`decode_decl_row`].
//! - `attempt-proofs`: stream 0, one row per candidate in the request's
//!   order, the UTF-8 JSON of [`ProofResult`], the row of the
//!   `synthetic-proofs` workload; the summary is its [`ProofSummary`].

use ringworker_child::builtins::proofs::{ProofResult, ProofSummary};
use ringworker_child::{Command, CommandError};
use ringworker_lean::DeclRow;
use serde::{Deserialize, Serialize};

/// Name of the command that streams the imported environment's constants.
pub const DECLS: &str = "decls";
/// Name of the command that checks a batch of candidate proofs.
pub const ATTEMPT_PROOFS: &str = "attempt-proofs";

/// The arguments of `decls`: which shard of the environment's constants.
///
/// Constant `k` (0-based, in the environment's iteration order) is in the
/// shard iff `k % shard_count == shard_index`; `{"shard_index":0,
/// "shard_count":1}` is every constant. The iteration order is the
/// backend's and must be the same in every worker that imports the same
/// environment, so that `N` shards together are every constant once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclsRequest {
    /// This shard, `< shard_count`.
    pub shard_index: u64,
    /// Number of shards, at least 1.
    pub shard_count: u64,
}

impl DeclsRequest {
    /// Every constant (shard 0 of 1).
    pub const WHOLE: DeclsRequest = DeclsRequest {
        shard_index: 0,
        shard_count: 1,
    };

    /// Whether constant `k` belongs to this shard (`false` for an invalid
    /// request).
    pub fn contains(&self, k: u64) -> bool {
        self.shard_count > 0 && k % self.shard_count == self.shard_index
    }

    /// Checks `shard_index < shard_count` (and so `shard_count >= 1`); the
    /// worker answers a request that fails it with the runtime's
    /// `bad_request` before the backend sees it.
    pub fn validate(&self) -> Result<(), CommandError> {
        if self.shard_index < self.shard_count {
            Ok(())
        } else {
            Err(CommandError::bad_request(format!(
                "shard_index {} is not below shard_count {}",
                self.shard_index, self.shard_count
            )))
        }
    }
}

/// The summary of `decls`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclsSummary {
    /// Rows written: the shard's constants.
    pub rows: u64,
    /// Constants of the environment walked to find them (all shards).
    pub constants: u64,
}

/// The arguments of `attempt-proofs`: candidates, checked in order, one
/// result row each, and the budget of each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttemptProofsRequest {
    /// The candidates, in the order their rows come.
    pub candidates: Vec<ProofCandidate>,
    /// Lean's `maxHeartbeats` for each candidate (in thousands of
    /// heartbeats, as the option; 0: no limit).
    pub max_heartbeats: u64,
    /// Wall-clock budget of each candidate in milliseconds (0: none); a
    /// candidate over it ends with status `timeout`, a row like any other.
    pub timeout_ms: u64,
}

/// One candidate proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofCandidate {
    /// The caller's id, echoed in the result row.
    pub id: u64,
    /// The proposition to prove, as Lean source (`∀ n : Nat, n + 0 = n`).
    pub goal: String,
    /// The proof: a tactic block (`by simp`) or a term.
    pub proof: String,
}

/// The `decls` contract: [`DeclsRequest`] in, [`DeclRow`] rows,
/// [`DeclsSummary`] back (a supervisor runs it with
/// `Worker::run_typed::<Decls>`).
#[derive(Debug, Clone, Copy)]
pub struct Decls;

impl Command for Decls {
    const NAME: &'static str = DECLS;
    const DESCRIPTION: &'static str =
        "the imported environment's constants, one DeclRow each (a shard of them)";
    type Request = DeclsRequest;
    type Row = DeclRow;
    type Summary = DeclsSummary;
}

/// The `attempt-proofs` contract: [`AttemptProofsRequest`] in,
/// [`ProofResult`] rows, [`ProofSummary`] back.
#[derive(Debug, Clone, Copy)]
pub struct AttemptProofs;

impl Command for AttemptProofs {
    const NAME: &'static str = ATTEMPT_PROOFS;
    const DESCRIPTION: &'static str =
        "checks a batch of candidate proofs in the imported environment: one result row each";
    type Request = AttemptProofsRequest;
    type Row = ProofResult;
    type Summary = ProofSummary;
}

/// Why bytes are not a `decls` row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RowError {
    /// The bytes are not UTF-8.
    #[error("a decls row is not UTF-8 (valid up to byte {valid_up_to})")]
    NotUtf8 {
        /// Length of the valid prefix.
        valid_up_to: usize,
    },
    /// The text is not JSON, or JSON cut short.
    #[error("a decls row is not JSON: {detail} (line {line}, column {column})")]
    Syntax {
        /// The parser's message.
        detail: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// Valid JSON but not a `DeclRow`: a missing field, a wrong type, an
    /// unknown kind.
    #[error("a decls row is not a DeclRow: {detail} (line {line}, column {column})")]
    Shape {
        /// The decoder's message.
        detail: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// A `DeclRow` whose count field disagrees with the list it counts.
    #[error("a decls row is inconsistent: {field} is {found}, its list has {expected}")]
    Inconsistent {
        /// The count field (`type_const_count`, `value_const_count`).
        field: &'static str,
        /// Its value.
        found: u64,
        /// The list's length.
        expected: u64,
    },
}

/// Coarse classes of [`RowError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RowErrorKind {
    /// Not UTF-8.
    Encoding,
    /// Not JSON.
    Syntax,
    /// Not the row's shape.
    Shape,
    /// The row contradicts itself.
    Inconsistent,
}

impl RowError {
    /// Classifies this error.
    pub fn kind(&self) -> RowErrorKind {
        match self {
            RowError::NotUtf8 { .. } => RowErrorKind::Encoding,
            RowError::Syntax { .. } => RowErrorKind::Syntax,
            RowError::Shape { .. } => RowErrorKind::Shape,
            RowError::Inconsistent { .. } => RowErrorKind::Inconsistent,
        }
    }
}

/// Decodes one `decls` row: UTF-8, then the JSON of a [`DeclRow`] (serde
/// field names; unknown fields are ignored, trailing text is not), then
/// its counts against its lists. Never panics, whatever the bytes.
pub fn decode_decl_row(bytes: &[u8]) -> Result<DeclRow, RowError> {
    let text = std::str::from_utf8(bytes).map_err(|e| RowError::NotUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    let row: DeclRow = serde_json::from_str(text).map_err(|e| {
        let (line, column) = (e.line(), e.column());
        let detail = e.to_string();
        match e.classify() {
            serde_json::error::Category::Data => RowError::Shape {
                detail,
                line,
                column,
            },
            _ => RowError::Syntax {
                detail,
                line,
                column,
            },
        }
    })?;
    for (field, found, list) in [
        (
            "type_const_count",
            row.type_const_count,
            row.type_consts.len(),
        ),
        (
            "value_const_count",
            row.value_const_count,
            row.value_consts.len(),
        ),
    ] {
        if u64::from(found) != list as u64 {
            return Err(RowError::Inconsistent {
                field,
                found: found.into(),
                expected: list as u64,
            });
        }
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_constants() {
        let shards: Vec<DeclsRequest> = (0..3)
            .map(|shard_index| DeclsRequest {
                shard_index,
                shard_count: 3,
            })
            .collect();
        for k in 0..100 {
            assert_eq!(shards.iter().filter(|s| s.contains(k)).count(), 1, "{k}");
            assert!(DeclsRequest::WHOLE.contains(k));
        }
        assert!(shards.iter().all(|s| s.validate().is_ok()));
        for bad in [(0, 0), (3, 3), (7, 2)] {
            let request = DeclsRequest {
                shard_index: bad.0,
                shard_count: bad.1,
            };
            let err = request.validate().unwrap_err();
            assert_eq!(
                *err.code(),
                ringworker_child::FailureCode::Runtime(ringworker_child::RuntimeCode::BadRequest),
                "{bad:?}"
            );
            assert!(!request.contains(bad.0), "{bad:?}");
        }
    }

    #[test]
    fn requests_refuse_unknown_fields() {
        let ok: DeclsRequest = serde_json::from_str(r#"{"shard_index":1,"shard_count":4}"#)
            .expect("the documented request");
        assert_eq!(
            ok,
            DeclsRequest {
                shard_index: 1,
                shard_count: 4
            }
        );
        assert!(
            serde_json::from_str::<DeclsRequest>(r#"{"shard_index":0,"shard_count":1,"x":1}"#)
                .is_err()
        );
        let proofs = r#"{"candidates":[{"id":7,"goal":"True","proof":"by trivial"}],"max_heartbeats":200,"timeout_ms":1000}"#;
        let request: AttemptProofsRequest = serde_json::from_str(proofs).unwrap();
        assert_eq!(request.candidates[0].proof, "by trivial");
        assert_eq!(serde_json::to_string(&request).unwrap(), proofs);
        let extra = proofs.replacen("{\"candidates\"", "{\"seed\":1,\"candidates\"", 1);
        assert!(serde_json::from_str::<AttemptProofsRequest>(&extra).is_err());
    }
}
