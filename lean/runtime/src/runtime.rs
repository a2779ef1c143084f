//! [`LeanRuntime`]: the thin layer between the worker and the Lean runtime.
//!
//! Every call into Lean goes through this file, and so does every `unsafe`
//! block of the crate (but the binary's documented `set_var`). Each block
//! says in a `// SAFETY:` line which `lean.h` fact it relies on. lean-sys
//! 0.0.9 mirrors `lean.h` function by function; the names below are its.
//!
//! # What the Lake library exports (`lean/lake/RingWorker/Exports.lean`)
//!
//! Lean compiles an `@[export sym] def f (a : A) ... : IO R` to a C function
//! `lean_object* sym(A' a, ..., lean_object* world)` returning an IO result
//! (constructor 0 `ok value`, 1 `error err`). Exported functions use the
//! standard calling convention: every object argument is **owned** (the
//! callee consumes one reference), `UInt64` travels unboxed, and the result
//! is owned by the caller.
//!
//! | symbol | Lean signature | C arguments, ownership |
//! | --- | --- | --- |
//! | `initialize_<Package>` | module initializer | `(uint8_t builtin, lean_object* world)`: builtin 1 runs `builtin_initialize` too |
//! | `ringworker_lean_import` | `(imports searchPath : String) : IO Environment` | both strings owned (we pass fresh ones, rc 1, and never touch them again) |
//! | `ringworker_lean_decls` | `(env : Environment) (shardIndex shardCount : UInt64) : IO String` | env owned: we `lean_inc` it before each call |
//! | `ringworker_lean_attempt_proofs` | `(env : Environment) (request : String) : IO String` | env owned (`lean_inc` first), request owned (fresh) |
//!
//! The `String` results are summary JSON; the rows go through the C ABI
//! (`ringworker-lean-abi`) while the call runs inside
//! [`ringworker_lean_abi::with_row_context`].
//!
//! # Objects are never allocated on the Rust side
//!
//! lean-sys's `static inline` allocation helpers (`lean_alloc_ctor`,
//! `lean_box_uint64`, `lean_io_result_mk_ok`, ...) allocate with the
//! allocator lean-sys was configured for (without features: `malloc`), not
//! necessarily the one libleanshared was built with (its small-object
//! allocator), and an object allocated by one and freed by the other
//! corrupts the heap. So this file creates objects only through functions
//! exported by libleanshared (`lean_mk_string_from_bytes`) or by the Lake
//! library, and otherwise only reads objects (`lean_ptr_tag`,
//! `lean_ctor_get`, `lean_string_cstr`, `lean_string_size`) and changes
//! reference counts (`lean_inc`, `lean_dec`, whose freeing path is
//! libleanshared's `lean_dec_ref_cold`).
#![allow(unsafe_code)]

use std::cell::Cell;
use std::ffi::c_void;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once, OnceLock};

use lean_sys::{
    lean_dec, lean_inc, lean_init_task_manager, lean_initialize, lean_initialize_thread,
    lean_io_error_to_string, lean_io_mark_end_initialization, lean_io_mk_world,
    lean_io_result_get_error, lean_io_result_is_ok, lean_io_result_take_value, lean_is_scalar,
    lean_is_string, lean_mark_persistent, lean_mk_string_from_bytes, lean_object,
    lean_set_panic_messages, lean_string_cstr, lean_string_size,
};
use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
use ringworker_child::RowWriter;

use crate::config::WorkerArgs;
use crate::process_setup::{self, SetupError};

/// The import entry point's symbol.
pub(crate) const IMPORT_SYMBOL: &str = "ringworker_lean_import";
/// The `decls` entry point's symbol.
pub(crate) const DECLS_SYMBOL: &str = "ringworker_lean_decls";
/// The `attempt-proofs` entry point's symbol.
pub(crate) const ATTEMPT_PROOFS_SYMBOL: &str = "ringworker_lean_attempt_proofs";

/// `lean_object* initialize_<Package>(uint8_t builtin, lean_object* world)`.
type InitializeFn = unsafe extern "C" fn(u8, *mut lean_object) -> *mut lean_object;
/// `ringworker_lean_import(String imports, String searchPath, world)`.
type ImportFn =
    unsafe extern "C" fn(*mut lean_object, *mut lean_object, *mut lean_object) -> *mut lean_object;
/// `ringworker_lean_decls(Environment env, uint64_t index, uint64_t count, world)`.
type DeclsFn =
    unsafe extern "C" fn(*mut lean_object, u64, u64, *mut lean_object) -> *mut lean_object;
/// `ringworker_lean_attempt_proofs(Environment env, String request, world)`.
type AttemptProofsFn =
    unsafe extern "C" fn(*mut lean_object, *mut lean_object, *mut lean_object) -> *mut lean_object;

/// Why the runtime could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The process is not set up for Lean (see [`crate::process_setup`]).
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// [`LeanRuntime::start`] was called twice.
    #[error("the Lean runtime was already started")]
    AlreadyStarted,
    /// A method that needs the imported environment ran before
    /// [`LeanRuntime::start`] succeeded.
    #[error("the Lean runtime has not been started (no environment imported)")]
    NotStarted,
    /// `dlopen` of the Lake-built library failed.
    #[error("cannot load {path}: {message}")]
    Load {
        /// The library's path.
        path: PathBuf,
        /// `dlerror`'s text.
        message: String,
    },
    /// The library lacks an entry point.
    #[error(
        "{path} has no symbol {symbol} ({message}); was it built from lean/lake/ with the same --package?"
    )]
    Symbol {
        /// The library's path.
        path: PathBuf,
        /// The missing symbol.
        symbol: String,
        /// `dlerror`'s text.
        message: String,
    },
    /// The module initializer returned an IO error.
    #[error("{symbol} failed: {message}")]
    Initializer {
        /// The initializer's symbol.
        symbol: String,
        /// Lean's error text.
        message: String,
    },
    /// Importing the environment failed (a missing `.olean`, a bad module
    /// name, a version mismatch).
    #[error("importing {imports} failed: {message}")]
    Import {
        /// The imports, comma-separated.
        imports: String,
        /// Lean's error text.
        message: String,
    },
    /// A command's entry point returned an IO error.
    #[error("{export} failed: {message}")]
    Lean {
        /// The entry point's symbol.
        export: &'static str,
        /// Lean's error text.
        message: String,
    },
}

/// The classes of [`RuntimeError`] ([`RuntimeError::kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RuntimeErrorKind {
    /// The process or the calls are not in the order the runtime needs.
    Usage,
    /// The library could not be loaded or lacks an entry point.
    Library,
    /// Lean code reported an error (initializer, import, command).
    Lean,
}

impl RuntimeError {
    /// The error's class.
    pub fn kind(&self) -> RuntimeErrorKind {
        match self {
            RuntimeError::Setup(_) | RuntimeError::AlreadyStarted | RuntimeError::NotStarted => {
                RuntimeErrorKind::Usage
            }
            RuntimeError::Load { .. } | RuntimeError::Symbol { .. } => RuntimeErrorKind::Library,
            RuntimeError::Initializer { .. }
            | RuntimeError::Import { .. }
            | RuntimeError::Lean { .. } => RuntimeErrorKind::Lean,
        }
    }
}

/// The entry points, looked up once.
#[derive(Clone, Copy)]
struct Exports {
    decls: DeclsFn,
    attempt_proofs: AttemptProofsFn,
}

/// The imported environment: a Lean object marked persistent.
struct Environment(*mut lean_object);

// `start` marked the environment persistent (`lean_mark_persistent`): its
// reference count and those of everything it reaches are 0, which
// `lean_inc`/`lean_dec` never change and nothing ever frees, and Lean
// objects are immutable once shared.
// SAFETY: a persistent, immutable, never-freed object may be read from any thread.
unsafe impl Send for Environment {}
// SAFETY: as for `Send`: shared access only reads a never-freed object.
unsafe impl Sync for Environment {}

/// What `start` produced.
struct Started {
    exports: Exports,
    env: Environment,
}

/// `lean_initialize()` runs once per process, whatever the number of
/// runtimes.
static LEAN_INITIALIZED: Once = Once::new();

thread_local! {
    /// Whether this thread may run Lean code: the thread that called
    /// `lean_initialize`, or one that called `lean_initialize_thread`.
    static LEAN_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// The Lean runtime in this process, with a Lake-built library loaded and
/// an environment imported (see the [crate docs](crate) for the life
/// cycle).
///
/// One per process: the runtime, the library and the environment stay
/// until the process exits (nothing is unloaded or freed).
pub struct LeanRuntime {
    args: WorkerArgs,
    /// Serializes `start` (the trait takes `&self`).
    starting: Mutex<()>,
    started: OnceLock<Started>,
    task_manager: AtomicBool,
}

impl std::fmt::Debug for LeanRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeanRuntime")
            .field("args", &self.args)
            .field("started", &self.started.get().is_some())
            .field("task_manager", &self.task_manager_started())
            .finish()
    }
}

impl LeanRuntime {
    /// A runtime for `args`; nothing happens until [`LeanRuntime::start`].
    pub fn new(args: WorkerArgs) -> Self {
        LeanRuntime {
            args,
            starting: Mutex::new(()),
            started: OnceLock::new(),
            task_manager: AtomicBool::new(false),
        }
    }

    /// The arguments it was made with.
    pub fn args(&self) -> &WorkerArgs {
        &self.args
    }

    /// Whether [`LeanRuntime::worker_start`] started Lean's task manager in
    /// this process (or the process it was forked from).
    pub fn task_manager_started(&self) -> bool {
        self.task_manager.load(Ordering::Acquire)
    }

    /// Whether the environment has been imported.
    pub fn is_started(&self) -> bool {
        self.started.get().is_some()
    }

    /// Initializes the Lean runtime (once per process), loads the library,
    /// runs its module initializer, looks up the entry points and imports
    /// the environment, which it marks persistent. Does not start Lean's
    /// task manager. Refuses unless [`process_setup::check_environment`]
    /// passes.
    pub fn start(&self) -> Result<(), RuntimeError> {
        process_setup::check_environment()?;
        let _guard = self
            .starting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.started.get().is_some() {
            return Err(RuntimeError::AlreadyStarted);
        }
        LEAN_INITIALIZED.call_once(|| {
            // Initializes the runtime and the Init/Std/Lean modules of
            // libleanshared; must run once, before any other Lean call.
            // SAFETY: the `Once` makes this the first and only call, on one thread.
            unsafe { lean_initialize() };
            LEAN_THREAD.set(true);
        });
        self.enter_lean_thread();
        let path = &self.args.library;
        // RTLD_NOW resolves every symbol now (the ABI functions from this
        // executable, the rest from libleanshared), so a missing one fails
        // here, not mid-request.
        // SAFETY: a Lake-built Lean library has no ELF constructors besides the C runtime's.
        let library = unsafe { Library::open(Some(path), RTLD_NOW | RTLD_LOCAL) }.map_err(|e| {
            RuntimeError::Load {
                path: path.clone(),
                message: e.to_string(),
            }
        })?;
        let initializer_symbol = self.args.initializer_symbol();
        // SAFETY: Lean emits `lean_object* initialize_<M>(uint8_t, lean_object*)`.
        let initialize: InitializeFn = unsafe { lookup(&library, path, &initializer_symbol) }?;
        // `RingWorker.Exports` declares `@[export ringworker_lean_import] def
        // importEnvironment (imports searchPath : String) : IO Environment`.
        // SAFETY: two owned objects and the world in, an IO result out: `ImportFn`.
        let import: ImportFn = unsafe { lookup(&library, path, IMPORT_SYMBOL) }?;
        // `@[export ringworker_lean_decls] def decls (env : Environment)
        // (shardIndex shardCount : UInt64) : IO String`.
        // SAFETY: an owned object, two unboxed `uint64_t`, the world: `DeclsFn`.
        let decls: DeclsFn = unsafe { lookup(&library, path, DECLS_SYMBOL) }?;
        // `@[export ringworker_lean_attempt_proofs] def attemptProofs
        // (env : Environment) (request : String) : IO String`.
        // SAFETY: two owned objects and the world: `AttemptProofsFn`.
        let attempt_proofs: AttemptProofsFn =
            unsafe { lookup(&library, path, ATTEMPT_PROOFS_SYMBOL) }?;
        // Never `dlclose`: Lean objects and closures point into its code for
        // the rest of the process.
        let _: *mut c_void = library.into_raw();

        // As Lean's generated `main` does: no panic messages while modules
        // initialize (some initializers panic harmlessly), then mark the end
        // of initialization (after it, `builtin_initialize` refs are
        // read-only and may be shared between threads).
        // SAFETY: plain setters of a global flag in libleanshared.
        unsafe { lean_set_panic_messages(false) };
        // `lean_io_mk_world()` is the boxed scalar Lean passes as the world.
        // SAFETY: `initialize` has the initializer's C type; the runtime is initialized.
        let result = unsafe { initialize(1, lean_io_mk_world()) };
        // SAFETY: a plain setter of a global flag in libleanshared.
        unsafe { lean_set_panic_messages(true) };
        // SAFETY: an initializer returns an owned IO result.
        match unsafe { take_io_result(result) } {
            // SAFETY: `value` is the owned `Unit` of the IO result.
            Ok(value) => unsafe { lean_dec(value) },
            Err(message) => {
                return Err(RuntimeError::Initializer {
                    symbol: initializer_symbol,
                    message,
                });
            }
        }
        // SAFETY: once, after the module initializers, before any other Lean thread exists.
        unsafe { lean_io_mark_end_initialization() };

        let imports_text = self.args.imports_joined();
        let imports = lean_string(&imports_text);
        let search_path = lean_string(&self.args.search_path_joined());
        // Both strings are fresh owned objects (rc 1); the world is a scalar.
        // SAFETY: `import` has `ImportFn`'s type and consumes both references.
        let result = unsafe { import(imports, search_path, lean_io_mk_world()) };
        // SAFETY: an exported `IO` function returns an owned IO result.
        let env = unsafe { take_io_result(result) }.map_err(|message| RuntimeError::Import {
            imports: imports_text.clone(),
            message,
        })?;
        // Marking it persistent sets the reference count of everything it
        // reaches to 0: never freed, never written by `lean_inc`/`lean_dec`,
        // so forked workers share its pages without copying them, and any
        // thread may read it. It is what Lean's own frontend does with an
        // imported environment (`importModules (leakEnv := true)`).
        // SAFETY: `env` is owned and non-scalar, and no other thread runs Lean code.
        unsafe { lean_mark_persistent(env) };
        let started = Started {
            exports: Exports {
                decls,
                attempt_proofs,
            },
            env: Environment(env),
        };
        if self.started.set(started).is_err() {
            // Unreachable: `starting` is held and `started` was empty.
            return Err(RuntimeError::AlreadyStarted);
        }
        Ok(())
    }

    /// Starts Lean's task manager (once): in an exec'd worker after
    /// [`LeanRuntime::start`], in a forked worker after the fork.
    pub fn worker_start(&self) -> Result<(), RuntimeError> {
        if self.started.get().is_none() {
            return Err(RuntimeError::NotStarted);
        }
        if self.task_manager.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.enter_lean_thread();
        // A template never starts the task manager, and `fork_check` refuses
        // to fork once it has.
        // SAFETY: the runtime is initialized and `task_manager` was false: the first start here.
        unsafe { lean_init_task_manager() };
        Ok(())
    }

    /// `Ok` when forking this process now is sound for Lean: the
    /// environment is imported and the task manager (threads, a queue and
    /// its mutex) has not been started. The single-thread condition itself
    /// is checked by the template.
    pub fn fork_check(&self) -> Result<(), String> {
        if self.task_manager_started() {
            return Err("Lean's task manager has been started in the template: its worker threads would not exist in the forked process".to_owned());
        }
        if self.started.get().is_none() {
            return Err(
                "the Lean environment has not been imported: start the runtime before forking"
                    .to_owned(),
            );
        }
        Ok(())
    }

    /// Runs `ringworker_lean_decls(env, shard_index, shard_count)` with
    /// rows going to `out` (stream 0); returns the summary JSON the Lean
    /// side returned.
    pub fn decls_json(
        &self,
        shard_index: u64,
        shard_count: u64,
        out: &mut RowWriter<'_>,
    ) -> Result<String, RuntimeError> {
        let started = self.started.get().ok_or(RuntimeError::NotStarted)?;
        self.enter_lean_thread();
        let env = started.env.0;
        let decls = started.exports.decls;
        let result = ringworker_lean_abi::with_row_context(out, 0, || {
            // The export takes `env` owned: this is the reference it consumes
            // (a no-op on a persistent object, right on any other).
            // SAFETY: `env` is a live persistent object.
            unsafe { lean_inc(env) };
            // SAFETY: `decls` has `DeclsFn`'s type; `enter_lean_thread` ran on this thread.
            unsafe { decls(env, shard_index, shard_count, lean_io_mk_world()) }
        });
        // SAFETY: an exported `IO` function returns an owned IO result.
        let value = unsafe { take_io_result(result) }.map_err(|message| RuntimeError::Lean {
            export: DECLS_SYMBOL,
            message,
        })?;
        // SAFETY: the value of an `IO String` is an owned String object.
        Ok(unsafe { take_string(value) })
    }

    /// Runs `ringworker_lean_attempt_proofs(env, request_json)` with rows
    /// going to `out` (stream 0); returns the summary JSON.
    pub fn attempt_proofs_json(
        &self,
        request_json: &str,
        out: &mut RowWriter<'_>,
    ) -> Result<String, RuntimeError> {
        let started = self.started.get().ok_or(RuntimeError::NotStarted)?;
        self.enter_lean_thread();
        let env = started.env.0;
        let attempt = started.exports.attempt_proofs;
        let request = lean_string(request_json);
        let result = ringworker_lean_abi::with_row_context(out, 0, || {
            // The reference the export's owned `env` argument consumes.
            // SAFETY: `env` is a live persistent object.
            unsafe { lean_inc(env) };
            // `request` is a fresh owned String the export consumes.
            // SAFETY: `attempt` has `AttemptProofsFn`'s type; `enter_lean_thread` ran.
            unsafe { attempt(env, request, lean_io_mk_world()) }
        });
        // SAFETY: an exported `IO` function returns an owned IO result.
        let value = unsafe { take_io_result(result) }.map_err(|message| RuntimeError::Lean {
            export: ATTEMPT_PROOFS_SYMBOL,
            message,
        })?;
        // SAFETY: the value of an `IO String` is an owned String object.
        Ok(unsafe { take_string(value) })
    }

    /// Makes this thread fit to run Lean code: Lean keeps per-thread state
    /// (heartbeats, the deferred-free list) that a thread Lean did not
    /// create sets up with `lean_initialize_thread`.
    fn enter_lean_thread(&self) {
        if !LEAN_THREAD.get() {
            // Every caller runs after `LEAN_INITIALIZED`; the flag says this
            // thread has called neither `lean_initialize` nor this.
            // SAFETY: the runtime is initialized and this thread is not yet set up.
            unsafe { lean_initialize_thread() };
            LEAN_THREAD.set(true);
        }
    }
}

/// Looks `symbol` up in `library` as a `T`.
///
/// # Safety
///
/// `T` must be the function pointer type of the symbol's C definition.
unsafe fn lookup<T: Copy>(
    library: &Library,
    path: &std::path::Path,
    symbol: &str,
) -> Result<T, RuntimeError> {
    // SAFETY: the caller guarantees `T` is the symbol's type.
    let found = unsafe { library.get::<T>(symbol.as_bytes()) };
    found.map(|s| *s).map_err(|e| RuntimeError::Symbol {
        path: path.to_owned(),
        symbol: symbol.to_owned(),
        message: e.to_string(),
    })
}

/// A fresh Lean `String` (rc 1, owned by the caller) holding `text`.
fn lean_string(text: &str) -> *mut lean_object {
    // `lean_mk_string_from_bytes(const char* s, size_t sz)` copies `sz`
    // bytes from `s` into a new String object, after checking them as UTF-8.
    // SAFETY: pointer and length come from one valid `&str`.
    unsafe { lean_mk_string_from_bytes(text.as_ptr(), text.len()) }
}

/// Unpacks an owned IO result: its value (owned) or its error's text.
///
/// # Safety
///
/// `result` must be an owned IO result object, as every exported `IO`/
/// `BaseIO` function and module initializer returns; it is consumed. The
/// calling thread must be fit to run Lean code.
unsafe fn take_io_result(result: *mut lean_object) -> Result<*mut lean_object, String> {
    // SAFETY: an IO result is a constructor object whose tag (0 ok, 1 error) this reads.
    if unsafe { lean_io_result_is_ok(result) } {
        // `take_value` takes a reference to field 0 and releases the result.
        // SAFETY: an ok result's field 0 is the value.
        return Ok(unsafe { lean_io_result_take_value(result) });
    }
    // SAFETY: an error result's field 0 is the `IO.Error`, borrowed from `result`.
    let error = unsafe { lean_io_result_get_error(result) };
    // Keeps the error alive past the result: the reference that
    // `lean_io_error_to_string` consumes (`lean_obj_arg`).
    // SAFETY: `error` is a live object borrowed from `result`, which we still own.
    unsafe { lean_inc(error) };
    // SAFETY: we own `result`; `error` keeps the reference taken above.
    unsafe { lean_dec(result) };
    // `IO.Error.toString`, exported by Init, returns an owned String.
    // SAFETY: `error` is an owned `IO.Error`, consumed by the call.
    let text = unsafe { lean_io_error_to_string(error) };
    // SAFETY: an owned String object.
    Err(unsafe { take_string(text) })
}

/// Copies an owned Lean `String` into Rust and releases it.
///
/// # Safety
///
/// `string` must be an owned reference to a Lean object (a String is
/// expected; anything else yields a placeholder text).
unsafe fn take_string(string: *mut lean_object) -> String {
    // `lean_is_scalar` looks at the pointer's low bit only.
    // SAFETY: `lean_is_string` reads the header of a non-scalar object only.
    let is_string = !lean_is_scalar(string) && unsafe { lean_is_string(string) };
    let text = if is_string {
        // `lean_string_size` counts the terminating NUL.
        // SAFETY: a String object holds `m_size` bytes at `m_data`.
        let bytes = unsafe {
            let size = lean_string_size(string);
            std::slice::from_raw_parts(lean_string_cstr(string), size.saturating_sub(1))
        };
        String::from_utf8_lossy(bytes).into_owned()
    } else {
        "<a Lean object that is not a String>".to_owned()
    };
    // SAFETY: we own one reference to `string`.
    unsafe { lean_dec(string) };
    text
}
