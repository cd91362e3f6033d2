//! The NIC as another kernel left it, and whether it is still moving frames:
//! what a recovery kernel reads before it touches anything (SDM 13.4.2
//! STATUS, 13.4.22 RCTL, 13.4.33 TCTL, 13.4.27–29 and 13.4.38–40 the ring
//! heads and tails).

use paranoid::mmio::RegisterIo;

use crate::regs::e1000_regs::{rctl, rdh, rdt, status, tctl, tdh, tdt};

/// The rings and enables as found, or a NIC that is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InheritedState {
    /// STATUS reads all-ones: the function is gone.
    Gone,
    /// The NIC answers.
    Present {
        /// RCTL.EN: still receiving (into the old kernel's ring).
        rx_enabled: bool,
        /// RDH and RDT (16-bit fields, clamped).
        rx: (u32, u32),
        /// TCTL.EN.
        tx_enabled: bool,
        /// TDH and TDT.
        tx: (u32, u32),
    },
}

impl InheritedState {
    /// Reads STATUS, RCTL, TCTL and the ring heads and tails of the register
    /// block `regs` (BAR 0); reading none of them has a side effect.
    pub fn read(regs: &mut impl RegisterIo) -> Self {
        if regs.read32(status::OFFSET).is_all_ones() {
            return Self::Gone;
        }
        let rctl = regs.read32(rctl::OFFSET);
        let tctl = regs.read32(tctl::OFFSET);
        let mut ring = |head, tail| {
            (
                regs.read32(head).clamp_max(0xffff),
                regs.read32(tail).clamp_max(0xffff),
            )
        };
        let rx = ring(rdh::OFFSET, rdt::OFFSET);
        let tx = ring(tdh::OFFSET, tdt::OFFSET);
        Self::Present {
            rx_enabled: rctl::EN.is_set(rctl),
            rx,
            tx_enabled: tctl::EN.is_set(tctl),
            tx,
        }
    }
}

impl core::fmt::Display for InheritedState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::Gone => write!(f, "gone (STATUS reads all-ones)"),
            Self::Present {
                rx_enabled,
                rx,
                tx_enabled,
                tx,
            } => write!(
                f,
                "RCTL.EN={} RDH={} RDT={} TCTL.EN={} TDH={} TDT={}{}",
                u8::from(rx_enabled),
                rx.0,
                rx.1,
                u8::from(tx_enabled),
                tx.0,
                tx.1,
                if rx_enabled {
                    " (RX into the old ring)"
                } else {
                    ""
                }
            ),
        }
    }
}

/// Whether the transmit ring still holds frames for the NIC to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxActivity {
    /// TDH reached TDT: nothing left to fetch.
    Idle,
    /// TDH behind TDT: frames left.
    Busy,
    /// A head or tail reads all-ones: the NIC cannot tell (gone).
    Unknown,
}

impl TxActivity {
    /// Reads TDH and TDT of the register block `regs` (BAR 0): the idle probe
    /// of a drain that waits for in-flight transmit DMA before fencing.
    pub fn read(regs: &mut impl RegisterIo) -> Self {
        let (head, tail) = (regs.read32(tdh::OFFSET), regs.read32(tdt::OFFSET));
        if head.is_all_ones() || tail.is_all_ones() {
            Self::Unknown
        } else if head.is(tail.into_raw_for_report()) {
            Self::Idle
        } else {
            Self::Busy
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use paranoid::sim::{RegisterFile, SimClock, SimMmio};
    use std::string::ToString;

    fn regs(values: &[(usize, u32)]) -> SimMmio<RegisterFile> {
        let mut r = SimMmio::new(RegisterFile::new(0x4000), SimClock::new());
        for &(at, v) in values {
            r.write32(at, v);
        }
        r
    }

    #[test]
    fn inherited_state_reads_enables_and_rings() {
        let mut r = regs(&[
            (rctl::OFFSET, 1 << 1),
            (rdh::OFFSET, 3),
            (rdt::OFFSET, 0x1_0007),
            (tdh::OFFSET, 4),
            (tdt::OFFSET, 9),
        ]);
        let s = InheritedState::read(&mut r);
        assert_eq!(
            s,
            InheritedState::Present {
                rx_enabled: true,
                rx: (3, 0xffff),
                tx_enabled: false,
                tx: (4, 9),
            }
        );
        assert_eq!(
            s.to_string(),
            "RCTL.EN=1 RDH=3 RDT=65535 TCTL.EN=0 TDH=4 TDT=9 (RX into the old ring)"
        );
        let mut gone = regs(&[(status::OFFSET, u32::MAX)]);
        assert_eq!(InheritedState::read(&mut gone), InheritedState::Gone);
        assert_eq!(
            InheritedState::Gone.to_string(),
            "gone (STATUS reads all-ones)"
        );
    }

    #[test]
    fn tx_activity_compares_head_and_tail() {
        assert_eq!(
            TxActivity::read(&mut regs(&[(tdh::OFFSET, 5), (tdt::OFFSET, 5)])),
            TxActivity::Idle
        );
        assert_eq!(
            TxActivity::read(&mut regs(&[(tdh::OFFSET, 4), (tdt::OFFSET, 5)])),
            TxActivity::Busy
        );
        assert_eq!(
            TxActivity::read(&mut regs(&[(tdt::OFFSET, u32::MAX)])),
            TxActivity::Unknown
        );
    }
}
