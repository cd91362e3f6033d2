//! Property tests over random inherited states: random old tables, garbage
//! pointers, translation on or off, an old queue, pending faults.
//!
//! The oracle knows what each generated state injects ([`Injected`]) and
//! judges the takeover by an explicit table ([`EXPLAINS`]): a state with
//! nothing wrong must adopt (under `Adopt`) or fence (under `Fence`) with
//! every old context accounted for; a failed adopt must carry an error whose
//! class one of the injected faults explains; a corrupt RTADDR or a root
//! entry that loops back must fail with exactly the error the spec's rule
//! gives. Where DMA lands is judged from the model's own access log (what the
//! unit decided for each access), never from the core's report. Beyond that:
//! the takeover never panics, never reads memory outside the map (or its own
//! pool), never writes outside its pool, and never turns translation on before
//! a root table is latched.
#![cfg(feature = "model")]

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use paranoid::dma::WindowSpec;
use paranoid::mmio::RegisterIo;
use paranoid::phys::{MemoryMap, PhysError, PhysRead, PhysWrite};
use paranoid::sim::SimMemory;
use paranoid::time::Deadline;
use paranoid_vtd::model::harness::{POOL, RECOVERY, RECOVERY_LEN};
use paranoid_vtd::model::{Harness, OldState};
use paranoid_vtd::policy::{FaultPolicy, PolicyConfig};
use paranoid_vtd::regs::{self, Global, RTADDR_TTM_MASK};
use paranoid_vtd::takeover::{AdoptError, Outcome, Policy, TakeoverConfig, TakeoverReport};
use paranoid_vtd::Vtd;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};

const WINDOW: WindowSpec = WindowSpec {
    name: "recovery",
    base: 0x7ff0_0000,
    size: 1 << 20,
    page_size: 4096,
};

/// The recovery device the test attaches after the takeover.
const RECOVERY_DEVICE: u16 = 0x0018;

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

impl PhysRead for Spy {
    fn read(&self, pa: u64, out: &mut [u8]) -> Result<(), PhysError> {
        if !self.allowed(pa) {
            self.violations.set(self.violations.get() + 1);
        }
        PhysRead::read(&self.inner, pa, out)
    }
    fn read_u64(&self, pa: u64) -> Result<u64, PhysError> {
        if !self.allowed(pa) {
            self.violations.set(self.violations.get() + 1);
        }
        PhysRead::read_u64(&self.inner, pa)
    }
}

impl PhysWrite for Spy {
    fn write_u64(&mut self, pa: u64, v: u64) -> Result<(), PhysError> {
        // Writes only ever go to the pool.
        if !(POOL..POOL + (4 << 20)).contains(&pa) {
            self.violations.set(self.violations.get() + 1);
        }
        PhysWrite::write_u64(&mut self.inner, pa, v)
    }
}

#[derive(Debug, Clone)]
enum Corruption {
    /// Overwrite a root entry word (bus, high half?, value).
    Root(u8, bool, u64),
    /// Point bus `n`'s root entry back at the root table (a loop).
    RootLoop(u8),
    /// Overwrite a context entry word of device `n`.
    Context(usize, bool, u64),
    /// Overwrite a word somewhere in the old table area.
    Anywhere(u64, u64),
    /// Point RTADDR somewhere.
    Rtaddr(u64),
}

/// What a generated state injects: the faults (`Rtaddr` … `TableArea`) and
/// the ordinary inherited conditions that are not faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Injected {
    /// RTADDR rewritten (and latched) to a generated value.
    Rtaddr,
    /// A root entry word overwritten, or pointed back at the root table.
    RootEntry,
    /// A context entry word overwritten.
    ContextEntry,
    /// A word of the old table area overwritten (any table, any level).
    TableArea,
    /// Not a fault: translation left on by the dead kernel.
    TranslationOn,
    /// Not a fault: the dead kernel's invalidation queue left on.
    OldQueue,
    /// Not a fault: stale DMA faulted before the takeover.
    FaultsPending,
}

impl Injected {
    const fn is_fault(self) -> bool {
        matches!(
            self,
            Injected::Rtaddr | Injected::RootEntry | Injected::ContextEntry | Injected::TableArea
        )
    }
}

/// The oracle's table: which failed-adopt classes each injected fault can
/// explain. A corrupt RTADDR makes everything read through it garbage; a root
/// entry only what hangs below it; a context entry its own entry and the page
/// tables it points to.
const EXPLAINS: &[(Injected, &[&str])] = &[
    (
        Injected::Rtaddr,
        &[
            "scalable-mode",
            "root-pointer",
            "root-entry",
            "context-table",
            "context-entry",
            "window-collision",
            "page-walk",
        ],
    ),
    (
        Injected::RootEntry,
        &[
            "root-entry",
            "context-table",
            "context-entry",
            "window-collision",
            "page-walk",
        ],
    ),
    (
        Injected::ContextEntry,
        &["context-entry", "window-collision", "page-walk"],
    ),
    (
        Injected::TableArea,
        &[
            "root-entry",
            "context-table",
            "context-entry",
            "window-collision",
            "page-walk",
        ],
    ),
];

fn class(e: &AdoptError) -> &'static str {
    match e {
        AdoptError::ScalableMode { .. } => "scalable-mode",
        AdoptError::RootPointer { .. } => "root-pointer",
        AdoptError::RootEntry { .. } => "root-entry",
        AdoptError::ContextTable { .. } => "context-table",
        AdoptError::ContextEntry { .. } => "context-entry",
        AdoptError::WindowCollision { .. } => "window-collision",
        AdoptError::PageWalk { .. } => "page-walk",
        AdoptError::OutOfFrames => "out-of-frames",
    }
}

/// True when one of the injected faults explains `e`.
fn explained(injected: &[Injected], e: &AdoptError) -> bool {
    let c = class(e);
    EXPLAINS
        .iter()
        .any(|(i, classes)| injected.contains(i) && classes.contains(&c))
}

/// One generated inherited state.
#[derive(Debug, Clone)]
struct State {
    devices: Vec<(u16, u16)>,
    te: bool,
    old_queue: bool,
    adopt: bool,
    corruptions: Vec<Corruption>,
    stale_before: usize,
}

impl State {
    fn injected(&self) -> Vec<Injected> {
        let mut v = Vec::new();
        if self.te {
            v.push(Injected::TranslationOn);
            for c in &self.corruptions {
                v.push(match c {
                    Corruption::Rtaddr(_) => Injected::Rtaddr,
                    Corruption::Root(..) | Corruption::RootLoop(_) => Injected::RootEntry,
                    Corruption::Context(..) => Injected::ContextEntry,
                    Corruption::Anywhere(..) => Injected::TableArea,
                });
            }
            if self.stale_before > 0 && !self.devices.is_empty() {
                v.push(Injected::FaultsPending);
            }
        }
        if self.old_queue {
            v.push(Injected::OldQueue);
        }
        v.sort();
        v.dedup();
        v
    }
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
        (0u8..3).prop_map(Corruption::RootLoop),
        (0usize..4, any::<bool>(), value.clone())
            .prop_map(|(d, h, v)| Corruption::Context(d, h, v)),
        (0u64..0x4_0000, value.clone()).prop_map(|(o, v)| Corruption::Anywhere(o & !7, v)),
        value.prop_map(Corruption::Rtaddr),
    ]
}

fn state() -> impl Strategy<Value = State> {
    (
        proptest::collection::btree_map(
            prop::sample::select(vec![0x0008u16, 0x0010, 0x0020, 0x0100, 0x0208]),
            0u16..300,
            0..4,
        ),
        prop::bool::weighted(0.75),
        any::<bool>(),
        any::<bool>(),
        prop_oneof![
            2 => Just(0usize),
            3 => Just(1usize),
            1 => 2usize..4,
        ]
        .prop_flat_map(|n| proptest::collection::vec(corruption(), n..=n)),
        0usize..4,
    )
        .prop_map(
            |(devices, te, old_queue, adopt, corruptions, stale_before)| State {
                devices: devices.into_iter().collect(),
                te,
                old_queue,
                adopt,
                corruptions,
                stale_before,
            },
        )
}

/// Plants the state; returns the dead kernel's tables (when translation was on).
fn plant(h: &Harness, s: &State) -> Option<OldState> {
    let old = if s.te {
        Some(h.old_kernel_tables(&s.devices))
    } else {
        None
    };
    if s.old_queue {
        h.old_kernel_queue(0);
    }
    let old_ref = old.as_ref()?;
    for c in &s.corruptions {
        match *c {
            Corruption::Root(bus, hi, v) => {
                h.memory
                    .write_u64(old_ref.root + u64::from(bus) * 16 + u64::from(hi) * 8, v);
            }
            Corruption::RootLoop(bus) => {
                h.memory
                    .write_u64(old_ref.root + u64::from(bus) * 16, old_ref.root | 1);
                h.memory
                    .write_u64(old_ref.root + u64::from(bus) * 16 + 8, 0);
            }
            Corruption::Context(n, hi, v) => {
                if let Some(&(sid, _)) = s.devices.get(n) {
                    if let Some(&(_, ctx)) = old_ref
                        .context_tables
                        .iter()
                        .find(|(b, _)| *b == (sid >> 8) as u8)
                    {
                        h.memory
                            .write_u64(ctx + u64::from(sid & 0xff) * 16 + u64::from(hi) * 8, v);
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
    for m in old_ref.mappings.iter().take(s.stale_before) {
        let _ = dma.write(m.source_id, m.iova + 0x20_0000, b"x");
    }
    old
}

/// The exact failed-adopt class the spec's rule gives, when the state's only
/// fault is one whose effect is fully determined: a corrupt RTADDR (checked
/// before anything is read) or a root entry pointing back at the root table.
fn exact_expectation(h: &Harness, s: &State) -> Option<&'static str> {
    let [only] = s.corruptions.as_slice() else {
        return None;
    };
    match *only {
        Corruption::Rtaddr(_) => {
            let rtaddr = h.registers().read64(regs::RTADDR).into_raw_for_report();
            let root = rtaddr & !0xfff;
            if rtaddr & RTADDR_TTM_MASK != 0 {
                Some("scalable-mode")
            } else if rtaddr & 0xfff != 0 || root >> 39 != 0 || !h.memory_map().contains(root, 4096)
            {
                Some("root-pointer")
            } else {
                None
            }
        }
        // Buses below a looping one are the dead kernel's valid tables.
        Corruption::RootLoop(_) => Some("context-table"),
        _ => None,
    }
}

/// What a case ended in, for the summary table.
fn outcome_name(o: &Outcome) -> String {
    match o {
        Outcome::Adopted => "adopted".into(),
        Outcome::Fenced => "fenced".into(),
        Outcome::Fresh => "fresh".into(),
        Outcome::FencedAfterAdoptFailed(e) => format!("adopt failed: {}", class(e)),
    }
}

/// Checks the report against the injected faults by the table.
fn judge_report(
    exact: Option<&'static str>,
    s: &State,
    injected: &[Injected],
    report: &TakeoverReport,
) -> Result<(), TestCaseError> {
    let faulty = injected.iter().any(|i| i.is_fault());
    prop_assert_eq!(report.translation_was_enabled, s.te);
    let old_dids: Vec<u16> = s.devices.iter().map(|&(_, d)| d).collect();
    match (s.te, s.adopt, report.outcome) {
        (false, _, Outcome::Fresh) => prop_assert_eq!(report.old_root, None),
        (true, false, Outcome::Fenced) => {
            prop_assert_eq!(report.contexts_adopted, 0, "fence copies no old entry");
            match report.old_tables_unreadable {
                None if !faulty => {
                    prop_assert_eq!(report.old_contexts as usize, s.devices.len());
                }
                None => {}
                Some(e) => prop_assert!(
                    explained(injected, &e),
                    "unreadable old tables ({}) with only {:?} injected",
                    class(&e),
                    injected
                ),
            }
        }
        (true, true, Outcome::Adopted) => {
            prop_assert_eq!(report.contexts_adopted, report.old_contexts);
            if !faulty {
                prop_assert_eq!(report.old_contexts as usize, s.devices.len());
            }
            let mut distinct = old_dids.clone();
            distinct.sort_unstable();
            distinct.dedup();
            if !faulty {
                prop_assert!(
                    report.old_domains_reserved as usize >= distinct.len(),
                    "{} old domain ids reserved, {} in use",
                    report.old_domains_reserved,
                    distinct.len()
                );
                prop_assert!(
                    !old_dids.contains(&report.recovery_domain),
                    "recovery domain {} reuses an old id",
                    report.recovery_domain
                );
            }
        }
        (true, true, Outcome::FencedAfterAdoptFailed(e)) => {
            prop_assert_eq!(report.contexts_adopted, 0);
            prop_assert!(
                faulty,
                "adopt of a state with nothing wrong failed: {}",
                class(&e)
            );
            prop_assert!(
                explained(injected, &e),
                "adopt failed with {} but only {:?} was injected",
                class(&e),
                injected
            );
        }
        other => prop_assert!(
            false,
            "outcome {:?} for te={} adopt={}",
            other,
            s.te,
            s.adopt
        ),
    }
    if s.te {
        if let Some(want) = exact {
            let got = match report.outcome {
                Outcome::FencedAfterAdoptFailed(e) => Some(class(&e)),
                _ => report.old_tables_unreadable.as_ref().map(class),
            };
            prop_assert_eq!(got, Some(want), "{:?}", s.corruptions);
        }
    }
    Ok(())
}

/// Sends stale DMA through every old mapping and the recovery device's DMA
/// into the window, and judges each from the model's own access log.
fn judge_dma(
    h: &Harness,
    old: Option<&OldState>,
    report: &TakeoverReport,
) -> Result<(), TestCaseError> {
    let dma = h.dma();
    let window_phys = h.window_phys();
    let recovery_ram = RECOVERY..RECOVERY + RECOVERY_LEN;
    let start = h.model.borrow().accesses().len();
    if let Some(old) = old {
        for m in &old.mappings {
            let _ = dma.write(m.source_id, m.iova, b"stale");
        }
    }
    dma.write(RECOVERY_DEVICE, WINDOW.base + 0x1000, b"ok")
        .map_err(|e| TestCaseError::fail(format!("recovery DMA refused: {e:?}")))?;
    let m = h.model.borrow();
    prop_assert_eq!(m.accesses_dropped(), 0);
    let log = m.accesses().get(start..).unwrap_or(&[]);
    for a in log {
        if a.source == RECOVERY_DEVICE {
            prop_assert_eq!(a.outcome, Ok(window_phys + 0x1000), "recovery DMA");
            continue;
        }
        match a.outcome {
            Err(_) => {}
            Ok(pa) => {
                prop_assert!(
                    report.adopted(),
                    "stale DMA from {:#06x} landed at {:#x} though the takeover did not adopt",
                    a.source,
                    pa
                );
                prop_assert!(
                    !recovery_ram.contains(&pa),
                    "stale DMA landed in the recovery kernel's memory at {:#x}",
                    pa
                );
            }
        }
    }
    Ok(())
}

fn check(s: &State, tally: &RefCell<BTreeMap<(String, String), u32>>) -> Result<(), TestCaseError> {
    let h = Harness::qemu_like();
    let old = plant(&h, s);
    let injected = s.injected();
    // From RTADDR as the dead kernel left it, before the takeover rewrites it.
    let exact = if s.te { exact_expectation(&h, s) } else { None };
    let violations = Rc::new(Cell::new(0));
    let spy = Spy {
        inner: h.memory(),
        map: h.memory_map(),
        violations: violations.clone(),
    };
    let policy = if s.adopt {
        Policy::Adopt
    } else {
        Policy::Fence
    };
    let deadline = Deadline::after(&h.clock, Duration::from_secs(1));
    let (mut vtd, report) = Vtd::take_over(
        h.registers(),
        h.clock.clone(),
        spy,
        h.pool(),
        h.memory_map(),
        &TakeoverConfig::new(policy, WINDOW),
        deadline,
    )
    .map_err(|e| TestCaseError::fail(format!("takeover error {e:?} with {injected:?}")))?;
    prop_assert_eq!(violations.get(), 0, "read outside the memory map");
    judge_report(exact, s, &injected, &report)?;
    {
        let mut m = h.model.borrow_mut();
        prop_assert!(m.gsts().contains(Global::TE));
        prop_assert_eq!(m.root_table(), vtd.root_table());
        prop_assert_eq!(m.stats.gcmd_multi_command_writes, 0);
        prop_assert_eq!(m.stats.translation_disables, 0);
        prop_assert_eq!(m.stats.translation_enabled_without_root, 0);
    }
    // Faultless adopt keeps each stale access landing in its own old buffer.
    if report.adopted() && !injected.iter().any(|i| i.is_fault()) {
        if let Some(old) = &old {
            let dma = h.dma();
            let start = h.model.borrow().accesses().len();
            for m in &old.mappings {
                let _ = dma.write(m.source_id, m.iova, b"stale");
            }
            let model = h.model.borrow();
            let log = model.accesses().get(start..).unwrap_or(&[]);
            prop_assert_eq!(log.len(), old.mappings.len());
            for (a, m) in log.iter().zip(&old.mappings) {
                prop_assert_eq!(a.outcome, Ok(m.pa), "adopted DMA of {:#06x}", m.source_id);
            }
        }
    }
    // The recovery path works whatever was inherited.
    vtd.attach(RECOVERY_DEVICE, deadline)
        .map_err(|e| TestCaseError::fail(format!("attach: {e:?}")))?;
    vtd.map_range(WINDOW.base, h.window_phys(), 0x2000, deadline)
        .map_err(|e| TestCaseError::fail(format!("map: {e:?}")))?;
    judge_dma(&h, old.as_ref(), &report)?;
    let mut policy = FaultPolicy::new(PolicyConfig::default());
    for _ in 0..3 {
        policy
            .service(&mut vtd, &mut |_| {}, deadline)
            .map_err(|e| TestCaseError::fail(format!("service: {e:?}")))?;
    }
    prop_assert_eq!(violations.get(), 0);
    let faults: Vec<String> = injected
        .iter()
        .filter(|i| i.is_fault())
        .map(|i| format!("{i:?}"))
        .collect();
    let key = if faults.is_empty() {
        "none".to_string()
    } else {
        faults.join("+")
    };
    *tally
        .borrow_mut()
        .entry((key, outcome_name(&report.outcome)))
        .or_default() += 1;
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PARANOID_VTD_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128)
}

#[test]
fn takeover_of_any_inherited_state() {
    let mut runner = TestRunner::new(RunnerConfig {
        cases: cases(),
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let tally = RefCell::new(BTreeMap::new());
    let result = runner.run(&state(), |s| check(&s, &tally));
    println!(
        "vtd inherited states: {} cases (PARANOID_VTD_CASES)",
        cases()
    );
    println!(
        "  {:<44} {:<32} {:>5}",
        "faults injected", "outcome", "cases"
    );
    for ((faults, outcome), n) in tally.borrow().iter() {
        println!("  {faults:<44} {outcome:<32} {n:>5}");
    }
    println!("  oracle table (fault: failed-adopt classes it explains):");
    for (i, classes) in EXPLAINS {
        println!("    {:?}: {}", i, classes.join(", "));
    }
    if let Err(e) = result {
        panic!("{e}");
    }
}
