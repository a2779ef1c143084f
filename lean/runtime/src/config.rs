//! The worker's arguments.
//!
//! ```text
//! ringworker-lean-runtime-worker --library PATH [--package NAME]
//!     [--import MOD[,MOD...]]... [--search-path DIR]...
//! ```
//!
//! - `--library PATH` (required): the Lake-built shared library
//!   (`lean/lake/.lake/build/lib/libRingWorker.so`).
//! - `--package NAME` (default `RingWorker`): the library's root module as
//!   its initializer names it: the runtime calls `initialize_<NAME>`. Lean
//!   v4.23 names a module `M`'s initializer `initialize_M`; toolchains with
//!   package-prefixed symbols (lean4 PR #11082, after v4.23) name it
//!   `initialize_<pkg>_M`, so pass `<pkg>_RingWorker` there.
//! - `--import MOD[,MOD...]` (default `Init`): the modules to import; the
//!   flag may repeat, the lists are concatenated in order.
//! - `--search-path DIR` (repeatable): directories searched for `.olean`
//!   files besides the toolchain's own and `LEAN_PATH`'s.
//!
//! Both `--flag value` and `--flag=value` are accepted. Parsing never
//! panics; every problem is a [`ConfigError`].

use std::ffi::OsString;
use std::path::PathBuf;

/// The default `--package`: the `lean_lib` of `lean/lake/`.
pub const DEFAULT_PACKAGE: &str = "RingWorker";
/// The default `--import`.
pub const DEFAULT_IMPORT: &str = "Init";

/// The worker's parsed arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerArgs {
    /// The Lake-built shared library to load.
    pub library: PathBuf,
    /// The initializer's suffix: the runtime calls `initialize_<package>`.
    pub package: String,
    /// Modules to import, in order (never empty).
    pub imports: Vec<String>,
    /// Extra `.olean` search directories, in order.
    pub search_path: Vec<PathBuf>,
}

/// Why the arguments were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A flag that takes a value came last.
    #[error("{flag} needs a value")]
    MissingValue {
        /// The flag.
        flag: &'static str,
    },
    /// An argument that is not one of the flags.
    #[error(
        "unknown argument {argument:?} (expected --library, --package, --import, --search-path)"
    )]
    UnknownArgument {
        /// The argument, lossily converted to UTF-8.
        argument: String,
    },
    /// `--library` or `--package` given twice.
    #[error("{flag} given more than once")]
    Duplicate {
        /// The flag.
        flag: &'static str,
    },
    /// No `--library`.
    #[error("--library PATH is required (the Lake-built shared library)")]
    MissingLibrary,
    /// A flag's value is empty.
    #[error("{flag} has an empty value")]
    Empty {
        /// The flag.
        flag: &'static str,
    },
    /// `--package` is not a C identifier suffix (ASCII letters, digits, `_`).
    #[error("--package {name:?} cannot name a C initializer (use ASCII letters, digits and _)")]
    BadPackage {
        /// The value given.
        name: String,
    },
    /// A module name with an empty component or whitespace.
    #[error("--import: {name:?} is not a module name")]
    BadModule {
        /// The offending name.
        name: String,
    },
    /// A value that must be UTF-8 (it is handed to Lean as a `String`).
    #[error("{flag}: value is not UTF-8")]
    NotUtf8 {
        /// The flag.
        flag: &'static str,
    },
}

/// The classes of [`ConfigError`] ([`ConfigError::kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The command line's shape: unknown, missing or repeated flags.
    Syntax,
    /// A flag's value is unusable.
    Value,
}

impl ConfigError {
    /// The error's class.
    pub fn kind(&self) -> ConfigErrorKind {
        match self {
            ConfigError::MissingValue { .. }
            | ConfigError::UnknownArgument { .. }
            | ConfigError::Duplicate { .. }
            | ConfigError::MissingLibrary => ConfigErrorKind::Syntax,
            ConfigError::Empty { .. }
            | ConfigError::BadPackage { .. }
            | ConfigError::BadModule { .. }
            | ConfigError::NotUtf8 { .. } => ConfigErrorKind::Value,
        }
    }
}

const LIBRARY: &str = "--library";
const PACKAGE: &str = "--package";
const IMPORT: &str = "--import";
const SEARCH_PATH: &str = "--search-path";
const FLAGS: [&str; 4] = [LIBRARY, PACKAGE, IMPORT, SEARCH_PATH];

impl WorkerArgs {
    /// Arguments for `library` with the defaults: package
    /// [`DEFAULT_PACKAGE`], imports [`DEFAULT_IMPORT`], no search path.
    pub fn new(library: impl Into<PathBuf>) -> Self {
        WorkerArgs {
            library: library.into(),
            package: DEFAULT_PACKAGE.to_owned(),
            imports: vec![DEFAULT_IMPORT.to_owned()],
            search_path: Vec::new(),
        }
    }

    /// Sets the initializer's suffix.
    #[must_use]
    pub fn with_package(mut self, package: impl Into<String>) -> Self {
        self.package = package.into();
        self
    }

    /// Sets the modules to import.
    #[must_use]
    pub fn with_imports<S: Into<String>>(mut self, imports: impl IntoIterator<Item = S>) -> Self {
        self.imports = imports.into_iter().map(Into::into).collect();
        self
    }

    /// Adds an `.olean` search directory.
    #[must_use]
    pub fn with_search_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.search_path.push(dir.into());
        self
    }

    /// Parses the arguments after the program name.
    pub fn parse<I, A>(args: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = A>,
        A: Into<OsString>,
    {
        let mut library: Option<PathBuf> = None;
        let mut package: Option<String> = None;
        let mut imports: Vec<String> = Vec::new();
        let mut search_path = Vec::new();
        let mut args = args.into_iter().map(Into::into);
        while let Some(arg) = args.next() {
            let (flag, inline) = split_flag(&arg)?;
            let value = match inline {
                Some(value) => value,
                None => args.next().ok_or(ConfigError::MissingValue { flag })?,
            };
            if value.is_empty() {
                return Err(ConfigError::Empty { flag });
            }
            match flag {
                LIBRARY => {
                    if library.replace(PathBuf::from(value)).is_some() {
                        return Err(ConfigError::Duplicate { flag });
                    }
                }
                PACKAGE => {
                    let name = utf8(flag, value)?;
                    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                        return Err(ConfigError::BadPackage { name });
                    }
                    if package.replace(name).is_some() {
                        return Err(ConfigError::Duplicate { flag });
                    }
                }
                IMPORT => {
                    for module in utf8(flag, value)?.split(',') {
                        check_module(module)?;
                        imports.push(module.to_owned());
                    }
                }
                _ => {
                    // SEARCH_PATH: handed to Lean as a String.
                    utf8(flag, value.clone())?;
                    search_path.push(PathBuf::from(value));
                }
            }
        }
        let library = library.ok_or(ConfigError::MissingLibrary)?;
        if imports.is_empty() {
            imports.push(DEFAULT_IMPORT.to_owned());
        }
        Ok(WorkerArgs {
            library,
            package: package.unwrap_or_else(|| DEFAULT_PACKAGE.to_owned()),
            imports,
            search_path,
        })
    }

    /// The arguments that [`WorkerArgs::parse`] turns back into `self`
    /// (for spawning a worker).
    pub fn to_args(&self) -> Vec<OsString> {
        let mut out = vec![
            OsString::from(LIBRARY),
            self.library.clone().into_os_string(),
            OsString::from(PACKAGE),
            OsString::from(&self.package),
            OsString::from(IMPORT),
            OsString::from(self.imports.join(",")),
        ];
        for dir in &self.search_path {
            out.push(OsString::from(SEARCH_PATH));
            out.push(dir.clone().into_os_string());
        }
        out
    }

    /// The module initializer's symbol, `initialize_<package>`.
    pub fn initializer_symbol(&self) -> String {
        format!("initialize_{}", self.package)
    }

    /// The imports as the Lean side takes them: one string, comma-separated.
    pub fn imports_joined(&self) -> String {
        self.imports.join(",")
    }

    /// The search path as the Lean side takes it: one string, the
    /// directories separated by `:` (`System.SearchPath.parse` on Unix).
    /// Every directory was checked to be UTF-8 by [`WorkerArgs::parse`];
    /// one added with [`WorkerArgs::with_search_dir`] that is not is
    /// converted lossily.
    pub fn search_path_joined(&self) -> String {
        self.search_path
            .iter()
            .map(|dir| dir.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// Splits `--flag` or `--flag=value` into the known flag and the inline value.
fn split_flag(arg: &OsString) -> Result<(&'static str, Option<OsString>), ConfigError> {
    let unknown = || ConfigError::UnknownArgument {
        argument: arg.to_string_lossy().into_owned(),
    };
    let bytes = arg.as_encoded_bytes();
    let (name, inline) = match bytes.iter().position(|&b| b == b'=') {
        Some(eq) => (&bytes[..eq], Some(&bytes[eq + 1..])),
        None => (bytes, None),
    };
    let flag = FLAGS
        .into_iter()
        .find(|flag| flag.as_bytes() == name)
        .ok_or_else(unknown)?;
    let inline = match inline {
        // Safe code cannot turn a byte slice back into an OsString, so the
        // `--flag=value` form takes UTF-8 values only (`--flag value` takes
        // any bytes).
        Some(value) => Some(OsString::from(
            std::str::from_utf8(value)
                .map_err(|_| ConfigError::NotUtf8 { flag })?
                .to_owned(),
        )),
        None => None,
    };
    Ok((flag, inline))
}

fn utf8(flag: &'static str, value: OsString) -> Result<String, ConfigError> {
    value
        .into_string()
        .map_err(|_| ConfigError::NotUtf8 { flag })
}

fn check_module(name: &str) -> Result<(), ConfigError> {
    let bad = name.is_empty()
        || name.split('.').any(str::is_empty)
        || name.chars().any(|c| c.is_whitespace() || c == ',');
    if bad {
        return Err(ConfigError::BadModule {
            name: name.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<WorkerArgs, ConfigError> {
        WorkerArgs::parse(args.iter().copied())
    }

    #[test]
    fn defaults_apply_when_only_the_library_is_given() {
        let args = parse(&["--library", "/x/libRingWorker.so"]).unwrap();
        assert_eq!(args.library, PathBuf::from("/x/libRingWorker.so"));
        assert_eq!(args.package, "RingWorker");
        assert_eq!(args.imports, ["Init"]);
        assert!(args.search_path.is_empty());
        assert_eq!(args.initializer_symbol(), "initialize_RingWorker");
    }

    #[test]
    fn every_flag_in_both_forms() {
        let args = parse(&[
            "--library=/l.so",
            "--package",
            "ringworker_RingWorker",
            "--import",
            "Init,Lean.Elab",
            "--import=Std",
            "--search-path",
            "/a",
            "--search-path=/b",
        ])
        .unwrap();
        assert_eq!(args.library, PathBuf::from("/l.so"));
        assert_eq!(
            args.initializer_symbol(),
            "initialize_ringworker_RingWorker"
        );
        assert_eq!(args.imports, ["Init", "Lean.Elab", "Std"]);
        assert_eq!(args.imports_joined(), "Init,Lean.Elab,Std");
        assert_eq!(args.search_path_joined(), "/a:/b");
    }

    #[test]
    fn to_args_round_trips() {
        let args = WorkerArgs::new("/l.so")
            .with_package("P_1")
            .with_imports(["Init", "Lean"])
            .with_search_dir("/s");
        assert_eq!(WorkerArgs::parse(args.to_args()).unwrap(), args);
    }

    #[test]
    fn errors_are_typed() {
        let cases: [(&[&str], ConfigError); 9] = [
            (&[], ConfigError::MissingLibrary),
            (
                &["--library"],
                ConfigError::MissingValue { flag: "--library" },
            ),
            (
                &["--libary", "x"],
                ConfigError::UnknownArgument {
                    argument: "--libary".into(),
                },
            ),
            (
                &["--library", "a", "--library", "b"],
                ConfigError::Duplicate { flag: "--library" },
            ),
            (&["--library="], ConfigError::Empty { flag: "--library" }),
            (
                &["--library", "a", "--package", "Ring-Worker"],
                ConfigError::BadPackage {
                    name: "Ring-Worker".into(),
                },
            ),
            (
                &["--library", "a", "--import", "Init,,Lean"],
                ConfigError::BadModule {
                    name: String::new(),
                },
            ),
            (
                &["--library", "a", "--import", "Lean..Elab"],
                ConfigError::BadModule {
                    name: "Lean..Elab".into(),
                },
            ),
            (
                &["--library", "a", "--package", "A", "--package", "B"],
                ConfigError::Duplicate { flag: "--package" },
            ),
        ];
        for (args, expected) in cases {
            assert_eq!(parse(args), Err(expected.clone()), "{args:?}");
        }
        assert_eq!(ConfigError::MissingLibrary.kind(), ConfigErrorKind::Syntax);
        assert_eq!(
            ConfigError::BadModule { name: "x".into() }.kind(),
            ConfigErrorKind::Value
        );
    }

    #[test]
    fn non_utf8_values_are_refused_where_lean_needs_a_string() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(vec![b'/', 0xff]);
        let err = WorkerArgs::parse([
            OsString::from("--library"),
            OsString::from("/l.so"),
            OsString::from("--search-path"),
            bad.clone(),
        ])
        .unwrap_err();
        assert_eq!(
            err,
            ConfigError::NotUtf8 {
                flag: "--search-path"
            }
        );
        // The library path is only opened, never given to Lean: any bytes go.
        let args = WorkerArgs::parse([OsString::from("--library"), bad.clone()]).unwrap();
        assert_eq!(args.library.as_os_str(), bad.as_os_str());
    }
}
