//! The id tables: names, levels and expressions, stored compactly by id, and
//! the per-declaration walks over them.
//!
//! Memory is bounded by the tables, not by the declarations read:
//!
//! - a name is 16 bytes plus its last component's text in one arena;
//! - a level is only counted (rows never need its structure, references to it
//!   are still checked);
//! - an expression is a 16-byte [`Expr`] plus its tree size (8 bytes),
//!   computed once when the expression is defined (children come first), so
//!   tree sizes need no memo table and never recurse;
//! - a walk keeps one `u32` epoch per expression and per name: a new epoch
//!   is a new, empty visited set in O(1), so each declaration's DAG size
//!   and referenced-constant set cost O(its DAG), iteratively (no recursion,
//!   however deep the term).

use crate::error::{ReadError, Table};
use crate::format::{ExprRec, Id, LevelRec, NameRec};

/// One expression node; children are expression ids, `Const` holds a name id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expr {
    /// Bound variables, literals and sorts: no children.
    Leaf,
    Const(u32),
    App(u32, u32),
    /// `lam` / `forallE`: binder type, body.
    Binder(u32, u32),
    /// `letE`: type, value, body.
    Let(u32, u32, u32),
    /// `proj` and `mdata`: the one child expression.
    Wrap(u32),
}

#[derive(Debug, Clone, Copy)]
struct NameNode {
    pre: u32,
    len: u32,
    start: u64,
}

/// The largest id a table holds.
pub(crate) const MAX_ID: u64 = u32::MAX as u64 - 1;

/// Names, levels and expressions of one export.
#[derive(Debug)]
pub(crate) struct Tables {
    names: Vec<NameNode>,
    arena: String,
    levels: u64,
    exprs: Vec<Expr>,
    tree: Vec<u64>,
}

impl Default for Tables {
    fn default() -> Self {
        Tables {
            // Id 0: the anonymous name.
            names: vec![NameNode {
                pre: 0,
                len: 0,
                start: 0,
            }],
            arena: String::new(),
            // Id 0: level zero.
            levels: 1,
            exprs: Vec::new(),
            tree: Vec::new(),
        }
    }
}

impl Tables {
    pub(crate) fn name_count(&self) -> u64 {
        self.names.len() as u64
    }

    pub(crate) fn level_count(&self) -> u64 {
        self.levels
    }

    pub(crate) fn expr_count(&self) -> u64 {
        self.exprs.len() as u64
    }

    /// Checks that `id` is the next id of `table`.
    fn next_id(line: u64, table: Table, id: Id, len: u64) -> Result<(), ReadError> {
        if id > MAX_ID {
            return Err(ReadError::Limit {
                line,
                table,
                id,
                limit: MAX_ID,
            });
        }
        if id != len {
            return Err(ReadError::OutOfOrderId {
                line,
                table,
                id,
                expected: len,
            });
        }
        Ok(())
    }

    /// Checks a reference to a name.
    pub(crate) fn name(&self, line: u64, id: Id) -> Result<u32, ReadError> {
        check(line, Table::Name, id, self.name_count())
    }

    /// Checks a reference to a level.
    pub(crate) fn level(&self, line: u64, id: Id) -> Result<(), ReadError> {
        check(line, Table::Level, id, self.levels).map(|_| ())
    }

    /// Checks a reference to an expression.
    pub(crate) fn expr(&self, line: u64, id: Id) -> Result<u32, ReadError> {
        check(line, Table::Expr, id, self.expr_count())
    }

    pub(crate) fn add_name(
        &mut self,
        line: u64,
        id: Id,
        node: NameRec<'_>,
    ) -> Result<(), ReadError> {
        Self::next_id(line, Table::Name, id, self.name_count())?;
        let (pre, start) = (node_pre(&node), self.arena.len() as u64);
        let pre = self.name(line, pre)?;
        match node {
            NameRec::Str { s, .. } => self.arena.push_str(&s),
            NameRec::Num { i, .. } => {
                use std::fmt::Write as _;
                let _ = write!(self.arena, "{i}");
            }
        }
        let len = self.arena.len() as u64 - start;
        let len = u32::try_from(len)
            .map_err(|_| ReadError::malformed(line, format!("name component of {len} bytes")))?;
        self.names.push(NameNode { pre, len, start });
        Ok(())
    }

    pub(crate) fn add_level(&mut self, line: u64, id: Id, node: LevelRec) -> Result<(), ReadError> {
        Self::next_id(line, Table::Level, id, self.levels)?;
        match node {
            LevelRec::Succ(l) => self.level(line, l)?,
            LevelRec::Max(a, b) => {
                self.level(line, a)?;
                self.level(line, b)?;
            }
            LevelRec::Param(n) => {
                self.name(line, n)?;
            }
        }
        self.levels += 1;
        Ok(())
    }

    pub(crate) fn add_expr(&mut self, line: u64, id: Id, node: ExprRec) -> Result<(), ReadError> {
        Self::next_id(line, Table::Expr, id, self.expr_count())?;
        let e = match node {
            ExprRec::BVar | ExprRec::Lit => Expr::Leaf,
            ExprRec::Sort(l) => {
                self.level(line, l)?;
                Expr::Leaf
            }
            ExprRec::Const { name, us } => {
                for u in us {
                    self.level(line, u)?;
                }
                Expr::Const(self.name(line, name)?)
            }
            ExprRec::App(f, a) => Expr::App(self.expr(line, f)?, self.expr(line, a)?),
            ExprRec::Binder { name, ty, body } => {
                self.name(line, name)?;
                Expr::Binder(self.expr(line, ty)?, self.expr(line, body)?)
            }
            ExprRec::Let {
                name,
                ty,
                value,
                body,
            } => {
                self.name(line, name)?;
                Expr::Let(
                    self.expr(line, ty)?,
                    self.expr(line, value)?,
                    self.expr(line, body)?,
                )
            }
            ExprRec::Proj { type_name, strct } => {
                self.name(line, type_name)?;
                Expr::Wrap(self.expr(line, strct)?)
            }
            ExprRec::Mdata(e) => Expr::Wrap(self.expr(line, e)?),
        };
        let t = |i: u32| self.tree[i as usize];
        let size = match e {
            Expr::Leaf | Expr::Const(_) => 1,
            Expr::App(a, b) | Expr::Binder(a, b) => 1u64.saturating_add(t(a)).saturating_add(t(b)),
            Expr::Let(a, b, c) => 1u64
                .saturating_add(t(a))
                .saturating_add(t(b))
                .saturating_add(t(c)),
            Expr::Wrap(a) => 1u64.saturating_add(t(a)),
        };
        self.exprs.push(e);
        self.tree.push(size);
        Ok(())
    }

    /// The tree size of expression `id` (shared subterms counted at every
    /// occurrence; saturating).
    pub(crate) fn tree_size(&self, id: u32) -> u64 {
        self.tree[id as usize]
    }

    /// Appends the dotted rendering of name `id` to `out` (components joined
    /// with `.`, no `«»` escaping; the anonymous name is empty).
    pub(crate) fn write_name(&self, id: u32, out: &mut String) {
        let mut chain = Vec::new();
        let mut cur = id;
        while cur != 0 {
            chain.push(cur);
            cur = self.names[cur as usize].pre;
        }
        for (k, n) in chain.iter().rev().enumerate() {
            if k > 0 {
                out.push('.');
            }
            let node = self.names[*n as usize];
            out.push_str(
                &self.arena[node.start as usize..(node.start + u64::from(node.len)) as usize],
            );
        }
    }

    /// The dotted rendering of name `id`.
    pub(crate) fn name_string(&self, id: u32) -> String {
        let mut s = String::new();
        self.write_name(id, &mut s);
        s
    }

    /// The prefix of name `id` (0 for a root name).
    pub(crate) fn name_prefix(&self, id: u32) -> u32 {
        self.names[id as usize].pre
    }
}

fn node_pre(node: &NameRec<'_>) -> Id {
    match node {
        NameRec::Str { pre, .. } | NameRec::Num { pre, .. } => *pre,
    }
}

fn check(line: u64, table: Table, id: Id, defined: u64) -> Result<u32, ReadError> {
    if id < defined {
        // `defined` never exceeds MAX_ID + 1, so this fits.
        Ok(id as u32)
    } else {
        Err(ReadError::DanglingId {
            line,
            table,
            id,
            defined,
        })
    }
}

/// What one walk found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Walk {
    /// Distinct expression nodes reached (shared subterms once).
    pub dag_size: u64,
    /// Tree size of the roots (saturating).
    pub tree_size: u64,
    /// Distinct constants referenced (name ids), in first-reached order.
    pub consts: Vec<u32>,
}

/// Reusable visited sets for walks: one epoch per expression and per name.
#[derive(Debug, Default)]
pub(crate) struct Walker {
    expr_seen: Vec<u32>,
    name_seen: Vec<u32>,
    epoch: u32,
    stack: Vec<u32>,
}

impl Walker {
    /// Walks the DAG below `roots` as one visited set.
    pub(crate) fn walk(&mut self, tables: &Tables, roots: &[u32]) -> Walk {
        if self.expr_seen.len() < tables.exprs.len() {
            self.expr_seen.resize(tables.exprs.len(), 0);
        }
        if self.name_seen.len() < tables.names.len() {
            self.name_seen.resize(tables.names.len(), 0);
        }
        if self.epoch == u32::MAX {
            self.expr_seen.fill(0);
            self.name_seen.fill(0);
            self.epoch = 0;
        }
        self.epoch += 1;
        let epoch = self.epoch;
        let mut out = Walk::default();
        self.stack.clear();
        for &r in roots {
            out.tree_size = out.tree_size.saturating_add(tables.tree_size(r));
            self.stack.push(r);
        }
        while let Some(e) = self.stack.pop() {
            let seen = &mut self.expr_seen[e as usize];
            if *seen == epoch {
                continue;
            }
            *seen = epoch;
            out.dag_size += 1;
            match tables.exprs[e as usize] {
                Expr::Leaf => {}
                Expr::Const(n) => {
                    let seen = &mut self.name_seen[n as usize];
                    if *seen != epoch {
                        *seen = epoch;
                        out.consts.push(n);
                    }
                }
                Expr::App(a, b) | Expr::Binder(a, b) => {
                    self.stack.push(b);
                    self.stack.push(a);
                }
                Expr::Let(a, b, c) => {
                    self.stack.push(c);
                    self.stack.push(b);
                    self.stack.push(a);
                }
                Expr::Wrap(a) => self.stack.push(a),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_consts() {
        let mut t = Tables::default();
        t.add_name(
            2,
            1,
            NameRec::Str {
                pre: 0,
                s: "Nat".into(),
            },
        )
        .unwrap();
        t.add_name(3, 2, NameRec::Num { pre: 1, i: 7 }).unwrap();
        assert_eq!(t.name_string(2), "Nat.7");
        assert_eq!(t.name_prefix(2), 1);
        t.add_expr(
            4,
            0,
            ExprRec::Const {
                name: 1,
                us: vec![],
            },
        )
        .unwrap();
        // Nat -> Nat: the const node is shared.
        t.add_expr(
            5,
            1,
            ExprRec::Binder {
                name: 0,
                ty: 0,
                body: 0,
            },
        )
        .unwrap();
        t.add_expr(6, 2, ExprRec::App(1, 1)).unwrap();
        let mut w = Walker::default();
        let r = w.walk(&t, &[2]);
        assert_eq!((r.dag_size, r.tree_size, r.consts), (3, 7, vec![1]));
        // A second walk starts from an empty visited set.
        let r = w.walk(&t, &[1, 0]);
        assert_eq!((r.dag_size, r.tree_size), (2, 4));
        // Tree sizes saturate: 70 nested self-applications double 70 times.
        let mut last = 2;
        for id in 3..73 {
            t.add_expr(10, id, ExprRec::App(last, last)).unwrap();
            last = id;
        }
        assert_eq!(t.tree_size(last as u32), u64::MAX);
        let r = w.walk(&t, &[last as u32, last as u32]);
        assert_eq!((r.dag_size, r.tree_size), (73, u64::MAX));
        let e = t.add_expr(7, 74, ExprRec::BVar).unwrap_err();
        assert!(matches!(
            e,
            ReadError::OutOfOrderId {
                line: 7,
                table: Table::Expr,
                id: 74,
                expected: 73
            }
        ));
        let e = t.add_expr(8, 73, ExprRec::App(0, 73)).unwrap_err();
        assert!(matches!(
            e,
            ReadError::DanglingId {
                line: 8,
                table: Table::Expr,
                id: 73,
                defined: 73
            }
        ));
    }
}
