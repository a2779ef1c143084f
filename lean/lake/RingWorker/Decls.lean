import Lean
import Std.Data.HashMap
import Std.Data.HashSet
import RingWorker.Emit

/-!
# `decls`: one row per constant of the imported environment

Every constant of `env.constants`, in a deterministic order (sorted by the
rendered name), is numbered `k = 0, 1, ...`; the shard `(index, count)` is the
constants with `k % count == index`. Each row is the UTF-8 JSON of
`ringworker_lean::DeclRow` (serde field names, enums in lowercase) written to
stream 0; `line` and `record` are 0 (they number lines of a lean4export file,
which there is none of). Rows stop at `Status.cancelled`/`ringClosed`.

Sizes: `*_dag_size` counts distinct nodes by pointer identity (a subterm
shared in memory counts once; structurally equal but unshared copies count
each), `*_tree_size` counts the term as a tree (saturating at 2^64 - 1).
`mdata` wrappers are not nodes (lean4export strips them). A recursor's value
is its rules' right-hand sides together (one visited set, tree sizes summed).
Referenced constants are `Expr.getUsedConstants`, rendered, distinct, sorted.
-/

open Lean

namespace RingWorker.Decls

/-- `2^64 - 1`, where tree sizes saturate. -/
def u64Max : Nat := 18446744073709551615

/-- A name as `DeclRow` renders it: `.` between components, no `«»`. -/
def nameText (n : Name) : String := n.toString (escape := false)

/-- Sorted, without duplicates. -/
def sortedDistinct (xs : Array String) : Array String := Id.run do
  let mut out : Array String := #[]
  for x in xs.qsort (fun a b => a < b) do
    if out.back? != some x then
      out := out.push x
  return out

/-- The distinct constants `es` refer to, rendered and sorted. -/
def constNames (es : Array Expr) : Array String :=
  sortedDistinct <| es.foldl (fun acc e => acc ++ e.getUsedConstants.map nameText) #[]

/-- `mdata` is not a node: look through it. -/
partial def stripMData : Expr → Expr
  | .mdata _ e => stripMData e
  | e => e

/-- The direct subterms of a node. -/
def children : Expr → Array Expr
  | .app f a => #[f, a]
  | .lam _ d b _ => #[d, b]
  | .forallE _ d b _ => #[d, b]
  | .letE _ t v b _ => #[t, v, b]
  | .mdata _ e => #[e]
  | .proj _ _ e => #[e]
  | _ => #[]

unsafe def dagSizeImpl (roots : Array Expr) : Nat := Id.run do
  let mut seen : Std.HashSet USize := {}
  let mut todo : Array Expr := roots
  let mut count := 0
  while !todo.isEmpty do
    let e := stripMData todo.back!
    todo := todo.pop
    let p := ptrAddrUnsafe e
    if !seen.contains p then
      seen := seen.insert p
      count := count + 1
      todo := todo ++ children e
  return count

/-- Distinct nodes reachable from `roots`, by pointer identity. -/
@[implemented_by dagSizeImpl]
opaque dagSize (roots : Array Expr) : Nat

unsafe def treeSizeGo (e : Expr) : StateM (Std.HashMap USize Nat) Nat := do
  let e := stripMData e
  let p := ptrAddrUnsafe e
  if let some n := (← get)[p]? then
    return n
  let mut n := 1
  for c in children e do
    n := min u64Max (n + (← treeSizeGo c))
  modify (·.insert p n)
  return n

unsafe def treeSizeImpl (roots : Array Expr) : Nat :=
  let go : StateM (Std.HashMap USize Nat) Nat := do
    let mut total := 0
    for r in roots do
      total := min u64Max (total + (← treeSizeGo r))
    return total
  Id.run (go.run' {})

/-- The size of `roots` as trees, summed, saturating at 2^64 - 1 (memoized
by pointer, so shared subterms cost one visit). -/
@[implemented_by treeSizeImpl]
opaque treeSize (roots : Array Expr) : Nat

def kindText : ConstantInfo → String
  | .axiomInfo _ => "axiom"
  | .defnInfo _ => "def"
  | .thmInfo _ => "thm"
  | .opaqueInfo _ => "opaque"
  | .quotInfo _ => "quot"
  | .inductInfo _ => "inductive"
  | .ctorInfo _ => "ctor"
  | .recInfo _ => "rec"

def safetyText : DefinitionSafety → String
  | .safe => "safe"
  | .«unsafe» => "unsafe"
  | .«partial» => "partial"

def quotText : QuotKind → String
  | .type => "type"
  | .ctor => "ctor"
  | .lift => "lift"
  | .ind => "ind"

/-- What a kind has a value for: definitions, theorems, opaques (their
body) and recursors (their rules' right-hand sides). -/
def valueRoots : ConstantInfo → Option (Array Expr)
  | .defnInfo v => some #[v.value]
  | .thmInfo v => some #[v.value]
  | .opaqueInfo v => some #[v.value]
  | .recInfo v => some (v.rules.toArray.map (·.rhs))
  | _ => none

def names (xs : List Name) : Array String := xs.toArray.map nameText

def strs (xs : Array String) : Json := Json.arr (xs.map Json.str)

/-- The recursors of an inductive's block: `T.rec` for each type `T` of the
block, then the auxiliary `rec_i` of nested occurrences; those in `env`. -/
def blockRecs (env : Environment) (v : InductiveVal) : Array String := Id.run do
  let mut out : Array String := #[]
  for t in v.all do
    let r := mkRecName t
    if env.contains r then
      out := out.push (nameText r)
  if let some t := v.all.head? then
    for i in [1:v.numNested + 1] do
      let r := t.str s!"rec_{i}"
      if env.contains r then
        out := out.push (nameText r)
  return out

/-- The kind-specific fields of a row (`null`/empty where they do not apply). -/
structure Extra where
  safety : Json := Json.null
  hints : Json := Json.null
  hintsHeight : Json := Json.null
  quotKind : Json := Json.null
  all : Array String := #[]
  ctors : Array String := #[]
  recs : Array String := #[]
  induct : Json := Json.null
  cidx : Json := Json.null
  numParams : Json := Json.null
  numIndices : Json := Json.null
  numFields : Json := Json.null
  numNested : Json := Json.null
  isRec : Json := Json.null
  isReflexive : Json := Json.null
  numMotives : Json := Json.null
  numMinors : Json := Json.null
  numRules : Json := Json.null
  k : Json := Json.null

def extra (env : Environment) : ConstantInfo → Extra
  | .axiomInfo _ => {}
  | .defnInfo v =>
    let hint : String × Json := match v.hints with
      | .opaque => ("opaque", Json.null)
      | .abbrev => ("abbrev", Json.null)
      | .regular h => ("regular", toJson h.toNat)
    { safety := Json.str (safetyText v.safety), hints := Json.str hint.1, hintsHeight := hint.2,
      all := names v.all }
  | .thmInfo v => { all := names v.all }
  | .opaqueInfo v => { all := names v.all }
  | .quotInfo v => { quotKind := Json.str (quotText v.kind) }
  | .inductInfo v =>
    { all := names v.all, ctors := names v.ctors, recs := blockRecs env v,
      numParams := toJson v.numParams, numIndices := toJson v.numIndices,
      numNested := toJson v.numNested, isRec := toJson v.isRec,
      isReflexive := toJson v.isReflexive }
  | .ctorInfo v =>
    { induct := Json.str (nameText v.induct), cidx := toJson v.cidx,
      numParams := toJson v.numParams, numFields := toJson v.numFields }
  | .recInfo v =>
    { all := names v.all, numParams := toJson v.numParams, numIndices := toJson v.numIndices,
      numMotives := toJson v.numMotives, numMinors := toJson v.numMinors,
      numRules := toJson v.rules.length, k := toJson v.k }

/-- The `DeclRow` JSON of constant `n`. -/
def row (env : Environment) (n : Name) (ci : ConstantInfo) : Json :=
  let x := extra env ci
  let typeConsts := constNames #[ci.type]
  let value := valueRoots ci
  let valueConsts := (value.map constNames).getD #[]
  let pre := n.getPrefix
  Json.mkObj [
    ("name", Json.str (nameText n)),
    ("kind", Json.str (kindText ci)),
    ("namespace", if pre.isAnonymous then Json.null else Json.str (nameText pre)),
    ("name_depth", toJson n.getNumParts),
    ("level_params", strs (names ci.levelParams)),
    ("line", toJson (0 : Nat)),
    ("record", toJson (0 : Nat)),
    ("is_unsafe", toJson ci.isUnsafe),
    ("safety", x.safety),
    ("hints", x.hints),
    ("hints_height", x.hintsHeight),
    ("quot_kind", x.quotKind),
    ("all", strs x.all),
    ("type_consts", strs typeConsts),
    ("type_const_count", toJson typeConsts.size),
    ("value_consts", strs valueConsts),
    ("value_const_count", toJson valueConsts.size),
    ("type_dag_size", toJson (dagSize #[ci.type])),
    ("type_tree_size", toJson (treeSize #[ci.type])),
    ("value_dag_size", match value with | some v => toJson (dagSize v) | none => Json.null),
    ("value_tree_size", match value with | some v => toJson (treeSize v) | none => Json.null),
    ("ctors", strs x.ctors),
    ("recs", strs x.recs),
    ("induct", x.induct),
    ("cidx", x.cidx),
    ("num_params", x.numParams),
    ("num_indices", x.numIndices),
    ("num_fields", x.numFields),
    ("num_nested", x.numNested),
    ("is_rec", x.isRec),
    ("is_reflexive", x.isReflexive),
    ("num_motives", x.numMotives),
    ("num_minors", x.numMinors),
    ("num_rules", x.numRules),
    ("k", x.k)
  ]

/-- Every constant with its rendered name, sorted by it (ties, which need
two names that render alike, by the escaped rendering). -/
def sortedConstants (env : Environment) : Array (String × Name × ConstantInfo) :=
  let all := env.constants.toList.toArray.map fun (n, ci) => (nameText n, n, ci)
  all.qsort fun a b => a.1 < b.1 || (a.1 == b.1 && a.2.1.toString < b.2.1.toString)

/-- Streams shard `(index, count)` of `env`'s constants; returns the summary
JSON `{"rows": <rows written>, "constants": <constants in env>}`. -/
def run (env : Environment) (shardIndex shardCount : UInt64) : IO String := do
  if shardCount == 0 || shardIndex >= shardCount then
    throw <| IO.userError s!"bad shard {shardIndex}/{shardCount}"
  let constants := sortedConstants env
  let index := shardIndex.toNat
  let count := shardCount.toNat
  let inShard := if index < constants.size then (constants.size - index + count - 1) / count else 0
  let mut rows : Nat := 0
  let mut k : Nat := 0
  for (text, n, ci) in constants do
    if k % count == index then
      let status := Status.ofUInt32 (← emitRowString 0 (row env n ci).compress)
      if status.isStop then
        break
      if status != .ok then
        throw <| IO.userError s!"emitting the row of {text}: {status}"
      rows := rows + 1
      if rows % 4096 == 0 then
        discard <| emitProgress rows.toUInt64 inShard.toUInt64
    k := k + 1
  discard <| emitProgress rows.toUInt64 inShard.toUInt64
  return (Json.mkObj [("rows", toJson rows), ("constants", toJson constants.size)]).compress

end RingWorker.Decls
