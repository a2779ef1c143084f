//! The streaming reader: a [`BufRead`] of lean4export NDJSON in, one
//! [`DeclRow`] per constant out, as the declaration records are read.
//!
//! The reader keeps the export's tables (names, levels, expressions) and a
//! few reusable buffers; rows are handed out and forgotten (at most one
//! record's rows wait in a queue: an inductive block or a 3.0 mutual array).

use std::collections::VecDeque;
use std::io::BufRead;

use crate::decl::{DeclKind, DeclRow, HintKind};
use crate::error::ReadError;
use crate::format::{self, DeclRec, FormatVersion, Hints, Id, Meta, Record, Safety};
use crate::table::{Tables, Walker};

/// Counters of a reader so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReaderStats {
    /// Lines read (blank lines included).
    pub lines: u64,
    /// Names in the table, the anonymous name (id 0) included.
    pub names: u64,
    /// Levels in the table, level zero (id 0) included.
    pub levels: u64,
    /// Expressions in the table.
    pub exprs: u64,
    /// Declaration records read (an inductive block or a 3.0 mutual array
    /// is one record).
    pub records: u64,
    /// Rows handed out (constants).
    pub rows: u64,
    /// Constants left out by the selection ([`ExportReader::with_selection`]):
    /// read and checked, but not walked nor handed out.
    pub skipped: u64,
}

/// What [`ExportReader::poll_selected`] found.
#[derive(Debug)]
// Returned once per row and moved at once: boxing the row would cost an
// allocation per constant for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Poll {
    /// The next selected constant and its ordinal.
    Row(u64, DeclRow),
    /// No selected constant within the lines it was allowed to read.
    Busy,
    /// The end of the input.
    End,
}

/// Which constants a reader hands out, by ordinal.
struct Selection(Box<dyn FnMut(u64) -> bool + Send>);

impl std::fmt::Debug for Selection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Selection(..)")
    }
}

/// Reads a lean4export NDJSON stream (format 3.0.x or 3.1.x) declaration by
/// declaration.
///
/// [`ExportReader::new`] reads the `meta` record; then
/// [`ExportReader::next_decl`] (or the [`Iterator`] impl) reads lines until
/// the next constant is complete. After an error the reader is done: the
/// iterator ends and `next_decl` returns `Ok(None)`.
///
/// ```
/// use ringworker_lean::{DeclKind, ExportReader};
///
/// let export = concat!(
///     r#"{"meta":{"format":{"version":"3.1.0"}}}"#, "\n",
///     r#"{"in":1,"str":{"pre":0,"str":"P"}}"#, "\n",
///     r#"{"ie":0,"sort":0}"#, "\n",
///     r#"{"axiom":{"name":1,"levelParams":[],"type":0,"isUnsafe":false}}"#, "\n",
/// );
/// let mut reader = ExportReader::new(export.as_bytes())?;
/// let row = reader.next_decl()?.expect("one declaration");
/// assert_eq!((row.name.as_str(), row.kind), ("P", DeclKind::Axiom));
/// assert!(reader.next_decl()?.is_none());
/// # Ok::<(), ringworker_lean::ReadError>(())
/// ```
#[derive(Debug)]
pub struct ExportReader<R> {
    src: R,
    /// Which constants (by ordinal) become rows; `None`: all.
    select: Option<Selection>,
    /// The ordinal the next constant gets: its position among all the
    /// export's constants, from 0, whether selected or not.
    next_ordinal: u64,
    /// Ordinal and selection of each row the current record built, in order.
    built: Vec<(u64, bool)>,
    skipped: u64,
    buf: Vec<u8>,
    line: u64,
    meta: Meta,
    version: FormatVersion,
    tables: Tables,
    walker: Walker,
    pending: VecDeque<(u64, DeclRow)>,
    records: u64,
    rows: u64,
    done: bool,
}

impl<R: BufRead> ExportReader<R> {
    /// Starts reading `src`: reads up to the `meta` record (blank lines
    /// before it are skipped) and checks its format version.
    pub fn new(mut src: R) -> Result<Self, ReadError> {
        let mut buf = Vec::new();
        let mut line = 0;
        let meta = loop {
            if !read_line(&mut src, &mut buf, &mut line)? {
                return Err(ReadError::MissingMeta { line: line + 1 });
            }
            if is_blank(&buf) {
                continue;
            }
            break match format::parse_line(&buf, None) {
                Ok(Record::Meta(meta)) => meta,
                Ok(_) => return Err(ReadError::MissingMeta { line }),
                // Any other JSON object (a declaration, an unknown record)
                // where the `meta` record belongs.
                Err(_) if is_object_without_meta(&buf) => {
                    return Err(ReadError::MissingMeta { line });
                }
                Err(reason) => return Err(ReadError::Malformed { line, reason }),
            };
        };
        if meta.format.version.is_empty() {
            return Err(ReadError::MissingMeta { line });
        }
        let version = FormatVersion::from_version_str(&meta.format.version).ok_or_else(|| {
            ReadError::UnsupportedVersion {
                line,
                version: meta.format.version.clone(),
            }
        })?;
        Ok(ExportReader {
            src,
            select: None,
            next_ordinal: 0,
            built: Vec::new(),
            skipped: 0,
            buf,
            line,
            meta,
            version,
            tables: Tables::default(),
            walker: Walker::default(),
            pending: VecDeque::new(),
            records: 0,
            rows: 0,
            done: false,
        })
    }

    /// The `meta` record.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The format version the `meta` record declares.
    pub fn version(&self) -> FormatVersion {
        self.version
    }

    /// Counters so far.
    pub fn stats(&self) -> ReaderStats {
        ReaderStats {
            lines: self.line,
            names: self.tables.name_count(),
            levels: self.tables.level_count(),
            exprs: self.tables.expr_count(),
            records: self.records,
            rows: self.rows,
            skipped: self.skipped,
        }
    }

    /// Hands out only the constants whose ordinal (position among all the
    /// export's constants, from 0) `select` accepts. The others are still
    /// read and their ids checked, but their expressions are not walked, so
    /// a slice of an export (a shard, one worker's part) costs the parse of
    /// the whole file plus the walks of its own rows only.
    #[must_use]
    pub fn with_selection(mut self, select: impl FnMut(u64) -> bool + Send + 'static) -> Self {
        self.select = Some(Selection(Box::new(select)));
        self
    }

    /// The next selected constant with its ordinal, `Ok(None)` at the end
    /// of the input (or after an error).
    pub fn next_selected(&mut self) -> Result<Option<(u64, DeclRow)>, ReadError> {
        loop {
            match self.poll_selected(u64::MAX)? {
                Poll::Row(ordinal, row) => return Ok(Some((ordinal, row))),
                Poll::Busy => {}
                Poll::End => return Ok(None),
            }
        }
    }

    /// Like [`ExportReader::next_selected`], but reads at most `max_lines`
    /// lines before it returns [`Poll::Busy`]: a caller whose selection
    /// leaves long stretches out can show it is alive in between.
    pub fn poll_selected(&mut self, max_lines: u64) -> Result<Poll, ReadError> {
        let mut lines = 0u64;
        loop {
            if let Some((ordinal, row)) = self.pending.pop_front() {
                self.rows += 1;
                return Ok(Poll::Row(ordinal, row));
            }
            if self.done {
                return Ok(Poll::End);
            }
            if lines >= max_lines {
                return Ok(Poll::Busy);
            }
            lines += 1;
            match self.step() {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    return Ok(Poll::End);
                }
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            }
        }
    }

    /// The next constant, `Ok(None)` at the end of the input (or after an
    /// error).
    pub fn next_decl(&mut self) -> Result<Option<DeclRow>, ReadError> {
        Ok(self.next_selected()?.map(|(_, row)| row))
    }

    /// Reads one line; `false` at the end of the input.
    fn step(&mut self) -> Result<bool, ReadError> {
        if !read_line(&mut self.src, &mut self.buf, &mut self.line)? {
            return Ok(false);
        }
        if is_blank(&self.buf) {
            return Ok(true);
        }
        let line = self.line;
        let record = format::parse_line(&self.buf, Some(self.version))
            .map_err(|reason| ReadError::Malformed { line, reason })?;
        match record {
            Record::Meta(_) => return Err(ReadError::malformed(line, "a second `meta` record")),
            Record::Name { id, node } => self.tables.add_name(line, id, node)?,
            Record::Level { id, node } => self.tables.add_level(line, id, node)?,
            Record::Expr { id, node } => self.tables.add_expr(line, id, node)?,
            Record::Decl(decl) => {
                self.decl(line, decl)?;
                self.records += 1;
            }
        }
        Ok(true)
    }

    fn decl(&mut self, line: u64, decl: DeclRec) -> Result<(), ReadError> {
        let record = self.records;
        self.built.clear();
        let mut rows = Vec::new();
        match decl {
            DeclRec::Axiom(a) => {
                let mut r = self.row(line, a.name, DeclKind::Axiom, &a.level_params, a.ty, None)?;
                r.is_unsafe = a.is_unsafe;
                rows.push(r);
            }
            DeclRec::Defs(defs) => {
                for d in defs {
                    // 3.0 mixes opaques into `def` arrays: no hints/safety.
                    let kind = if d.hints.is_none() && d.safety.is_none() && d.is_unsafe.is_some() {
                        DeclKind::Opaque
                    } else {
                        DeclKind::Def
                    };
                    rows.push(self.def_row(line, kind, d)?);
                }
            }
            DeclRec::Opaque(d) => rows.push(self.def_row(line, DeclKind::Opaque, d)?),
            DeclRec::Thms(thms) => {
                for t in thms {
                    let value = self.tables.expr(line, t.value)?;
                    let mut r = self.row(
                        line,
                        t.name,
                        DeclKind::Thm,
                        &t.level_params,
                        t.ty,
                        Some(&[value]),
                    )?;
                    r.all = self.names(line, &t.all)?;
                    rows.push(r);
                }
            }
            DeclRec::Quot(q) => {
                let mut r = self.row(line, q.name, DeclKind::Quot, &q.level_params, q.ty, None)?;
                r.quot_kind = Some(q.kind);
                rows.push(r);
            }
            DeclRec::Inductive(block) => {
                let mut rec_names = Vec::with_capacity(block.recs.len());
                for rec in &block.recs {
                    rec_names.push(self.name_string(line, rec.name)?);
                }
                for t in block.types {
                    let mut r = self.row(
                        line,
                        t.name,
                        DeclKind::Inductive,
                        &t.level_params,
                        t.ty,
                        None,
                    )?;
                    r.is_unsafe = t.is_unsafe;
                    r.all = self.names(line, &t.all)?;
                    r.ctors = self.names(line, &t.ctors)?;
                    r.recs = rec_names.clone();
                    r.num_params = t.num_params;
                    r.num_indices = t.num_indices;
                    r.num_nested = t.num_nested;
                    r.is_rec = t.is_rec;
                    r.is_reflexive = t.is_reflexive;
                    rows.push(r);
                }
                for c in block.ctors {
                    let mut r =
                        self.row(line, c.name, DeclKind::Ctor, &c.level_params, c.ty, None)?;
                    r.is_unsafe = c.is_unsafe;
                    r.induct = Some(self.name_string(line, c.induct)?);
                    r.cidx = c.cidx;
                    r.num_params = c.num_params;
                    r.num_fields = c.num_fields;
                    rows.push(r);
                }
                for rec in block.recs {
                    let mut rhs = Vec::with_capacity(rec.rules.len());
                    for rule in &rec.rules {
                        self.tables.name(line, rule.ctor)?;
                        rhs.push(self.tables.expr(line, rule.rhs)?);
                    }
                    let mut r = self.row(
                        line,
                        rec.name,
                        DeclKind::Rec,
                        &rec.level_params,
                        rec.ty,
                        Some(&rhs),
                    )?;
                    r.is_unsafe = rec.is_unsafe;
                    r.all = self.names(line, &rec.all)?;
                    r.num_params = rec.num_params;
                    r.num_indices = rec.num_indices;
                    r.num_motives = rec.num_motives;
                    r.num_minors = rec.num_minors;
                    r.num_rules = Some(u32::try_from(rec.rules.len()).unwrap_or(u32::MAX));
                    r.k = rec.k;
                    rows.push(r);
                }
            }
        }
        debug_assert_eq!(rows.len(), self.built.len());
        for (mut r, &(ordinal, selected)) in rows.into_iter().zip(&self.built) {
            if selected {
                r.record = record;
                self.pending.push_back((ordinal, r));
            } else {
                self.skipped += 1;
            }
        }
        Ok(())
    }

    fn def_row(
        &mut self,
        line: u64,
        kind: DeclKind,
        d: format::DefVal,
    ) -> Result<DeclRow, ReadError> {
        let value = self.tables.expr(line, d.value)?;
        let mut r = self.row(line, d.name, kind, &d.level_params, d.ty, Some(&[value]))?;
        r.all = self.names(line, &d.all)?;
        r.safety = d.safety;
        r.is_unsafe = d.is_unsafe.unwrap_or(false) || d.safety == Some(Safety::Unsafe);
        (r.hints, r.hints_height) = match d.hints {
            None => (None, None),
            Some(Hints::Opaque) => (Some(HintKind::Opaque), None),
            Some(Hints::Abbrev) => (Some(HintKind::Abbrev), None),
            Some(Hints::Regular(h)) => (Some(HintKind::Regular), Some(h)),
        };
        Ok(r)
    }

    /// The fields every row has: name, namespace, level params, type (and
    /// value) walks.
    fn row(
        &mut self,
        line: u64,
        name: Id,
        kind: DeclKind,
        level_params: &[Id],
        ty: Id,
        value: Option<&[u32]>,
    ) -> Result<DeclRow, ReadError> {
        let name = self.tables.name(line, name)?;
        let ty = self.tables.expr(line, ty)?;
        let ordinal = self.next_ordinal;
        self.next_ordinal += 1;
        let selected = self
            .select
            .as_mut()
            .is_none_or(|select| (select.0)(ordinal));
        self.built.push((ordinal, selected));
        if !selected {
            // Ids checked above; the row is dropped unread by `decl`.
            return Ok(DeclRow::new(String::new(), kind));
        }
        let mut r = DeclRow::new(self.tables.name_string(name), kind);
        r.line = line;
        let pre = self.tables.name_prefix(name);
        r.namespace = (pre != 0).then(|| self.tables.name_string(pre));
        let mut depth = 0u32;
        let mut cur = name;
        while cur != 0 {
            depth += 1;
            cur = self.tables.name_prefix(cur);
        }
        r.name_depth = depth;
        r.level_params = self.names(line, level_params)?;
        let walk = self.walker.walk(&self.tables, &[ty]);
        r.type_dag_size = walk.dag_size;
        r.type_tree_size = walk.tree_size;
        r.type_consts = self.const_names(&walk.consts);
        r.type_const_count = count(&r.type_consts);
        if let Some(roots) = value {
            let walk = self.walker.walk(&self.tables, roots);
            r.value_dag_size = Some(walk.dag_size);
            r.value_tree_size = Some(walk.tree_size);
            r.value_consts = self.const_names(&walk.consts);
            r.value_const_count = count(&r.value_consts);
        }
        Ok(r)
    }

    fn name_string(&self, line: u64, id: Id) -> Result<String, ReadError> {
        Ok(self.tables.name_string(self.tables.name(line, id)?))
    }

    fn names(&self, line: u64, ids: &[Id]) -> Result<Vec<String>, ReadError> {
        ids.iter().map(|&id| self.name_string(line, id)).collect()
    }

    fn const_names(&self, ids: &[u32]) -> Vec<String> {
        let mut v: Vec<String> = ids.iter().map(|&n| self.tables.name_string(n)).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

impl<R: BufRead> Iterator for ExportReader<R> {
    type Item = Result<DeclRow, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_decl().transpose()
    }
}

impl<R: BufRead> std::iter::FusedIterator for ExportReader<R> {}

/// Reads all of `src`, calling `f` with every row as it is read; stops at
/// the first error (the reader's, converted, or `f`'s). Returns the final
/// counters.
pub fn for_each_decl<R, E, F>(src: R, mut f: F) -> Result<ReaderStats, E>
where
    R: BufRead,
    E: From<ReadError>,
    F: FnMut(DeclRow) -> Result<(), E>,
{
    let mut reader = ExportReader::new(src)?;
    while let Some(row) = reader.next_decl()? {
        f(row)?;
    }
    Ok(reader.stats())
}

fn count(v: &[String]) -> u32 {
    u32::try_from(v.len()).unwrap_or(u32::MAX)
}

fn is_object_without_meta(buf: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(buf)
        .is_ok_and(|m| !m.contains_key("meta"))
}

fn is_blank(buf: &[u8]) -> bool {
    buf.iter().all(u8::is_ascii_whitespace)
}

/// Reads one line into `buf` without its line ending; `false` at the end.
fn read_line<R: BufRead>(
    src: &mut R,
    buf: &mut Vec<u8>,
    line: &mut u64,
) -> Result<bool, ReadError> {
    buf.clear();
    let n = src.read_until(b'\n', buf).map_err(|source| ReadError::Io {
        line: *line + 1,
        source,
    })?;
    if n == 0 {
        return Ok(false);
    }
    *line += 1;
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    Ok(true)
}
