//! The line types of lean4export's NDJSON format, versions 3.0 and 3.1.
//!
//! Every line is one JSON object: the `meta` record first, then names
//! (`in`), levels (`il`), expressions (`ie`) and declarations, each
//! referring to ids of earlier lines. The crate's line parser turns one line
//! into a record without looking anything up; the id tables check the ids.
//!
//! What differs between the versions (lean4export's `format_ndjson.md`,
//! 3.0.0 at lean4export commit `7e89abb`, 3.1.0 from `a6a63cc` on; checked
//! against the 3.0.0 exporter's output in `shared/data`):
//!
//! | record | 3.0 | 3.1 |
//! | --- | --- | --- |
//! | axiom | `{"axiomInfo": {..}}` | `{"axiom": {..}}` |
//! | quotient | `{"quotInfo": {..}}` | `{"quot": {..}}` |
//! | definition | `{"def": [DefnVal \| OpaqueVal, ..]}`, one array per mutual block; an opaque is told apart by its fields (`isUnsafe`, no `hints`/`safety`) | `{"def": {..}}` and `{"opaque": {..}}`, one line per constant |
//! | theorem | `{"thm": [ThmVal, ..]}` | `{"thm": {..}}` |
//! | inductive | `{"inductive": {"inductiveVals", "constructorVals", "recursorVals"}}` | `{"inductive": {"types", "ctors", "recs"}}` |
//!
//! Names, levels and expressions are the same in both. A record key of the
//! other version is an error naming the version, not silently skipped.
//! Unknown fields inside a record are ignored; a line with no known record
//! key is malformed.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A lean4export NDJSON format version this crate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FormatVersion {
    /// 3.0.x: `axiomInfo`, `quotInfo`, definitions and theorems in arrays per
    /// mutual block, inductive blocks with `inductiveVals` /
    /// `constructorVals` / `recursorVals`.
    #[serde(rename = "3.0")]
    V3_0,
    /// 3.1.x: `axiom`, `quot`, one `def` / `opaque` / `thm` object per line,
    /// inductive blocks with `types` / `ctors` / `recs`.
    #[serde(rename = "3.1")]
    V3_1,
}

impl FormatVersion {
    /// Reads a `format.version` string: any `3.0.x` or `3.1.x` (also `3.0`,
    /// `3.1`).
    pub fn from_version_str(s: &str) -> Option<Self> {
        let mut parts = s.split('.');
        let (major, minor) = (parts.next()?, parts.next()?);
        let patch_ok = match parts.next() {
            None => true,
            Some(p) => {
                !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && parts.next().is_none()
            }
        };
        match (major, minor, patch_ok) {
            ("3", "0", true) => Some(FormatVersion::V3_0),
            ("3", "1", true) => Some(FormatVersion::V3_1),
            _ => None,
        }
    }

    /// The canonical version string (`"3.0.0"` or `"3.1.0"`), as the
    /// generator writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            FormatVersion::V3_0 => "3.0.0",
            FormatVersion::V3_1 => "3.1.0",
        }
    }
}

/// The `meta` record that opens every export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// The exporter (`lean4export`) and its version.
    #[serde(default)]
    pub exporter: Option<Tool>,
    /// The Lean version and git hash the export was made with.
    #[serde(default)]
    pub lean: Option<LeanInfo>,
    /// The format version (empty if the record has none: the reader then
    /// refuses the export).
    #[serde(default)]
    pub format: FormatInfo,
}

/// `meta.exporter`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    /// The exporter's name.
    #[serde(default)]
    pub name: String,
    /// The exporter's version.
    #[serde(default)]
    pub version: String,
}

/// `meta.lean`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeanInfo {
    /// The Lean version, e.g. `4.27.0-rc1`.
    #[serde(default)]
    pub version: String,
    /// The Lean commit.
    #[serde(default)]
    pub githash: String,
}

/// `meta.format`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormatInfo {
    /// The format version string, e.g. `3.1.0`.
    #[serde(default)]
    pub version: String,
}

/// A definition's reducibility hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hints {
    /// Never unfolded.
    Opaque,
    /// Always unfolded.
    Abbrev,
    /// Unfolded by height: higher first.
    Regular(u32),
}

/// A definition's safety.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Safety {
    /// Checked by the kernel.
    Safe,
    /// `unsafe`: not checked.
    Unsafe,
    /// `partial`: compiled, with an opaque kernel stand-in.
    Partial,
}

/// Which of the four quotient constants a `quot` record declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuotKind {
    /// `Quot`.
    Type,
    /// `Quot.mk`.
    Ctor,
    /// `Quot.lift`.
    Lift,
    /// `Quot.ind`.
    Ind,
}

// ---------------------------------------------------------------------------
// Parsed records (ids unchecked).

/// An id as written in the file (checked against the tables later).
pub(crate) type Id = u64;

/// One parsed line.
#[derive(Debug)]
pub(crate) enum Record<'a> {
    Meta(Meta),
    Name { id: Id, node: NameRec<'a> },
    Level { id: Id, node: LevelRec },
    Expr { id: Id, node: ExprRec },
    Decl(DeclRec),
}

#[derive(Debug)]
pub(crate) enum NameRec<'a> {
    Str { pre: Id, s: Cow<'a, str> },
    Num { pre: Id, i: u64 },
}

#[derive(Debug)]
pub(crate) enum LevelRec {
    Succ(Id),
    Max(Id, Id),
    Param(Id),
}

#[derive(Debug)]
pub(crate) enum ExprRec {
    BVar,
    Sort(Id),
    Const {
        name: Id,
        us: Vec<Id>,
    },
    App(Id, Id),
    Binder {
        name: Id,
        ty: Id,
        body: Id,
    },
    Let {
        name: Id,
        ty: Id,
        value: Id,
        body: Id,
    },
    Proj {
        type_name: Id,
        strct: Id,
    },
    Lit,
    Mdata(Id),
}

#[derive(Debug)]
pub(crate) enum DeclRec {
    Axiom(AxiomVal),
    /// One or more definitions / opaques (3.0: a mutual block; 3.1: one).
    Defs(Vec<DefVal>),
    /// 3.1 `opaque`.
    Opaque(DefVal),
    Thms(Vec<ThmVal>),
    Quot(QuotVal),
    Inductive(InductiveBlock),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AxiomVal {
    pub name: Id,
    pub level_params: Vec<Id>,
    #[serde(rename = "type")]
    pub ty: Id,
    #[serde(default)]
    pub is_unsafe: bool,
}

/// A 3.x `DefnVal` or `OpaqueVal` (3.0 mixes both in one array; an opaque
/// has no `hints`/`safety`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DefVal {
    pub name: Id,
    pub level_params: Vec<Id>,
    #[serde(rename = "type")]
    pub ty: Id,
    pub value: Id,
    #[serde(default)]
    pub hints: Option<Hints>,
    #[serde(default)]
    pub safety: Option<Safety>,
    #[serde(default)]
    pub is_unsafe: Option<bool>,
    #[serde(default)]
    pub all: Vec<Id>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ThmVal {
    pub name: Id,
    pub level_params: Vec<Id>,
    #[serde(rename = "type")]
    pub ty: Id,
    pub value: Id,
    #[serde(default)]
    pub all: Vec<Id>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct QuotVal {
    pub name: Id,
    pub level_params: Vec<Id>,
    #[serde(rename = "type")]
    pub ty: Id,
    pub kind: QuotKind,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InductiveVal {
    pub name: Id,
    pub level_params: Vec<Id>,
    #[serde(rename = "type")]
    pub ty: Id,
    #[serde(default)]
    pub num_params: Option<u32>,
    #[serde(default)]
    pub num_indices: Option<u32>,
    #[serde(default)]
    pub all: Vec<Id>,
    pub ctors: Vec<Id>,
    #[serde(default)]
    pub num_nested: Option<u32>,
    #[serde(default)]
    pub is_rec: Option<bool>,
    #[serde(default)]
    pub is_unsafe: bool,
    #[serde(default)]
    pub is_reflexive: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CtorVal {
    pub name: Id,
    pub level_params: Vec<Id>,
    #[serde(rename = "type")]
    pub ty: Id,
    pub induct: Id,
    #[serde(default)]
    pub cidx: Option<u32>,
    #[serde(default)]
    pub num_params: Option<u32>,
    #[serde(default)]
    pub num_fields: Option<u32>,
    #[serde(default)]
    pub is_unsafe: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RecVal {
    pub name: Id,
    pub level_params: Vec<Id>,
    #[serde(rename = "type")]
    pub ty: Id,
    #[serde(default)]
    pub all: Vec<Id>,
    #[serde(default)]
    pub num_params: Option<u32>,
    #[serde(default)]
    pub num_indices: Option<u32>,
    #[serde(default)]
    pub num_motives: Option<u32>,
    #[serde(default)]
    pub num_minors: Option<u32>,
    #[serde(default)]
    pub rules: Vec<RecRule>,
    #[serde(default)]
    pub k: Option<bool>,
    #[serde(default)]
    pub is_unsafe: bool,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RecRule {
    pub ctor: Id,
    pub rhs: Id,
}

/// An inductive block, whichever version's field names it was read with.
#[derive(Debug)]
pub(crate) struct InductiveBlock {
    pub types: Vec<InductiveVal>,
    pub ctors: Vec<CtorVal>,
    pub recs: Vec<RecVal>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Block30 {
    inductive_vals: Vec<InductiveVal>,
    constructor_vals: Vec<CtorVal>,
    recursor_vals: Vec<RecVal>,
}

#[derive(Deserialize)]
struct Block31 {
    types: Vec<InductiveVal>,
    ctors: Vec<CtorVal>,
    recs: Vec<RecVal>,
}

// ---------------------------------------------------------------------------
// The raw line: every known top-level key, payloads left raw until the kind
// is known.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLine<'a> {
    #[serde(rename = "in")]
    in_: Option<Id>,
    il: Option<Id>,
    ie: Option<Id>,
    #[serde(borrow)]
    meta: Option<&'a RawValue>,
    // names
    #[serde(borrow)]
    str: Option<&'a RawValue>,
    #[serde(borrow)]
    num: Option<&'a RawValue>,
    // levels
    #[serde(borrow)]
    succ: Option<&'a RawValue>,
    #[serde(borrow)]
    max: Option<&'a RawValue>,
    #[serde(borrow)]
    imax: Option<&'a RawValue>,
    #[serde(borrow)]
    param: Option<&'a RawValue>,
    // expressions
    #[serde(borrow)]
    bvar: Option<&'a RawValue>,
    #[serde(borrow)]
    sort: Option<&'a RawValue>,
    #[serde(borrow, rename = "const")]
    const_: Option<&'a RawValue>,
    #[serde(borrow)]
    app: Option<&'a RawValue>,
    #[serde(borrow)]
    lam: Option<&'a RawValue>,
    #[serde(borrow, rename = "forallE")]
    forall_e: Option<&'a RawValue>,
    #[serde(borrow, rename = "letE")]
    let_e: Option<&'a RawValue>,
    #[serde(borrow)]
    proj: Option<&'a RawValue>,
    #[serde(borrow)]
    nat_val: Option<&'a RawValue>,
    #[serde(borrow)]
    str_val: Option<&'a RawValue>,
    #[serde(borrow)]
    mdata: Option<&'a RawValue>,
    // declarations
    #[serde(borrow)]
    axiom: Option<&'a RawValue>,
    #[serde(borrow)]
    axiom_info: Option<&'a RawValue>,
    #[serde(borrow)]
    def: Option<&'a RawValue>,
    #[serde(borrow)]
    opaque: Option<&'a RawValue>,
    #[serde(borrow)]
    thm: Option<&'a RawValue>,
    #[serde(borrow)]
    quot: Option<&'a RawValue>,
    #[serde(borrow)]
    quot_info: Option<&'a RawValue>,
    #[serde(borrow)]
    inductive: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct NameStr<'a> {
    pre: Id,
    #[serde(borrow)]
    str: Cow<'a, str>,
}

#[derive(Deserialize)]
struct NameNum {
    pre: Id,
    i: u64,
}

#[derive(Deserialize)]
struct ConstE {
    name: Id,
    us: Vec<Id>,
}

#[derive(Deserialize)]
struct AppE {
    #[serde(rename = "fn")]
    f: Id,
    arg: Id,
}

#[derive(Deserialize)]
struct BinderE {
    name: Id,
    #[serde(rename = "type")]
    ty: Id,
    body: Id,
}

#[derive(Deserialize)]
struct LetE {
    name: Id,
    #[serde(rename = "type")]
    ty: Id,
    value: Id,
    body: Id,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProjE {
    type_name: Id,
    #[allow(dead_code)]
    idx: u64,
    #[serde(rename = "struct")]
    strct: Id,
}

#[derive(Deserialize)]
struct MdataE {
    expr: Id,
}

fn field<'a, T: Deserialize<'a>>(key: &str, raw: &'a RawValue) -> Result<T, String> {
    serde_json::from_str(raw.get()).map_err(|e| format!("`{key}`: {e}"))
}

/// Exactly one of `keys` may be present; returns it.
fn one_of<'a>(
    what: &str,
    keys: &[(&'static str, Option<&'a RawValue>)],
) -> Result<(&'static str, &'a RawValue), String> {
    let mut found = None;
    for (k, v) in keys {
        if let Some(v) = v {
            if let Some((first, _)) = found {
                return Err(format!("{what} record with both `{first}` and `{k}`"));
            }
            found = Some((*k, *v));
        }
    }
    found.ok_or_else(|| {
        let names: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
        format!("{what} record without any of {}", names.join(", "))
    })
}

/// Parses one line of an export. `version` is `None` before the `meta`
/// record has been read. The error is the reason only; the caller adds the
/// line number.
pub(crate) fn parse_line<'a>(
    bytes: &'a [u8],
    version: Option<FormatVersion>,
) -> Result<Record<'a>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    let raw: RawLine<'a> =
        serde_json::from_str(text).map_err(|e| format!("not a valid record object: {e}"))?;
    let ids = [raw.in_.is_some(), raw.il.is_some(), raw.ie.is_some()];
    if ids.iter().filter(|b| **b).count() > 1 {
        return Err("more than one of `in`, `il`, `ie`".into());
    }
    if let Some(id) = raw.in_ {
        let (k, v) = one_of("name", &[("str", raw.str), ("num", raw.num)])?;
        let node = match k {
            "str" => {
                let n: NameStr<'a> = field(k, v)?;
                NameRec::Str {
                    pre: n.pre,
                    s: n.str,
                }
            }
            _ => {
                let n: NameNum = field(k, v)?;
                NameRec::Num { pre: n.pre, i: n.i }
            }
        };
        return Ok(Record::Name { id, node });
    }
    if let Some(id) = raw.il {
        let (k, v) = one_of(
            "level",
            &[
                ("succ", raw.succ),
                ("max", raw.max),
                ("imax", raw.imax),
                ("param", raw.param),
            ],
        )?;
        let node = match k {
            "succ" => LevelRec::Succ(field(k, v)?),
            "max" | "imax" => {
                let [a, b]: [Id; 2] = field(k, v)?;
                LevelRec::Max(a, b)
            }
            _ => LevelRec::Param(field(k, v)?),
        };
        return Ok(Record::Level { id, node });
    }
    if let Some(id) = raw.ie {
        let (k, v) = one_of(
            "expression",
            &[
                ("bvar", raw.bvar),
                ("sort", raw.sort),
                ("const", raw.const_),
                ("app", raw.app),
                ("lam", raw.lam),
                ("forallE", raw.forall_e),
                ("letE", raw.let_e),
                ("proj", raw.proj),
                ("natVal", raw.nat_val),
                ("strVal", raw.str_val),
                ("mdata", raw.mdata),
            ],
        )?;
        let node = match k {
            "bvar" => {
                let _: u64 = field(k, v)?;
                ExprRec::BVar
            }
            "sort" => ExprRec::Sort(field(k, v)?),
            "const" => {
                let c: ConstE = field(k, v)?;
                ExprRec::Const {
                    name: c.name,
                    us: c.us,
                }
            }
            "app" => {
                let a: AppE = field(k, v)?;
                ExprRec::App(a.f, a.arg)
            }
            "lam" | "forallE" => {
                let b: BinderE = field(k, v)?;
                ExprRec::Binder {
                    name: b.name,
                    ty: b.ty,
                    body: b.body,
                }
            }
            "letE" => {
                let l: LetE = field(k, v)?;
                ExprRec::Let {
                    name: l.name,
                    ty: l.ty,
                    value: l.value,
                    body: l.body,
                }
            }
            "proj" => {
                let p: ProjE = field(k, v)?;
                ExprRec::Proj {
                    type_name: p.type_name,
                    strct: p.strct,
                }
            }
            "natVal" => {
                let s: Cow<'a, str> = field(k, v)?;
                if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("`natVal`: {s:?} is not a decimal natural number"));
                }
                ExprRec::Lit
            }
            "strVal" => {
                let _: Cow<'a, str> = field(k, v)?;
                ExprRec::Lit
            }
            _ => {
                let m: MdataE = field(k, v)?;
                ExprRec::Mdata(m.expr)
            }
        };
        return Ok(Record::Expr { id, node });
    }
    if let Some(m) = raw.meta {
        return Ok(Record::Meta(field("meta", m)?));
    }
    let (k, v) = one_of(
        "declaration",
        &[
            ("axiom", raw.axiom),
            ("axiomInfo", raw.axiom_info),
            ("def", raw.def),
            ("opaque", raw.opaque),
            ("thm", raw.thm),
            ("quot", raw.quot),
            ("quotInfo", raw.quot_info),
            ("inductive", raw.inductive),
        ],
    )
    .map_err(|e| {
        if e.contains("without any of") {
            "no known record key (`meta`, `in`, `il`, `ie` or a declaration)".to_string()
        } else {
            e
        }
    })?;
    let Some(version) = version else {
        return Err(format!("`{k}` before the `meta` record"));
    };
    let wrong = |other: FormatVersion| {
        format!(
            "`{k}` is a format {} record but the export declares {}",
            match other {
                FormatVersion::V3_0 => "3.0",
                FormatVersion::V3_1 => "3.1",
            },
            version.as_str()
        )
    };
    let decl = match (version, k) {
        (FormatVersion::V3_0, "axiomInfo") | (FormatVersion::V3_1, "axiom") => {
            DeclRec::Axiom(field(k, v)?)
        }
        (FormatVersion::V3_0, "quotInfo") | (FormatVersion::V3_1, "quot") => {
            DeclRec::Quot(field(k, v)?)
        }
        (FormatVersion::V3_0, "def") => DeclRec::Defs(field(k, v)?),
        (FormatVersion::V3_1, "def") => DeclRec::Defs(vec![field(k, v)?]),
        (FormatVersion::V3_1, "opaque") => DeclRec::Opaque(field(k, v)?),
        (FormatVersion::V3_0, "thm") => DeclRec::Thms(field(k, v)?),
        (FormatVersion::V3_1, "thm") => DeclRec::Thms(vec![field(k, v)?]),
        (FormatVersion::V3_0, "inductive") => {
            let b: Block30 = field(k, v)?;
            DeclRec::Inductive(InductiveBlock {
                types: b.inductive_vals,
                ctors: b.constructor_vals,
                recs: b.recursor_vals,
            })
        }
        (FormatVersion::V3_1, "inductive") => {
            let b: Block31 = field(k, v)?;
            DeclRec::Inductive(InductiveBlock {
                types: b.types,
                ctors: b.ctors,
                recs: b.recs,
            })
        }
        (FormatVersion::V3_0, _) => return Err(wrong(FormatVersion::V3_1)),
        (FormatVersion::V3_1, _) => return Err(wrong(FormatVersion::V3_0)),
    };
    Ok(Record::Decl(decl))
}
