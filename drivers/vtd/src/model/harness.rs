//! A simulated machine around the model: memory, a dead kernel's tables, DMA.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use paranoid::mmio::RegisterIo;
use paranoid::sim::{SimClock, SimDma, SimMemory, SimMmio, Translate};

use super::VtdModel;
use crate::mem::FramePool;
use crate::regs::{self, Global, Levels};
use crate::tables::{write_entry, ContextEntry, PageTable, RootEntry};
use paranoid::phys::MemoryMap;

/// Simulated RAM: 48 MiB from 0.
pub const RAM: u64 = 0x0300_0000;
/// Where the dead kernel's tables are built (2 MiB).
pub const OLD_TABLES: u64 = 0x0020_0000;
/// The dead kernel's DMA buffers (64 KiB per device).
pub const OLD_BUFFERS: u64 = 0x0080_0000;
/// The IOVA the dead kernel mapped its buffers at.
pub const OLD_IOVA: u64 = 0x1000_0000;
/// Pages mapped per device by the dead kernel.
pub const OLD_PAGES: u64 = 16;
/// The recovery kernel's reservation (16 MiB), excluded from the old memory map.
pub const RECOVERY: u64 = 0x0100_0000;
/// Size of the recovery reservation.
pub const RECOVERY_LEN: u64 = 0x0100_0000;
/// The frame pool inside the reservation (4 MiB).
pub const POOL: u64 = RECOVERY;
/// Physical backing of the recovery window inside the reservation (1 MiB).
pub const WINDOW_PHYS: u64 = RECOVERY + 0x0080_0000;

/// One mapping the dead kernel left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OldMapping {
    /// The device.
    pub source_id: u16,
    /// Its old domain id.
    pub did: u16,
    /// First IOVA.
    pub iova: u64,
    /// Physical address it maps to.
    pub pa: u64,
    /// Pages mapped.
    pub pages: u64,
}

/// The dead kernel's IOMMU state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldState {
    /// Its root table.
    pub root: u64,
    /// The mappings per device.
    pub mappings: Vec<OldMapping>,
    /// Context tables per bus.
    pub context_tables: Vec<(u8, u64)>,
}

/// A simulated machine: clock, memory, the VT-d model and a DMA engine.
pub struct Harness {
    /// The clock every part shares.
    pub clock: SimClock,
    /// Physical memory.
    pub memory: SimMemory,
    /// The unit.
    pub model: Rc<RefCell<VtdModel>>,
    old: RefCell<FramePool>,
    old_next_buffer: Cell<u64>,
}

impl Harness {
    /// A machine with QEMU 7.2's unit.
    pub fn qemu_like() -> Self {
        Self::with_caps(regs::QEMU_CAP, regs::QEMU_ECAP)
    }

    /// A machine with a unit of the given CAP and ECAP.
    pub fn with_caps(cap: u64, ecap: u64) -> Self {
        let clock = SimClock::new();
        let memory = SimMemory::new(0, RAM as usize);
        let model = VtdModel::new(clock.clone(), memory.clone(), cap, ecap).shared();
        Self {
            clock,
            memory,
            model,
            old: RefCell::new(FramePool::new(OLD_TABLES, 512)),
            old_next_buffer: Cell::new(OLD_BUFFERS),
        }
    }

    /// The unit's registers.
    pub fn registers(&self) -> SimMmio<VtdModel> {
        SimMmio::shared(self.model.clone(), self.clock.clone())
    }

    /// Physical memory, as the driver sees it.
    pub fn memory(&self) -> SimMemory {
        self.memory.clone()
    }

    /// The recovery kernel's frame pool.
    pub fn pool(&self) -> FramePool {
        FramePool::new(POOL, FramePool::MAX_PAGES)
    }

    /// RAM the dead kernel owned: everything but the recovery reservation.
    pub fn memory_map(&self) -> MemoryMap {
        let mut m = MemoryMap::new();
        // Two ranges fit in a fresh map.
        let _ = m.add(0, RECOVERY);
        let _ = m.add(RECOVERY + RECOVERY_LEN, RAM - RECOVERY - RECOVERY_LEN);
        m
    }

    /// Physical backing of the recovery window.
    pub fn window_phys(&self) -> u64 {
        WINDOW_PHYS
    }

    /// Device DMA through the unit.
    pub fn dma(&self) -> SimDma {
        let t: Rc<RefCell<dyn Translate>> = self.model.clone();
        SimDma::with_iommu(self.memory.clone(), t)
    }

    /// A zeroed page of the dead kernel's memory.
    ///
    /// # Panics
    ///
    /// When the old-table area is exhausted (test setup).
    pub fn old_page(&self) -> u64 {
        let mut mem = self.memory.clone();
        self.old
            .borrow_mut()
            .alloc(&mut mem)
            .expect("old table area exhausted")
    }

    /// Builds the dead kernel's tables (`devices` as (source id, domain id):
    /// one set of page tables per domain, `OLD_PAGES` pages at [`OLD_IOVA`]
    /// mapped to a private buffer, shared by the devices of that domain as
    /// VT-d requires) and turns translation on the way a kernel does: RTADDR,
    /// SRTP, invalidations, TE.
    ///
    /// # Panics
    ///
    /// On setup failures (test setup).
    pub fn old_kernel_tables(&self, devices: &[(u16, u16)]) -> OldState {
        let mut mem = self.memory.clone();
        let root = self.old_page();
        let levels = if self.model.borrow().cap >> 9 & 1 == 1 {
            Levels::Three
        } else {
            Levels::Four
        };
        let mut state = OldState {
            root,
            mappings: Vec::new(),
            context_tables: Vec::new(),
        };
        let mut shared_roots = std::collections::HashMap::new();
        for &(sid, did) in devices {
            let bus = (sid >> 8) as u8;
            let ctx = match state.context_tables.iter().find(|(b, _)| *b == bus) {
                Some(&(_, c)) => c,
                None => {
                    let c = self.old_page();
                    let re = RootEntry::new(c);
                    write_entry(&mut mem, root + u64::from(bus) * 16, re.lo, re.hi, true)
                        .expect("root entry");
                    state.context_tables.push((bus, c));
                    c
                }
            };
            // A domain id names one set of page tables (VT-d 3.4.3: entries
            // with the same DID must reference the same tables, since the
            // IOTLB is tagged by it), so a device in a domain already built
            // shares its tables and buffer.
            let table = if let Some(shared) = state.mappings.iter().find(|m| m.did == did).copied()
            {
                state.mappings.push(OldMapping {
                    source_id: sid,
                    ..shared
                });
                shared_roots[&did]
            } else {
                let mut old = self.old.borrow_mut();
                let t = PageTable::new(&mut mem, &mut old, levels, true).expect("old pt");
                let pa = self.old_next_buffer.get();
                self.old_next_buffer.set(pa + 0x1_0000);
                for i in 0..OLD_PAGES {
                    t.map(&mut mem, &mut old, OLD_IOVA + i * 4096, pa + i * 4096, true)
                        .expect("old map");
                }
                state.mappings.push(OldMapping {
                    source_id: sid,
                    did,
                    iova: OLD_IOVA,
                    pa,
                    pages: OLD_PAGES,
                });
                shared_roots.insert(did, t.root);
                t.root
            };
            let ce = ContextEntry::translated(table, levels, did);
            write_entry(
                &mut mem,
                ctx + u64::from(sid & 0xff) * 16,
                ce.lo,
                ce.hi,
                true,
            )
            .expect("context entry");
        }
        let mut r = self.registers();
        r.write64(regs::RTADDR, root);
        r.write32(regs::GCMD, Global::SRTP.bits());
        r.write64(regs::CCMD, regs::ccmd::ICC | regs::ccmd::GLOBAL);
        let iotlb = ((self.model.borrow().ecap >> 8) & 0x3ff) as usize * 16 + regs::IOTLB_REG;
        // Draining as Linux asks for it (cap_read_drain, cap_write_drain).
        let cap = self.model.borrow().cap;
        let drain = ((cap >> 55 & 1) * regs::iotlb::DR) | ((cap >> 54 & 1) * regs::iotlb::DW);
        r.write64(iotlb, regs::iotlb::IVT | regs::iotlb::GLOBAL | drain);
        r.write32(regs::GCMD, Global::TE.bits());
        state
    }

    /// Leaves the dead kernel's invalidation queue on, in its memory, with
    /// `pending` descriptors the hardware has not fetched (a wedged queue when
    /// the unit's invalidation is stuck).
    pub fn old_kernel_queue(&self, pending: u64) {
        let queue = self.old_page();
        let mut r = self.registers();
        r.write64(regs::IQT, 0);
        r.write64(regs::IQA, queue);
        let gsts = self.model.borrow_mut().gsts();
        r.write32(regs::GCMD, (gsts & Global::PERSISTENT | Global::QIE).bits());
        if pending > 0 {
            self.model.borrow_mut().quirks.invalidation_stuck = true;
            r.write64(regs::IQT, pending << 4);
        }
    }
}
