//! Property tests over random inherited states: random old tables, garbage
//! pointers, translation on or off, an old queue, pending faults. The takeover
//! never panics, never reads memory outside the map (or its own pool), and ends
//! in adopt or fence with a report that matches what the hardware does.
#![cfg(feature = "model")]

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use paranoid::dma::WindowSpec;
use paranoid::mmio::RegisterIo;
use paranoid::sim::SimMemory;
use paranoid::time::Deadline;
use paranoid_vtd::mem::{MemoryMap, PhysMemory};
use paranoid_vtd::model::harness::{POOL, RECOVERY, RECOVERY_LEN};
use paranoid_vtd::model::Harness;
use paranoid_vtd::policy::{FaultPolicy, PolicyConfig};
use paranoid_vtd::regs::{self, Global};
use paranoid_vtd::takeover::{Outcome, Policy, TakeoverConfig};
use paranoid_vtd::Vtd;
use proptest::prelude::*;

const WINDOW: WindowSpec = WindowSpec {
    name: "recovery",
    base: 0x7ff0_0000,
    size: 1 << 20,
    page_size: 4096,
};

/// Physical memory that records every access outside the allowed ranges.
struct Spy {
    inner: SimMemory,
    map: MemoryMap,
    violations: Rc<Cell<u32>>,
}

impl Spy {
    fn allowed(&self, pa: u64) -> bool {
        self.map.contains(pa, 8) || (RECOVERY..RECOVERY + RECOVERY_LEN).contains(&pa)
    }
}

impl PhysMemory for Spy {
    fn read_u64(&mut self, pa: u64) -> Option<u64> {
        if !self.allowed(pa) {
            self.violations.set(self.violations.get() + 1);
        }
        self.inner.read_u64(pa)
    }
    fn write_u64(&mut self, pa: u64, v: u64) -> bool {
        // Writes only ever go to the pool.
        if !(POOL..POOL + (4 << 20)).contains(&pa) {
            self.violations.set(self.violations.get() + 1);
        }
        self.inner.write_u64(pa, v)
    }
}

#[derive(Debug, Clone)]
enum Corruption {
    /// Overwrite a root entry word (bus, high half?, value).
    Root(u8, bool, u64),
    /// Overwrite a context entry word of device `n`.
    Context(usize, bool, u64),
    /// Overwrite a word somewhere in the old table area.
    Anywhere(u64, u64),
    /// Point RTADDR somewhere.
    Rtaddr(u64),
}

fn corruption() -> impl Strategy<Value = Corruption> {
    let value = prop_oneof![
        any::<u64>(),
        (0u64..0x0300_0000).prop_map(|p| p | 1),
        (0u64..0x0300_0000).prop_map(|p| (p & !0xfff) | 1),
        Just(0x0020_0000 | 1),
        Just(0x0100_0000 | 1),
    ];
    prop_oneof![
        (0u8..3, any::<bool>(), value.clone()).prop_map(|(b, h, v)| Corruption::Root(b, h, v)),
        (0usize..4, any::<bool>(), value.clone())
            .prop_map(|(d, h, v)| Corruption::Context(d, h, v)),
        (0u64..0x4_0000, value.clone()).prop_map(|(o, v)| Corruption::Anywhere(o & !7, v)),
        value.prop_map(Corruption::Rtaddr),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn takeover_of_any_inherited_state(
        devices in proptest::collection::btree_map(
            prop::sample::select(vec![0x0008u16, 0x0010, 0x0020, 0x0100, 0x0208]),
            0u16..300,
            0..4,
        ),
        te in any::<bool>(),
        old_queue in any::<bool>(),
        adopt in any::<bool>(),
        corruptions in proptest::collection::vec(corruption(), 0..4),
        stale_before in 0usize..4,
    ) {
        let h = Harness::qemu_like();
        let devices: Vec<(u16, u16)> = devices.into_iter().collect();
        let old = if te { Some(h.old_kernel_tables(&devices)) } else { None };
        if old_queue {
            h.old_kernel_queue(0);
        }
        if let Some(old) = &old {
            for c in &corruptions {
                match *c {
                    Corruption::Root(bus, hi, v) => {
                        h.memory.write_u64(old.root + u64::from(bus) * 16 + u64::from(hi) * 8, v);
                    }
                    Corruption::Context(n, hi, v) => {
                        if let Some(&(sid, _)) = devices.get(n) {
                            if let Some(&(_, ctx)) = old.context_tables.iter().find(|(b, _)| *b == (sid >> 8) as u8) {
                                h.memory.write_u64(ctx + u64::from(sid & 0xff) * 16 + u64::from(hi) * 8, v);
                            }
                        }
                    }
                    Corruption::Anywhere(off, v) => {
                        h.memory.write_u64(0x0020_0000 + off, v);
                    }
                    Corruption::Rtaddr(v) => {
                        let mut r = h.registers();
                        r.write64(regs::RTADDR, v);
                        let g = h.model.borrow_mut().gsts();
                        r.write32(regs::GCMD, (g & Global::PERSISTENT | Global::SRTP).bits());
                    }
                }
            }
            // Stale DMA before the takeover leaves faults pending.
            let dma = h.dma();
            for m in old.mappings.iter().take(stale_before) {
                let _ = dma.write(m.source_id, m.iova + 0x20_0000, b"x");
            }
        }
        let violations = Rc::new(Cell::new(0));
        let spy = Spy { inner: h.memory(), map: h.memory_map(), violations: violations.clone() };
        let policy = if adopt { Policy::Adopt } else { Policy::Fence };
        let deadline = Deadline::after(&h.clock, Duration::from_secs(1));
        let (mut vtd, report) = Vtd::take_over(
            h.registers(), h.clock.clone(), spy, h.pool(), h.memory_map(),
            &TakeoverConfig::new(policy, WINDOW), deadline,
        ).unwrap();
        prop_assert_eq!(violations.get(), 0, "read outside the memory map");
        prop_assert_eq!(report.translation_was_enabled, te);
        match (te, adopt, report.outcome) {
            (false, _, Outcome::Fresh) => {}
            (true, false, Outcome::Fenced) => {}
            (true, true, Outcome::Adopted) => {
                prop_assert_eq!(report.contexts_adopted, report.old_contexts);
                prop_assert!(report.old_domains_reserved >= 1 || report.old_contexts == 0);
            }
            (true, true, Outcome::FencedAfterAdoptFailed(_)) => prop_assert_eq!(report.contexts_adopted, 0),
            other => prop_assert!(false, "unexpected {:?}", other),
        }
        {
            let mut m = h.model.borrow_mut();
            prop_assert!(m.gsts().contains(Global::TE));
            prop_assert_eq!(m.root_table(), vtd.root_table());
            prop_assert_eq!(m.stats.gcmd_multi_command_writes, 0);
            prop_assert_eq!(m.stats.translation_disables, 0);
        }
        let dma = h.dma();
        if let Some(old) = &old {
            if !report.adopted() {
                // Fenced: no stale DMA lands anywhere.
                for m in &old.mappings {
                    prop_assert!(dma.write(m.source_id, m.iova, b"stale").is_err());
                }
            }
        }
        // The recovery path works whatever was inherited.
        vtd.attach(0x0018, deadline).unwrap();
        vtd.map_range(WINDOW.base, h.window_phys(), 0x2000, deadline).unwrap();
        dma.write(0x0018, WINDOW.base + 0x1000, b"ok").unwrap();
        let mut policy = FaultPolicy::new(PolicyConfig::default());
        for _ in 0..3 {
            policy.service(&mut vtd, &mut |_| {}, deadline).unwrap();
        }
        prop_assert_eq!(violations.get(), 0);
    }
}
