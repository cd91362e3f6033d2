//! One PCI function as a driver holds it: its address, configuration access,
//! capabilities, the BARs firmware assigned, and the command-register and reset
//! operations every driver needs (fence, bus master on, FLR).
//!
//! Drivers used to carry the address, the configuration access, an FLR flag and
//! saved BARs side by side and wrote their own FLR-then-restore path; this type
//! is the one home of that mechanism, and its FLR never waits past the caller's
//! deadline.

use core::time::Duration;

use super::caps;
use super::command::{self, Command};
use super::reset::{self, CRS_DEFAULT_LIMIT};
use super::{offset, ConfigAccess, PciAddress, PciError};
use crate::time::{Clock, Deadline};
use crate::Untrusted;

/// BARs of a type-0 header (PCI Local Bus 3.0, 6.2.5.1).
pub const TYPE0_BARS: usize = 6;
/// BARs of a type-1 (bridge) header.
pub const TYPE1_BARS: usize = 2;

/// A PCI function: configuration access `P` bound to one address, with what
/// was learned from configuration space when the driver took it.
///
/// Constructing one only reads configuration space; every write is a method
/// named for what it does.
#[derive(Debug, Clone)]
pub struct Function<P> {
    config: P,
    address: PciAddress,
    flr: bool,
    bars: [Option<u32>; TYPE0_BARS],
}

impl<P: ConfigAccess> Function<P> {
    /// Takes the function at `address`: learns whether it advertises FLR and
    /// saves its BARs (those that do not read all-ones), so an FLR, which
    /// returns them to their power-on value, can put back what firmware assigned.
    ///
    /// Nothing is written. A function that reads all-ones (gone, or not there)
    /// is taken all the same: its operations then report
    /// [`PciError::NotPresent`] or do nothing.
    pub fn new(mut config: P, address: PciAddress) -> Self {
        let flr = reset::flr_capability(&mut config, address).is_ok();
        let header = config.read8(address, offset::HEADER_TYPE);
        let count = if !header.is_all_ones() && header.field(0, 7).is(1) {
            TYPE1_BARS
        } else {
            TYPE0_BARS
        };
        let mut bars = [None; TYPE0_BARS];
        for (i, slot) in (0u16..).zip(bars.iter_mut().take(count)) {
            *slot = config
                .read32(address, offset::BAR0 + 4 * i)
                .not_all_ones()
                .ok()
                .map(Untrusted::into_raw_for_report);
        }
        Self {
            config,
            address,
            flr,
            bars,
        }
    }

    /// The function's address.
    pub fn address(&self) -> PciAddress {
        self.address
    }

    /// Whether the function advertised function-level reset when taken.
    pub fn supports_flr(&self) -> bool {
        self.flr
    }

    /// The BARs saved when taken (`None`: read all-ones, or past the header's
    /// BARs), in BAR order.
    pub fn saved_bars(&self) -> [Option<u32>; TYPE0_BARS] {
        self.bars
    }

    /// The configuration access, for reads and writes this type has no method
    /// for (a driver's own capability registers).
    pub fn config(&mut self) -> &mut P {
        &mut self.config
    }

    /// Gives the configuration access back.
    pub fn into_config(self) -> P {
        self.config
    }

    /// Reads 8 bits at `offset` of this function's configuration space.
    pub fn read8(&mut self, offset: u16) -> Untrusted<u8> {
        self.config.read8(self.address, offset)
    }

    /// Reads 16 bits at `offset` of this function's configuration space.
    pub fn read16(&mut self, offset: u16) -> Untrusted<u16> {
        self.config.read16(self.address, offset)
    }

    /// Reads 32 bits at `offset` of this function's configuration space.
    pub fn read32(&mut self, offset: u16) -> Untrusted<u32> {
        self.config.read32(self.address, offset)
    }

    /// Writes 8 bits at `offset` of this function's configuration space.
    pub fn write8(&mut self, offset: u16, value: u8) {
        self.config.write8(self.address, offset, value);
    }

    /// Writes 16 bits at `offset` of this function's configuration space.
    pub fn write16(&mut self, offset: u16, value: u16) {
        self.config.write16(self.address, offset, value);
    }

    /// Writes 32 bits at `offset` of this function's configuration space.
    pub fn write32(&mut self, offset: u16, value: u32) {
        self.config.write32(self.address, offset, value);
    }

    /// The offset of capability `id` (see [`caps::id`]), if the function has one.
    ///
    /// # Errors
    ///
    /// The capability walk's errors (a looping or out-of-range list).
    pub fn find_capability(&mut self, id: u8) -> Result<Option<u16>, PciError> {
        caps::find(&mut self.config, self.address, id)
    }

    /// The command register.
    ///
    /// # Errors
    ///
    /// [`PciError::NotPresent`] when it reads all-ones.
    pub fn command(&mut self) -> Result<Command, PciError> {
        command::read(&mut self.config, self.address)
    }

    /// Bus mastering and INTx off, memory decoding on: the function can no
    /// longer DMA, and its registers still answer (the first step of init).
    ///
    /// # Errors
    ///
    /// [`PciError::NotPresent`] when the command register reads all-ones
    /// (nothing is written).
    pub fn quiesce(&mut self) -> Result<Command, PciError> {
        command::update(
            &mut self.config,
            self.address,
            Command::MEMORY_SPACE | Command::INTX_DISABLE,
            Command::BUS_MASTER,
        )
    }

    /// Bus mastering and INTx off, nothing else touched: the fence of last
    /// resort. Never fails: a missing function needs no fence (`false` then).
    pub fn fence(&mut self) -> bool {
        command::fence(&mut self.config, self.address)
    }

    /// Bus mastering and memory decoding on, INTx off: the last step before
    /// the function may DMA.
    ///
    /// # Errors
    ///
    /// [`PciError::NotPresent`] when the command register reads all-ones.
    pub fn bus_master_on(&mut self) -> Result<Command, PciError> {
        command::update(
            &mut self.config,
            self.address,
            Command::BUS_MASTER | Command::MEMORY_SPACE | Command::INTX_DISABLE,
            Command::empty(),
        )
    }

    /// Function-level reset within `deadline`, then the saved BARs written back
    /// and the function [quiesced](Self::quiesce) (memory decoding on, bus
    /// mastering off).
    ///
    /// The waits the spec asks for (transactions pending, 100 ms recovery,
    /// Configuration Retry Status up to [`CRS_DEFAULT_LIMIT`]) are all cut at
    /// `deadline`: this returns by it.
    ///
    /// # Errors
    ///
    /// - [`PciError::FlrUnsupported`] without FLR support;
    /// - [`PciError::ResetDeadline`] when `deadline` passes during the 100 ms
    ///   recovery time;
    /// - [`PciError::ResetTimeout`] when the function still answers CRS (or
    ///   all-ones) at the CRS limit or at `deadline`, whichever is first;
    /// - [`PciError::NotPresent`] when the command register reads all-ones.
    pub fn function_level_reset<K: Clock + ?Sized>(
        &mut self,
        clock: &K,
        deadline: Deadline,
    ) -> Result<(), PciError> {
        self.function_level_reset_with(clock, CRS_DEFAULT_LIMIT, deadline)
    }

    /// [`function_level_reset`](Self::function_level_reset) with a CRS limit
    /// other than [`CRS_DEFAULT_LIMIT`] (clamped to the spec's 60 s).
    ///
    /// # Errors
    ///
    /// As [`function_level_reset`](Self::function_level_reset).
    pub fn function_level_reset_with<K: Clock + ?Sized>(
        &mut self,
        clock: &K,
        crs_limit: Duration,
        deadline: Deadline,
    ) -> Result<(), PciError> {
        reset::function_level_reset_by(&mut self.config, self.address, clock, crs_limit, deadline)?;
        // FLR returns the function to its power-on state, BARs included
        // (PCIe 5.0, 6.6.2): put back what firmware assigned.
        for (i, bar) in (0u16..).zip(self.bars) {
            if let Some(value) = bar {
                self.config
                    .write32(self.address, offset::BAR0 + 4 * i, value);
            }
        }
        self.quiesce().map(|_| ())
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::sim::{ConfigSpace, SimClock, SimPci};

    fn addr() -> PciAddress {
        PciAddress::new(0, 0, 3, 0).unwrap()
    }

    /// An FLR-capable endpoint with a 64-bit BAR0/1 and a 32-bit BAR2, whose
    /// BARs read zero after FLR until written again (as hardware: the sim's
    /// power-on image is taken before firmware "assigns" them).
    fn bus(
        clock: &SimClock,
        crs: Duration,
    ) -> (SimPci, std::rc::Rc<std::cell::RefCell<ConfigSpace>>) {
        let mut bus = SimPci::new();
        let f = bus.insert(
            addr(),
            ConfigSpace::endpoint(clock.clone(), 0x1b36, 0x0010, [0x01, 0x08, 0x02])
                .with_pcie(true)
                .with_bar64(0, 0x4000, 0, false)
                .with_bar32(2, 0x1000, 0)
                .with_crs_time(crs),
        );
        // Firmware assigns the BARs after power-on.
        bus.write32(addr(), 0x10, 0xfebf_0000);
        bus.write32(addr(), 0x14, 0x0000_0001);
        bus.write32(addr(), 0x18, 0xfeb0_0000);
        (bus, f)
    }

    #[test]
    fn new_writes_nothing_and_saves_the_bars() {
        let clock = SimClock::new();
        let (bus, f) = bus(&clock, Duration::from_millis(20));
        let writes = f.borrow().writes();
        let func = Function::new(bus, addr());
        assert_eq!(
            f.borrow().writes(),
            writes,
            "taking a function writes nothing"
        );
        assert!(func.supports_flr());
        let bars = func.saved_bars();
        assert_eq!(bars[0], Some(0xfebf_0004));
        assert_eq!(bars[1], Some(0x0000_0001));
        assert_eq!(bars[2], Some(0xfeb0_0000));
    }

    #[test]
    fn flr_restores_the_bars_and_leaves_bus_mastering_off() {
        let clock = SimClock::new();
        let (bus, f) = bus(&clock, Duration::from_millis(250));
        let mut func = Function::new(bus, addr());
        func.bus_master_on().unwrap();
        assert!(f.borrow().bus_master());
        let deadline = Deadline::after(&clock, Duration::from_secs(2));
        func.function_level_reset(&clock, deadline).unwrap();
        assert_eq!(f.borrow().flr_count(), 1);
        assert!(!f.borrow().bus_master());
        assert_eq!(f.borrow().read(0x10, 4), 0xfebf_0004);
        assert_eq!(f.borrow().read(0x14, 4), 0x0000_0001);
        assert_eq!(f.borrow().read(0x18, 4), 0xfeb0_0000);
        let cmd = func.command().unwrap();
        assert!(cmd.contains(Command::MEMORY_SPACE | Command::INTX_DISABLE));
    }

    /// The deadline passes while the function still answers CRS: a typed
    /// timeout at the deadline, not at the 1 s CRS limit. With
    /// `--cfg paranoid_mutant="flr_ignores_deadline"` this fails.
    #[test]
    fn flr_crs_wait_stops_at_the_callers_deadline() {
        let clock = SimClock::new();
        let (bus, _f) = bus(&clock, Duration::MAX);
        let mut func = Function::new(bus, addr());
        let start = clock.now_ns();
        let deadline = Deadline::after(&clock, Duration::from_millis(300));
        let err = func.function_level_reset(&clock, deadline).unwrap_err();
        let took = clock.now_ns() - start;
        match err {
            PciError::ResetTimeout { last_vendor, .. } => assert_eq!(last_vendor, 0x0001),
            other => panic!("expected a CRS timeout, got {other:?}"),
        }
        assert!(
            clock.now_ns() <= deadline.as_ns() + 1_000_000,
            "returned {took} ns after start, past the 300 ms deadline"
        );
    }

    /// The deadline passes inside the 100 ms recovery time: a typed error at
    /// the deadline, and no configuration read the spec forbids.
    #[test]
    fn flr_recovery_wait_stops_at_the_callers_deadline() {
        let clock = SimClock::new();
        let (bus, f) = bus(&clock, Duration::from_millis(20));
        let mut func = Function::new(bus, addr());
        let deadline = Deadline::after(&clock, Duration::from_millis(40));
        let err = func.function_level_reset(&clock, deadline).unwrap_err();
        assert!(
            matches!(err, PciError::ResetDeadline { address, .. } if address == addr()),
            "{err:?}"
        );
        assert!(
            clock.now_ns() <= deadline.as_ns(),
            "waited past the deadline"
        );
        assert_eq!(f.borrow().flr_count(), 1, "the reset itself was started");
    }

    #[test]
    fn flr_without_the_capability_is_refused_without_a_write() {
        let clock = SimClock::new();
        let mut bus = SimPci::new();
        let f = bus.insert(
            addr(),
            ConfigSpace::endpoint(clock.clone(), 1, 2, [0, 0, 0]).with_pcie(false),
        );
        let mut func = Function::new(bus, addr());
        assert!(!func.supports_flr());
        let writes = f.borrow().writes();
        let deadline = Deadline::after(&clock, Duration::from_secs(2));
        assert_eq!(
            func.function_level_reset(&clock, deadline),
            Err(PciError::FlrUnsupported(addr()))
        );
        assert_eq!(f.borrow().writes(), writes);
    }

    #[test]
    fn a_gone_function_is_fenced_quietly_and_quiesce_reports_it() {
        let clock = SimClock::new();
        let mut func = Function::new(SimPci::new(), addr());
        assert!(!func.supports_flr());
        assert_eq!(func.saved_bars(), [None; TYPE0_BARS]);
        assert!(!func.fence());
        assert_eq!(func.quiesce(), Err(PciError::NotPresent(addr())));
        let deadline = Deadline::after(&clock, Duration::from_secs(1));
        assert!(func.function_level_reset(&clock, deadline).is_err());
    }
}
