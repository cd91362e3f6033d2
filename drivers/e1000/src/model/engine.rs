//! The model's transmit and receive units: descriptor fetch, buffer DMA,
//! write-back, head advance (SDM 3.2 and 3.3; QEMU `start_xmit`,
//! `e1000_receive_iov`).

use super::{E1000Model, Escape, Lie, Violation};
use crate::regs::{icr, rctl};

/// Largest transmit buffer a legacy descriptor may point at (SDM 3.3.3: 16288).
const TX_MAX_LEN: u32 = 16288;
/// Shortest frame on the wire without FCS; shorter ones are padded.
const ETH_ZLEN: usize = 60;
/// RX descriptor status: DD, EOP, IXSM.
const RX_DD: u8 = 1 << 0;
const RX_EOP: u8 = 1 << 1;
const RX_IXSM: u8 = 1 << 2;
/// TX status: DD; EC, LC, TU cleared on write-back.
const TX_DD: u8 = 1 << 0;
const TX_CMD_EOP: u32 = 1 << 24;
const TX_CMD_IFCS: u32 = 1 << 25;
const TX_CMD_RS: u32 = 1 << 27;
/// TX status: excess collisions.
const TX_EC: u8 = 1 << 1;
const TX_CMD_DEXT: u32 = 1 << 29;
const TX_DTYP_D: u32 = 1 << 20;

impl E1000Model {
    fn dma_read(&mut self, iova: u64, out: &mut [u8]) -> bool {
        match self.dma.read(self.source, iova, out) {
            Ok(()) => true,
            Err(fault) => {
                let at_ns = self.now();
                self.records.escapes.push(Escape { at_ns, fault });
                false
            }
        }
    }

    fn dma_write(&mut self, iova: u64, data: &[u8]) -> bool {
        match self.dma.write(self.source, iova, data) {
            Ok(()) => true,
            Err(fault) => {
                let at_ns = self.now();
                self.records.escapes.push(Escape { at_ns, fault });
                false
            }
        }
    }

    fn in_window(&self, iova: u64) -> bool {
        let (base, size) = self.window;
        iova >= base && iova - base < size
    }

    /// Processes transmit descriptors from TDH towards TDT, one per
    /// `tx_desc_ns` of credit, at most one ring's worth per tick (QEMU stops at
    /// a wrap-around too: TDT may be garbage).
    pub(super) fn run_tx(&mut self, link_up: bool) {
        if !self.bus_master() {
            return;
        }
        let len = self.regs.tdlen / 16;
        if len == 0 {
            return;
        }
        let base = (u64::from(self.regs.tdbah) << 32) | u64::from(self.regs.tdbal & !0xf);
        let mut done = 0;
        while self.regs.tdh != self.regs.tdt && done < len {
            let step = self.behaviour.tx_desc_ns;
            if step > 0 {
                if self.tx_credit < step {
                    break;
                }
                self.tx_credit -= step;
            }
            let slot = self.regs.tdh;
            let at = base.wrapping_add(u64::from(slot) * 16);
            let mut desc = [0u8; 16];
            if self.dma_read(at, &mut desc) {
                self.process_tx(slot, at, desc, link_up);
            }
            self.regs.tdh = if slot + 1 >= len { 0 } else { slot + 1 };
            done += 1;
        }
        if self.regs.tdh == self.regs.tdt {
            self.regs.icr |= icr::TXDW | 1 << 1;
        }
    }

    fn process_tx(&mut self, slot: u32, at: u64, desc: [u8; 16], link_up: bool) {
        let [a0, a1, a2, a3, a4, a5, a6, a7, l0, l1, l2, l3, u0, u1, u2, u3] = desc;
        let addr = u64::from_le_bytes([a0, a1, a2, a3, a4, a5, a6, a7]);
        let lower = u32::from_le_bytes([l0, l1, l2, l3]);
        let upper = u32::from_le_bytes([u0, u1, u2, u3]);
        let context = lower & TX_CMD_DEXT != 0 && lower & TX_DTYP_D == 0;
        let mut collided = false;
        if !context {
            let n = lower & 0xffff;
            if self.in_window(at) && (n == 0 || n > TX_MAX_LEN) && lower & TX_CMD_EOP != 0 {
                self.records
                    .violations
                    .push(Violation::TxLength { slot, len: n });
            }
            let n = n.min(TX_MAX_LEN) as usize;
            let mut buf = vec![0u8; n];
            if n > 0 && self.dma_read(addr, &mut buf) {
                self.tx_packet.extend_from_slice(&buf);
            }
            if lower & TX_CMD_EOP != 0 {
                if self.in_window(at) && lower & TX_CMD_IFCS == 0 {
                    self.records
                        .violations
                        .push(Violation::TxWithoutFcs { slot });
                }
                let frame = std::mem::take(&mut self.tx_packet);
                collided = self.tx_collisions > 0;
                if collided {
                    self.tx_collisions -= 1;
                } else if link_up && !frame.is_empty() {
                    self.records.tx_frames += 1;
                    self.wire.transmit(self.port, frame);
                }
            }
        }
        if lower & TX_CMD_RS != 0 {
            let mut status = (upper as u8 | TX_DD) & !0b1110;
            if collided {
                status |= TX_EC;
            }
            if self.chance(self.behaviour.malice.tx_reserved_status) {
                status |= 0x10 << (self.next_random() % 4);
                self.records.lies.push(Lie::TxReservedStatus { slot });
            }
            let wb = (upper & !0xff) | u32::from(status);
            self.dma_write(at + 12, &wb.to_le_bytes());
        }
    }

    /// Delivers frames from the wire into the receive ring, one per
    /// `rx_frame_ns` of credit. Frames arriving while the receiver is off, the
    /// link is down or bus mastering is off are lost, as on a real wire.
    pub(super) fn run_rx(&mut self, link_up: bool) {
        let now = self.now();
        let mut budget = 8;
        while budget > 0 {
            let step = self.behaviour.rx_frame_ns;
            if step > 0 && self.rx_credit < step {
                break;
            }
            let Some(frame) = self.wire.receive(self.port, now) else {
                break;
            };
            budget -= 1;
            if step > 0 {
                self.rx_credit -= step;
            }
            if self.regs.rctl & rctl::EN == 0 || !link_up || !self.bus_master() {
                continue;
            }
            if self.accept(&frame) {
                self.receive_frame(&frame);
            }
        }
    }

    /// The receive filter: broadcast (BAM), promiscuous modes, the receive
    /// address table, the multicast table (SDM 3.2.1).
    fn accept(&self, frame: &[u8]) -> bool {
        let Some(dst) = frame.get(..6) else {
            return false;
        };
        let rctl = self.regs.rctl;
        if dst == [0xff; 6] {
            if rctl & rctl::BAM != 0 {
                return true;
            }
        } else if dst.first().is_some_and(|b| b & 1 != 0) {
            if rctl & rctl::MPE != 0 {
                return true;
            }
        } else if rctl & rctl::UPE != 0 {
            return true;
        }
        for pair in self.ra.chunks_exact(2) {
            if let [lo, hi] = pair {
                if hi & super::RAH_AV != 0 {
                    let [l0, l1, l2, l3] = lo.to_le_bytes();
                    let [h0, h1, ..] = hi.to_le_bytes();
                    if [l0, l1, l2, l3, h0, h1] == dst {
                        return true;
                    }
                }
            }
        }
        // Multicast offset (RCTL.MO): which 12 bits of the address hash.
        let shift = match (rctl >> rctl::MO_SHIFT) & 3 {
            0 => 4,
            1 => 3,
            2 => 2,
            _ => 0,
        };
        let [.., d4, d5] = <[u8; 6]>::try_from(dst).unwrap_or([0; 6]).map(u32::from);
        let f = ((d5 << 8 | d4) >> shift) & 0xfff;
        self.mta
            .get((f >> 5) as usize)
            .is_some_and(|w| w & (1 << (f & 0x1f)) != 0)
    }

    fn rx_buffer_size(&self) -> usize {
        let r = self.regs.rctl;
        let bsize = (r & rctl::BSIZE_MASK) >> 16;
        match (r & rctl::BSEX != 0, bsize) {
            (true, 1) => 16384,
            (true, 2) => 8192,
            (true, 3) => 4096,
            (false, 1) => 1024,
            (false, 2) => 512,
            (false, 3) => 256,
            _ => 2048,
        }
    }

    fn receive_frame(&mut self, frame: &[u8]) {
        let mut data = frame.to_vec();
        if data.len() < ETH_ZLEN {
            data.resize(ETH_ZLEN, 0);
        }
        let fcs = if self.regs.rctl & rctl::SECRC != 0 {
            0
        } else {
            4
        };
        let total = data.len() + fcs;
        let bufsize = self.rx_buffer_size();
        let len = self.regs.rdlen / 16;
        let base = (u64::from(self.regs.rdbah) << 32) | u64::from(self.regs.rdbal & !0xf);
        let mut offset = 0;
        let mut slots = 0;
        while offset < total {
            if len == 0 || self.regs.rdh == self.regs.rdt || slots >= len {
                self.records.rx_overruns += 1;
                self.regs.icr |= icr::RXO;
                return;
            }
            let slot = self.regs.rdh;
            let at = base.wrapping_add(u64::from(slot) * 16);
            let mut desc = [0u8; 16];
            if !self.dma_read(at, &mut desc) {
                return;
            }
            let [a0, a1, a2, a3, a4, a5, a6, a7, ..] = desc;
            let addr = u64::from_le_bytes([a0, a1, a2, a3, a4, a5, a6, a7]);
            let size = (total - offset).min(bufsize);
            let mut status = RX_DD;
            let mut length = size as u16;
            if addr != 0 {
                let end = (offset + bufsize).min(data.len());
                if let Some(chunk) = data.get(offset..end) {
                    if !chunk.is_empty() && !self.dma_write(addr, chunk) {
                        return;
                    }
                }
                offset += size;
                if offset >= total {
                    status |= RX_EOP | RX_IXSM;
                }
            } else if self.in_window(at) {
                self.records
                    .violations
                    .push(Violation::RxNullBuffer { slot });
            }
            self.lie_rx(slot, &mut status, &mut length, bufsize);
            let [l0, l1] = length.to_le_bytes();
            let wb = [l0, l1, 0, 0, status, 0, 0, 0];
            if !self.dma_write(at + 8, &wb) {
                return;
            }
            self.regs.rdh = if slot + 1 >= len { 0 } else { slot + 1 };
            slots += 1;
        }
        self.records.rx_frames += 1;
        self.regs.icr |= icr::RXT0;
        self.lie_rx_unowned(base, len);
    }

    fn lie_rx(&mut self, slot: u32, status: &mut u8, length: &mut u16, bufsize: usize) {
        let m = self.behaviour.malice;
        if self.chance(m.rx_length_past_buffer) {
            let extra = 1 + (self.next_random() % 0x8000) as u16;
            *length = (bufsize as u16).saturating_add(extra);
            self.records.lies.push(Lie::RxLengthPastBuffer {
                slot,
                length: *length,
            });
        }
        if self.chance(m.rx_reserved_status) {
            *status |= 1 << 4;
            self.records.lies.push(Lie::RxReservedStatus { slot });
        }
        if self.chance(m.rx_clear_eop) && *status & RX_EOP != 0 {
            *status &= !RX_EOP;
            self.records.lies.push(Lie::RxNoEop { slot });
        }
    }

    /// Writes DD into the descriptor at RDT, which software owns.
    fn lie_rx_unowned(&mut self, base: u64, len: u32) {
        if len == 0 || !self.chance(self.behaviour.malice.rx_dd_unowned) {
            return;
        }
        let slot = self.regs.rdt % len;
        let [l0, l1] = 60u16.to_le_bytes();
        let wb = [l0, l1, 0, 0, RX_DD | RX_EOP, 0, 0, 0];
        if self.dma_write(base.wrapping_add(u64::from(slot) * 16 + 8), &wb) {
            self.records.lies.push(Lie::RxDdUnowned { slot });
        }
    }
}
