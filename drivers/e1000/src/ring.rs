//! Legacy receive and transmit descriptor rings (SDM 3.2.3 and 3.3.3), in the
//! DMA window.
//!
//! The rings know descriptors and buffers, not registers: the driver rings the
//! doorbells (RDT, TDT) with the slots these functions return. Everything the
//! device writes back arrives as [`Untrusted`] and is validated before its
//! length sizes a copy or its slot is reused:
//!
//! - receive: DD says the device is done; then the status must have no reserved
//!   bit, EOP must be set (buffers hold any frame the receiver accepts, so a
//!   split frame is a lie), the length must fit the buffer and hold an Ethernet
//!   header. A bad descriptor is an error, never an index or a length.
//! - transmit: DD on the oldest descriptor in flight completes it; reserved
//!   status bits are an error.
//!
//! Ownership: the device owns the receive descriptors from RDH up to, not
//! including, RDT. The driver only reads the descriptor at `next` (RDT + 1),
//! which the device owns, and rewrites each descriptor whole just before it
//! moves RDT past it, so a DD the device writes into the slot at RDT, which it
//! does not own, is overwritten, never acted on.

use paranoid::dma::{Bidirectional, DmaArena, DmaBuffer, FromDevice, Iova, ToDevice, Window};
use paranoid::Untrusted;

use crate::error::{DescriptorProblem, E1000Error};

/// Receive descriptors (a multiple of 8: RDLEN must be a multiple of 128 bytes).
pub const RX_RING_LEN: u16 = 32;
/// Transmit descriptors (a multiple of 8).
pub const TX_RING_LEN: u16 = 32;
/// Bytes per packet buffer (RCTL.BSIZE = 2048, BSEX = 0).
pub const BUFFER_SIZE: usize = 2048;
/// Longest frame sent or accepted, without FCS (RCTL.LPE clear).
pub const MAX_FRAME: usize = 1514;
/// Shortest frame: an Ethernet header.
pub const MIN_FRAME: usize = 14;
/// Bytes per legacy descriptor.
pub const DESCRIPTOR_SIZE: usize = 16;

/// Legacy receive descriptor status bits (SDM 3.2.3).
pub mod rx_status {
    /// Descriptor done.
    pub const DD: u32 = 0;
    /// End of packet.
    pub const EOP: u32 = 1;
    /// Bit 4 is reserved on the 8254x.
    pub const RESERVED_BIT: u32 = 4;
}

/// Legacy transmit descriptor command and status bits (SDM 3.3.3).
pub mod tx_desc {
    /// CMD.EOP: end of packet.
    pub const CMD_EOP: u8 = 1 << 0;
    /// CMD.IFCS: insert FCS.
    pub const CMD_IFCS: u8 = 1 << 1;
    /// CMD.RS: report status (write DD back).
    pub const CMD_RS: u8 = 1 << 3;
    /// STA.DD bit number.
    pub const STA_DD: u32 = 0;
    /// STA.EC (excess collisions) and STA.LC (late collision): a failed send.
    pub const STA_ERRORS: u8 = 0b0110;
    /// Status bits 7:4 are reserved.
    pub const STA_RESERVED_SHIFT: u32 = 4;
}

const fn desc_offset(slot: u16) -> usize {
    slot as usize * DESCRIPTOR_SIZE
}

const fn buffer_offset(slot: u16) -> usize {
    slot as usize * BUFFER_SIZE
}

const fn next_slot(slot: u16, len: u16) -> u16 {
    if slot + 1 >= len {
        0
    } else {
        slot + 1
    }
}

/// What the next receive descriptor held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rx {
    /// The device has not written it back yet.
    Empty,
    /// A frame of `len` bytes was copied out of `slot`.
    Frame {
        /// The slot to give back.
        slot: u16,
        /// Bytes copied.
        len: usize,
    },
    /// The device flagged a receive error (CRC, symbol...); the frame is dropped.
    Discarded {
        /// The slot to give back.
        slot: u16,
    },
    /// The write-back was invalid; the frame is dropped.
    Invalid {
        /// The slot to give back.
        slot: u16,
        /// Why.
        error: E1000Error,
    },
}

/// The receive ring and its buffers.
pub(crate) struct RxRing<W: Window> {
    descs: DmaBuffer<W, Bidirectional>,
    bufs: DmaBuffer<W, FromDevice>,
    next: u16,
}

impl<W: Window> RxRing<W> {
    /// Allocates the ring and one buffer per descriptor.
    pub(crate) fn new<const N: usize>(arena: &mut DmaArena<W, N>) -> Result<Self, E1000Error> {
        Ok(Self {
            descs: arena.alloc(desc_offset(RX_RING_LEN), 128)?,
            bufs: arena.alloc(buffer_offset(RX_RING_LEN), BUFFER_SIZE)?,
            next: 0,
        })
    }

    /// IOVA of the first descriptor (for RDBAL/RDBAH).
    pub(crate) fn base(&self) -> Iova<W> {
        self.descs.iova()
    }

    /// IOVA of the first packet buffer.
    pub(crate) fn buffers_base(&self) -> Iova<W> {
        self.bufs.iova()
    }

    /// Bytes of descriptors (for RDLEN).
    pub(crate) const fn bytes() -> u32 {
        (RX_RING_LEN as u32) * DESCRIPTOR_SIZE as u32
    }

    /// Points every descriptor at its buffer with a clear status; the next frame
    /// is expected in slot 0. Returns the tail to write: all but one descriptor
    /// go to the device (RDT == RDH would mean an empty ring).
    pub(crate) fn arm_all(&mut self) -> Result<u16, E1000Error> {
        for slot in 0..RX_RING_LEN {
            self.arm(slot)?;
        }
        self.next = 0;
        Ok(RX_RING_LEN - 1)
    }

    /// Rewrites descriptor `slot` whole: buffer address, cleared write-back.
    pub(crate) fn arm(&mut self, slot: u16) -> Result<(), E1000Error> {
        let addr = self
            .bufs
            .iova()
            .offset(buffer_offset(slot) as u64)
            .ok_or(E1000Error::Dma(paranoid::dma::DmaError::OutOfBounds {
                offset: buffer_offset(slot),
                len: BUFFER_SIZE,
                size: self.bufs.len(),
            }))?;
        self.descs.write(desc_offset(slot), addr.get())?;
        self.descs.write(desc_offset(slot) + 8, 0u64)?;
        Ok(())
    }

    /// Gives a descriptor back to the device after the frame in `slot` was
    /// taken; returns the new tail, `slot` itself.
    ///
    /// Moving the tail to `slot` hands over the descriptor at the old tail (the
    /// one before `slot`), which the device did not own until now: it is
    /// rewritten whole just before, so a DD the device wrote into it while it
    /// was ours is gone. `slot` becomes the old tail of the next call.
    pub(crate) fn give_back(&mut self, slot: u16) -> Result<u16, E1000Error> {
        let handed_over = if slot == 0 { RX_RING_LEN - 1 } else { slot - 1 };
        self.arm(handed_over)?;
        self.next = next_slot(slot, RX_RING_LEN);
        Ok(slot)
    }

    /// The slot the next frame is expected in.
    pub(crate) fn next(&self) -> u16 {
        self.next
    }

    /// Looks at the next descriptor and, when the device is done with it,
    /// validates the write-back (`CHECKED`) and copies the frame into `out`.
    pub(crate) fn take<const CHECKED: bool>(&mut self, out: &mut [u8]) -> Result<Rx, E1000Error> {
        let slot = self.next;
        let wb: Untrusted<u64> = self.descs.read(desc_offset(slot) + 8)?;
        let status = wb.field(32, 8);
        if !status.bit(rx_status::DD) {
            return Ok(Rx::Empty);
        }
        let length = wb.field(0, 16);
        let errors = wb.field(40, 8);
        let len = if CHECKED {
            match check_rx(status, length) {
                Ok(len) => len,
                Err(problem) => {
                    return Ok(Rx::Invalid {
                        slot,
                        error: E1000Error::RxDescriptor {
                            slot,
                            problem,
                            status: status.into_raw_for_report() as u8,
                            length: length.into_raw_for_report() as u16,
                        },
                    })
                }
            }
        } else {
            // Benchmark only: the device's length used as is.
            length.into_raw_for_report() as usize
        };
        if CHECKED && !errors.is(0) {
            return Ok(Rx::Discarded { slot });
        }
        let Some(dst) = out.get_mut(..len) else {
            return Ok(Rx::Invalid {
                slot,
                error: E1000Error::BufferTooSmall {
                    needed: len,
                    given: out.len(),
                },
            });
        };
        self.bufs.read_bytes(buffer_offset(slot), dst)?;
        Ok(Rx::Frame { slot, len })
    }
}

/// Validates a receive write-back: reserved bits, EOP, length against the buffer.
fn check_rx(status: Untrusted<u64>, length: Untrusted<u64>) -> Result<usize, DescriptorProblem> {
    if status.bit(rx_status::RESERVED_BIT) {
        return Err(DescriptorProblem::ReservedStatus);
    }
    if !status.bit(rx_status::EOP) {
        return Err(DescriptorProblem::MissingEop);
    }
    let length = if mutant!("e1000_trust_rx_length") {
        Untrusted::new(length.into_raw_for_report().min(BUFFER_SIZE as u64))
    } else {
        length
    };
    let len = length
        .in_range(0..=BUFFER_SIZE as u64)
        .map_err(|_| DescriptorProblem::LengthPastBuffer)?;
    if len < MIN_FRAME as u64 {
        return Err(DescriptorProblem::Runt);
    }
    // In 14..=2048 by the checks above.
    Ok(len as usize)
}

/// The transmit ring and its buffers.
pub(crate) struct TxRing<W: Window> {
    descs: DmaBuffer<W, Bidirectional>,
    bufs: DmaBuffer<W, ToDevice>,
    /// Next slot to fill (what TDT is set to after filling).
    tail: u16,
    /// Oldest slot in flight.
    clean: u16,
    /// Slots in flight.
    in_flight: u16,
}

impl<W: Window> TxRing<W> {
    /// Allocates the ring and one buffer per descriptor.
    pub(crate) fn new<const N: usize>(arena: &mut DmaArena<W, N>) -> Result<Self, E1000Error> {
        Ok(Self {
            descs: arena.alloc(desc_offset(TX_RING_LEN), 128)?,
            bufs: arena.alloc(buffer_offset(TX_RING_LEN), BUFFER_SIZE)?,
            tail: 0,
            clean: 0,
            in_flight: 0,
        })
    }

    /// IOVA of the first descriptor (for TDBAL/TDBAH).
    pub(crate) fn base(&self) -> Iova<W> {
        self.descs.iova()
    }

    /// Bytes of descriptors (for TDLEN).
    pub(crate) const fn bytes() -> u32 {
        (TX_RING_LEN as u32) * DESCRIPTOR_SIZE as u32
    }

    /// Clears every descriptor; nothing in flight, next slot 0.
    pub(crate) fn clear(&mut self) -> Result<(), E1000Error> {
        for slot in 0..TX_RING_LEN {
            self.descs.write(desc_offset(slot), 0u64)?;
            self.descs.write(desc_offset(slot) + 8, 0u64)?;
        }
        self.tail = 0;
        self.clean = 0;
        self.in_flight = 0;
        Ok(())
    }

    /// Frames posted and not yet written back.
    pub(crate) fn in_flight(&self) -> u16 {
        self.in_flight
    }

    /// The oldest slot in flight.
    pub(crate) fn oldest(&self) -> u16 {
        self.clean
    }

    /// Completes the descriptors the device has written back, oldest first.
    /// Returns how many of them report a failed send (EC/LC).
    pub(crate) fn reclaim<const CHECKED: bool>(&mut self) -> Result<u32, E1000Error> {
        let mut failed = 0;
        while self.in_flight > 0 {
            let slot = self.clean;
            let status: Untrusted<u8> = self.descs.read(desc_offset(slot) + 12)?;
            if !status.bit(tx_desc::STA_DD) {
                break;
            }
            self.clean = next_slot(slot, TX_RING_LEN);
            self.in_flight -= 1;
            if CHECKED && !status.field(tx_desc::STA_RESERVED_SHIFT, 4).is(0) {
                return Err(E1000Error::TxDescriptor {
                    slot,
                    status: status.into_raw_for_report(),
                });
            }
            if !status.field(1, 2).is(0) {
                failed += 1;
            }
        }
        Ok(failed)
    }

    /// Copies `frame` into the next buffer and fills its descriptor (EOP, IFCS,
    /// RS); returns the new tail for TDT.
    pub(crate) fn post(&mut self, frame: &[u8]) -> Result<u16, E1000Error> {
        if !(MIN_FRAME..=MAX_FRAME).contains(&frame.len()) {
            return Err(E1000Error::FrameLength { len: frame.len() });
        }
        // One slot stays empty: TDT == TDH means "nothing to send".
        if self.in_flight >= TX_RING_LEN - 1 {
            return Err(E1000Error::TxRingFull);
        }
        let slot = self.tail;
        let addr = self
            .bufs
            .iova()
            .offset(buffer_offset(slot) as u64)
            .ok_or(E1000Error::Dma(paranoid::dma::DmaError::OutOfBounds {
                offset: buffer_offset(slot),
                len: BUFFER_SIZE,
                size: self.bufs.len(),
            }))?;
        self.bufs.write_bytes(buffer_offset(slot), frame)?;
        let cmd = tx_desc::CMD_EOP | tx_desc::CMD_IFCS | tx_desc::CMD_RS;
        // Frame length ≤ 1514 by the check above.
        let lower = frame.len() as u32 | u32::from(cmd) << 24;
        self.descs.write(desc_offset(slot), addr.get())?;
        self.descs.write(desc_offset(slot) + 8, lower)?;
        self.descs.write(desc_offset(slot) + 12, 0u32)?;
        self.tail = next_slot(slot, TX_RING_LEN);
        self.in_flight += 1;
        Ok(self.tail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rx_checks_reject_each_lie() {
        let ok = Untrusted::new(0b11u64);
        assert_eq!(check_rx(ok, Untrusted::new(60)), Ok(60));
        assert_eq!(
            check_rx(ok, Untrusted::new(2049)),
            Err(DescriptorProblem::LengthPastBuffer)
        );
        assert_eq!(
            check_rx(ok, Untrusted::new(13)),
            Err(DescriptorProblem::Runt)
        );
        // An Ethernet header alone is the shortest frame taken.
        assert_eq!(check_rx(ok, Untrusted::new(14)), Ok(14));
        assert_eq!(
            check_rx(Untrusted::new(0b1), Untrusted::new(60)),
            Err(DescriptorProblem::MissingEop)
        );
        assert_eq!(
            check_rx(Untrusted::new(0b1_0011), Untrusted::new(60)),
            Err(DescriptorProblem::ReservedStatus)
        );
        assert_eq!(check_rx(ok, Untrusted::new(2048)), Ok(2048));
    }

    #[test]
    fn slots_wrap() {
        assert_eq!(next_slot(31, 32), 0);
        assert_eq!(next_slot(0, 32), 1);
    }
}
