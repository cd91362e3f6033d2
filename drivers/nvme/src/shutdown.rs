//! Clean handoff: normal shutdown (NVMe 1.4, 7.6.2), for a controller this
//! driver brought up, never for an inherited one.
//!
//! Delete the I/O queues, set CC.SHN to normal shutdown, wait for CSTS.SHST to
//! report completion (bounded by RTD3E with a floor and a ceiling), then clear
//! CC.EN and fence. A controller that never reports completion is still
//! disabled and fenced, and the caller gets a typed error.

use core::time::Duration;

use paranoid::dma::Window;
use paranoid::mmio::RegisterIo;
use paranoid::pci::ConfigAccess;
use paranoid::poll::{try_poll, PollError};
use paranoid::time::{Clock, Deadline};

use crate::command::{admin, Command};
use crate::controller::{Nvme, State, IO_QID};
use crate::error::NvmeError;
use crate::regs::{cc, csts, Register, SHN_NORMAL, SHST_COMPLETE};

impl<R, P, C, W> Nvme<R, P, C, W>
where
    R: RegisterIo,
    P: ConfigAccess,
    C: Clock,
    W: Window,
{
    /// Shuts the controller down cleanly and fences it.
    ///
    /// # Errors
    ///
    /// [`NvmeError::NotReady`] when init never finished (an inherited controller
    /// gets no shutdown notification); [`NvmeError::ShutdownTimeout`] when
    /// CSTS.SHST did not report completion (the controller is disabled and
    /// fenced anyway); [`NvmeError::DeviceGone`].
    pub fn shutdown(&mut self) -> Result<(), NvmeError> {
        if self.state != State::Ready {
            return Err(NvmeError::NotReady);
        }
        let result = self.shutdown_steps();
        self.fence_now();
        result
    }

    fn shutdown_steps(&mut self) -> Result<(), NvmeError> {
        self.delete_io_queues();
        let deadline = Deadline::after(&self.clock, self.shutdown_timeout());
        let notified = self.notify_shutdown(deadline);
        // Disable whatever the notification did: CC.EN = 0, RDY = 0 in CAP.TO.
        let cap_timeout = self.caps.map(|c| c.ready_timeout);
        let ready = self.ready_deadline(cap_timeout, Deadline::at_ns(u64::MAX));
        self.regs.set_cc(0);
        self.cc = 0;
        let disabled = self.wait_ready(false, ready).map(|_| ());
        notified.and(disabled)
    }

    /// Delete I/O SQ then CQ (NVMe 1.4, 7.6.2 step 1); failures are not fatal to
    /// the shutdown.
    fn delete_io_queues(&mut self) {
        let outer = Deadline::after(&self.clock, self.config.admin_timeout);
        let qid = u32::from(IO_QID);
        let _sq = self.admin_command(Command::new(admin::DELETE_IO_SQ).cdw(10, qid), outer);
        let _cq = self.admin_command(Command::new(admin::DELETE_IO_CQ).cdw(10, qid), outer);
        self.io.forget_all();
    }

    /// RTD3E when reported, between the configured floor and ceiling.
    fn shutdown_timeout(&self) -> Duration {
        let rtd3e = self
            .controller
            .map_or(Duration::ZERO, |c| Duration::from_micros(c.rtd3e_us.into()));
        rtd3e
            .max(self.config.shutdown_timeout_floor)
            .min(self.config.shutdown_timeout_ceiling)
    }

    fn notify_shutdown(&mut self, deadline: Deadline) -> Result<(), NvmeError> {
        let start = self.clock.now_ns();
        self.cc = (self.cc & !cc::SHN.mask()) | cc::SHN.bits(SHN_NORMAL);
        self.regs.set_cc(self.cc);
        let clock = &self.clock;
        let regs = &mut self.regs;
        let seen = try_poll(
            clock,
            deadline,
            || {
                regs.csts()
                    .not_all_ones()
                    .map_err(|_| NvmeError::DeviceGone {
                        register: Register::Csts,
                    })
            },
            |c| csts::SHST.get(*c).is(SHST_COMPLETE),
        );
        match seen {
            Ok(_) => Ok(()),
            Err(PollError::Failed(e)) => Err(e),
            Err(PollError::Timeout(t)) => Err(NvmeError::ShutdownTimeout {
                csts: t.last.into_raw_for_report(),
                waited: Duration::from_nanos(self.clock.now_ns().saturating_sub(start)),
                deadline_ns: deadline.as_ns(),
            }),
        }
    }
}
