//! Paranoid init: quiesce, reset, verify, enable, link — one small function per
//! step, in the order of the SDM's initialization section (14.3) and Linux's
//! `e1000_reset_hw`, and nothing assumed about what the dead kernel left.
//!
//! QEMU's e1000 model treats CTRL.RST as self-clearing and otherwise ignores it
//! (no register goes back to its default), so every register the driver relies
//! on is written explicitly: receive and transmit are disabled in quiesce, the
//! rings, heads, tails, receive addresses and the whole multicast table in enable.

use core::time::Duration;

use paranoid::dma::Window;
use paranoid::init::{run, InitContext, InitFailure, Initialized};
use paranoid::lifecycle::{Device, Lifecycle, Ready, ResetKind, ResetKinds, Stalled, Unknown};
use paranoid::mmio::RegisterIo;
use paranoid::pci::command::{self, Command};
use paranoid::pci::reset::{function_level_reset, CRS_DEFAULT_LIMIT, RESET_RECOVERY};
use paranoid::pci::{offset, ConfigAccess};
use paranoid::poll::poll;
use paranoid::time::{Clock, Deadline};
use paranoid::Untrusted;

use crate::device::{Link, LinkPolicy, MacAddress, Paced, E1000};
use crate::error::E1000Error;
use crate::regs::{self, ctrl, eecd, eeprom, eerd, icr, rctl, tctl, Rw};
use crate::ring::{RxRing, TxRing};

/// Total init budget, link wait included.
pub const INIT_BUDGET: Duration = Duration::from_secs(5);
/// After disabling receive and transmit, time for outstanding PCI transactions
/// to complete before reset (Linux `e1000_reset_hw` waits 10 ms).
pub const QUIESCE_DRAIN: Duration = Duration::from_millis(10);
/// CTRL.RST self-clears after about 1 µs (SDM 13.4.1); we allow 10 ms.
pub const RESET_TIMEOUT: Duration = Duration::from_millis(10);
/// CTRL is read this often while RST is set.
pub const RESET_POLL_INTERVAL: Duration = Duration::from_micros(10);
/// After reset the MAC reloads its configuration from the EEPROM; Linux waits
/// 5 ms before touching it again.
pub const RESET_SETTLE: Duration = Duration::from_millis(5);
/// One EERD read: a serial EEPROM word takes microseconds; we allow 10 ms.
pub const EERD_TIMEOUT: Duration = Duration::from_millis(10);
/// RAH.AV: the receive address entry is valid.
const RAH_AV: u32 = 1 << 31;
/// CTRL bits the driver never keeps from the dead kernel: PHY and link resets,
/// forced speed and duplex, inverted loss-of-signal, VLAN mode.
const CTRL_CLEAR: u32 =
    ctrl::PHY_RST | ctrl::LRST | ctrl::FRCSPD | ctrl::FRCDPLX | ctrl::ILOS | ctrl::VME;

impl<R: RegisterIo, P: ConfigAccess, C: Clock, W: Window> Lifecycle for E1000<R, P, C, W> {
    type Error = E1000Error;

    fn name(&self) -> &'static str {
        "e1000"
    }

    fn supported_resets(&self) -> ResetKinds {
        if self.flr {
            ResetKinds::FUNCTION_LEVEL
        } else {
            ResetKinds::empty()
        }
    }

    fn quiesce(&mut self, deadline: Deadline) -> Result<(), E1000Error> {
        self.running = false;
        self.bus_master_off()?;
        self.mask_interrupts();
        self.stop_rx_tx();
        self.flush_posted_writes()?;
        self.delay_until(QUIESCE_DRAIN, deadline);
        self.clear_interrupt_causes();
        Ok(())
    }

    fn reset(&mut self, kind: ResetKind, deadline: Deadline) -> Result<(), E1000Error> {
        match kind {
            ResetKind::Controller => self.controller_reset(deadline),
            ResetKind::FunctionLevel => {
                self.function_level_reset(deadline)?;
                self.after_reset(deadline)
            }
            ResetKind::SecondaryBus => Err(E1000Error::ResetUnsupported(kind)),
        }
    }

    fn verify(&mut self, deadline: Deadline) -> Result<(), E1000Error> {
        self.link = Some(Link::from_status(regs::STATUS.read(&mut self.regs))?);
        self.check_eeprom_present()?;
        self.mac = self.read_eeprom_mac(deadline)?;
        Ok(())
    }

    fn enable(&mut self, _deadline: Deadline) -> Result<(), E1000Error> {
        // Again: a reset may have put the units back to their own defaults.
        self.stop_rx_tx();
        self.program_receive_addresses();
        self.set_link_up()?;
        self.clear_delay_timers();
        let rx_tail = self.setup_rx_ring()?;
        self.setup_tx_ring()?;
        self.verify_ring_registers()?;
        self.bus_master_on()?;
        self.enable_rx_tx(rx_tail);
        self.clear_interrupt_causes();
        self.running = true;
        Ok(())
    }

    fn fence(&mut self) {
        self.running = false;
        // Best effort, no reads: the device may be gone.
        let _ = command::fence(&mut self.pci, self.address);
        self.mask_interrupts();
        self.stop_rx_tx();
    }
}

impl<R: RegisterIo, P: ConfigAccess, C: Clock, W: Window> E1000<R, P, C, W> {
    // ---- quiesce -------------------------------------------------------------

    /// PCI command: bus mastering off (no more DMA), INTx off, memory decoding on
    /// (the registers must answer for the rest of init).
    fn bus_master_off(&mut self) -> Result<(), E1000Error> {
        command::update(
            &mut self.pci,
            self.address,
            Command::INTX_DISABLE | Command::MEMORY_SPACE,
            Command::BUS_MASTER,
        )
        .map(|_| ())
        .map_err(E1000Error::PciGone)
    }

    /// IMC = all causes (SDM 13.4.21).
    fn mask_interrupts(&mut self) {
        regs::IMC.write(&mut self.regs, icr::ALL);
    }

    /// RCTL.EN and TCTL.EN off: the receive and transmit units stop fetching
    /// descriptors (SDM 14.5 / 14.6).
    fn stop_rx_tx(&mut self) {
        regs::RCTL.write(&mut self.regs, 0);
        regs::TCTL.write(&mut self.regs, tctl::PSP);
    }

    /// A read flushes posted writes; all-ones here means the device is gone.
    fn flush_posted_writes(&mut self) -> Result<(), E1000Error> {
        let status = regs::STATUS.read(&mut self.regs);
        if status.is_all_ones() {
            return Err(E1000Error::DeviceGone {
                register: regs::STATUS.reg().name,
            });
        }
        Ok(())
    }

    /// Reading ICR clears every pending cause.
    fn clear_interrupt_causes(&mut self) {
        let _pending = regs::ICR.read(&mut self.regs);
    }

    fn delay_until(&self, wait: Duration, deadline: Deadline) {
        let left = deadline.remaining(&self.clock);
        self.clock.delay(if wait < left { wait } else { left });
    }

    // ---- reset ---------------------------------------------------------------

    /// CTRL.RST and a bounded wait for it to self-clear, then [`after_reset`](Self::after_reset).
    fn controller_reset(&mut self, deadline: Deadline) -> Result<(), E1000Error> {
        let value = regs::CTRL.read(&mut self.regs);
        if value.is_all_ones() {
            return Err(E1000Error::DeviceGone {
                register: regs::CTRL.reg().name,
            });
        }
        // Keep the dead kernel's bits except those that hold the PHY or the link
        // in reset or force them: CTRL with PHY_RST clear never reads all-ones,
        // so all-ones while RST is pending still means "gone".
        let value = (value.into_raw_for_report() & !CTRL_CLEAR) | ctrl::RST;
        regs::CTRL.write(&mut self.regs, value);
        self.wait_reset_done(deadline)?;
        self.after_reset(deadline)
    }

    /// After any reset: the settle time, then the interrupts masked again (the
    /// reset may leave them in an unknown state) and the causes cleared.
    fn after_reset(&mut self, deadline: Deadline) -> Result<(), E1000Error> {
        self.delay_until(RESET_SETTLE, deadline);
        self.mask_interrupts();
        self.clear_interrupt_causes();
        Ok(())
    }

    fn wait_reset_done(&mut self, deadline: Deadline) -> Result<(), E1000Error> {
        let own = Deadline::after(&self.clock, RESET_TIMEOUT).min(deadline);
        let paced = Paced {
            clock: &self.clock,
            interval: RESET_POLL_INTERVAL,
        };
        let regs = &mut self.regs;
        let seen = poll(
            &paced,
            own,
            || regs::CTRL.read(regs),
            |c| c.is_all_ones() || !c.bit(ctrl::RST_BIT),
        );
        match seen {
            Ok(c) if c.is_all_ones() => Err(E1000Error::DeviceGone {
                register: regs::CTRL.reg().name,
            }),
            Ok(_) => Ok(()),
            Err(t) => Err(E1000Error::ResetTimeout {
                ctrl: t.last.into_raw_for_report(),
                waited: t.waited,
                deadline_ns: own.as_ns(),
            }),
        }
    }

    /// PCIe FLR (which resets the whole function, MAC included), then BAR0/BAR1
    /// restored (FLR clears them) and memory decoding turned back on; bus
    /// mastering stays off.
    fn function_level_reset(&mut self, deadline: Deadline) -> Result<(), E1000Error> {
        // The HAL waits 100 ms after FLR, then for CRS up to the limit: keep the
        // whole of it inside the step's deadline.
        let left = deadline
            .remaining(&self.clock)
            .saturating_sub(RESET_RECOVERY);
        let crs_limit = if left < CRS_DEFAULT_LIMIT {
            left
        } else {
            CRS_DEFAULT_LIMIT
        };
        function_level_reset(&mut self.pci, self.address, &self.clock, crs_limit)
            .map_err(E1000Error::Flr)?;
        for (i, bar) in (0u16..).zip(self.bars) {
            if let Some(value) = bar {
                self.pci.write32(self.address, offset::BAR0 + 4 * i, value);
            }
        }
        command::update(
            &mut self.pci,
            self.address,
            Command::MEMORY_SPACE | Command::INTX_DISABLE,
            Command::BUS_MASTER,
        )
        .map(|_| ())
        .map_err(E1000Error::PciGone)
    }

    // ---- verify --------------------------------------------------------------

    /// EECD.PRES: without an EEPROM there is no Ethernet address to trust.
    fn check_eeprom_present(&mut self) -> Result<(), E1000Error> {
        let value = regs::EECD.read(&mut self.regs);
        if value.is_all_ones() {
            return Err(E1000Error::DeviceGone {
                register: regs::EECD.reg().name,
            });
        }
        if !value.bit(eecd::PRES_BIT) {
            return Err(E1000Error::NoEeprom {
                eecd: value.into_raw_for_report(),
            });
        }
        Ok(())
    }

    /// Reads EEPROM words 0..=0x3f, checks they sum to 0xBABA, and returns the
    /// address in words 0..=2 if it is a usable station address.
    fn read_eeprom_mac(&mut self, deadline: Deadline) -> Result<MacAddress, E1000Error> {
        let mut sum = 0u16;
        let mut mac = [0u8; 6];
        for word in 0..eeprom::WORDS {
            let value = self.read_eeprom_word(word, deadline)?;
            sum = sum.wrapping_add(value);
            let [lo, hi] = value.to_le_bytes();
            if let Some(pair) = mac.get_mut(usize::from(word) * 2..usize::from(word) * 2 + 2) {
                pair.copy_from_slice(&[lo, hi]);
            }
        }
        if sum != eeprom::SUM {
            return Err(E1000Error::EepromChecksum { sum });
        }
        let mac = MacAddress(mac);
        if !mac.is_valid_station() {
            return Err(E1000Error::BadMac { mac: mac.0 });
        }
        Ok(mac)
    }

    /// One EERD read: START with the address, a bounded wait for DONE, and the
    /// address echoed back must be the one asked for.
    fn read_eeprom_word(&mut self, word: u8, deadline: Deadline) -> Result<u16, E1000Error> {
        regs::EERD.write(
            &mut self.regs,
            eerd::START | u32::from(word) << eerd::ADDR_SHIFT,
        );
        let own = Deadline::after(&self.clock, EERD_TIMEOUT).min(deadline);
        let regs = &mut self.regs;
        let seen = poll(
            &self.clock,
            own,
            || regs::EERD.read(regs),
            |v| v.is_all_ones() || v.bit(eerd::DONE_BIT),
        );
        let value = match seen {
            Ok(v) => v.not_all_ones().map_err(|_| E1000Error::DeviceGone {
                register: regs::EERD.reg().name,
            })?,
            Err(t) => {
                return Err(E1000Error::EepromTimeout {
                    word,
                    eerd: t.last.into_raw_for_report(),
                    waited: t.waited,
                    deadline_ns: own.as_ns(),
                })
            }
        };
        if !value.field(eerd::ADDR_SHIFT, 8).is(u32::from(word)) {
            return Err(E1000Error::EepromAddressMismatch {
                word,
                eerd: value.into_raw_for_report(),
            });
        }
        let data = value.field(eerd::DATA_SHIFT, 16).in_range(0..=0xffff)?;
        Ok(data as u16)
    }

    // ---- enable --------------------------------------------------------------

    /// RAL0/RAH0 = our address (valid), other entries invalid, multicast table
    /// cleared (the MTA is not reset by hardware, SDM 13.5.1).
    fn program_receive_addresses(&mut self) {
        let [a, b, c, d, e, f] = self.mac.0;
        regs::RAL0.write(&mut self.regs, u32::from_le_bytes([a, b, c, d]));
        regs::RAH0.write(
            &mut self.regs,
            u32::from(u16::from_le_bytes([e, f])) | RAH_AV,
        );
        for (ral, rah) in (1..regs::RA_ENTRIES).filter_map(regs::ra) {
            rah.write(&mut self.regs, 0);
            ral.write(&mut self.regs, 0);
        }
        for mta in (0..regs::MTA_ENTRIES).filter_map(regs::mta) {
            mta.write(&mut self.regs, 0);
        }
    }

    /// CTRL.SLU and ASDE set; the bits that would hold the link or the PHY down,
    /// or force a speed, cleared (Linux `e1000_setup_copper_link`).
    fn set_link_up(&mut self) -> Result<(), E1000Error> {
        let value = regs::CTRL.read(&mut self.regs);
        if value.is_all_ones() {
            return Err(E1000Error::DeviceGone {
                register: regs::CTRL.reg().name,
            });
        }
        let value =
            (value.into_raw_for_report() & !(CTRL_CLEAR | ctrl::RST)) | ctrl::SLU | ctrl::ASDE;
        regs::CTRL.write(&mut self.regs, value);
        Ok(())
    }

    /// Interrupt moderation and delay timers to zero: write-backs are not held
    /// back by a timer the dead kernel set.
    fn clear_delay_timers(&mut self) {
        for reg in [regs::ITR, regs::RDTR, regs::RADV, regs::TIDV, regs::TADV] {
            reg.write(&mut self.regs, 0);
        }
    }

    /// Receive ring in the window: descriptors armed, base and length, head and
    /// tail zero while the receiver is off (SDM 14.4). Returns the tail to write
    /// once the receiver is on.
    fn setup_rx_ring(&mut self) -> Result<u16, E1000Error> {
        let tail = self.rx.arm_all()?;
        let base = self.rx.base();
        regs::RDBAL.write(&mut self.regs, base as u32);
        regs::RDBAH.write(&mut self.regs, (base >> 32) as u32);
        regs::RDLEN.write(&mut self.regs, RxRing::<W>::bytes());
        regs::RDH.write(&mut self.regs, 0);
        regs::RDT.write(&mut self.regs, 0);
        Ok(tail)
    }

    /// Transmit ring in the window: descriptors cleared, base and length, head
    /// and tail zero, inter-packet gap (SDM 14.5).
    fn setup_tx_ring(&mut self) -> Result<(), E1000Error> {
        self.tx.clear()?;
        let base = self.tx.base();
        regs::TDBAL.write(&mut self.regs, base as u32);
        regs::TDBAH.write(&mut self.regs, (base >> 32) as u32);
        regs::TDLEN.write(&mut self.regs, TxRing::<W>::bytes());
        regs::TDH.write(&mut self.regs, 0);
        regs::TDT.write(&mut self.regs, 0);
        regs::TIPG.write(&mut self.regs, regs::TIPG_COPPER);
        Ok(())
    }

    /// The receive address and every ring register read back what was written:
    /// before bus mastering is turned on, the device must point nowhere but
    /// into the window.
    fn verify_ring_registers(&mut self) -> Result<(), E1000Error> {
        let rx = self.rx.base();
        let tx = self.tx.base();
        let [a, b, c, d, e, f] = self.mac.0;
        let expected: [(Rw, u32); 14] = [
            (regs::RAL0, u32::from_le_bytes([a, b, c, d])),
            (regs::RAH0, u32::from(u16::from_le_bytes([e, f])) | RAH_AV),
            (regs::RDBAL, rx as u32),
            (regs::RDBAH, (rx >> 32) as u32),
            (regs::RDLEN, RxRing::<W>::bytes()),
            (regs::RDH, 0),
            (regs::RDT, 0),
            (regs::TDBAL, tx as u32),
            (regs::TDBAH, (tx >> 32) as u32),
            (regs::TDLEN, TxRing::<W>::bytes()),
            (regs::TDH, 0),
            (regs::TDT, 0),
            (regs::RCTL, 0),
            (regs::TCTL, tctl::PSP),
        ];
        for (reg, wrote) in expected {
            let read: Untrusted<u32> = reg.read(&mut self.regs);
            if read.is_all_ones() {
                return Err(E1000Error::DeviceGone {
                    register: reg.reg().name,
                });
            }
            if !read.is(wrote) {
                return Err(E1000Error::RegisterReadback {
                    register: reg.reg().name,
                    wrote,
                    read: read.into_raw_for_report(),
                });
            }
        }
        Ok(())
    }

    fn bus_master_on(&mut self) -> Result<(), E1000Error> {
        command::update(
            &mut self.pci,
            self.address,
            Command::BUS_MASTER | Command::MEMORY_SPACE | Command::INTX_DISABLE,
            Command::empty(),
        )
        .map(|_| ())
        .map_err(E1000Error::PciGone)
    }

    /// RCTL: on, broadcasts accepted, 2048-byte buffers, CRC stripped, no
    /// promiscuous or loopback mode. TCTL: on, short frames padded, collision
    /// threshold 15 and distance 63 (SDM 14.4 and 14.5). Then RDT hands the
    /// receive buffers to the device.
    fn enable_rx_tx(&mut self, rx_tail: u16) {
        let rctl = rctl::EN | rctl::BAM | rctl::SECRC | rctl::BSIZE_2048 | rctl::RDMTS_HALF;
        regs::RCTL.write(&mut self.regs, rctl);
        let tctl =
            tctl::EN | tctl::PSP | tctl::RTLC | 0x0f << tctl::CT_SHIFT | 0x3f << tctl::COLD_SHIFT;
        regs::TCTL.write(&mut self.regs, tctl);
        regs::RDT.write(&mut self.regs, u32::from(rx_tail));
    }

    // ---- link ----------------------------------------------------------------

    /// Waits for STATUS.LU up to the configured link timeout; what a link still
    /// down means is the [`LinkPolicy`].
    fn wait_for_link(&mut self, deadline: Deadline) -> Result<(), E1000Error> {
        let own = Deadline::after(&self.clock, self.config.link_timeout).min(deadline);
        match self.wait_link(own) {
            Ok(_) => Ok(()),
            Err(E1000Error::LinkDown { .. })
                if self.config.link_policy == LinkPolicy::AllowDown =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    // ---- clean handoff -------------------------------------------------------

    /// Stops the NIC for a clean handoff: receive and transmit off, interrupts
    /// masked, a controller reset, bus mastering off. The rings may be freed
    /// afterwards. Bus mastering is turned off even when the reset fails.
    ///
    /// # Errors
    ///
    /// [`E1000Error::ResetTimeout`], [`E1000Error::DeviceGone`],
    /// [`E1000Error::PciGone`].
    pub fn shutdown(&mut self, deadline: Deadline) -> Result<(), E1000Error> {
        self.running = false;
        self.stop_rx_tx();
        self.mask_interrupts();
        let flushed = self.flush_posted_writes();
        self.delay_until(QUIESCE_DRAIN, deadline);
        let reset = flushed.and_then(|()| self.controller_reset(deadline));
        let fenced = self.bus_master_off();
        reset.and(fenced)
    }
}

/// What [`init_body`] returns: the ready device, or the stalled one back.
pub type BodyResult<R, P, C, W> =
    Result<Device<E1000<R, P, C, W>, Ready>, Stalled<E1000<R, P, C, W>>>;

/// What [`init`] returns: the ready device and its trace, or the fenced device,
/// the cause and the trace.
pub type InitResult<R, P, C, W> =
    Result<Initialized<E1000<R, P, C, W>>, InitFailure<E1000<R, P, C, W>>>;

/// The init body `#[paranoid_init]` wraps: the lifecycle steps in order, then
/// the link.
///
/// # Errors
///
/// [`Stalled`] with the device back, for the escalation ladder.
#[expect(
    clippy::result_large_err,
    reason = "the HAL's init body signature returns the device in the error"
)]
pub fn init_body<R, P, C, W, K>(
    device: Device<E1000<R, P, C, W>, Unknown>,
    ctx: &mut InitContext<'_, K>,
) -> BodyResult<R, P, C, W>
where
    R: RegisterIo,
    P: ConfigAccess,
    C: Clock,
    W: Window,
    K: Clock,
{
    device
        .quiesce(ctx)?
        .reset(ctx)?
        .verify(ctx)?
        .enable(ctx)?
        .step(ctx, "link up", |d, deadline| d.wait_for_link(deadline))
}

/// Brings `driver` from whatever state it is in to Ready within `budget`
/// ([`INIT_BUDGET`] is a good default), escalating to FLR when the device
/// supports it, and fencing it when everything failed.
///
/// # Errors
///
/// [`InitFailure`] with the fenced driver, the last cause and the trace.
#[expect(
    clippy::result_large_err,
    reason = "the failure hands the fenced device back with its trace"
)]
pub fn init<R, P, C, W>(driver: E1000<R, P, C, W>, budget: Duration) -> InitResult<R, P, C, W>
where
    R: RegisterIo,
    P: ConfigAccess,
    C: Clock + Clone,
    W: Window,
{
    let clock = driver.clock.clone();
    run(driver, &clock, budget, init_body)
}
