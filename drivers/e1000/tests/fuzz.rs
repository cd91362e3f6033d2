//! In-suite fuzzing of malicious device replies: arbitrary descriptor
//! write-backs fed to a ready driver (the long run is `cargo fuzz`, see the
//! crate README). The oracle lives in `paranoid_e1000::model::fuzz`: a frame is
//! accepted only if its write-back allowed it, every other reply is a typed
//! error, nothing panics.

use paranoid_e1000::model::fuzz;
use proptest::prelude::*;

/// Inputs per target (`PARANOID_FUZZ_CASES` overrides).
fn cases() -> u32 {
    std::env::var("PARANOID_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) { 300 } else { 3_000 })
}

/// Write-backs biased towards the interesting cases: DD and EOP mostly set,
/// lengths around the buffer size.
fn rx_chunk() -> impl Strategy<Value = Vec<u8>> {
    (
        0u8..8,
        prop_oneof![0u16..80, 1500u16..2100, any::<u16>()],
        any::<u16>(),
        prop_oneof![Just(0b11u8), Just(0b111u8), any::<u8>()],
        prop_oneof![Just(0u8), any::<u8>()],
        any::<u16>(),
        any::<u8>(),
    )
        .prop_map(|(sel, len, csum, status, errors, special, fill)| {
            let mut c = vec![sel];
            c.extend_from_slice(&len.to_le_bytes());
            c.extend_from_slice(&csum.to_le_bytes());
            c.push(status);
            c.push(errors);
            c.extend_from_slice(&special.to_le_bytes());
            c.push(fill);
            c
        })
}

#[test]
fn rx_writeback_structured() {
    let config = ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let frames = std::cell::Cell::new(0);
    let errors = std::cell::Cell::new(0);
    proptest!(config, |(chunks in prop::collection::vec(rx_chunk(), 1..40))| {
        let r = fuzz::rx_writeback(&chunks.concat());
        frames.set(frames.get() + r.frames);
        errors.set(errors.get() + r.errors);
    });
    println!(
        "rx write-back fuzz: {} inputs, {} frames accepted, {} typed errors",
        cases(),
        frames.get(),
        errors.get()
    );
    let (frames, errors) = (frames.get(), errors.get());
    assert!(frames > 0 && errors > 0, "the fuzzer reached both outcomes");
}

#[test]
fn rx_writeback_raw_bytes() {
    let config = ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(data in prop::collection::vec(any::<u8>(), 0..400))| {
        fuzz::rx_writeback(&data);
    });
}

#[test]
fn tx_writeback_raw_bytes() {
    let config = ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let frames = std::cell::Cell::new(0);
    let errors = std::cell::Cell::new(0);
    proptest!(config, |(data in prop::collection::vec(any::<u8>(), 0..80))| {
        let r = fuzz::tx_writeback(&data);
        frames.set(frames.get() + r.frames);
        errors.set(errors.get() + r.errors);
    });
    println!(
        "tx write-back fuzz: {} inputs, {} completions, {} typed errors",
        cases(),
        frames.get(),
        errors.get()
    );
    let (frames, errors) = (frames.get(), errors.get());
    assert!(frames > 0 && errors > 0, "the fuzzer reached both outcomes");
}
