//! What happens before the Lean runtime starts, while the worker process is
//! still single-threaded.
//!
//! - **`LEAN_ABORT_ON_PANIC=1`.** A Lean `panic!` by default prints a
//!   message and returns a default value, and the code goes on with it.
//!   With this variable Lean's panic handler calls `abort()`: the worker
//!   dies of SIGABRT, the supervisor reports the crash of this one worker
//!   and starts a fresh one. The runtime reads it at panic time
//!   (`abort_on_panic()` in `src/runtime/object.cpp`).
//! - **`LEAN_BACKTRACE=0`.** Before aborting, the panic handler prints a
//!   backtrace unless this variable is `0`. Since Lean 4.30 printing it
//!   demangles symbols with Lean code (`lean_demangle_bt_line_cstr`), which
//!   may not have been initialized in a minimal worker and has been seen to
//!   hang there instead of reaching the abort. Checked against Lean's
//!   source: `lean_panic` in `src/runtime/object.cpp` reads
//!   `getenv("LEAN_BACKTRACE")` and skips `print_backtrace` when it is
//!   `"0"`, before `abort_on_panic()` (leanprover/lean4 PR #2110, 2023, made
//!   the check independent of glibc; v4.23, which this crate targets,
//!   already honours it, and the later versions keep the same check).
//! - **No core dumps** ([`ringworker_lean_host::suppress_core_dumps`]): a
//!   worker that aborts on a Lean panic would otherwise write a core of a
//!   multi-gigabyte heap (an imported Mathlib) for every panic.
//!
//! `std::env::set_var` is `unsafe` in Rust 2024 (another thread may read
//! the environment at the same time), so the worker binary sets
//! [`LEAN_ENVIRONMENT`] in `main` before any thread exists; this module
//! only names the variables and checks them ([`check_environment`]), which
//! [`LeanRuntime::start`](crate) does before initializing Lean.

use std::ffi::OsString;

/// The variables the worker sets before Lean starts: `(name, value)`.
pub const LEAN_ENVIRONMENT: [(&str, &str); 2] =
    [("LEAN_ABORT_ON_PANIC", "1"), ("LEAN_BACKTRACE", "0")];

/// Why the process is not ready for the Lean runtime.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// A variable of [`LEAN_ENVIRONMENT`] is missing or has another value.
    #[error(
        "{name} is {found:?}, not {expected:?}: set it before any thread starts (the worker binary does this in main)"
    )]
    Environment {
        /// The variable.
        name: &'static str,
        /// The value it needs.
        expected: &'static str,
        /// What it is (`None`: unset).
        found: Option<String>,
    },
    /// Turning core dumps off failed.
    #[error("cannot turn core dumps off: {0}")]
    CoreDumps(#[source] std::io::Error),
}

/// The classes of [`SetupError`] ([`SetupError::kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SetupErrorKind {
    /// The environment is not as the runtime needs it.
    Environment,
    /// A system call failed.
    System,
}

impl SetupError {
    /// The error's class.
    pub fn kind(&self) -> SetupErrorKind {
        match self {
            SetupError::Environment { .. } => SetupErrorKind::Environment,
            SetupError::CoreDumps(_) => SetupErrorKind::System,
        }
    }
}

/// The variables of [`LEAN_ENVIRONMENT`] that `get` does not report with
/// their value: what `main` still has to set.
pub fn missing_with(get: impl Fn(&str) -> Option<OsString>) -> Vec<(&'static str, &'static str)> {
    LEAN_ENVIRONMENT
        .into_iter()
        .filter(|(name, value)| get(name).as_deref() != Some(std::ffi::OsStr::new(value)))
        .collect()
}

/// The variables of [`LEAN_ENVIRONMENT`] this process does not have yet.
pub fn missing() -> Vec<(&'static str, &'static str)> {
    missing_with(|name| std::env::var_os(name))
}

/// `Ok` when `get` reports every variable of [`LEAN_ENVIRONMENT`] with its
/// value, else the first that is not.
pub fn check_environment_with(get: impl Fn(&str) -> Option<OsString>) -> Result<(), SetupError> {
    match missing_with(&get).first() {
        None => Ok(()),
        Some(&(name, expected)) => Err(SetupError::Environment {
            name,
            expected,
            found: get(name).map(|v| v.to_string_lossy().into_owned()),
        }),
    }
}

/// [`check_environment_with`] on this process's environment.
pub fn check_environment() -> Result<(), SetupError> {
    check_environment_with(|name| std::env::var_os(name))
}

/// Turns core dumps off for this process (and what it forks).
pub fn suppress_core_dumps() -> Result<(), SetupError> {
    ringworker_lean_host::suppress_core_dumps().map_err(SetupError::CoreDumps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn the_variables_are_the_documented_ones() {
        assert_eq!(
            LEAN_ENVIRONMENT,
            [("LEAN_ABORT_ON_PANIC", "1"), ("LEAN_BACKTRACE", "0")]
        );
    }

    #[test]
    fn missing_lists_unset_and_wrong_values() {
        assert_eq!(missing_with(env(&[])), LEAN_ENVIRONMENT.to_vec());
        assert_eq!(
            missing_with(env(&[
                ("LEAN_ABORT_ON_PANIC", "1"),
                ("LEAN_BACKTRACE", "1")
            ])),
            [("LEAN_BACKTRACE", "0")]
        );
        assert!(
            missing_with(env(&[
                ("LEAN_ABORT_ON_PANIC", "1"),
                ("LEAN_BACKTRACE", "0")
            ]))
            .is_empty()
        );
    }

    #[test]
    fn check_reports_the_first_problem_typed() {
        let err = check_environment_with(env(&[("LEAN_ABORT_ON_PANIC", "0")])).unwrap_err();
        match &err {
            SetupError::Environment {
                name,
                expected,
                found,
            } => {
                assert_eq!(*name, "LEAN_ABORT_ON_PANIC");
                assert_eq!(*expected, "1");
                assert_eq!(found.as_deref(), Some("0"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(err.kind(), SetupErrorKind::Environment);
        assert!(
            check_environment_with(env(&[
                ("LEAN_ABORT_ON_PANIC", "1"),
                ("LEAN_BACKTRACE", "0")
            ]))
            .is_ok()
        );
    }
}
