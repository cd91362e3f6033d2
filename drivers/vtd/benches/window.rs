//! Window map+unmap on the simulated unit: batched invalidation against one
//! invalidation per page, in the same run.
//!
//! `cargo bench -p paranoid-vtd --features model --bench window`

use std::hint::black_box;
use std::time::{Duration, Instant};

use paranoid::dma::WindowSpec;
use paranoid::time::Deadline;
use paranoid_vtd::invalidate::Mode;
use paranoid_vtd::model::Harness;
use paranoid_vtd::takeover::{Policy, TakeoverConfig};
use paranoid_vtd::Vtd;

const WINDOW: WindowSpec = WindowSpec {
    name: "recovery",
    base: 0x7ff0_0000,
    size: 1 << 20,
    page_size: 4096,
};
const PAGES: u64 = 256;

/// Host nanoseconds per page of map+unmap (best of `rounds`), IOTLB
/// invalidations per round, and simulated device time per page (100 ns per
/// register access, 1 µs per poll iteration).
fn run(mode: Mode, batched: bool, rounds: u32) -> (f64, u64, f64) {
    let h = Harness::qemu_like();
    let config = TakeoverConfig {
        invalidation: mode,
        ..TakeoverConfig::new(Policy::Fence, WINDOW)
    };
    let d = Deadline::at_ns(u64::MAX);
    let (mut vtd, _) = Vtd::take_over(
        h.registers(),
        h.clock.clone(),
        h.memory(),
        h.pool(),
        h.memory_map(),
        &config,
        d,
    )
    .expect("takeover");
    vtd.attach(0x18, d).expect("attach");
    let phys = h.window_phys();
    let mut best = Duration::MAX;
    let inv_before = h.model.borrow().stats.iotlb_invalidations;
    let sim_before = paranoid::time::Clock::now_ns(&h.clock);
    for _ in 0..rounds {
        let t = Instant::now();
        if batched {
            vtd.map_range(WINDOW.base, phys, PAGES * 4096, d)
                .expect("map");
            vtd.unmap_range(WINDOW.base, PAGES * 4096, d)
                .expect("unmap");
        } else {
            for p in 0..PAGES {
                vtd.map_page_now(WINDOW.base + p * 4096, phys + p * 4096, d)
                    .expect("map");
            }
            for p in 0..PAGES {
                black_box(
                    vtd.unmap_page_now(WINDOW.base + p * 4096, d)
                        .expect("unmap"),
                );
            }
        }
        best = best.min(t.elapsed());
    }
    let invalidations =
        (h.model.borrow().stats.iotlb_invalidations - inv_before) / u64::from(rounds);
    let sim = (paranoid::time::Clock::now_ns(&h.clock) - sim_before) as f64
        / f64::from(rounds)
        / PAGES as f64;
    (best.as_nanos() as f64 / PAGES as f64, invalidations, sim)
}

fn main() {
    let rounds = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    println!("window map+unmap of {PAGES} x 4 KiB pages, best of {rounds} rounds (simulated QEMU-like unit)");
    for (name, mode) in [("queued", Mode::Queued), ("register", Mode::Register)] {
        let (batched, bi, bs) = run(mode, true, rounds);
        let (per_page, pi, ps) = run(mode, false, rounds);
        println!(
            "{name:>8}: batched {batched:7.1} ns/page host, {bs:7.1} ns/page simulated ({bi} IOTLB invalidations / {PAGES} pages) | per-page {per_page:7.1} ns/page host, {ps:7.1} ns/page simulated ({pi}) | ratio host x{:.2}, simulated x{:.2}",
            per_page / batched,
            ps / bs
        );
    }
}
