import RingWorker.Emit
import RingWorker.Decls
import RingWorker.Proofs
import RingWorker.Exports

/-!
# RingWorker

The Lean side of ringworker's Lean worker (see `README.md`): the C ABI
bindings (`RingWorker.Emit`), the `decls` and `attempt-proofs` commands
(`RingWorker.Decls`, `RingWorker.Proofs`) and the entry points the worker
looks up (`RingWorker.Exports`).
-/
