//! The driver: its state, its configuration and the data path.
//!
//! Init lives in [`crate::init`]; this file holds what a ready NIC does: send
//! and receive frames through the rings, report the link, and shut down for a
//! clean handoff.

use core::time::Duration;

use paranoid::dma::{DmaArena, Window};
use paranoid::mmio::RegisterIo;
use paranoid::pci::{offset, ConfigAccess, Function, PciAddress};
use paranoid::poll::poll;
use paranoid::time::{Clock, Deadline};
use paranoid::Untrusted;

use crate::error::E1000Error;
use crate::part::Part;
use crate::regs::{e1000_regs, E1000Regs};
use crate::ring::{Rx, RxRing, TxRing, RX_RING_LEN, TX_RING_LEN};

/// What init does when the link is still down at its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPolicy {
    /// Reach Ready anyway, degraded: the rings are live and the NIC receives as
    /// soon as the link comes up. A missing cable is not a device fault, so it
    /// does not fence the device. Call [`E1000::wait_link`] before sending.
    AllowDown,
    /// Fail init with [`E1000Error::LinkDown`] (the device is then fenced).
    RequireUp,
}

/// Driver configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// What a link still down at `link_timeout` means.
    pub link_policy: LinkPolicy,
    /// How long init waits for link up after setting CTRL.SLU. Copper
    /// auto-negotiation takes up to about 3 s; QEMU's model is up at once or
    /// after 500 ms.
    pub link_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            link_policy: LinkPolicy::AllowDown,
            link_timeout: LINK_UP_TIMEOUT,
        }
    }
}

/// Default wait for link up (auto-negotiation, IEEE 802.3 clause 28, takes a
/// few seconds on copper).
pub const LINK_UP_TIMEOUT: Duration = Duration::from_secs(3);
/// STATUS is read this often while waiting for the link.
pub const LINK_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// A 48-bit Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MacAddress(pub [u8; 6]);

impl MacAddress {
    /// True for a usable station address: not zero, not broadcast, not multicast.
    pub fn is_valid_station(&self) -> bool {
        let [first, ..] = self.0;
        self.0 != [0; 6] && self.0 != [0xff; 6] && first & 1 == 0
    }
}

impl core::fmt::Display for MacAddress {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// Link state as STATUS reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// STATUS.LU.
    pub up: bool,
    /// STATUS.FD.
    pub full_duplex: bool,
    /// STATUS.SPEED in Mb/s (10, 100 or 1000).
    pub speed_mbps: u16,
}

impl Link {
    /// Decodes STATUS.
    ///
    /// # Errors
    ///
    /// [`E1000Error::DeviceGone`] when STATUS reads all-ones.
    pub fn from_status(value: Untrusted<u32>) -> Result<Self, E1000Error> {
        use e1000_regs::status::{FD, LU, SPEC, SPEED};
        let value = value.not_all_ones().map_err(|_| E1000Error::DeviceGone {
            register: SPEC.name,
        })?;
        let speed = match SPEED.get(value).in_range(0..=3) {
            Ok(0) => 10,
            Ok(1) => 100,
            _ => 1000,
        };
        Ok(Self {
            up: LU.is_set(value),
            full_duplex: FD.is_set(value),
            speed_mbps: speed,
        })
    }
}

/// Counters of the data path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Frames handed to the device.
    pub tx_frames: u64,
    /// Sends the device reported failed (collisions).
    pub tx_failed: u64,
    /// Frames received and returned.
    pub rx_frames: u64,
    /// Frames the device flagged with receive errors (dropped).
    pub rx_errors: u64,
    /// Descriptors the device wrote back invalid (dropped).
    pub rx_invalid: u64,
}

/// Reads the function's ids and classifies them; an unsupported function is
/// fenced before the error is returned.
fn identify<P: ConfigAccess>(pci: &mut P, address: PciAddress) -> Result<Part, E1000Error> {
    let ids = pci
        .read32(address, offset::VENDOR_ID)
        .not_all_ones()
        .map_err(|_| E1000Error::PciGone(paranoid::pci::PciError::NotPresent(address)))?;
    // The ids are only compared against the table of supported parts: any
    // value is safe to compare.
    let raw = ids.into_raw_for_report();
    let (vendor, device) = (raw as u16, (raw >> 16) as u16);
    Part::from_ids(vendor, device).inspect_err(|_| {
        if !mutant!("e1000_skip_unsupported_fence") {
            let _ = paranoid::pci::command::fence(pci, address);
        }
    })
}

/// An e1000 (8254x) NIC: registers `R`, configuration access `P`, clock `C`, and
/// rings in DMA window `W`.
pub struct E1000<R, P, C, W: Window> {
    pub(crate) part: Part,
    pub(crate) regs: E1000Regs<R>,
    /// The PCI function: configuration access, saved BARs, FLR.
    pub(crate) function: Function<P>,
    pub(crate) clock: C,
    pub(crate) config: Config,
    pub(crate) rx: RxRing<W>,
    pub(crate) tx: TxRing<W>,
    pub(crate) mac: MacAddress,
    pub(crate) link: Option<Link>,
    pub(crate) running: bool,
    pub(crate) stats: Stats,
}

impl<R: RegisterIo, P: ConfigAccess, C: Clock, W: Window> E1000<R, P, C, W> {
    /// A driver for the NIC at `address` with registers `regs` (BAR0, 128 KiB),
    /// its rings and buffers allocated from `arena` (about 136 KiB).
    ///
    /// Nothing is written to the device: it stays as inherited until init. Its
    /// configuration space is read to learn which [`Part`] it is, whether it
    /// supports FLR and to save the BARs an FLR would clear.
    ///
    /// # Errors
    ///
    /// - [`E1000Error::PciGone`] when its configuration space reads all-ones.
    /// - [`E1000Error::Unsupported`] when its ids are not a supported part: the
    ///   function is fenced (bus mastering and INTx off, in configuration space
    ///   only) and none of its registers is touched.
    /// - [`E1000Error::Dma`] when the window has no room for the rings.
    pub fn new<const N: usize>(
        regs: R,
        mut pci: P,
        address: PciAddress,
        clock: C,
        arena: &mut DmaArena<W, N>,
        config: Config,
    ) -> Result<Self, E1000Error> {
        let part = identify(&mut pci, address)?;
        let rx = RxRing::new(arena)?;
        let tx = TxRing::new(arena)?;
        let function = Function::new(pci, address);
        Ok(Self {
            part,
            regs: E1000Regs::new(regs),
            function,
            clock,
            config,
            rx,
            tx,
            mac: MacAddress::default(),
            link: None,
            running: false,
            stats: Stats::default(),
        })
    }

    /// The part, from its PCI ids.
    pub fn part(&self) -> Part {
        self.part
    }

    /// The Ethernet address read from the EEPROM (zero before init verified it).
    pub fn mac(&self) -> MacAddress {
        self.mac
    }

    /// The link as last read (at init or by [`link`](Self::link)).
    pub fn last_link(&self) -> Option<Link> {
        self.link
    }

    /// Data-path counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The PCI address.
    pub fn address(&self) -> PciAddress {
        self.function.address()
    }

    /// True between a successful init and shutdown.
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// IOVAs of the receive ring, the receive buffers and the transmit ring (for
    /// tests and reports).
    pub fn ring_iovas(&self) -> (u64, u64, u64) {
        (
            self.rx.base().get(),
            self.rx.buffers_base().get(),
            self.tx.base().get(),
        )
    }

    /// The register block (tests use it to inspect a model).
    pub fn registers(&mut self) -> &mut R {
        self.regs.io()
    }

    /// Reads STATUS and returns the link.
    ///
    /// # Errors
    ///
    /// [`E1000Error::DeviceGone`] when STATUS reads all-ones.
    pub fn link(&mut self) -> Result<Link, E1000Error> {
        let link = Link::from_status(self.regs.status().read().untrusted())?;
        self.link = Some(link);
        Ok(link)
    }

    /// Waits for STATUS.LU, reading STATUS every [`LINK_POLL_INTERVAL`].
    ///
    /// # Errors
    ///
    /// [`E1000Error::LinkDown`] at the deadline, [`E1000Error::DeviceGone`].
    pub fn wait_link(&mut self, deadline: Deadline) -> Result<Link, E1000Error> {
        let paced = Paced {
            clock: &self.clock,
            interval: LINK_POLL_INTERVAL,
        };
        let regs = &mut self.regs;
        let seen = poll(
            &paced,
            deadline,
            || regs.status().read().untrusted(),
            |s| s.is_all_ones() || e1000_regs::status::LU.is_set(*s),
        );
        match seen {
            Ok(s) => {
                let link = Link::from_status(s)?;
                self.link = Some(link);
                Ok(link)
            }
            Err(t) => {
                self.link = Link::from_status(t.last).ok();
                Err(E1000Error::LinkDown {
                    status: t.last.into_raw_for_report(),
                    waited: t.waited,
                })
            }
        }
    }

    fn ensure_running(&self) -> Result<(), E1000Error> {
        if self.running {
            Ok(())
        } else {
            Err(E1000Error::NotRunning)
        }
    }

    /// Queues `frame` (a whole Ethernet frame without FCS, 14..=1514 bytes) for
    /// transmission and rings the doorbell; does not wait.
    ///
    /// # Errors
    ///
    /// [`E1000Error::FrameLength`], [`E1000Error::TxRingFull`] when every
    /// descriptor is in flight, [`E1000Error::TxDescriptor`] for a bad write-back
    /// found while reclaiming, [`E1000Error::NotRunning`].
    pub fn transmit(&mut self, frame: &[u8]) -> Result<(), E1000Error> {
        self.transmit_with::<true>(frame)
    }

    pub(crate) fn transmit_with<const CHECKED: bool>(
        &mut self,
        frame: &[u8],
    ) -> Result<(), E1000Error> {
        self.ensure_running()?;
        self.reclaim::<CHECKED>()?;
        let tail = self.tx.post(frame)?;
        // Descriptor and buffer stores are ordered before the doorbell.
        core::sync::atomic::fence(core::sync::atomic::Ordering::Release);
        self.regs.tdt().write(u32::from(tail));
        self.stats.tx_frames += 1;
        Ok(())
    }

    fn reclaim<const CHECKED: bool>(&mut self) -> Result<(), E1000Error> {
        let failed = self.tx.reclaim::<CHECKED>()?;
        self.stats.tx_failed += u64::from(failed);
        Ok(())
    }

    /// Waits until every queued frame is written back (DD), reading TDH while it
    /// waits to notice a device that is gone or lies about its head.
    ///
    /// # Errors
    ///
    /// [`E1000Error::TxTimeout`] at the deadline, [`E1000Error::HeadOutOfRange`],
    /// [`E1000Error::DeviceGone`], [`E1000Error::TxDescriptor`].
    pub fn flush_tx(&mut self, deadline: Deadline) -> Result<(), E1000Error> {
        self.flush_tx_with::<true>(deadline)
    }

    pub(crate) fn flush_tx_with<const CHECKED: bool>(
        &mut self,
        deadline: Deadline,
    ) -> Result<(), E1000Error> {
        self.ensure_running()?;
        let start = self.clock.now_ns();
        loop {
            let expired = deadline.expired(&self.clock);
            self.reclaim::<CHECKED>()?;
            if self.tx.in_flight() == 0 {
                return Ok(());
            }
            let tdh = self.read_head(Head::Tdh)?;
            if expired {
                return Err(E1000Error::TxTimeout {
                    slot: self.tx.oldest(),
                    tdh,
                    waited: Duration::from_nanos(self.clock.now_ns().saturating_sub(start)),
                });
            }
            self.clock.relax();
        }
    }

    /// Reads a head register and checks it lies inside the ring.
    fn read_head(&mut self, head: Head) -> Result<u32, E1000Error> {
        let (raw, register, ring_len) = match head {
            Head::Rdh => (
                self.regs.rdh().read().untrusted(),
                e1000_regs::rdh::SPEC.name,
                RX_RING_LEN,
            ),
            Head::Tdh => (
                self.regs.tdh().read().untrusted(),
                e1000_regs::tdh::SPEC.name,
                TX_RING_LEN,
            ),
        };
        if raw.is_all_ones() {
            return Err(E1000Error::DeviceGone { register });
        }
        raw.in_range(0..=u32::from(ring_len) - 1)
            .map_err(|_| E1000Error::HeadOutOfRange {
                register,
                value: raw.into_raw_for_report(),
                ring_len,
            })
    }

    /// Sends `frame` and waits for the device to write it back.
    ///
    /// # Errors
    ///
    /// As [`transmit`](Self::transmit) and [`flush_tx`](Self::flush_tx).
    pub fn send(&mut self, frame: &[u8], deadline: Deadline) -> Result<(), E1000Error> {
        self.transmit(frame)?;
        self.flush_tx(deadline)
    }

    /// Takes the next received frame, if one is there, into `out` (at least
    /// [`MAX_FRAME`](crate::ring::MAX_FRAME) bytes avoids `BufferTooSmall`);
    /// returns its length. Frames the device flagged with errors are dropped and
    /// counted. Does not wait.
    ///
    /// # Errors
    ///
    /// [`E1000Error::RxDescriptor`] for an invalid write-back (the frame is
    /// dropped and the descriptor given back, so the next call goes on),
    /// [`E1000Error::BufferTooSmall`], [`E1000Error::NotRunning`].
    pub fn receive(&mut self, out: &mut [u8]) -> Result<Option<usize>, E1000Error> {
        self.receive_with::<true>(out)
    }

    pub(crate) fn receive_with<const CHECKED: bool>(
        &mut self,
        out: &mut [u8],
    ) -> Result<Option<usize>, E1000Error> {
        self.ensure_running()?;
        // Bounded: each round gives one descriptor back.
        for _ in 0..RX_RING_LEN {
            let (slot, result) = match self.rx.take::<CHECKED>(out)? {
                Rx::Empty => return Ok(None),
                Rx::Frame { slot, len } => {
                    self.stats.rx_frames += 1;
                    (slot, Some(Ok(len)))
                }
                Rx::Discarded { slot } => {
                    self.stats.rx_errors += 1;
                    (slot, None)
                }
                Rx::Invalid { slot, error } => {
                    self.stats.rx_invalid += 1;
                    (slot, Some(Err(error)))
                }
            };
            let tail = self.rx.give_back(slot)?;
            core::sync::atomic::fence(core::sync::atomic::Ordering::Release);
            self.regs.rdt().write(u32::from(tail));
            match result {
                Some(Ok(len)) => return Ok(Some(len)),
                Some(Err(e)) => return Err(e),
                None => continue,
            }
        }
        Ok(None)
    }

    /// Waits for a frame until `deadline`; while none is there it reads RDH to
    /// notice a device that is gone or lies about its head.
    ///
    /// # Errors
    ///
    /// [`E1000Error::RxTimeout`] at the deadline, [`E1000Error::HeadOutOfRange`],
    /// [`E1000Error::DeviceGone`], and those of [`receive`](Self::receive).
    pub fn receive_wait(
        &mut self,
        out: &mut [u8],
        deadline: Deadline,
    ) -> Result<usize, E1000Error> {
        self.receive_wait_with::<true>(out, deadline)
    }

    pub(crate) fn receive_wait_with<const CHECKED: bool>(
        &mut self,
        out: &mut [u8],
        deadline: Deadline,
    ) -> Result<usize, E1000Error> {
        let start = self.clock.now_ns();
        loop {
            let expired = deadline.expired(&self.clock);
            if let Some(len) = self.receive_with::<CHECKED>(out)? {
                return Ok(len);
            }
            self.read_head(Head::Rdh)?;
            if expired {
                return Err(E1000Error::RxTimeout {
                    waited: Duration::from_nanos(self.clock.now_ns().saturating_sub(start)),
                });
            }
            self.clock.relax();
        }
    }

    /// The slot the next received frame is expected in (for tests).
    pub fn rx_next_slot(&self) -> u16 {
        self.rx.next()
    }
}

/// The two head registers the data path reads.
#[derive(Debug, Clone, Copy)]
enum Head {
    /// RDH, in the receive ring.
    Rdh,
    /// TDH, in the transmit ring.
    Tdh,
}

/// A clock whose polling step is a fixed delay: for waits the spec measures in
/// milliseconds, so a poll loop reads the register every `interval` rather than
/// as fast as it can.
pub(crate) struct Paced<'c, C: Clock> {
    pub(crate) clock: &'c C,
    pub(crate) interval: Duration,
}

impl<C: Clock> Clock for Paced<'_, C> {
    fn now_ns(&self) -> u64 {
        self.clock.now_ns()
    }
    fn relax(&self) {
        self.clock.delay(self.interval);
    }
    fn delay(&self, duration: Duration) {
        self.clock.delay(duration);
    }
}

#[cfg(feature = "unchecked-bench")]
impl<R: RegisterIo, P: ConfigAccess, C: Clock, W: Window> E1000<R, P, C, W> {
    /// Benchmark only: [`send`](Self::send) with descriptor validation compiled out.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send), minus validation errors.
    pub fn send_unchecked(&mut self, frame: &[u8], deadline: Deadline) -> Result<(), E1000Error> {
        self.transmit_with::<false>(frame)?;
        self.flush_tx_with::<false>(deadline)
    }

    /// Benchmark only: [`receive_wait`](Self::receive_wait) with descriptor
    /// validation compiled out.
    ///
    /// # Errors
    ///
    /// As [`receive_wait`](Self::receive_wait), minus validation errors.
    pub fn receive_wait_unchecked(
        &mut self,
        out: &mut [u8],
        deadline: Deadline,
    ) -> Result<usize, E1000Error> {
        self.receive_wait_with::<false>(out, deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn station_addresses() {
        assert!(MacAddress([0x52, 0x54, 0, 0x12, 0x34, 0x56]).is_valid_station());
        assert!(!MacAddress([0; 6]).is_valid_station());
        assert!(!MacAddress([0xff; 6]).is_valid_station());
        assert!(!MacAddress([0x01, 0, 0x5e, 0, 0, 1]).is_valid_station());
    }

    #[cfg(feature = "model")]
    #[test]
    fn mac_addresses_print_as_six_hex_pairs() {
        let mac = MacAddress([0x52, 0x54, 0, 0x12, 0xab, 0x05]);
        assert_eq!(std::format!("{mac}"), "52:54:00:12:ab:05");
    }

    #[test]
    fn status_decodes_and_rejects_all_ones() {
        let l = Link::from_status(Untrusted::new(0x8008_0783)).unwrap();
        assert_eq!(
            l,
            Link {
                up: true,
                full_duplex: true,
                speed_mbps: 1000
            }
        );
        assert!(Link::from_status(Untrusted::new(u32::MAX)).is_err());
        assert_eq!(
            Link::from_status(Untrusted::new(0x40)).unwrap().speed_mbps,
            100
        );
    }
}
