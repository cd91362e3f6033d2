//! One remapping unit: probing, and the GCMD/GSTS protocol (VT-d 4.1, 11.4.4).
//!
//! GCMD is write-only and every write sets all its bits at once, so a command
//! must replay the enables that are on (from GSTS) and nothing else: a one-shot
//! bit (SRTP, SFL, WBF, SIRTP) replayed from GSTS would re-latch a root table or
//! fault log, and a dropped TE would turn translation off and let stale DMA
//! through untranslated. One command per write, each confirmed in GSTS before
//! the next, every wait bounded by a deadline.

use paranoid::mmio::RegisterIo;
use paranoid::poll::{try_poll, PollError};
use paranoid::time::{Clock, Deadline};
use paranoid::Untrusted;

use crate::regs::{self, Capabilities, Global};
use crate::VtdError;

/// One GCMD command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// GCMD.TE = 1, wait for GSTS.TES.
    EnableTranslation,
    /// GCMD.TE = 0, wait for GSTS.TES clear.
    DisableTranslation,
    /// GCMD.QIE = 1, wait for GSTS.QIES.
    EnableQueuedInvalidation,
    /// GCMD.QIE = 0, wait for GSTS.QIES clear.
    DisableQueuedInvalidation,
    /// GCMD.SRTP (one-shot): latch RTADDR, wait for GSTS.RTPS.
    SetRootTable,
    /// GCMD.WBF (one-shot): flush the write buffer, wait for GSTS.WBFS clear.
    WriteBufferFlush,
}

impl Command {
    /// The GCMD value to write given the current GSTS, and the GSTS condition
    /// that means done.
    fn encode(self, gsts: Global) -> (Global, Global, bool) {
        let keep = gsts & Global::PERSISTENT;
        match self {
            Self::EnableTranslation => (keep | Global::TE, Global::TE, true),
            Self::DisableTranslation => (keep - Global::TE, Global::TE, false),
            Self::EnableQueuedInvalidation => (keep | Global::QIE, Global::QIE, true),
            Self::DisableQueuedInvalidation => (keep - Global::QIE, Global::QIE, false),
            Self::SetRootTable => (keep | Global::SRTP, Global::SRTP, true),
            Self::WriteBufferFlush => (keep | Global::WBF, Global::WBF, false),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::EnableTranslation => "GSTS.TES set",
            Self::DisableTranslation => "GSTS.TES clear",
            Self::EnableQueuedInvalidation => "GSTS.QIES set",
            Self::DisableQueuedInvalidation => "GSTS.QIES clear",
            Self::SetRootTable => "GSTS.RTPS set",
            Self::WriteBufferFlush => "GSTS.WBFS clear",
        }
    }
}

/// A remapping unit's registers, clock and validated capabilities.
pub struct Unit<R: RegisterIo, C: Clock> {
    regs: R,
    clock: C,
    caps: Capabilities,
    version: u32,
}

impl<R: RegisterIo, C: Clock> Unit<R, C> {
    /// Reads and validates VER, CAP and ECAP.
    ///
    /// # Errors
    ///
    /// [`VtdError::RegisterGone`] when a register reads all-ones,
    /// [`VtdError::BadCapability`] for nonsense capabilities.
    // paranoid:allow(missing_paranoid_init): reads identification registers only; the bring-up is `Vtd::take_over`, every wait bounded
    pub fn probe(mut regs: R, clock: C) -> Result<Self, VtdError> {
        let version = regs
            .read32(regs::VER)
            .not_all_ones()
            .map_err(|_| VtdError::RegisterGone { register: "VER" })?
            .into_raw_for_report();
        let cap = regs.read64(regs::CAP);
        let ecap = regs.read64(regs::ECAP);
        let caps = Capabilities::decode(cap, ecap, regs.size())?;
        Ok(Self {
            regs,
            clock,
            caps,
            version,
        })
    }

    /// The validated capabilities.
    pub fn caps(&self) -> &Capabilities {
        &self.caps
    }

    /// VER_REG as read at probe (for reports).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The clock deadlines are measured on.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The register block.
    pub fn regs(&mut self) -> &mut R {
        &mut self.regs
    }

    /// The register block and the clock, borrowed apart (for a bounded poll).
    pub fn parts(&mut self) -> (&mut R, &C) {
        (&mut self.regs, &self.clock)
    }

    /// Reads GSTS.
    ///
    /// # Errors
    ///
    /// [`VtdError::RegisterGone`] when it reads all-ones.
    pub fn status(&mut self) -> Result<Global, VtdError> {
        read_gsts(&mut self.regs)
    }

    /// Issues one GCMD command and waits for GSTS to confirm it.
    ///
    /// # Errors
    ///
    /// [`VtdError::RegisterGone`], or [`VtdError::Timeout`] carrying the last
    /// GSTS and the deadline.
    pub fn command(&mut self, command: Command, deadline: Deadline) -> Result<(), VtdError> {
        let gsts = self.status()?;
        let (value, status_bit, want_set) = command.encode(gsts);
        self.regs.write32(regs::GCMD, value.bits());
        if mutant!("vtd_skip_gsts_wait") {
            return Ok(());
        }
        let regs = &mut self.regs;
        let r = try_poll(
            &self.clock,
            deadline,
            || read_gsts(regs),
            |s| s.contains(status_bit) == want_set,
        );
        match r {
            Ok(_) => Ok(()),
            Err(PollError::Failed(e)) => Err(e),
            Err(PollError::Timeout(t)) => Err(VtdError::Timeout {
                register: "GSTS",
                waiting_for: command.name(),
                last: u64::from(t.last.bits()),
                waited: t.waited,
                deadline_ns: deadline.as_ns(),
            }),
        }
    }

    /// RTADDR as the unit holds it (untrusted: the dead kernel wrote it).
    pub fn root_table_address(&mut self) -> Untrusted<u64> {
        self.regs.read64(regs::RTADDR)
    }

    /// Points the unit at the root table at `pa` (legacy mode) and latches it.
    ///
    /// # Errors
    ///
    /// As [`command`](Self::command); [`VtdError::Misaligned`] for an unaligned
    /// `pa`.
    pub fn set_root_table(&mut self, pa: u64, deadline: Deadline) -> Result<(), VtdError> {
        if pa % 4096 != 0 {
            return Err(VtdError::Misaligned { value: pa });
        }
        self.regs.write64(regs::RTADDR, pa);
        self.command(Command::SetRootTable, deadline)
    }

    /// Flushes the write buffer when CAP.RWBF asks for it after table updates.
    ///
    /// # Errors
    ///
    /// As [`command`](Self::command).
    pub fn flush_write_buffer(&mut self, deadline: Deadline) -> Result<(), VtdError> {
        if self.caps.rwbf {
            self.command(Command::WriteBufferFlush, deadline)?;
        }
        Ok(())
    }

    /// Masks the fault event interrupt (FECTL.IM): the recovery kernel polls.
    pub fn mask_fault_interrupt(&mut self) {
        self.regs.write32(regs::FECTL, regs::FECTL_IM);
    }
}

fn read_gsts<R: RegisterIo>(regs: &mut R) -> Result<Global, VtdError> {
    regs.read32(regs::GSTS)
        .not_all_ones()
        .map(|v| v.flags::<Global>())
        .map_err(|_| VtdError::RegisterGone { register: "GSTS" })
}
