//! A generator of large, valid lean4export files, deterministic by seed.
//!
//! [`write_export`] streams an export of [`SyntheticConfig::decls`]
//! constants (format 3.0 or 3.1) to any [`Write`], holding only a few
//! integers per constant (name id, `const` expression id), so a file of
//! millions of declarations costs tens of megabytes to write.
//!
//! What it looks like, to exercise a reader the way a real environment does:
//!
//! - names of 2 to 5 components: a tree of namespaces (`Algebra.Order.…`,
//!   grown as declarations are added, up to 4 deep) with one more component
//!   per declaration, inductive types' constructors and recursors one below
//!   their type (`….T12.mk1`, `….T12.rec`);
//! - the full quotient package first (`Quot`, `Quot.mk`, `Quot.lift`,
//!   `Quot.ind`), then theorems (about 55 %), definitions (25 %), inductive
//!   blocks of one type with 1 to 3 constructors and a recursor (8 %),
//!   opaques and axioms;
//! - sharing: a `const` node is written once per constant and reused; later
//!   declarations refer to earlier constants (mostly recent ones, some
//!   uniformly from all); binder types come from a pool of recent small
//!   types (inductive types and arrows between two of them) and the value's
//!   binders reuse the type's, as hash-consing does in a real export. Pooled
//!   types never contain whole earlier signatures, so a declaration's DAG
//!   stays a few dozen nodes however long the export (the reader's
//!   per-declaration walks stay O(declaration)).
//!
//! The terms are well formed for the format (every id defined before use,
//! de Bruijn indices in scope), not type correct.

use std::io::{self, Write};

use crate::decl::DeclKind;
use crate::format::FormatVersion;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntheticConfig {
    /// Seed of the generator: the same config writes the same bytes.
    pub seed: u64,
    /// Number of constants (rows the reader will produce), the quotient
    /// package's four included.
    pub decls: u64,
    /// Format version to write.
    pub version: FormatVersion,
}

impl SyntheticConfig {
    /// `decls` constants in format 3.1 from `seed`.
    pub fn new(seed: u64, decls: u64) -> Self {
        SyntheticConfig {
            seed,
            decls,
            version: FormatVersion::V3_1,
        }
    }
}

/// What [`write_export`] wrote: what a reader should count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyntheticSummary {
    /// Lines written, the `meta` line included.
    pub lines: u64,
    /// Names defined, the anonymous name (id 0) included.
    pub names: u64,
    /// Levels defined, level zero (id 0) included.
    pub levels: u64,
    /// Expressions defined.
    pub exprs: u64,
    /// Declaration records written.
    pub records: u64,
    /// Constants written (rows).
    pub rows: u64,
    /// Constants per kind, indexed like [`DeclKind::ALL`].
    pub per_kind: [u64; 8],
}

impl SyntheticSummary {
    /// Constants of `kind` written.
    pub fn count(&self, kind: DeclKind) -> u64 {
        self.per_kind[kind_index(kind)]
    }
}

fn kind_index(kind: DeclKind) -> usize {
    DeclKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)
}

/// Writes a synthetic export for `cfg` to `out` (buffered internally).
pub fn write_export<W: Write>(cfg: &SyntheticConfig, out: W) -> io::Result<SyntheticSummary> {
    let mut g = Gen::new(cfg, io::BufWriter::with_capacity(1 << 16, out));
    g.run()?;
    g.out.flush()?;
    Ok(g.sum)
}

const WORDS: [&str; 24] = [
    "Algebra",
    "Order",
    "Topology",
    "Measure",
    "Nat",
    "Int",
    "List",
    "Finset",
    "Set",
    "Real",
    "Complex",
    "Category",
    "Group",
    "Ring",
    "Field",
    "Module",
    "Basic",
    "Lemmas",
    "Defs",
    "Instances",
    "Filter",
    "Matrix",
    "Polynomial",
    "Graph",
];

const LEAVES: [&str; 12] = [
    "add", "mul", "comm", "assoc", "le", "lt", "map", "sum", "inj", "eq", "succ", "zero",
];

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn percent(&mut self) -> u64 {
        self.below(100)
    }
}

const POOL: usize = 512;
const NO_EXPR: u32 = u32::MAX;

struct Gen<W> {
    out: W,
    rng: Rng,
    version: FormatVersion,
    target: u64,
    sum: SyntheticSummary,
    /// Namespaces: (name id, depth).
    namespaces: Vec<(u32, u32)>,
    /// Per constant: its name id and its `const` expression (lazily written).
    const_name: Vec<u32>,
    const_expr: Vec<u32>,
    /// Constants that are inductive types.
    types: Vec<u32>,
    /// Recent binder types (expression ids), a ring: `base` entries and
    /// arrows between two of them.
    pool: Vec<u32>,
    /// Small closed types (inductive types, applied to `Type` if they take a
    /// parameter).
    base: Vec<u32>,
    pool_next: usize,
    bvars: Vec<u32>,
    prop: u32,
    ty: u32,
    /// Binder name ids `x`, `motive`.
    x: u32,
    motive: u32,
    serial: u64,
}

impl<W: Write> Gen<W> {
    fn new(cfg: &SyntheticConfig, out: W) -> Self {
        Gen {
            out,
            rng: Rng(cfg.seed ^ 0x5eed_1ea4_0000_0001),
            version: cfg.version,
            target: cfg.decls,
            sum: SyntheticSummary {
                names: 1,
                levels: 1,
                ..SyntheticSummary::default()
            },
            namespaces: Vec::new(),
            const_name: Vec::new(),
            const_expr: Vec::new(),
            types: Vec::new(),
            pool: Vec::new(),
            base: Vec::new(),
            pool_next: 0,
            bvars: Vec::new(),
            prop: 0,
            ty: 0,
            x: 0,
            motive: 0,
            serial: 0,
        }
    }

    fn line(&mut self, args: std::fmt::Arguments<'_>) -> io::Result<()> {
        self.out.write_fmt(args)?;
        self.out.write_all(b"\n")?;
        self.sum.lines += 1;
        Ok(())
    }

    fn name(&mut self, pre: u32, s: &str) -> io::Result<u32> {
        let id = self.sum.names as u32;
        self.line(format_args!(
            r#"{{"in":{id},"str":{{"pre":{pre},"str":"{s}"}}}}"#
        ))?;
        self.sum.names += 1;
        Ok(id)
    }

    fn expr(&mut self, body: std::fmt::Arguments<'_>) -> io::Result<u32> {
        let id = self.sum.exprs as u32;
        self.line(format_args!(r#"{{"ie":{id},{body}}}"#))?;
        self.sum.exprs += 1;
        Ok(id)
    }

    fn app(&mut self, f: u32, a: u32) -> io::Result<u32> {
        self.expr(format_args!(r#""app":{{"fn":{f},"arg":{a}}}"#))
    }

    fn pi(&mut self, name: u32, ty: u32, body: u32) -> io::Result<u32> {
        self.expr(format_args!(
            r#""forallE":{{"name":{name},"type":{ty},"body":{body},"binderInfo":"default"}}"#
        ))
    }

    fn lam(&mut self, name: u32, ty: u32, body: u32) -> io::Result<u32> {
        self.expr(format_args!(
            r#""lam":{{"name":{name},"type":{ty},"body":{body},"binderInfo":"default"}}"#
        ))
    }

    /// The `const` node of constant `c`, written on first use.
    fn const_ref(&mut self, c: usize) -> io::Result<u32> {
        if self.const_expr[c] == NO_EXPR {
            let n = self.const_name[c];
            self.const_expr[c] = self.expr(format_args!(r#""const":{{"name":{n},"us":[]}}"#))?;
        }
        Ok(self.const_expr[c])
    }

    fn new_const(&mut self, name: u32, kind: DeclKind) -> usize {
        self.const_name.push(name);
        self.const_expr.push(NO_EXPR);
        self.sum.per_kind[kind_index(kind)] += 1;
        self.sum.rows += 1;
        self.const_name.len() - 1
    }

    /// An earlier constant: mostly recent, sometimes any.
    fn earlier(&mut self) -> Option<usize> {
        let n = self.const_name.len() as u64;
        if n == 0 {
            return None;
        }
        let c = if self.rng.percent() < 70 {
            n - 1 - self.rng.below(n.min(64))
        } else {
            self.rng.below(n)
        };
        Some(c as usize)
    }

    fn pool_pick(&mut self) -> u32 {
        if self.pool.is_empty() {
            return self.ty;
        }
        self.pool[self.rng.below(self.pool.len() as u64) as usize]
    }

    /// A small closed type: `Prop`, `Type` or an inductive type.
    fn base_pick(&mut self) -> u32 {
        match self.base.len() as u64 {
            0 => self.prop,
            n => self.base[self.rng.below(n) as usize],
        }
    }

    fn base_push(&mut self, e: u32) {
        if self.base.len() < POOL {
            self.base.push(e);
        } else {
            let k = self.rng.below(POOL as u64) as usize;
            self.base[k] = e;
        }
        self.pool_push(e);
    }

    fn pool_push(&mut self, e: u32) {
        if self.pool.len() < POOL {
            self.pool.push(e);
        } else {
            self.pool[self.pool_next] = e;
            self.pool_next = (self.pool_next + 1) % POOL;
        }
    }

    /// A namespace for the next declaration (sometimes a new one).
    fn namespace(&mut self) -> io::Result<(u32, u32)> {
        let i = self.rng.below(self.namespaces.len() as u64) as usize;
        let (ns, depth) = self.namespaces[i];
        if depth < 4 && self.rng.percent() < 4 {
            let w = WORDS[self.rng.below(WORDS.len() as u64) as usize];
            let s = format!("{w}{}", self.namespaces.len());
            let id = self.name(ns, &s)?;
            self.namespaces.push((id, depth + 1));
            return Ok((id, depth + 1));
        }
        Ok((ns, depth))
    }

    fn leaf_name(&mut self, ns: u32) -> io::Result<u32> {
        self.serial += 1;
        let w = LEAVES[self.rng.below(LEAVES.len() as u64) as usize];
        let s = format!("{w}_{}", self.serial);
        self.name(ns, &s)
    }

    fn run(&mut self) -> io::Result<()> {
        let v = self.version.as_str();
        self.line(format_args!(
            r#"{{"meta":{{"exporter":{{"name":"ringworker-lean synthetic","version":"{}"}},"lean":{{"githash":"","version":"synthetic"}},"format":{{"version":"{v}"}}}}}}"#,
            env!("CARGO_PKG_VERSION")
        ))?;
        // Level 1 = Type's universe; names and the shared leaves.
        self.line(format_args!(r#"{{"il":1,"succ":0}}"#))?;
        self.sum.levels += 1;
        self.prop = self.expr(format_args!(r#""sort":0"#))?;
        self.ty = self.expr(format_args!(r#""sort":1"#))?;
        for i in 0..8 {
            let b = self.expr(format_args!(r#""bvar":{i}"#))?;
            self.bvars.push(b);
        }
        self.x = self.name(0, "x")?;
        self.motive = self.name(0, "motive")?;
        for w in &WORDS[..12] {
            let id = self.name(0, w)?;
            self.namespaces.push((id, 1));
        }
        if self.target >= 4 {
            self.quot()?;
        }
        while self.sum.rows < self.target {
            let left = self.target - self.sum.rows;
            let roll = self.rng.percent();
            if roll < 8 && left >= 3 {
                self.inductive(left)?;
            } else if roll < 33 {
                self.def(DeclKind::Def)?;
            } else if roll < 37 {
                self.def(DeclKind::Opaque)?;
            } else if roll < 40 {
                self.axiom()?;
            } else {
                self.def(DeclKind::Thm)?;
            }
        }
        Ok(())
    }

    fn record(&mut self) {
        self.sum.records += 1;
    }

    fn quot(&mut self) -> io::Result<()> {
        let quot = self.name(0, "Quot")?;
        let u = self.name(0, "u")?;
        self.line(format_args!(r#"{{"il":2,"param":{u}}}"#))?;
        self.sum.levels += 1;
        let sort_u = self.expr(format_args!(r#""sort":2"#))?;
        // Quot : Sort u -> Sort u (schematic).
        let ty = self.pi(self.x, sort_u, sort_u)?;
        let quot_c = self.new_const(quot, DeclKind::Quot);
        let quot_e = self.expr(format_args!(r#""const":{{"name":{quot},"us":[2]}}"#))?;
        self.const_expr[quot_c] = quot_e;
        let b0 = self.bvars[0];
        let applied = self.app(quot_e, b0)?;
        let mk_ty = self.pi(self.x, sort_u, applied)?;
        let mut types = vec![(quot, ty, "type")];
        for (s, kind) in [("mk", "ctor"), ("lift", "lift"), ("ind", "ind")] {
            let n = self.name(quot, s)?;
            self.new_const(n, DeclKind::Quot);
            types.push((n, mk_ty, kind));
        }
        let key = match self.version {
            FormatVersion::V3_0 => "quotInfo",
            FormatVersion::V3_1 => "quot",
        };
        for (n, t, kind) in types {
            self.line(format_args!(
                r#"{{"{key}":{{"name":{n},"levelParams":[{u}],"type":{t},"kind":"{kind}"}}}}"#
            ))?;
            self.record();
        }
        Ok(())
    }

    /// A type: binders from the pool around an application of earlier
    /// constants to bound variables. Returns (type, binder types).
    fn signature(&mut self) -> io::Result<(u32, Vec<u32>)> {
        let nb = 1 + self.rng.below(4) as usize;
        let binders: Vec<u32> = (0..nb).map(|_| self.pool_pick()).collect();
        let mut body = match self.earlier() {
            Some(c) => self.const_ref(c)?,
            None => self.prop,
        };
        for _ in 0..1 + self.rng.below(3) {
            let arg = self.bvars[self.rng.below(nb as u64) as usize];
            body = self.app(body, arg)?;
        }
        let mut ty = body;
        for &b in binders.iter().rev() {
            ty = self.pi(self.x, b, ty)?;
        }
        Ok((ty, binders))
    }

    /// A value over the same binders: applications of 1 to 4 earlier
    /// constants.
    fn value(&mut self, binders: &[u32]) -> io::Result<u32> {
        let mut body = self.bvars[0];
        for _ in 0..1 + self.rng.below(4) {
            if let Some(c) = self.earlier() {
                let f = self.const_ref(c)?;
                let f = self.app(f, body)?;
                let arg = self.bvars[self.rng.below(binders.len() as u64) as usize];
                body = self.app(f, arg)?;
            }
        }
        for &b in binders.iter().rev() {
            body = self.lam(self.x, b, body)?;
        }
        Ok(body)
    }

    fn def(&mut self, kind: DeclKind) -> io::Result<()> {
        let (ns, _) = self.namespace()?;
        let name = self.leaf_name(ns)?;
        let (ty, binders) = self.signature()?;
        let value = self.value(&binders)?;
        if kind != DeclKind::Thm && self.rng.percent() < 30 {
            // A new arrow between small closed types joins the pool (never
            // a whole signature: pooled types nest only this once, so a
            // declaration's DAG stays small however long the export).
            let (a, b) = (self.base_pick(), self.base_pick());
            let arrow = self.pi(self.x, a, b)?;
            self.pool_push(arrow);
        }
        self.new_const(name, kind);
        let v30 = self.version == FormatVersion::V3_0;
        let (open, close) = if v30 { ("[", "]") } else { ("", "") };
        match kind {
            DeclKind::Thm => self.line(format_args!(
                r#"{{"thm":{open}{{"name":{name},"levelParams":[],"type":{ty},"value":{value},"all":[{name}]}}{close}}}"#
            ))?,
            DeclKind::Opaque => {
                let key = if v30 { "def" } else { "opaque" };
                self.line(format_args!(
                    r#"{{"{key}":{open}{{"name":{name},"levelParams":[],"type":{ty},"value":{value},"isUnsafe":false,"all":[{name}]}}{close}}}"#
                ))?
            }
            _ => {
                let hints = match self.rng.below(3) {
                    0 => r#""abbrev""#.to_string(),
                    _ => format!(r#"{{"regular":{}}}"#, 1 + self.rng.below(100)),
                };
                self.line(format_args!(
                    r#"{{"def":{open}{{"name":{name},"levelParams":[],"type":{ty},"value":{value},"hints":{hints},"safety":"safe","all":[{name}]}}{close}}}"#
                ))?
            }
        }
        self.record();
        Ok(())
    }

    fn axiom(&mut self) -> io::Result<()> {
        let (ns, _) = self.namespace()?;
        let name = self.leaf_name(ns)?;
        let (ty, _) = self.signature()?;
        self.new_const(name, DeclKind::Axiom);
        let key = match self.version {
            FormatVersion::V3_0 => "axiomInfo",
            FormatVersion::V3_1 => "axiom",
        };
        self.line(format_args!(
            r#"{{"{key}":{{"name":{name},"levelParams":[],"type":{ty},"isUnsafe":false}}}}"#
        ))?;
        self.record();
        Ok(())
    }

    fn inductive(&mut self, left: u64) -> io::Result<()> {
        // Constructors and recursors sit two below the namespace: at most 5.
        let (mut ns, depth) = self.namespace()?;
        if depth > 3 {
            ns = self.namespaces[self.rng.below(WORDS.len() as u64 / 2) as usize].0;
        }
        self.serial += 1;
        let tname = self.name(ns, &format!("T{}", self.serial))?;
        let nctors = (1 + self.rng.below(3)).min(left - 2);
        // T : Type, or T : (x : A) -> Type with one parameter.
        let params = u32::from(self.rng.percent() < 40);
        let tty = if params == 1 {
            let a = self.pool_pick();
            self.pi(self.x, a, self.ty)?
        } else {
            self.ty
        };
        let t = self.new_const(tname, DeclKind::Inductive);
        self.types.push(t as u32);
        let t_e = self.const_ref(t)?;
        // The type applied to its parameter, under one binder.
        let t_self = if params == 1 {
            self.app(t_e, self.bvars[0])?
        } else {
            t_e
        };
        let mut ctors = Vec::new();
        for j in 0..nctors {
            let n = self.name(tname, &format!("mk{j}"))?;
            let fields = self.rng.below(3) as u32;
            let mut cty = t_self;
            for _ in 0..fields {
                let a = self.pool_pick();
                cty = self.pi(self.x, a, cty)?;
            }
            if params == 1 {
                let a = self.pool_pick();
                cty = self.pi(self.x, a, cty)?;
            }
            self.new_const(n, DeclKind::Ctor);
            ctors.push((n, cty, fields));
        }
        let rname = self.name(tname, "rec")?;
        // rec : (motive : T -> Prop) -> (t : T) -> motive t
        // (closed: the type applied to `Type` when it has a parameter)
        let t_closed = if params == 1 {
            self.app(t_e, self.ty)?
        } else {
            t_e
        };
        let motive_ty = self.pi(self.x, t_closed, self.prop)?;
        let mt = self.app(self.bvars[1], self.bvars[0])?;
        let inner = self.pi(self.x, t_closed, mt)?;
        let rty = self.pi(self.motive, motive_ty, inner)?;
        let mut rules = Vec::new();
        for &(n, _, fields) in &ctors {
            let rhs = self.lam(self.motive, motive_ty, self.bvars[0])?;
            rules.push(format!(r#"{{"ctor":{n},"nfields":{fields},"rhs":{rhs}}}"#));
        }
        self.new_const(rname, DeclKind::Rec);
        self.base_push(t_closed);
        let (k_types, k_ctors, k_recs) = match self.version {
            FormatVersion::V3_0 => ("inductiveVals", "constructorVals", "recursorVals"),
            FormatVersion::V3_1 => ("types", "ctors", "recs"),
        };
        let ctor_ids: Vec<String> = ctors.iter().map(|c| c.0.to_string()).collect();
        let ctor_vals: Vec<String> = ctors
            .iter()
            .enumerate()
            .map(|(j, (n, cty, fields))| {
                format!(
                    r#"{{"name":{n},"levelParams":[],"type":{cty},"induct":{tname},"cidx":{j},"numParams":{params},"numFields":{fields},"isUnsafe":false}}"#
                )
            })
            .collect();
        self.line(format_args!(
            concat!(
                r#"{{"inductive":{{"{}":[{{"name":{},"levelParams":[],"type":{},"numParams":{},"numIndices":0,"all":[{}],"ctors":[{}],"numNested":0,"isRec":false,"isUnsafe":false,"isReflexive":false}}],"#,
                r#""{}":[{}],"#,
                r#""{}":[{{"name":{},"levelParams":[],"type":{},"all":[{}],"numParams":{},"numIndices":0,"numMotives":1,"numMinors":{},"rules":[{}],"k":false,"isUnsafe":false}}]}}}}"#
            ),
            k_types,
            tname,
            tty,
            params,
            tname,
            ctor_ids.join(","),
            k_ctors,
            ctor_vals.join(","),
            k_recs,
            rname,
            rty,
            tname,
            params,
            ctors.len(),
            rules.join(","),
        ))?;
        self.record();
        Ok(())
    }
}
