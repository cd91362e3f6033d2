//! Paranoid init, one small function per step in spec order (NVMe 1.4, 7.6.1).
//!
//! No shutdown notification is sent to an inherited controller (the dead kernel's
//! queues are not ours to flush): bus mastering off, CC.EN cleared, CSTS.RDY
//! awaited within CAP.TO, then admin queues from our window, enable, Identify,
//! and one I/O queue pair.

use core::time::Duration;

use paranoid::dma::Window;
use paranoid::init::{InitContext, InitFailure, Initialized};
use paranoid::lifecycle::{Device, Lifecycle, Ready, ResetKind, ResetKinds, Stalled, Unknown};
use paranoid::mmio::RegisterIo;
use paranoid::paranoid_init;
use paranoid::pci::{caps, ConfigAccess};
use paranoid::poll::poll;
use paranoid::time::{Clock, Deadline};

use crate::command::{admin, cns, Command, CQE_SIZE_LOG2, SQE_SIZE_LOG2};
use crate::controller::{Capabilities, Nvme, State, ADMIN_QUEUE_DEPTH, IO_QID};
use crate::error::NvmeError;
use crate::identify::{parse_controller, parse_namespace};
use crate::regs::{aqa, cap, cc, csts, Register};

/// A total init budget that covers two full CAP.TO waits of QEMU (7.5 s each)
/// on both rungs of the ladder.
pub const DEFAULT_INIT_BUDGET: Duration = Duration::from_secs(40);
/// The largest budget [`init`] accepts (`#[paranoid_init(max_budget_ms = 300000)]`
/// below must say the same): a longer one is cut to this.
pub const MAX_INIT_BUDGET: Duration = Duration::from_secs(300);
const _: () = assert!(MAX_INIT_BUDGET.as_millis() == 300_000);
const _: () = assert!(DEFAULT_INIT_BUDGET.as_millis() <= MAX_INIT_BUDGET.as_millis());
/// One CAP.TO unit (NVMe 1.4, 3.1.1).
pub const CAP_TO_UNIT: Duration = Duration::from_millis(500);
/// How long a function may answer Configuration Retry Status after FLR.
pub const FLR_CRS_LIMIT: Duration = paranoid::pci::reset::CRS_DEFAULT_LIMIT;

/// MSI Message Control bit 0: MSI Enable (PCI 3.0, 6.8.1.3).
const MSI_ENABLE: u16 = 1 << 0;
/// MSI-X Message Control bit 15: MSI-X Enable (PCI 3.0, 6.8.2.3).
const MSIX_ENABLE: u16 = 1 << 15;

impl<R, P, C, W> Nvme<R, P, C, W>
where
    R: RegisterIo,
    P: ConfigAccess,
    C: Clock + Clone,
    W: Window,
{
    /// Brings the controller from any state to Ready within `budget` (at most
    /// [`MAX_INIT_BUDGET`]), through [`init`]: escalating to FLR when a
    /// controller reset does not do, and fencing it when nothing does. The
    /// result carries the init trace.
    ///
    /// # Errors
    ///
    /// [`InitFailure`] with the fenced driver, the last cause and the trace.
    #[expect(
        clippy::result_large_err,
        reason = "the failure carries the fixed-size init trace and the driver back, by design of paranoid::init (no heap)"
    )]
    pub fn init(self, budget: Duration) -> Result<Initialized<Self>, InitFailure<Self>> {
        let clock = self.clock.clone();
        init(self, &clock, budget)
    }
}

/// The controller's init, from any state to Ready within `budget` (at most
/// [`MAX_INIT_BUDGET`]): lifecycle steps, then Identify, the number of queues
/// and the I/O queues as traced driver steps. The wrapper generated here takes
/// `(driver, &clock, budget)`, escalates to FLR when a controller reset does not
/// do, fences when nothing does, and returns the init trace either way;
/// [`Nvme::init`] calls it with the driver's own clock.
#[paranoid_init(max_budget_ms = 300000)]
#[expect(
    clippy::type_complexity,
    reason = "the signature #[paranoid_init] expects, spelled out"
)]
pub fn init<R, P, C, W>(
    dev: Device<Nvme<R, P, C, W>, Unknown>,
    ctx: &mut InitContext<'_, C>,
) -> Result<Device<Nvme<R, P, C, W>, Ready>, Stalled<Nvme<R, P, C, W>>>
where
    R: RegisterIo,
    P: ConfigAccess,
    C: Clock,
    W: Window,
{
    dev.quiesce(ctx)?
        .reset(ctx)?
        .verify(ctx)?
        .enable(ctx)?
        .step(ctx, "identify controller", |d, dl| {
            d.identify_controller(dl)
        })?
        .step(ctx, "identify namespace", |d, dl| d.identify_namespace(dl))?
        .step(ctx, "number of queues", |d, dl| d.request_queues(dl))?
        .step(ctx, "create I/O queues", |d, dl| d.create_io_queues(dl))
}

impl<R, P, C, W> Lifecycle for Nvme<R, P, C, W>
where
    R: RegisterIo,
    P: ConfigAccess,
    C: Clock,
    W: Window,
{
    type Error = NvmeError;

    fn name(&self) -> &'static str {
        "nvme"
    }

    fn supported_resets(&self) -> ResetKinds {
        if self.function.supports_flr() {
            ResetKinds::FUNCTION_LEVEL
        } else {
            ResetKinds::empty()
        }
    }

    fn quiesce(&mut self, _deadline: Deadline) -> Result<(), NvmeError> {
        self.state = State::Initializing;
        if mutant!("nvme_always_fence") {
            return Err(NvmeError::NotReady);
        }
        if !mutant!("nvme_skip_quiesce") {
            self.stop_bus_mastering()?;
        }
        if mutant!("nvme_bus_master_before_reset") {
            self.bus_master_on()?;
        }
        self.disable_msi();
        Ok(())
    }

    fn reset(&mut self, kind: ResetKind, deadline: Deadline) -> Result<(), NvmeError> {
        match kind {
            ResetKind::Controller => self.controller_reset(deadline),
            ResetKind::FunctionLevel if self.function.supports_flr() => {
                self.function_level_reset(deadline)?;
                self.controller_reset(deadline)
            }
            other => Err(NvmeError::UnsupportedReset(other)),
        }
    }

    fn verify(&mut self, _deadline: Deadline) -> Result<(), NvmeError> {
        if mutant!("nvme_verify_always_fails") {
            return Err(NvmeError::NotReady);
        }
        let caps = self.read_capabilities()?;
        self.check_version()?;
        self.check_disabled_status()?;
        self.regs.set_doorbell_stride(caps.dstrd);
        self.caps = Some(caps);
        Ok(())
    }

    fn enable(&mut self, deadline: Deadline) -> Result<(), NvmeError> {
        self.program_admin_queues()?;
        self.bus_master_on()?;
        self.set_enable()?;
        self.wait_enabled(deadline)
    }

    fn fence(&mut self) {
        self.fence_now();
    }
}

impl<R, P, C, W> Nvme<R, P, C, W>
where
    R: RegisterIo,
    P: ConfigAccess,
    C: Clock,
    W: Window,
{
    /// Quiesce: bus mastering off (the controller can no longer DMA into the
    /// dead kernel's memory or ours), memory decoding on, INTx off.
    fn stop_bus_mastering(&mut self) -> Result<(), NvmeError> {
        self.function.quiesce()?;
        Ok(())
    }

    /// Quiesce: MSI and MSI-X off, so no message write follows our enable to an
    /// address the dead kernel programmed. Best effort: a broken capability list
    /// is left alone (bus mastering is already off).
    fn disable_msi(&mut self) {
        for (id, enable) in [(caps::id::MSI, MSI_ENABLE), (caps::id::MSIX, MSIX_ENABLE)] {
            if let Ok(Some(at)) = self.function.find_capability(id) {
                let control = self.function.read16(at + 2);
                if !control.is_all_ones() && control.bit(enable.trailing_zeros()) {
                    let v = control.into_raw_for_report() & !enable;
                    self.function.write16(at + 2, v);
                }
            }
        }
    }

    /// Reset: clears CC.EN (no CC.SHN: the inherited queues are abandoned) and
    /// waits for CSTS.RDY = 0 within CAP.TO; CSTS.CFS must be clear afterwards.
    fn controller_reset(&mut self, deadline: Deadline) -> Result<(), NvmeError> {
        self.admin.forget_all();
        self.io.forget_all();
        // Bus mastering went off at quiesce and the controller is disabled
        // below: no write in flight can read its buffer any more.
        self.abandon_in_flight();
        let cap_timeout = self.inherited_ready_timeout()?;
        let own = self.ready_deadline(Some(cap_timeout), deadline);
        let status = self.read_csts()?;
        let config = self
            .regs
            .cc()
            .not_all_ones()
            .map_err(|_| NvmeError::DeviceGone {
                register: Register::Cc,
            })?;
        if config.bit(0) && !status.bit(0) && !status.bit(1) {
            // NVMe 1.4, 3.1.5: clearing CC.EN while an enable is still in
            // progress is undefined; let it settle first (bounded, result unused:
            // we disable either way).
            let _settled = self.wait_ready(true, own);
        }
        self.regs.set_cc(0);
        self.cc = 0;
        if !mutant!("nvme_skip_rdy0_wait") {
            let _disabled = self.wait_ready(false, own)?;
        }
        self.confirm_disabled(own)
    }

    /// CAP.TO of the inherited controller, read before anything is validated:
    /// all-ones CAP is a gone device, TO = 0 gets the floor.
    fn inherited_ready_timeout(&mut self) -> Result<Duration, NvmeError> {
        let raw = self
            .regs
            .cap()
            .not_all_ones()
            .map_err(|_| NvmeError::DeviceGone {
                register: Register::Cap,
            })?;
        Ok(self.timeout_from_cap_to(cap::TO.get(raw)))
    }

    fn timeout_from_cap_to(&self, to: paranoid::Untrusted<u64>) -> Duration {
        // An 8-bit field: at most 255 × 500 ms, then floor and ceiling.
        let units = to.clamp_max(255) as u32;
        (CAP_TO_UNIT * units)
            .max(self.config.ready_timeout_floor)
            .min(self.config.ready_timeout_ceiling)
    }

    /// CSTS.RDY must stay clear for the settle time (a controller whose RDY
    /// flaps is not trusted), and CSTS.CFS must be clear.
    fn confirm_disabled(&mut self, deadline: Deadline) -> Result<(), NvmeError> {
        let settle = Deadline::after(&self.clock, self.config.ready_settle).min(deadline);
        let clock = &self.clock;
        let regs = &mut self.regs;
        let flapped = poll(
            clock,
            settle,
            || regs.csts(),
            |c| c.bit(0) || c.is_all_ones(),
        );
        if let Ok(c) = flapped {
            if c.is_all_ones() {
                return Err(NvmeError::DeviceGone {
                    register: Register::Csts,
                });
            }
            return Err(NvmeError::ReadyFlapping {
                csts: c.into_raw_for_report(),
            });
        }
        let status = self.read_csts()?;
        if csts::CFS.get(status).is(1) {
            return Err(NvmeError::ControllerFatal {
                csts: status.into_raw_for_report(),
            });
        }
        Ok(())
    }

    /// Reset (escalated): PCIe function-level reset within the step's
    /// `deadline`, BARs restored, memory decoding on and bus mastering off
    /// ([`Function::function_level_reset`](paranoid::pci::Function::function_level_reset)).
    fn function_level_reset(&mut self, deadline: Deadline) -> Result<(), NvmeError> {
        self.function
            .function_level_reset_with(&self.clock, FLR_CRS_LIMIT, deadline)?;
        Ok(())
    }

    /// Verify: CAP read back and checked field by field.
    fn read_capabilities(&mut self) -> Result<Capabilities, NvmeError> {
        let raw = self
            .regs
            .cap()
            .not_all_ones()
            .map_err(|_| NvmeError::DeviceGone {
                register: Register::Cap,
            })?;
        let bad = |field: &'static str, value: u64| NvmeError::BadCapability {
            register: Register::Cap,
            field,
            value,
        };
        // MQES is 0's based and must allow at least two entries.
        let mqes = cap::MQES.get(raw).validate(|m| {
            if m == 0 {
                Err(bad("CAP.MQES", m))
            } else {
                Ok(m)
            }
        })?;
        cap::CSS.get(raw).validate(|css| {
            if css & 1 == 1 {
                Ok(())
            } else {
                Err(NvmeError::Unsupported {
                    field: "CAP.CSS",
                    value: css,
                })
            }
        })?;
        cap::MPSMIN.get(raw).validate(|m| {
            if m == 0 {
                Ok(())
            } else {
                Err(NvmeError::Unsupported {
                    field: "CAP.MPSMIN",
                    value: m,
                })
            }
        })?;
        let size = self.regs.size();
        let dstrd = cap::DSTRD.get(raw).validate(|d| {
            // The highest doorbell we ring: CQ 1 head, 4 bytes.
            let stride = 4u64 << d;
            let end = 0x1000 + (2 * u64::from(IO_QID) + 2) * stride;
            if end <= size as u64 {
                Ok(d as u32)
            } else {
                Err(bad("CAP.DSTRD", d))
            }
        })?;
        Ok(Capabilities {
            max_queue_entries: mqes as u32 + 1,
            ready_timeout: self.timeout_from_cap_to(cap::TO.get(raw)),
            dstrd,
            raw: raw.into_raw_for_report(),
        })
    }

    /// Verify: VS reads back as a version with a major number.
    fn check_version(&mut self) -> Result<(), NvmeError> {
        let vs = self
            .regs
            .vs()
            .not_all_ones()
            .map_err(|_| NvmeError::DeviceGone {
                register: Register::Vs,
            })?;
        vs.field(16, 16).validate(|major| {
            if major >= 1 {
                Ok(())
            } else {
                Err(NvmeError::BadCapability {
                    register: Register::Vs,
                    field: "VS.MJR",
                    value: major.into(),
                })
            }
        })
    }

    /// Verify: still disabled (RDY clear), no fatal status.
    fn check_disabled_status(&mut self) -> Result<(), NvmeError> {
        let status = self.read_csts()?;
        if status.bit(1) {
            return Err(NvmeError::ControllerFatal {
                csts: status.into_raw_for_report(),
            });
        }
        if status.bit(0) {
            return Err(NvmeError::ReadyFlapping {
                csts: status.into_raw_for_report(),
            });
        }
        Ok(())
    }

    /// Enable: admin queues from our window (AQA, ASQ, ACQ).
    fn program_admin_queues(&mut self) -> Result<(), NvmeError> {
        self.admin.restart(ADMIN_QUEUE_DEPTH)?;
        let entries = u32::from(self.admin.depth() - 1);
        self.regs
            .set_aqa(aqa::ASQS.bits(entries) | aqa::ACQS.bits(entries));
        self.regs.set_asq(self.admin.sq_iova());
        self.regs.set_acq(self.admin.cq_iova());
        Ok(())
    }

    /// Enable: CC with the NVM command set, 4 KiB pages, round robin, 64/16-byte
    /// entries, and CC.EN.
    fn set_enable(&mut self) -> Result<(), NvmeError> {
        let value = cc::EN.bits(1)
            | cc::CSS.bits(0)
            | cc::MPS.bits(0)
            | cc::AMS.bits(0)
            | cc::IOSQES.bits(SQE_SIZE_LOG2 as u32)
            | cc::IOCQES.bits(CQE_SIZE_LOG2 as u32);
        self.cc = value;
        self.regs.set_cc(self.cc);
        Ok(())
    }

    /// Enable: CSTS.RDY = 1 within CAP.TO, and no fatal status.
    fn wait_enabled(&mut self, deadline: Deadline) -> Result<(), NvmeError> {
        let timeout = self.caps.map(|c| c.ready_timeout);
        let own = self.ready_deadline(timeout, deadline);
        let status = self.wait_ready(true, own)?;
        if status.bit(1) {
            return Err(NvmeError::ControllerFatal {
                csts: status.into_raw_for_report(),
            });
        }
        Ok(())
    }

    /// Identify Controller (CNS 1) into our page, validated.
    pub(crate) fn identify_controller(&mut self, deadline: Deadline) -> Result<(), NvmeError> {
        self.identify
            .write_bytes(0, &[0u8; crate::queue::NVME_PAGE])?;
        self.admin_command(
            Command::new(admin::IDENTIFY)
                .prps(self.identify.iova(), None)
                .cdw(10, cns::CONTROLLER),
            deadline,
        )?;
        self.controller = Some(parse_controller(&mut self.identify, self.config.nsid)?);
        Ok(())
    }

    /// Identify Namespace (CNS 0) of the configured NSID, validated: active
    /// (NSZE ≠ 0) and in a format the driver can write. A re-initialization
    /// must find the same geometry.
    pub(crate) fn identify_namespace(&mut self, deadline: Deadline) -> Result<(), NvmeError> {
        let ns = self.identify_namespace_id(self.config.nsid, deadline)?;
        if let Some(old) = self.namespace {
            if (old.blocks, old.block_size) != (ns.blocks, ns.block_size) {
                return Err(NvmeError::BadIdentify {
                    field: "NSZE/LBADS changed",
                    value: ns.blocks,
                });
            }
        }
        self.namespace = Some(ns);
        Ok(())
    }

    /// Identify Namespace (CNS 0) of `nsid`, parsed and validated.
    pub(crate) fn identify_namespace_id(
        &mut self,
        nsid: u32,
        deadline: Deadline,
    ) -> Result<crate::identify::NamespaceInfo, NvmeError> {
        let (max_transfer, nn) = self
            .controller
            .map_or((crate::identify::DRIVER_MAX_TRANSFER, u32::MAX), |c| {
                (c.max_transfer, c.nn)
            });
        if nsid == 0 || nsid > nn {
            return Err(NvmeError::NamespaceAbsent { nsid, nn });
        }
        self.identify
            .write_bytes(0, &[0u8; crate::queue::NVME_PAGE])?;
        let sent = self.admin_command(
            Command::new(admin::IDENTIFY)
                .nsid(nsid)
                .prps(self.identify.iova(), None)
                .cdw(10, cns::NAMESPACE),
            deadline,
        );
        match sent {
            Err(NvmeError::CommandFailed { status, .. })
                if status.sct() == crate::command::sct::GENERIC
                    && status.sc() == crate::command::sc::INVALID_NAMESPACE =>
            {
                return Err(NvmeError::NamespaceAbsent { nsid, nn });
            }
            other => other?,
        };
        parse_namespace(&mut self.identify, nsid, max_transfer)
    }

    /// Set Features, Number of Queues (NVMe 1.4, 5.21.1.7): asks for
    /// [`Config::io_queues_requested`](crate::Config::io_queues_requested)
    /// pairs; the grant (NSQA, NCQA in DW0, 0's based) must cover the queue
    /// the driver creates, and 65535 (0's based) is not a count.
    pub(crate) fn request_queues(&mut self, deadline: Deadline) -> Result<(), NvmeError> {
        let want = u32::from(self.config.io_queues_requested.clamp(1, 0xfffe) - 1);
        let done = self.admin_command(
            Command::new(admin::SET_FEATURES)
                .cdw(10, crate::command::feature::NUMBER_OF_QUEUES)
                .cdw(11, want | want << 16),
            deadline,
        )?;
        let granted = done.dw0.validate(|dw0| {
            let (nsqa, ncqa) = (dw0 & 0xffff, dw0 >> 16);
            if nsqa == 0xffff {
                return Err(NvmeError::BadFeature {
                    field: "NSQA",
                    value: nsqa.into(),
                });
            }
            if ncqa == 0xffff {
                return Err(NvmeError::BadFeature {
                    field: "NCQA",
                    value: ncqa.into(),
                });
            }
            Ok((nsqa + 1, ncqa + 1))
        })?;
        // 1's based counts are at least 1, and the driver uses queue 1 only.
        self.granted = Some(granted);
        Ok(())
    }

    /// Create I/O Completion Queue 1, then I/O Submission Queue 1 on it
    /// (physically contiguous, interrupts off: the driver polls).
    pub(crate) fn create_io_queues(&mut self, deadline: Deadline) -> Result<(), NvmeError> {
        let max = self.caps.map_or(2, |c| c.max_queue_entries);
        let depth = u16::try_from(max).unwrap_or(u16::MAX);
        self.io.restart(depth.min(self.io.capacity()))?;
        let qsize = u32::from(self.io.depth() - 1) << 16;
        let create_cq = Command::new(admin::CREATE_IO_CQ)
            .prps(self.io.cq_iova(), None)
            .cdw(10, qsize | u32::from(IO_QID))
            .cdw(11, 1);
        self.admin_command(create_cq, deadline)?;
        let create_sq = Command::new(admin::CREATE_IO_SQ)
            .prps(self.io.sq_iova(), None)
            .cdw(10, qsize | u32::from(IO_QID))
            .cdw(11, u32::from(IO_QID) << 16 | 1);
        self.admin_command(create_sq, deadline)?;
        self.state = State::Ready;
        Ok(())
    }
}
