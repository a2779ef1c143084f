//! A deterministic stand-in for the `lean_line` fuzz target (which needs
//! nightly and cargo-fuzz): thousands of mutations of the real export and
//! of the 3.1 sample (byte flips, digit changes, dropped, swapped and
//! duplicated lines, truncation, random bytes) never make the reader panic,
//! and every error names a line of the input.

use ringworker_lean::ExportReader;

const REAL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/lean4export-Nat.add_succ.ndjson"
);
const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sample-3.1.ndjson");

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = base.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    for _ in 0..1 + rng.below(4) {
        let i = rng.below(lines.len());
        match rng.below(8) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let l = lines[i].clone();
                lines.insert(rng.below(lines.len()), l);
            }
            2 => {
                let j = rng.below(lines.len());
                lines.swap(i, j);
            }
            3 => {
                let n = lines[i].len();
                lines[i].truncate(rng.below(n + 1));
            }
            4 => {
                // A digit somewhere becomes another digit (ids, counts).
                let digits: Vec<usize> = (0..lines[i].len())
                    .filter(|k| lines[i][*k].is_ascii_digit())
                    .collect();
                if !digits.is_empty() {
                    let k = digits[rng.below(digits.len())];
                    lines[i][k] = b'0' + rng.below(10) as u8;
                }
            }
            5 => {
                let n = lines[i].len();
                if n > 0 {
                    let k = rng.below(n);
                    lines[i][k] = rng.next() as u8;
                }
            }
            6 => {
                let junk: Vec<u8> = (0..rng.below(40)).map(|_| rng.next() as u8).collect();
                lines.insert(i, junk);
            }
            _ => {
                // A huge number where an id was.
                let s =
                    String::from_utf8_lossy(&lines[i]).replacen(":1", ":18446744073709551615", 1);
                lines[i] = s.into_bytes();
            }
        }
    }
    lines.join(&b'\n')
}

fn read_everything(input: &[u8]) {
    let lines = input.iter().filter(|b| **b == b'\n').count() as u64 + 1;
    match ExportReader::new(input) {
        Err(e) => assert!(e.line() >= 1 && e.line() <= lines + 1, "{e}"),
        Ok(reader) => {
            for row in reader {
                match row {
                    Ok(row) => assert!(row.type_dag_size <= row.type_tree_size),
                    Err(e) => {
                        assert!(e.line() >= 1 && e.line() <= lines, "{e}");
                        let _ = e.kind();
                        break;
                    }
                }
            }
        }
    }
}

#[test]
fn mutated_exports_never_panic() {
    let real = std::fs::read(REAL).unwrap();
    let sample = std::fs::read(SAMPLE).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..3_000 {
        let base = if round % 2 == 0 { &real } else { &sample };
        read_everything(&mutate(&mut rng, base));
    }
    for len in 0..64 {
        let junk: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        read_everything(&junk);
    }
}
