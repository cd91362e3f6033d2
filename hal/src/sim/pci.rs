//! Simulated configuration space and bus.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use super::SimClock;
use crate::pci::{config_access_ok, ConfigAccess, PciAddress};
use crate::time::{duration_ns, Clock};
use crate::Untrusted;

const SPACE: usize = 4096;
/// Bridge Control (low byte) in a type-1 header, and its Secondary Bus Reset bit.
const BRIDGE_CONTROL: usize = 0x3e;
const SBR: u8 = 0x40;

/// One function's configuration space: values, write masks, W1C bits, BARs that
/// size like hardware, a capability list, and function-level reset with
/// Configuration Retry Status.
#[derive(Debug, Clone)]
pub struct ConfigSpace {
    data: Vec<u8>,
    writable: Vec<u8>,
    w1c: Vec<u8>,
    initial: Vec<u8>,
    clock: SimClock,
    next_cap: u16,
    last_cap: Option<u16>,
    pcie_cap: Option<u16>,
    crs_until_ns: Option<u64>,
    crs_time: Duration,
    flr_count: u32,
    bus_resets: u32,
    writes: u32,
}

impl ConfigSpace {
    /// A type-0 function with the given ids and class; command register writable
    /// (I/O, memory, bus master, INTx disable), status W1C error bits.
    pub fn endpoint(clock: SimClock, vendor: u16, device: u16, class: [u8; 3]) -> Self {
        let mut s = Self {
            data: vec![0; SPACE],
            writable: vec![0; SPACE],
            w1c: vec![0; SPACE],
            initial: vec![],
            clock,
            next_cap: 0x40,
            last_cap: None,
            pcie_cap: None,
            crs_until_ns: None,
            crs_time: Duration::from_millis(20),
            flr_count: 0,
            bus_resets: 0,
            writes: 0,
        };
        s.set16(0x00, vendor);
        s.set16(0x02, device);
        s.set8(0x09, class[2]);
        s.set8(0x0a, class[1]);
        s.set8(0x0b, class[0]);
        s.mask16(0x04, 0x0547);
        s.w1c16(0x06, 0xf900);
        s.mask8(0x3c, 0xff);
        s.initial = s.data.clone();
        s
    }

    /// A type-1 header (PCI-to-PCI bridge, class 06 04 00) with its primary,
    /// secondary and subordinate bus numbers. Without a PCI Express capability
    /// it is a conventional bridge; add one with [`ConfigSpace::with_pcie_port`]
    /// to make it a root port, a switch port or a PCIe-to-PCI bridge.
    pub fn bridge(
        clock: SimClock,
        vendor: u16,
        device: u16,
        (primary, secondary, subordinate): (u8, u8, u8),
    ) -> Self {
        let mut s = Self::endpoint(clock, vendor, device, [0x06, 0x04, 0x00]);
        s.set8(0x0e, 0x01);
        s.set8(0x18, primary);
        s.set8(0x19, secondary);
        s.set8(0x1a, subordinate);
        // Bus numbers are writable in hardware; the topology walk must not write them.
        s.mask8(0x18, 0xff);
        s.mask8(0x19, 0xff);
        s.mask8(0x1a, 0xff);
        // Bridge Control: Secondary Bus Reset (bit 6) is writable.
        s.mask16(0x3e, 0x0040);
        s.initial = s.data.clone();
        s
    }

    /// Appends a PCI Express capability with device/port type `port_type`
    /// (PCIe 5.0 7.5.3.2: 0 endpoint, 4 root port, 5 switch upstream, 6 switch
    /// downstream, 7 PCIe-to-PCI bridge, 8 PCI-to-PCIe bridge).
    pub fn with_pcie_port(mut self, port_type: u8) -> Self {
        let at = self.next_cap;
        self = self.with_pcie(false);
        self.set8(usize::from(at) + 2, (port_type & 0xf) << 4 | 0x2);
        self.initial = self.data.clone();
        self
    }

    /// Sets the multi-function bit of the header type (function 0 of a device
    /// with more functions).
    pub fn multifunction(mut self) -> Self {
        let h = self.get8(0x0e);
        self.set8(0x0e, h | 0x80);
        self.initial = self.data.clone();
        self
    }

    /// Adds a 32-bit memory BAR of `size` bytes (a power of two ≥ 16) at `base`.
    pub fn with_bar32(mut self, index: u8, size: u32, base: u32) -> Self {
        let off = 0x10 + 4 * usize::from(index);
        self.set32(off, base & !(size - 1));
        self.mask32(off, !(size - 1) & !0xf);
        self.initial = self.data.clone();
        self
    }

    /// Adds a 64-bit (optionally prefetchable) memory BAR at `index` and `index+1`.
    pub fn with_bar64(mut self, index: u8, size: u64, base: u64, prefetchable: bool) -> Self {
        let off = 0x10 + 4 * usize::from(index);
        let base = base & !(size - 1);
        let kind = 0b100 | if prefetchable { 0b1000 } else { 0 };
        self.set32(off, base as u32 | kind);
        self.set32(off + 4, (base >> 32) as u32);
        let mask = !(size - 1);
        self.mask32(off, mask as u32 & !0xf);
        self.mask32(off + 4, (mask >> 32) as u32);
        self.initial = self.data.clone();
        self
    }

    /// Adds an I/O BAR of `size` ports at `base`.
    pub fn with_io_bar(mut self, index: u8, size: u32, base: u32) -> Self {
        let off = 0x10 + 4 * usize::from(index);
        self.set32(off, (base & !(size - 1)) | 1);
        self.mask32(off, !(size - 1) & !0b11);
        self.initial = self.data.clone();
        self
    }

    /// Appends a capability with `id` and `len` bytes of body (zeroed; for MSI
    /// and MSI-X the enable bits of Message Control are writable).
    pub fn with_capability(mut self, id: u8, len: u16) -> Self {
        let at = self.next_cap;
        self.append_cap(id, at);
        // The control bits software writes (PCI 3.0 6.8.1.3, 6.8.2.3): MSI
        // Enable and Multiple Message Enable; MSI-X Enable and Function Mask.
        match id {
            0x05 => self.mask16(usize::from(at) + 2, 0x0071),
            0x11 => self.mask16(usize::from(at) + 2, 0xc000),
            _ => {}
        }
        self.next_cap = (at + 2 + len).next_multiple_of(4);
        self.initial = self.data.clone();
        self
    }

    /// Appends a PCI Express capability, advertising FLR when `flr`.
    pub fn with_pcie(mut self, flr: bool) -> Self {
        let at = self.next_cap;
        self.append_cap(0x10, at);
        if flr {
            self.set32(usize::from(at) + 4, 1 << 28);
        }
        self.mask16(usize::from(at) + 8, 0x7fff);
        self.pcie_cap = Some(at);
        self.next_cap = at + 0x3c;
        self.initial = self.data.clone();
        self
    }

    /// Sets how long the function answers CRS after an FLR (`Duration::MAX`: it
    /// never comes back).
    pub fn with_crs_time(mut self, t: Duration) -> Self {
        self.crs_time = t;
        self
    }

    fn append_cap(&mut self, id: u8, at: u16) {
        let status = self.get16(0x06) | 1 << 4;
        self.set16(0x06, status);
        match self.last_cap {
            None => self.set8(0x34, at as u8),
            Some(prev) => self.set8(usize::from(prev) + 1, at as u8),
        }
        self.set8(usize::from(at), id);
        self.set8(usize::from(at) + 1, 0);
        self.last_cap = Some(at);
    }

    /// Writes raw bytes regardless of masks (to corrupt a device on purpose).
    pub fn poke8(&mut self, offset: u16, v: u8) {
        self.set8(usize::from(offset), v);
    }

    /// Writes a raw dword regardless of masks.
    pub fn poke32(&mut self, offset: u16, v: u32) {
        self.set32(usize::from(offset), v);
    }

    /// Configuration writes this function received (the topology walk must
    /// leave bridges untouched).
    pub fn writes(&self) -> u32 {
        self.writes
    }

    /// Reads raw bytes (for test assertions).
    pub fn peek16(&self, offset: u16) -> u16 {
        self.get16(usize::from(offset))
    }

    /// Function-level resets performed.
    pub fn flr_count(&self) -> u32 {
        self.flr_count
    }

    /// Resets by a Secondary Bus Reset of the bridge above.
    pub fn bus_reset_count(&self) -> u32 {
        self.bus_resets
    }

    /// True when bus mastering is enabled (models check this before DMA).
    pub fn bus_master(&self) -> bool {
        self.get16(0x04) & 0x4 != 0
    }

    /// True when memory decoding is enabled.
    pub fn memory_space(&self) -> bool {
        self.get16(0x04) & 0x2 != 0
    }

    fn in_crs(&self) -> bool {
        self.crs_until_ns.is_some_and(|t| self.clock.now_ns() < t)
    }

    fn set8(&mut self, off: usize, v: u8) {
        if let Some(b) = self.data.get_mut(off) {
            *b = v;
        }
    }
    fn set16(&mut self, off: usize, v: u16) {
        for (i, b) in v.to_le_bytes().into_iter().enumerate() {
            self.set8(off + i, b);
        }
    }
    fn set32(&mut self, off: usize, v: u32) {
        for (i, b) in v.to_le_bytes().into_iter().enumerate() {
            self.set8(off + i, b);
        }
    }
    fn get8(&self, off: usize) -> u8 {
        self.data.get(off).copied().unwrap_or(0xff)
    }
    fn get16(&self, off: usize) -> u16 {
        u16::from_le_bytes([self.get8(off), self.get8(off + 1)])
    }
    fn mask8(&mut self, off: usize, m: u8) {
        if let Some(b) = self.writable.get_mut(off) {
            *b = m;
        }
    }
    fn mask16(&mut self, off: usize, m: u16) {
        for (i, b) in m.to_le_bytes().into_iter().enumerate() {
            self.mask8(off + i, b);
        }
    }
    fn mask32(&mut self, off: usize, m: u32) {
        for (i, b) in m.to_le_bytes().into_iter().enumerate() {
            self.mask8(off + i, b);
        }
    }
    fn w1c16(&mut self, off: usize, m: u16) {
        for (i, b) in m.to_le_bytes().into_iter().enumerate() {
            if let Some(x) = self.w1c.get_mut(off + i) {
                *x = b;
            }
        }
    }

    /// Reads `width` bytes at `offset` as the function answers them now.
    pub fn read(&self, offset: u16, width: u16) -> u64 {
        let off = usize::from(offset);
        if self.in_crs() {
            // Configuration Retry Status with software visibility: the vendor id
            // reads 0x0001, other bytes all-ones (PCIe 5.0, 2.3.2).
            let mut v = u64::MAX;
            if offset == 0 && width >= 2 {
                v = (v & !0xffff) | 0x0001;
            }
            return v & (u64::MAX >> (64 - 8 * u32::from(width)));
        }
        let mut v = 0u64;
        for i in 0..usize::from(width) {
            v |= u64::from(self.get8(off + i)) << (8 * i);
        }
        v
    }

    /// Writes `width` bytes at `offset`, honouring masks, W1C bits and FLR.
    pub fn write(&mut self, offset: u16, width: u16, value: u64) {
        self.writes = self.writes.saturating_add(1);
        if self.in_crs() {
            return;
        }
        let off = usize::from(offset);
        for i in 0..usize::from(width) {
            let b = (value >> (8 * i)) as u8;
            let (Some(&m), Some(&c)) = (self.writable.get(off + i), self.w1c.get(off + i)) else {
                continue;
            };
            let old = self.get8(off + i);
            let new = (old & !m & !(c & b)) | (b & m);
            self.set8(off + i, new);
        }
        if let Some(cap) = self.pcie_cap {
            let devctl = usize::from(cap) + 8;
            let flr_requested = (off..off + usize::from(width)).contains(&(devctl + 1))
                && (value >> (8 * (devctl + 1 - off))) & 0x80 != 0;
            if flr_requested && self.get8(usize::from(cap) + 7) & 0x10 != 0 {
                self.function_level_reset();
            }
        }
    }

    fn function_level_reset(&mut self) {
        self.flr_count += 1;
        self.reset();
    }

    /// Back to the power-on values, answering CRS for `crs_time`.
    fn reset(&mut self) {
        self.data = self.initial.clone();
        self.crs_until_ns = Some(
            self.clock
                .now_ns()
                .saturating_add(duration_ns(self.crs_time)),
        );
    }
}

/// A simulated PCI hierarchy: functions at addresses, all-ones elsewhere.
///
/// Configuration cycles are routed as hardware routes them: a function on a
/// root bus (bus 0 of each segment unless [`SimPci::set_root_buses`] says
/// otherwise) always answers; a function on bus N answers only when a chain of
/// bridges from a root leads there by the bus numbers those bridges hold now
/// (each bridge forwards cycles for its secondary..=subordinate buses, and
/// claims a bus as its own when it is its secondary). A function placed on a
/// bus no bridge leads to reads all-ones.
#[derive(Clone, Default)]
pub struct SimPci {
    functions: BTreeMap<PciAddress, Rc<RefCell<ConfigSpace>>>,
    roots: BTreeMap<u16, Vec<u8>>,
    legacy: bool,
}

/// How many bridges a routed cycle crosses at most (a loop of bridges whose
/// ranges contain each other would otherwise forward forever).
const MAX_ROUTE_HOPS: usize = 256;

impl SimPci {
    /// An empty segment with 4 KiB (ECAM) configuration spaces.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty segment reached through CF8/CFC (256 bytes per function).
    pub fn legacy() -> Self {
        Self {
            legacy: true,
            ..Self::default()
        }
    }

    /// Places a function; returns the shared handle models and tests use.
    pub fn insert(&mut self, a: PciAddress, space: ConfigSpace) -> Rc<RefCell<ConfigSpace>> {
        let rc = Rc::new(RefCell::new(space));
        self.functions.insert(a, rc.clone());
        rc
    }

    /// Removes a function (surprise removal).
    pub fn remove(&mut self, a: PciAddress) {
        self.functions.remove(&a);
    }

    /// Sets the root buses of `segment` (default: bus 0).
    pub fn set_root_buses(&mut self, segment: u16, buses: &[u8]) {
        self.roots.insert(segment, buses.to_vec());
    }

    /// True when a configuration cycle for `bus` of `segment` reaches that bus.
    pub fn reaches(&self, segment: u16, bus: u8) -> bool {
        let default = [0u8];
        let roots = self.roots.get(&segment).map_or(&default[..], |r| &r[..]);
        roots
            .iter()
            .any(|&root| root == bus || self.route(segment, root, bus))
    }

    /// Follows bridges from `from` toward `target`: on each bus, the first
    /// bridge whose range holds the target takes the cycle.
    fn route(&self, segment: u16, mut from: u8, target: u8) -> bool {
        for _ in 0..MAX_ROUTE_HOPS {
            let (Ok(lo), Ok(hi)) = (
                PciAddress::new(segment, from, 0, 0),
                PciAddress::new(segment, from, 31, 7),
            ) else {
                return false;
            };
            let next = self.functions.range(lo..=hi).find_map(|(_, f)| {
                let f = f.borrow();
                let (sec, sub) = (f.get8(0x19), f.get8(0x1a));
                (f.get8(0x0e) & 0x7f == 1 && sec <= target && target <= sub).then_some(sec)
            });
            match next {
                Some(sec) if sec == target => return true,
                Some(sec) => from = sec,
                None => return false,
            }
        }
        false
    }

    /// A Secondary Bus Reset asserted on a bridge (bridge control bit 6 going
    /// from 0 to 1, `control` the byte before the write) resets every
    /// function on its secondary..=subordinate buses (PCI-to-PCI Bridge 1.2,
    /// 3.2.5.17); they answer CRS afterwards as after an FLR.
    fn after_write(&mut self, segment: u16, f: &Rc<RefCell<ConfigSpace>>, control: u8) {
        let (bridge, now, sec, sub) = {
            let f = f.borrow();
            (
                f.get8(0x0e) & 0x7f == 1,
                f.get8(BRIDGE_CONTROL),
                f.get8(0x19),
                f.get8(0x1a),
            )
        };
        if !bridge || now & SBR == 0 || control & SBR != 0 {
            return;
        }
        for (a, g) in &self.functions {
            if a.segment() == segment && (sec..=sub).contains(&a.bus()) && !Rc::ptr_eq(g, f) {
                let mut g = g.borrow_mut();
                g.bus_resets += 1;
                g.reset();
            }
        }
    }

    fn access(&mut self, a: PciAddress, o: u16, w: u16) -> Option<Rc<RefCell<ConfigSpace>>> {
        if !config_access_ok(o, w, self.space_size()) || !self.reaches(a.segment(), a.bus()) {
            return None;
        }
        self.functions.get(&a).cloned()
    }
}

macro_rules! sim_cfg {
    ($read:ident, $write:ident, $t:ty) => {
        fn $read(&mut self, a: PciAddress, o: u16) -> Untrusted<$t> {
            let w = size_of::<$t>() as u16;
            Untrusted::new(match self.access(a, o, w) {
                Some(f) => f.borrow().read(o, w) as $t,
                None => <$t>::MAX,
            })
        }
        fn $write(&mut self, a: PciAddress, o: u16, v: $t) {
            let w = size_of::<$t>() as u16;
            if let Some(f) = self.access(a, o, w) {
                let control = f.borrow().get8(BRIDGE_CONTROL);
                f.borrow_mut().write(o, w, u64::from(v));
                self.after_write(a.segment(), &f, control);
            }
        }
    };
}

impl ConfigAccess for SimPci {
    sim_cfg!(read8, write8, u8);
    sim_cfg!(read16, write16, u16);
    sim_cfg!(read32, write32, u32);
    fn space_size(&self) -> u16 {
        if self.legacy {
            256
        } else {
            4096
        }
    }
}
