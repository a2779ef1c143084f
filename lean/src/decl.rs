//! The declaration row: one [`DeclRow`] per constant of the export.
//!
//! The row is flat on purpose, so a columnar writer (Parquet, later) maps it
//! one field to one column: scalars, `Option` scalars (nullable columns) and
//! lists of strings. Enums serialize as lowercase strings.
//!
//! One row per constant, not per export record: an inductive block yields a
//! row for every type, constructor and recursor in it (all sharing the
//! block's `record` number), a 3.0 mutual `def`/`thm` array a row per member.

use serde::{Deserialize, Serialize};

pub use crate::format::{QuotKind, Safety};

/// What kind of constant a row describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeclKind {
    /// `axiom`.
    Axiom,
    /// A definition (`def`).
    Def,
    /// A theorem (`thm`).
    Thm,
    /// An opaque constant (`opaque`).
    Opaque,
    /// One of the four quotient constants (`quot`).
    Quot,
    /// An inductive type (a `types` member of an inductive block).
    Inductive,
    /// A constructor (a `ctors` member of an inductive block).
    Ctor,
    /// A recursor (a `recs` member of an inductive block).
    Rec,
}

impl DeclKind {
    /// Every kind, in declaration order.
    pub const ALL: [DeclKind; 8] = [
        DeclKind::Axiom,
        DeclKind::Def,
        DeclKind::Thm,
        DeclKind::Opaque,
        DeclKind::Quot,
        DeclKind::Inductive,
        DeclKind::Ctor,
        DeclKind::Rec,
    ];

    /// The lowercase name the row serializes.
    pub fn as_str(self) -> &'static str {
        match self {
            DeclKind::Axiom => "axiom",
            DeclKind::Def => "def",
            DeclKind::Thm => "thm",
            DeclKind::Opaque => "opaque",
            DeclKind::Quot => "quot",
            DeclKind::Inductive => "inductive",
            DeclKind::Ctor => "ctor",
            DeclKind::Rec => "rec",
        }
    }
}

/// A definition's reducibility hint, flattened: the kind here, the height of
/// a `regular` hint in [`DeclRow::hints_height`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HintKind {
    /// Never unfolded.
    Opaque,
    /// Always unfolded.
    Abbrev,
    /// Unfolded by height.
    Regular,
}

/// One constant of a lean4export file.
///
/// Names are rendered with `.` between components and no `«»` escaping;
/// numeric components are written in decimal.
///
/// "Referenced constants" are the `const` nodes of an expression (the same
/// set as Lean's `Expr.getUsedConstants`): distinct names, sorted, with their
/// count. Projections' structure names are not counted.
///
/// Sizes count expression nodes: `*_dag_size` counts every distinct node
/// (shared subterms once: the export's hash-consing), `*_tree_size` counts
/// the term as a tree (every occurrence; saturates at `u64::MAX`).
///
/// What "value" means per kind: a definition's, theorem's or opaque's body;
/// for a recursor, its rules' right-hand sides taken together (one visited
/// set; tree sizes summed); nothing (`None` / empty) for axioms, quotients,
/// inductive types and constructors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclRow {
    /// The full name, e.g. `Nat.add_succ`.
    pub name: String,
    /// What the constant is.
    pub kind: DeclKind,
    /// The name's prefix (`Nat` for `Nat.add_succ`); `None` for a name of
    /// one component.
    pub namespace: Option<String>,
    /// Number of components of the name.
    pub name_depth: u32,
    /// Universe level parameters, in order.
    pub level_params: Vec<String>,
    /// The 1-based line of the export record this constant came from.
    pub line: u64,
    /// The 0-based index of that record among the export's declaration
    /// records (members of one inductive block or 3.0 mutual array share it).
    pub record: u64,
    /// `unsafe` (from `isUnsafe`, or a definition's `safety`).
    pub is_unsafe: bool,
    /// Definitions: `safe`, `unsafe` or `partial`.
    pub safety: Option<Safety>,
    /// Definitions: the reducibility hint.
    pub hints: Option<HintKind>,
    /// Definitions with a `regular` hint: its height.
    pub hints_height: Option<u32>,
    /// Quotient constants: which one.
    pub quot_kind: Option<QuotKind>,
    /// The mutual block (`all`) of definitions, theorems, opaques, inductive
    /// types and recursors; empty where the format has none.
    pub all: Vec<String>,
    /// Distinct constants the type refers to, sorted.
    pub type_consts: Vec<String>,
    /// `type_consts.len()`.
    pub type_const_count: u32,
    /// Distinct constants the value refers to, sorted (empty without a value).
    pub value_consts: Vec<String>,
    /// `value_consts.len()`.
    pub value_const_count: u32,
    /// The type's size with shared subterms counted once.
    pub type_dag_size: u64,
    /// The type's size as a tree (saturating).
    pub type_tree_size: u64,
    /// The value's size with shared subterms counted once.
    pub value_dag_size: Option<u64>,
    /// The value's size as a tree (saturating).
    pub value_tree_size: Option<u64>,
    /// Inductive types: their constructors, in order.
    pub ctors: Vec<String>,
    /// Inductive types: the recursors of their block.
    pub recs: Vec<String>,
    /// Constructors: the inductive type they construct.
    pub induct: Option<String>,
    /// Constructors: their index among the type's constructors.
    pub cidx: Option<u32>,
    /// Inductive types, constructors and recursors: number of parameters.
    pub num_params: Option<u32>,
    /// Inductive types and recursors: number of indices.
    pub num_indices: Option<u32>,
    /// Constructors: number of fields.
    pub num_fields: Option<u32>,
    /// Inductive types: number of nested occurrences.
    pub num_nested: Option<u32>,
    /// Inductive types: recursive.
    pub is_rec: Option<bool>,
    /// Inductive types: reflexive.
    pub is_reflexive: Option<bool>,
    /// Recursors: number of motives.
    pub num_motives: Option<u32>,
    /// Recursors: number of minor premises.
    pub num_minors: Option<u32>,
    /// Recursors: number of rules.
    pub num_rules: Option<u32>,
    /// Recursors: supports K-like reduction.
    pub k: Option<bool>,
}

impl DeclRow {
    /// An empty row of `kind` named `name`; every optional field unset.
    pub(crate) fn new(name: String, kind: DeclKind) -> Self {
        DeclRow {
            name,
            kind,
            namespace: None,
            name_depth: 0,
            level_params: Vec::new(),
            line: 0,
            record: 0,
            is_unsafe: false,
            safety: None,
            hints: None,
            hints_height: None,
            quot_kind: None,
            all: Vec::new(),
            type_consts: Vec::new(),
            type_const_count: 0,
            value_consts: Vec::new(),
            value_const_count: 0,
            type_dag_size: 0,
            type_tree_size: 0,
            value_dag_size: None,
            value_tree_size: None,
            ctors: Vec::new(),
            recs: Vec::new(),
            induct: None,
            cidx: None,
            num_params: None,
            num_indices: None,
            num_fields: None,
            num_nested: None,
            is_rec: None,
            is_reflexive: None,
            num_motives: None,
            num_minors: None,
            num_rules: None,
            k: None,
        }
    }
}
