//! Short in-suite fuzzing of the malicious-device replies (proptest over raw
//! bytes; the long runs are the cargo-fuzz targets in `fuzz/`, see the README).
//! `PARANOID_FUZZ_CASES` scales every target.

use paranoid_nvme::model::fuzz;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

fn cases(default: u32) -> u32 {
    std::env::var("PARANOID_FUZZ_CASES")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
}

fn runner(cases: u32, seed: u8) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]),
    )
}

/// A valid QEMU-like Identify Controller + Namespace pair, then byte mutations
/// aimed at the fields the driver reads (and anywhere else).
fn identify_bytes() -> impl Strategy<Value = Vec<u8>> {
    let hot = prop_oneof![
        Just(77usize),
        Just(512),
        Just(513),
        516usize..520,
        88usize..92,
        4096usize..4112,
        Just(4096 + 25),
        Just(4096 + 26),
        4096 + 128usize..4096 + 192,
        0usize..8192,
    ];
    vec((hot, any::<u8>()), 0..12).prop_map(|muts| {
        let mut d = vec![0u8; 8192];
        d[77] = 7;
        d[512] = 0x66;
        d[513] = 0x44;
        d[516..520].copy_from_slice(&256u32.to_le_bytes());
        d[4096..4104].copy_from_slice(&2048u64.to_le_bytes());
        d[4104..4112].copy_from_slice(&2048u64.to_le_bytes());
        d[4096 + 25] = 7;
        d[4096 + 128 + 2] = 9;
        for (at, v) in muts {
            if let Some(b) = d.get_mut(at) {
                *b = v;
            }
        }
        d
    })
}

#[test]
fn fuzz_completion_queue_entries() {
    let n = cases(20_000);
    runner(n, 1)
        .run(&vec(any::<u8>(), 2..300), |data| {
            fuzz::completion_queue(&data).map_err(TestCaseError::fail)
        })
        .unwrap();
    println!("fuzz completion_queue: {n} inputs, 0 failures");
}

#[test]
fn fuzz_identify_data() {
    let n = cases(20_000);
    runner(n, 2)
        .run(&identify_bytes(), |data| {
            fuzz::identify(&data).map_err(TestCaseError::fail)
        })
        .unwrap();
    println!("fuzz identify: {n} inputs, 0 failures");
}

#[test]
fn fuzz_driver_with_raw_completions() {
    let n = cases(2_000);
    // Raw entries that mostly look like completions of real commands: low
    // cids, small SQ heads, the right queue, success, with bits flipped.
    let entry = (
        0u8..12,
        any::<u8>(),
        prop_oneof![any::<u32>(), Just(0)],
        prop_oneof![any::<u32>(), Just(0)],
        prop_oneof![any::<u32>(), 0u32..4, (0u32..3).prop_map(|q| q << 16)],
        prop_oneof![any::<u32>(), 0u32..8],
    )
        .prop_map(|(i, flags, a, b, c, d)| {
            let mut v = vec![i, flags];
            for w in [a, b, c, d] {
                v.extend_from_slice(&w.to_le_bytes());
            }
            v
        });
    let outcomes = std::cell::RefCell::new(std::collections::BTreeMap::<String, u64>::new());
    runner(n, 3)
        .run(&vec(entry, 1..4), |entries| {
            let data: Vec<u8> = entries.concat();
            let o = fuzz::driver(&data).map_err(TestCaseError::fail)?;
            *outcomes.borrow_mut().entry(o.label()).or_default() += 1;
            Ok(())
        })
        .unwrap();
    println!(
        "fuzz driver: {n} inputs, 0 failures; outcomes {:?}",
        outcomes.borrow()
    );
}
