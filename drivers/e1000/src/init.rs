//! Paranoid init: quiesce, reset, verify, enable, link — one small function per
//! step, in the order of the SDM's initialization chapter (14) and Linux's
//! `e1000_reset_hw`, and nothing assumed about what the dead kernel left.
//!
//! QEMU's e1000 model treats CTRL.RST as self-clearing and otherwise ignores it
//! (no register goes back to its default), so every register the driver relies
//! on is written explicitly: receive and transmit are disabled in quiesce, the
//! rings, heads, tails, receive addresses and the whole multicast table in enable.

use core::time::Duration;

use paranoid::dma::Window;
use paranoid::init::InitContext;
use paranoid::lifecycle::{Device, Lifecycle, Ready, ResetKind, ResetKinds, Stalled, Unknown};
use paranoid::mmio::RegisterIo;
use paranoid::paranoid_init;
use paranoid::pci::ConfigAccess;
use paranoid::poll::poll;
use paranoid::regs::RegisterSpec;
use paranoid::time::{Clock, Deadline};
use paranoid::Untrusted;

use crate::device::{Link, LinkPolicy, Paced, E1000};
use crate::eeprom::Eeprom;
use crate::error::E1000Error;
use crate::part::PHY_ID_MASK;
use crate::regs::{self, ctrl, e1000_regs as r, icr, mdic, rctl, tctl, RAH_AV};
use crate::ring::{RxRing, TxRing};

/// Total init budget, link wait included (the `budget_ms` of [`init`]).
pub const INIT_BUDGET: Duration = Duration::from_secs(5);
/// After disabling receive and transmit, time for outstanding PCI transactions
/// to complete before reset (Linux `e1000_reset_hw` waits 10 ms).
pub const QUIESCE_DRAIN: Duration = Duration::from_millis(10);
/// CTRL.RST self-clears after about 1 µs (SDM 13.4, CTRL); we allow 10 ms.
pub const RESET_TIMEOUT: Duration = Duration::from_millis(10);
/// CTRL is read this often while RST is set.
pub const RESET_POLL_INTERVAL: Duration = Duration::from_micros(10);
/// After reset the MAC reloads its configuration from the EEPROM; Linux waits
/// 5 ms before touching it again.
pub const RESET_SETTLE: Duration = Duration::from_millis(5);
/// One EERD read: a serial EEPROM word takes microseconds; we allow 10 ms.
pub const EERD_TIMEOUT: Duration = Duration::from_millis(10);
/// Half a Microwire clock period. A 93C46-class EEPROM clocks at up to 1 MHz
/// (tSKH, tSKL ≥ 250 ns); Linux's e1000 holds each edge 50 µs. 5 µs keeps a
/// whole 64-word read near 16 ms.
pub const MICROWIRE_HALF_PERIOD: Duration = Duration::from_micros(5);
/// One MDIC access: the PHY answers in microseconds (Linux polls up to
/// 640 × 5 µs); we allow 10 ms.
pub const MDIC_TIMEOUT: Duration = Duration::from_millis(10);
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
        if self.function.supports_flr() {
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
        if mutant!("e1000_always_fence") {
            return Err(E1000Error::NoEeprom { eecd: 0 });
        }
        // paranoid:allow(device_gone_unchecked): `Link::from_status` rejects all-ones as `DeviceGone`
        self.link = Some(Link::from_status(self.regs.status().read().untrusted())?);
        self.mac = self.eeprom().station_address(deadline)?;
        self.check_phy_id(deadline)?;
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
        // Best effort and nothing waits: the device may be gone.
        let _ = self.function.fence();
        self.mask_interrupts();
        self.stop_rx_tx();
    }
}

impl<R: RegisterIo, P: ConfigAccess, C: Clock, W: Window> E1000<R, P, C, W> {
    // ---- quiesce -------------------------------------------------------------

    /// PCI command: bus mastering off (no more DMA), INTx off, memory decoding on
    /// (the registers must answer for the rest of init).
    fn bus_master_off(&mut self) -> Result<(), E1000Error> {
        self.function
            .quiesce()
            .map(|_| ())
            .map_err(E1000Error::PciGone)
    }

    /// IMC = all causes (SDM 13.4, IMC).
    fn mask_interrupts(&mut self) {
        self.regs.imc().write(icr::ALL);
    }

    /// RCTL.EN and TCTL.EN off: the receive and transmit units stop fetching
    /// descriptors (SDM 14.4, 14.5).
    fn stop_rx_tx(&mut self) {
        self.regs.rctl().write(0);
        self.regs.tctl().write(tctl::PSP);
    }

    /// A read flushes posted writes; all-ones here means the device is gone.
    fn flush_posted_writes(&mut self) -> Result<(), E1000Error> {
        let status = self.regs.status().read().untrusted();
        if gone(status) {
            return Err(E1000Error::DeviceGone {
                register: r::status::SPEC.name,
            });
        }
        Ok(())
    }

    /// Reading ICR clears every pending cause.
    fn clear_interrupt_causes(&mut self) {
        let _pending = self.regs.icr().read_and_clear();
    }

    fn delay_until(&self, wait: Duration, deadline: Deadline) {
        let left = deadline.remaining(&self.clock);
        self.clock.delay(if wait < left { wait } else { left });
    }

    // ---- reset ---------------------------------------------------------------

    /// CTRL.RST and a bounded wait for it to self-clear, then [`after_reset`](Self::after_reset).
    fn controller_reset(&mut self, deadline: Deadline) -> Result<(), E1000Error> {
        let value = self.regs.ctrl().read().untrusted();
        if gone(value) {
            return Err(E1000Error::DeviceGone {
                register: r::ctrl::SPEC.name,
            });
        }
        if mutant!("e1000_bus_master_before_reset") {
            self.bus_master_on()?;
        }
        // Keep the dead kernel's bits except those that hold the PHY or the link
        // in reset or force them: CTRL with PHY_RST clear never reads all-ones,
        // so all-ones while RST is pending still means "gone".
        let value = (value.into_raw_for_report() & !CTRL_CLEAR) | ctrl::RST;
        self.regs.ctrl().write(value);
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
        if mutant!("e1000_skip_reset_wait") {
            return Ok(());
        }
        let own = Deadline::after(&self.clock, RESET_TIMEOUT).min(deadline);
        let paced = Paced {
            clock: &self.clock,
            interval: RESET_POLL_INTERVAL,
        };
        let regs = &mut self.regs;
        let seen = poll(
            &paced,
            own,
            || regs.ctrl().read().untrusted(),
            |c| gone(*c) || !r::ctrl::RST.is_set(*c),
        );
        match seen {
            Ok(c) if gone(c) => Err(E1000Error::DeviceGone {
                register: r::ctrl::SPEC.name,
            }),
            Ok(_) => Ok(()),
            Err(t) => Err(E1000Error::ResetTimeout {
                ctrl: t.last.into_raw_for_report(),
                waited: t.waited,
                deadline_ns: own.as_ns(),
            }),
        }
    }

    /// PCIe FLR (which resets the whole function, MAC included) within the
    /// step's `deadline`, then the saved BARs restored (FLR clears them) and
    /// memory decoding turned back on; bus mastering stays off
    /// ([`Function::function_level_reset`](paranoid::pci::Function::function_level_reset)).
    fn function_level_reset(&mut self, deadline: Deadline) -> Result<(), E1000Error> {
        self.function
            .function_level_reset(&self.clock, deadline)
            .map_err(E1000Error::Flr)
    }

    // ---- verify --------------------------------------------------------------

    /// The EEPROM of this part, read through this driver's registers.
    fn eeprom(&mut self) -> Eeprom<'_, R, C> {
        Eeprom {
            regs: &mut self.regs,
            clock: &self.clock,
            part: self.part,
        }
    }

    /// The internal PHY's id through MDIC must be the one the part's device id
    /// promises (QEMU: PHY_ID2 0x0C30 on the 82544GC, 0x0C20 on the others).
    fn check_phy_id(&mut self, deadline: Deadline) -> Result<(), E1000Error> {
        let id1 = self.read_phy(mdic::PHY_ID1, deadline)?;
        let id2 = self.read_phy(mdic::PHY_ID2, deadline)?;
        let read = u32::from(id1) << 16 | u32::from(id2);
        let expected = self.part.phy_id();
        if read & PHY_ID_MASK != expected {
            return Err(E1000Error::PhyId { expected, read });
        }
        Ok(())
    }

    /// One PHY register read: the MDIC command, a bounded wait for R, and E
    /// checked.
    fn read_phy(&mut self, register: u8, deadline: Deadline) -> Result<u16, E1000Error> {
        self.regs.mdic().write(mdic::read(register));
        let own = Deadline::after(&self.clock, MDIC_TIMEOUT).min(deadline);
        let regs = &mut self.regs;
        let seen = poll(
            &self.clock,
            own,
            || regs.mdic().read().untrusted(),
            |v| v.is_all_ones() || r::mdic::R.is_set(*v),
        );
        let value = match seen {
            Ok(v) => v.not_all_ones().map_err(|_| E1000Error::DeviceGone {
                register: r::mdic::SPEC.name,
            })?,
            Err(t) => {
                return Err(E1000Error::MdicTimeout {
                    register,
                    mdic: t.last.into_raw_for_report(),
                    waited: t.waited,
                })
            }
        };
        if r::mdic::E.is_set(value) {
            return Err(E1000Error::MdicError {
                register,
                mdic: value.into_raw_for_report(),
            });
        }
        let data = r::mdic::DATA.get(value).in_range(0..=0xffff)?;
        Ok(data as u16)
    }

    // ---- enable --------------------------------------------------------------

    /// RAL0/RAH0 = our address (valid), other entries invalid, multicast table
    /// cleared (its contents are undefined after reset, SDM 13.5).
    fn program_receive_addresses(&mut self) {
        let [a, b, c, d, e, f] = self.mac.0;
        self.regs.ral0().write(u32::from_le_bytes([a, b, c, d]));
        self.regs
            .rah0()
            .write(u32::from(u16::from_le_bytes([e, f])) | RAH_AV);
        // The tables are arrays: offsets from the declared bases, in bounds by
        // construction.
        for (ral, rah) in (1..regs::RA_ENTRIES).filter_map(regs::ra_offsets) {
            self.regs.io().write32(rah, 0);
            self.regs.io().write32(ral, 0);
        }
        for mta in (0..regs::MTA_ENTRIES).filter_map(regs::mta_offset) {
            self.regs.io().write32(mta, 0);
        }
    }

    /// CTRL.SLU and ASDE set; the bits that would hold the link or the PHY down,
    /// or force a speed, cleared (Linux `e1000_setup_copper_link`).
    fn set_link_up(&mut self) -> Result<(), E1000Error> {
        let value = self.regs.ctrl().read().untrusted();
        if value.is_all_ones() {
            return Err(E1000Error::DeviceGone {
                register: r::ctrl::SPEC.name,
            });
        }
        let value =
            (value.into_raw_for_report() & !(CTRL_CLEAR | ctrl::RST)) | ctrl::SLU | ctrl::ASDE;
        self.regs.ctrl().write(value);
        Ok(())
    }

    /// Interrupt moderation and delay timers to zero: write-backs are not held
    /// back by a timer the dead kernel set.
    fn clear_delay_timers(&mut self) {
        self.regs.itr().write(0);
        self.regs.rdtr().write(0);
        self.regs.radv().write(0);
        self.regs.tidv().write(0);
        self.regs.tadv().write(0);
    }

    /// Receive ring in the window: descriptors armed, base and length, head and
    /// tail zero while the receiver is off (SDM 14.4). Returns the tail to write
    /// once the receiver is on.
    fn setup_rx_ring(&mut self) -> Result<u16, E1000Error> {
        let tail = self.rx.arm_all()?;
        // The window address becomes register bytes here.
        let base = self.rx.base().get();
        self.regs.rdbal().write(base as u32);
        self.regs.rdbah().write((base >> 32) as u32);
        self.regs.rdlen().write(RxRing::<W>::bytes());
        self.regs.rdh().write(0);
        self.regs.rdt().write(0);
        Ok(tail)
    }

    /// Transmit ring in the window: descriptors cleared, base and length, head
    /// and tail zero, inter-packet gap (SDM 14.5).
    fn setup_tx_ring(&mut self) -> Result<(), E1000Error> {
        self.tx.clear()?;
        let base = self.tx.base().get();
        self.regs.tdbal().write(base as u32);
        self.regs.tdbah().write((base >> 32) as u32);
        self.regs.tdlen().write(TxRing::<W>::bytes());
        self.regs.tdh().write(0);
        self.regs.tdt().write(0);
        self.regs.tipg().write(regs::TIPG_COPPER);
        Ok(())
    }

    /// The receive address and every ring register read back what was written:
    /// before bus mastering is turned on, the device must point nowhere but
    /// into the window.
    fn verify_ring_registers(&mut self) -> Result<(), E1000Error> {
        let rx = self.rx.base().get();
        let tx = self.tx.base().get();
        let [a, b, c, d, e, f] = self.mac.0;
        let expected: [(RegisterSpec, u32); 14] = [
            (r::ral0::SPEC, u32::from_le_bytes([a, b, c, d])),
            (
                r::rah0::SPEC,
                u32::from(u16::from_le_bytes([e, f])) | RAH_AV,
            ),
            (r::rdbal::SPEC, rx as u32),
            (r::rdbah::SPEC, (rx >> 32) as u32),
            (r::rdlen::SPEC, RxRing::<W>::bytes()),
            (r::rdh::SPEC, 0),
            (r::rdt::SPEC, 0),
            (r::tdbal::SPEC, tx as u32),
            (r::tdbah::SPEC, (tx >> 32) as u32),
            (r::tdlen::SPEC, TxRing::<W>::bytes()),
            (r::tdh::SPEC, 0),
            (r::tdt::SPEC, 0),
            (r::rctl::SPEC, 0),
            (r::tctl::SPEC, tctl::PSP),
        ];
        for (spec, wrote) in expected {
            // Declared 32-bit read/write registers of the block, read by offset.
            let read: Untrusted<u32> = self.regs.io().read32(spec.offset);
            if read.is_all_ones() {
                return Err(E1000Error::DeviceGone {
                    register: spec.name,
                });
            }
            if !read.is(wrote) {
                return Err(E1000Error::RegisterReadback {
                    register: spec.name,
                    wrote,
                    read: read.into_raw_for_report(),
                });
            }
        }
        Ok(())
    }

    fn bus_master_on(&mut self) -> Result<(), E1000Error> {
        self.function
            .bus_master_on()
            .map(|_| ())
            .map_err(E1000Error::PciGone)
    }

    /// RCTL: on, broadcasts accepted, 2048-byte buffers, CRC stripped, no
    /// promiscuous or loopback mode. TCTL: on, short frames padded, collision
    /// threshold 15 and distance 63 (SDM 14.4 and 14.5). Then RDT hands the
    /// receive buffers to the device.
    fn enable_rx_tx(&mut self, rx_tail: u16) {
        let rctl = rctl::EN | rctl::BAM | rctl::SECRC | rctl::BSIZE_2048 | rctl::RDMTS_HALF;
        self.regs.rctl().write(rctl);
        self.regs
            .tctl()
            .write(tctl::EN | tctl::PSP | tctl::RTLC | tctl::CT_COLD);
        self.regs.rdt().write(u32::from(rx_tail));
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

/// All-ones: the device is gone (a CTRL read with RST pending is never
/// all-ones, as the PHY reset bit is cleared first). The one all-ones test of
/// quiesce and reset (the `e1000_skip_all_ones_check` mutant removes it).
fn gone(value: Untrusted<u32>) -> bool {
    !mutant!("e1000_skip_all_ones_check") && value.is_all_ones()
}

/// Brings an e1000 from whatever state it is in to Ready within
/// [`INIT_BUDGET`]: quiesce, reset, verify, enable, link. `#[paranoid_init]`
/// turns this body into `init(driver, &clock) -> Result<Initialized<_>,
/// InitFailure<_>>`: held to the budget, traced, escalated to FLR when the
/// function supports it, and fenced (bus mastering off) when everything failed.
/// `clock` must be the clock the driver was built with.
///
/// # Errors
///
/// [`InitFailure`](paranoid::init::InitFailure) with the fenced driver, the last
/// cause and the trace.
#[paranoid_init(budget_ms = 5000)]
#[expect(
    clippy::result_large_err,
    clippy::type_complexity,
    reason = "the init body signature `#[paranoid_init]` requires: the device comes back in the error"
)]
pub fn init<R, P, C, W>(
    device: Device<E1000<R, P, C, W>, Unknown>,
    ctx: &mut InitContext<'_, C>,
) -> Result<Device<E1000<R, P, C, W>, Ready>, Stalled<E1000<R, P, C, W>>>
where
    R: RegisterIo,
    P: ConfigAccess,
    C: Clock,
    W: Window,
{
    device
        .quiesce(ctx)?
        .reset(ctx)?
        .verify(ctx)?
        .enable(ctx)?
        .step(ctx, "link up", |d, deadline| d.wait_for_link(deadline))
}
