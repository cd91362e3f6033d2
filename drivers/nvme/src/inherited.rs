//! The controller as another kernel left it: what a recovery kernel reads
//! and reports before it touches anything (NVMe 1.4, 3.1.5 CC, 3.1.6 CSTS).

use paranoid::mmio::RegisterIo;

use crate::regs::{cc, csts, offset};

/// The controller as another kernel left it, read before anything touches it
/// (CC and CSTS only: two reads, no side effects): what a recovery kernel
/// reports about a device it inherits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InheritedState {
    /// CSTS reads all-ones: the controller is gone (surprise removal, dead link).
    Gone,
    /// The controller answers.
    Present {
        /// CC.EN: left enabled.
        enabled: bool,
        /// CSTS.RDY.
        ready: bool,
        /// CSTS.CFS: controller fatal status.
        fatal: bool,
        /// CSTS.SHST: shutdown status (0 none, 1 in progress, 2 complete).
        shutdown: u8,
    },
}

impl InheritedState {
    /// Reads CC and CSTS of the register block `regs` (BAR 0).
    pub fn read(regs: &mut impl RegisterIo) -> Self {
        let csts = regs.read32(offset::CSTS);
        if csts.is_all_ones() {
            return Self::Gone;
        }
        let cc = regs.read32(offset::CC);
        Self::Present {
            enabled: cc::EN.get(cc).is(1),
            ready: csts::RDY.get(csts).is(1),
            fatal: csts::CFS.get(csts).is(1),
            shutdown: csts::SHST.get(csts).clamp_max(3) as u8,
        }
    }

    /// True when the controller was left enabled: the any-state path's reset
    /// comes first.
    pub fn left_enabled(&self) -> bool {
        matches!(self, Self::Present { enabled: true, .. })
    }
}

impl core::fmt::Display for InheritedState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::Gone => write!(f, "gone (CSTS reads all-ones)"),
            Self::Present {
                enabled,
                ready,
                fatal,
                ..
            } => write!(
                f,
                "CC.EN={} CSTS.RDY={} CSTS.CFS={} (left {})",
                u8::from(enabled),
                u8::from(ready),
                u8::from(fatal),
                if enabled { "enabled" } else { "disabled" }
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paranoid::sim::{RegisterFile, SimClock, SimMmio};

    fn state(cc: u32, csts: u32) -> InheritedState {
        let mut regs = SimMmio::new(RegisterFile::new(0x1000), SimClock::new());
        regs.write32(offset::CC, cc);
        regs.write32(offset::CSTS, csts);
        InheritedState::read(&mut regs)
    }

    #[test]
    fn inherited_state_reads_cc_and_csts() {
        assert_eq!(state(0, u32::MAX), InheritedState::Gone);
        let left = state(0x0046_0001, 0b1001);
        assert_eq!(
            left,
            InheritedState::Present {
                enabled: true,
                ready: true,
                fatal: false,
                shutdown: 2,
            }
        );
        assert!(left.left_enabled());
        assert_eq!(
            left.to_string(),
            "CC.EN=1 CSTS.RDY=1 CSTS.CFS=0 (left enabled)"
        );
        let fatal = state(0, 0b10);
        assert!(!fatal.left_enabled());
        assert_eq!(
            fatal.to_string(),
            "CC.EN=0 CSTS.RDY=0 CSTS.CFS=1 (left disabled)"
        );
        assert_eq!(
            InheritedState::Gone.to_string(),
            "gone (CSTS reads all-ones)"
        );
    }
}
