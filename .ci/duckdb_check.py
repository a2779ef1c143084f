"""A real consumer reads what `ringworker export-decls` wrote.

Usage: duckdb_check.py DIR
  DIR/ds/          the partitioned Parquet of 4 shards (one dataset)
  DIR/whole.ndjson the same export unsharded, as NDJSON (the reference)
  DIR/real.parquet the real lean4export file's declarations
"""
import collections
import json
import sys

import duckdb

d = sys.argv[1]
reference = [json.loads(line) for line in open(f"{d}/whole.ndjson")]
expected_kinds = collections.Counter(r["kind"] for r in reference)

con = duckdb.connect()
(rows,) = con.execute(f"select count(*) from read_parquet('{d}/ds/*.parquet')").fetchone()
kinds = dict(con.execute(f"select kind, count(*) from read_parquet('{d}/ds/*.parquet') group by kind").fetchall())
(distinct,) = con.execute(
    f"select count(*) from (select distinct line, name from read_parquet('{d}/ds/*.parquet'))"
).fetchone()
print(f"dataset: {rows} rows, {distinct} distinct (line, name); by kind: {sorted(kinds.items())}")
assert rows == len(reference), (rows, len(reference))
assert distinct == rows, "a row appears twice"
assert kinds == dict(expected_kinds), (kinds, expected_kinds)

real = f"{d}/real.parquet"
(n,) = con.execute(f"select count(*) from read_parquet('{real}')").fetchone()
kind, refs = con.execute(
    f"select kind, value_consts from read_parquet('{real}') where name = 'Nat.add_succ'"
).fetchone()
(ctors,) = con.execute(f"select ctors from read_parquet('{real}') where name = 'Nat'").fetchone()
print(f"real export: {n} rows; Nat.add_succ is a {kind} referencing {refs}; Nat's constructors {ctors}")
assert n == 32
assert kind == "thm" and "Nat.succ" in refs
assert list(ctors) == ["Nat.zero", "Nat.succ"]
print("duckdb: ok")
