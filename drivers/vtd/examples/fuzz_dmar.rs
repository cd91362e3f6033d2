//! A stable, dependency-free long-run fuzzer for the DMAR parser and the ACPI
//! walk: mutates real-shaped tables (byte flips, length rewrites, truncation,
//! splices), repairs the checksum most of the time, and checks every accepted
//! table's invariants. Deterministic per seed.
//!
//! `cargo run --release -p paranoid-vtd --features model --example fuzz_dmar -- 10000000 [seed]`

use paranoid_vtd::acpi::dmar::build::{self, atsr, dmar, drhd, qemu_like, rmrr, scope};
use paranoid_vtd::acpi::fuzzing;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seeds() -> Vec<Vec<u8>> {
    vec![
        qemu_like(),
        dmar(
            46,
            5,
            &[
                drhd(
                    0,
                    0,
                    0xfed9_0000,
                    &[
                        scope(1, 0, 0, &[(2, 0)]),
                        scope(2, 0, 0, &[(0x1c, 0), (0, 0)]),
                    ],
                ),
                drhd(
                    1,
                    0,
                    0xfed9_1000,
                    &[
                        scope(3, 8, 0xf0, &[(0x1f, 0)]),
                        scope(4, 0, 0, &[(0x1f, 7)]),
                    ],
                ),
                rmrr(
                    0,
                    0x7d00_0000,
                    0x7dff_ffff,
                    &[scope(1, 0, 0, &[(0x14, 0)]), scope(1, 0, 0, &[(0x1a, 0)])],
                ),
                atsr(1, 0, &[]),
                vec![
                    3, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0xd9, 0xfe, 0, 0, 0, 0, 1, 0, 0, 0,
                ],
            ],
        ),
        dmar(39, 0, &[]),
    ]
}

fn mutate(rng: &mut Rng, t: &mut Vec<u8>, pool: &[Vec<u8>]) {
    for _ in 0..=rng.below(6) {
        let len = t.len().max(1);
        match rng.below(8) {
            0 => {
                let i = rng.below(len);
                if let Some(b) = t.get_mut(i) {
                    *b ^= 1 << rng.below(8);
                }
            }
            1 => {
                let i = rng.below(len);
                if let Some(b) = t.get_mut(i) {
                    *b = rng.next() as u8;
                }
            }
            // Rewrite a 16-bit length-looking field with an interesting value.
            2 => {
                let i = rng.below(len);
                let v: u16 = [0, 1, 3, 4, 5, 6, 7, 8, 15, 16, 23, 24, 0xff, 0xffff][rng.below(14)];
                for (k, b) in v.to_le_bytes().into_iter().enumerate() {
                    if let Some(x) = t.get_mut(i + k) {
                        *x = b;
                    }
                }
            }
            3 => t.truncate(rng.below(len + 1)),
            // Splice a piece of another seed in.
            4 => {
                let src = &pool[rng.below(pool.len())];
                let a = rng.below(src.len());
                let b = a + rng.below(src.len() - a + 1);
                let at = rng.below(len + 1).min(t.len());
                let piece: Vec<u8> = src[a..b].to_vec();
                t.splice(at..at, piece);
            }
            5 => {
                let n = rng.below(8);
                t.extend((0..n).map(|_| rng.next() as u8));
            }
            // Rewrite the table length field.
            6 => {
                let v = [
                    0u32,
                    35,
                    36,
                    47,
                    48,
                    t.len() as u32,
                    t.len() as u32 + 1,
                    u32::MAX,
                ][rng.below(8)];
                if t.len() >= 8 {
                    t[4..8].copy_from_slice(&v.to_le_bytes());
                }
            }
            _ => {
                let i = rng.below(len);
                let j = rng.below(len);
                if i < t.len() && j < t.len() {
                    t.swap(i, j);
                }
            }
        }
    }
    if rng.below(10) != 0 {
        build::fix_checksum(t);
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let iterations: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let seed: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(0x5eed_d3a7);
    let pool = seeds();
    let mut rng = Rng(seed | 1);
    let mut accepted = 0u64;
    let start = std::time::Instant::now();
    for _ in 0..iterations {
        let mut t = pool[rng.below(pool.len())].clone();
        mutate(&mut rng, &mut t, &pool);
        if paranoid_vtd::acpi::Dmar::parse(&t).is_ok() {
            accepted += 1;
        }
        build::exercise(&t);
        fuzzing::walk_image(&t);
    }
    println!(
        "fuzz_dmar: {iterations} inputs, {accepted} accepted by the parser, no panic, {:.1} s (seed {seed:#x})",
        start.elapsed().as_secs_f64()
    );
}
