import Lean
import RingWorker.Decls
import RingWorker.Proofs

/-!
# The entry points the worker looks up

Exported functions use the standard calling convention: every object
argument is owned (the worker passes fresh strings and takes a reference of
the environment for each call), `UInt64` is unboxed, and the IO result is
owned by the caller. See `lean/runtime/src/runtime.rs` for the Rust side.
-/

open Lean

namespace RingWorker

/-- Comma-separated module names (`Init,Lean.Elab`) as imports. -/
def parseImports (text : String) : IO (Array Import) := do
  let mut out : Array Import := #[]
  for piece in text.splitOn "," do
    let piece := piece.trim
    if piece.isEmpty then
      continue
    let n := piece.toName
    if n.isAnonymous then
      throw <| IO.userError s!"not a module name: {piece}"
    out := out.push { module := n }
  if out.isEmpty then
    throw <| IO.userError "no module to import"
  return out

/-- Sets the `.olean` search path (`searchPath`, `:`-separated directories,
first, then `LEAN_PATH`, then the toolchain's own), and imports `imports`
with their environment extensions loaded (`loadExts`: without it every
extension keeps its initial state, and `attempt-proofs` would elaborate with
no notation, instances or simp set of the imports). Runs the imported
modules' `initialize` declarations, as the `lean` frontend does. Does not
start the task manager; without one, tasks the import creates run at once on
this thread. -/
@[export ringworker_lean_import]
def importEnvironment (imports searchPath : String) : IO Environment := unsafe do
  let extra : System.SearchPath := if searchPath.isEmpty then [] else System.SearchPath.parse searchPath
  initSearchPath (← findSysroot) extra
  enableInitializersExecution
  importModules (← parseImports imports) {} (loadExts := true)

/-- `decls` of shard `(shardIndex, shardCount)`; the summary JSON. -/
@[export ringworker_lean_decls]
def declsExport (env : Environment) (shardIndex shardCount : UInt64) : IO String :=
  Decls.run env shardIndex shardCount

/-- `attempt-proofs` of the request JSON; the summary JSON. -/
@[export ringworker_lean_attempt_proofs]
def attemptProofsExport (env : Environment) (request : String) : IO String :=
  Proofs.run env request

end RingWorker
