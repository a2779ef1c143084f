import Lake
open Lake DSL
open System (FilePath)

/-!
The Lean side of ringworker's Lean worker: `lean_lib RingWorker`, built as a
shared library (`.lake/build/lib/libRingWorker.so`) that the worker
(`lean/runtime/`, feature `runtime`) loads with `dlopen`. It links the C shim
`c/ringworker_shim.c`, which turns each `@[extern]` of `RingWorker.Emit` into
a call of the plain-C ABI declared in `../abi/include/ringworker_lean.h`;
those functions are defined by the worker executable and resolved when the
library is loaded. Both the worker and this library link `libleanshared`, so
the process has one Lean runtime.
-/

package RingWorker

/-- The C shim, compiled against `lean.h` and the ABI header. -/
target ringworker_shim.o pkg : FilePath := do
  let oFile := pkg.buildDir / "c" / "ringworker_shim.o"
  let srcJob ← inputTextFile <| pkg.dir / "c" / "ringworker_shim.c"
  let abiInclude := pkg.dir / ".." / "abi" / "include"
  let weakArgs := #["-I", (← getLeanIncludeDir).toString, "-I", abiInclude.toString]
  buildO oFile srcJob weakArgs #["-fPIC", "-O2", "-Wall"] "cc" getLeanTrace

@[default_target]
lean_lib RingWorker where
  defaultFacets := #[LeanLib.sharedFacet]
  moreLinkObjs := #[ringworker_shim.o]
