import Lean
import RingWorker.Emit

/-!
# `attempt-proofs`: elaborate candidates against the imported environment

The request is `ringworker_lean_host::AttemptProofsRequest` as JSON:
`{"candidates": [{"id", "goal", "proof"}], "max_heartbeats", "timeout_ms"}`.
Each candidate is elaborated as the command `example : <goal> := <proof>`
(the proof a term or a `by` block) with the option `maxHeartbeats` set to
`max_heartbeats` (Lean's unit: thousands of heartbeats, as
`set_option maxHeartbeats` takes it), and gives one row, the JSON of the
`synthetic-proofs` `ProofResult`:
`{"id", "status", "goals", "diagnostics", "time_us"}`.

- `closed`: no error, and no warning about `sorry`;
- `timeout`: an error about heartbeats (Lean's "(deterministic) timeout ...
  maximum number of heartbeats"), or a candidate that took longer than
  `timeout_ms` (measured after the fact: a soft budget, as the
  synthetic command's; the supervisor's request deadline is the hard one);
- `failed`: any other error, or `sorry`;
- `progressed` is never reported (an elaborated `example` has no partial
  state to report).

`goals` is the text of the "unsolved goals" errors, `diagnostics` every
message (`severity: text`, one per line). The summary is the
`ProofSummary` JSON.
-/

open Lean Elab

namespace RingWorker.Proofs

structure Candidate where
  id : Nat
  goal : String
  proof : String
  deriving FromJson

structure Request where
  candidates : Array Candidate
  max_heartbeats : Nat
  timeout_ms : Nat
  deriving FromJson

/-- Whether `needle` occurs in `haystack`. -/
def hasInfix (haystack needle : String) : Bool :=
  (haystack.splitOn needle).length > 1

structure Outcome where
  status : String
  goals : String
  diagnostics : String

def severityText : MessageSeverity → String
  | .information => "info"
  | .warning => "warning"
  | .error => "error"

/-- Elaborates `example : goal := proof` in `env` with `opts`. -/
def attemptOne (env : Environment) (opts : Options) (c : Candidate) : IO Outcome := do
  let input := s!"example : {c.goal} := {c.proof}\n"
  let inputCtx := Parser.mkInputContext input s!"<candidate {c.id}>"
  let commandState := Command.mkState env {} opts
  let s ← Lean.Elab.IO.processCommands inputCtx {} commandState
  let mut goals : Array String := #[]
  let mut diagnostics : Array String := #[]
  let mut errors := false
  let mut heartbeats := false
  let mut usesSorry := false
  for msg in s.commandState.messages.toList do
    let text ← msg.data.toString
    diagnostics := diagnostics.push s!"{severityText msg.severity}: {text}"
    match msg.severity with
    | .error =>
      errors := true
      if hasInfix text "heartbeats" then
        heartbeats := true
      if text.startsWith "unsolved goals" then
        goals := goals.push (text.drop "unsolved goals".length).trimLeft
    | .warning =>
      if hasInfix text "sorry" then
        usesSorry := true
    | .information => pure ()
  let status := if heartbeats then "timeout" else if errors || usesSorry then "failed" else "closed"
  return { status, goals := "\n\n".intercalate goals.toList,
           diagnostics := "\n".intercalate diagnostics.toList }

/-- Runs the request; returns the `ProofSummary` JSON. -/
def run (env : Environment) (requestJson : String) : IO String := do
  let json ← IO.ofExcept (Json.parse requestJson)
  let req : Request ← IO.ofExcept (fromJson? json)
  let opts : Options := ({} : Options)
    |>.setNat `maxHeartbeats req.max_heartbeats
    |>.setBool `Elab.async false
  let total := req.candidates.size
  let mut candidates := 0
  let mut closed := 0
  let mut failed := 0
  let mut timeout := 0
  let mut textBytes := 0
  let mut bytes := 0
  for c in req.candidates do
    if (Status.ofUInt32 (← checkCancelled)).isStop then
      break
    let t0 ← IO.monoNanosNow
    let o ← attemptOne env opts c
    let t1 ← IO.monoNanosNow
    let timeUs := (t1 - t0) / 1000
    let status :=
      if req.timeout_ms > 0 && timeUs > req.timeout_ms * 1000 then "timeout" else o.status
    let rowText := (Json.mkObj [
      ("id", toJson c.id),
      ("status", Json.str status),
      ("goals", Json.str o.goals),
      ("diagnostics", Json.str o.diagnostics),
      ("time_us", toJson timeUs)
    ]).compress
    let emitted := Status.ofUInt32 (← emitRowString 0 rowText)
    if emitted.isStop then
      break
    if emitted != .ok then
      throw <| IO.userError s!"emitting the row of candidate {c.id}: {emitted}"
    candidates := candidates + 1
    if status == "closed" then
      closed := closed + 1
    else if status == "timeout" then
      timeout := timeout + 1
    else
      failed := failed + 1
    textBytes := textBytes + o.goals.utf8ByteSize + o.diagnostics.utf8ByteSize
    bytes := bytes + rowText.utf8ByteSize
    discard <| emitProgress candidates.toUInt64 total.toUInt64
  return (Json.mkObj [
    ("candidates", toJson candidates),
    ("closed", toJson closed),
    ("progressed", toJson (0 : Nat)),
    ("failed", toJson failed),
    ("timeout", toJson timeout),
    ("text_bytes", toJson textBytes),
    ("bytes", toJson bytes)
  ]).compress

end RingWorker.Proofs
