//! The driver object: registers, configuration space, clock, and the DMA memory
//! it carved from its window; admin commands and bounded waits on CSTS.

use core::time::Duration;

use paranoid::dma::{Bidirectional, DmaArena, DmaBuffer, ToDevice, Window};
use paranoid::mmio::RegisterIo;
use paranoid::pci::{ConfigAccess, Function, PciAddress};
use paranoid::poll::{try_poll, PollError};
use paranoid::time::{Clock, Deadline};
use paranoid::Untrusted;

use crate::command::Command;
use crate::error::NvmeError;
use crate::identify::{ControllerInfo, NamespaceInfo};
use crate::io::InFlight;
use crate::queue::{Completion, QueuePair, NVME_PAGE};
use crate::regs::{csts, Register, Registers};

/// Entries of the admin queue pair.
pub const ADMIN_QUEUE_DEPTH: u16 = 16;
/// Identifier of the one I/O queue pair.
pub const IO_QID: u16 = 1;
/// Pipelined writes a driver can keep in flight at most (each holds a PRP list
/// page of the window).
pub const MAX_IN_FLIGHT: usize = 16;

/// Tunables of the driver; [`Config::default`] suits QEMU and real drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// The namespace to use (checked active at init; default 1).
    pub nsid: u32,
    /// Entries of the I/O queue pair (clamped by CAP.MQES).
    pub io_queue_depth: u16,
    /// Pipelined writes that may be in flight at once (clamped to
    /// 1..=[`MAX_IN_FLIGHT`] and to the I/O queue depth − 1); each costs one
    /// 4 KiB PRP list page of the window, allocated by [`Nvme::new`].
    pub max_in_flight: u16,
    /// I/O queue pairs asked for with Set Features Number of Queues (the
    /// driver uses one; the controller may grant fewer or more).
    pub io_queues_requested: u16,
    /// How long an admin command may take.
    pub admin_timeout: Duration,
    /// How long an I/O command may take before it is aborted.
    pub io_timeout: Duration,
    /// How long to wait for an Abort to take effect before resetting.
    pub abort_timeout: Duration,
    /// Shortest wait for CSTS.RDY, whatever CAP.TO says (CAP.TO = 0 is nonsense).
    pub ready_timeout_floor: Duration,
    /// Longest wait for CSTS.RDY, whatever CAP.TO says (the spec allows 127.5 s).
    pub ready_timeout_ceiling: Duration,
    /// How long CSTS.RDY must stay clear after a disable before we trust it.
    pub ready_settle: Duration,
    /// Shortest wait for CSTS.SHST, whatever RTD3E says.
    pub shutdown_timeout_floor: Duration,
    /// Longest wait for CSTS.SHST.
    pub shutdown_timeout_ceiling: Duration,
    /// Time allowed to reset and re-initialize after a failed command.
    pub recovery_budget: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            nsid: 1,
            io_queue_depth: 64,
            max_in_flight: 8,
            io_queues_requested: 1,
            admin_timeout: Duration::from_secs(5),
            io_timeout: Duration::from_secs(5),
            abort_timeout: Duration::from_millis(500),
            ready_timeout_floor: Duration::from_millis(500),
            ready_timeout_ceiling: Duration::from_secs(60),
            ready_settle: Duration::from_millis(1),
            shutdown_timeout_floor: Duration::from_secs(1),
            shutdown_timeout_ceiling: Duration::from_secs(10),
            recovery_budget: Duration::from_secs(30),
        }
    }
}

/// CAP, validated (NVMe 1.4, 3.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Entries an I/O queue may have (CAP.MQES + 1).
    pub max_queue_entries: u32,
    /// Worst-case CSTS.RDY transition time (CAP.TO × 500 ms, floor and
    /// ceiling applied).
    pub ready_timeout: Duration,
    /// Doorbell stride exponent (CAP.DSTRD).
    pub dstrd: u32,
    /// The raw register, for reports.
    pub raw: u64,
}

/// Where the driver stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Init has not finished.
    Initializing,
    /// I/O queues live: block I/O may be issued.
    Ready,
    /// Bus mastering is off for good (init failed, recovery failed, or shut down).
    Fenced,
}

/// Counters of the data path, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Commands completed successfully.
    pub commands: u64,
    /// Commands that timed out.
    pub timeouts: u64,
    /// Completions rejected by validation.
    pub bad_completions: u64,
    /// Controller resets done to recover from a failed command.
    pub recoveries: u64,
}

/// Queue selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    Admin,
    Io,
}

/// An NVMe controller driven from any inherited state.
///
/// Generic over the register backend `R` (BAR0), the configuration access `P`,
/// the clock `C` and the DMA window `W` every queue and buffer lives in.
pub struct Nvme<R: RegisterIo, P, C, W: Window> {
    pub(crate) regs: Registers<R>,
    /// The PCI function: configuration access, saved BARs, FLR.
    pub(crate) function: Function<P>,
    pub(crate) clock: C,
    pub(crate) config: Config,
    pub(crate) caps: Option<Capabilities>,
    pub(crate) admin: QueuePair<W>,
    pub(crate) io: QueuePair<W>,
    pub(crate) identify: DmaBuffer<W, Bidirectional>,
    /// One PRP list page per queue slot a command may use (slot i, page i).
    pub(crate) prp_lists: DmaBuffer<W, ToDevice>,
    /// PRP list pages in `prp_lists`.
    pub(crate) prp_pages: usize,
    /// Pipelined writes, by queue slot: each owns its buffer until reaped.
    pub(crate) in_flight: [Option<InFlight<W>>; MAX_IN_FLIGHT],
    /// I/O queues granted by Set Features Number of Queues: (NSQA, NCQA), 1's based.
    pub(crate) granted: Option<(u32, u32)>,
    pub(crate) controller: Option<ControllerInfo>,
    pub(crate) namespace: Option<NamespaceInfo>,
    pub(crate) state: State,
    pub(crate) cc: u32,
    pub(crate) stats: Stats,
}

impl<R, P, C, W> Nvme<R, P, C, W>
where
    R: RegisterIo,
    P: ConfigAccess,
    C: Clock,
    W: Window,
{
    /// Takes the controller at `address` (registers `regs` = its BAR0) as the
    /// dead kernel left it, and carves its queues and buffers from `arena`.
    /// Touches nothing but configuration space (to see whether FLR is offered).
    ///
    /// # Errors
    ///
    /// [`NvmeError::Dma`] when the window has no room (about 5 pages, the I/O
    /// queue, and one page per [`Config::max_in_flight`] are needed).
    pub fn new<const N: usize>(
        regs: R,
        pci: P,
        address: PciAddress,
        clock: C,
        arena: &mut DmaArena<W, N>,
        config: Config,
    ) -> Result<Self, NvmeError> {
        let function = Function::new(pci, address);
        let admin = QueuePair::new(arena, 0, ADMIN_QUEUE_DEPTH)?;
        let io = QueuePair::new(arena, IO_QID, config.io_queue_depth.max(2))?;
        let identify = arena.alloc::<Bidirectional>(NVME_PAGE, NVME_PAGE)?;
        let lists = usize::from(config.max_in_flight).clamp(1, MAX_IN_FLIGHT);
        let prp_lists = arena.alloc::<ToDevice>(lists * NVME_PAGE, NVME_PAGE)?;
        Ok(Self {
            regs: Registers::new(regs),
            function,
            clock,
            config,
            caps: None,
            admin,
            io,
            identify,
            prp_lists,
            prp_pages: lists,
            in_flight: core::array::from_fn(|_| None),
            granted: None,
            controller: None,
            namespace: None,
            state: State::Initializing,
            cc: 0,
            stats: Stats::default(),
        })
    }

    /// Fences the controller (unless it is fenced already: after
    /// [`shutdown`](Self::shutdown) or a failed init) and gives every DMA
    /// buffer the driver holds back to `arena`: both queue pairs, the
    /// identify page, the PRP lists and the writes still in flight. For a
    /// driver that only came up to identify its controller (a probe), so the
    /// arena's memory can go to its next user
    /// ([`DmaArena::into_ram`](paranoid::dma::DmaArena::into_ram)).
    ///
    /// # Errors
    ///
    /// The first [`NvmeError::Dma`] for a buffer `arena` did not hand out
    /// (the driver was made over another arena); every other buffer is still
    /// given back.
    pub fn release<const N: usize>(mut self, arena: &mut DmaArena<W, N>) -> Result<(), NvmeError> {
        if self.state != State::Fenced {
            self.fence_now();
        }
        let Self {
            admin,
            io,
            identify,
            prp_lists,
            in_flight,
            ..
        } = self;
        let (admin_sq, admin_cq) = admin.into_buffers();
        let (io_sq, io_cq) = io.into_buffers();
        let mut first = Ok(());
        let mut keep_first = |freed: Result<(), paranoid::dma::DmaError>| {
            if first.is_ok() {
                first = freed;
            }
        };
        keep_first(arena.free(admin_sq));
        keep_first(arena.free(admin_cq));
        keep_first(arena.free(io_sq));
        keep_first(arena.free(io_cq));
        keep_first(arena.free(identify));
        keep_first(arena.free(prp_lists));
        for write in in_flight.into_iter().flatten() {
            keep_first(arena.free(write.buffer));
        }
        first.map_err(NvmeError::Dma)
    }

    /// Where the driver stands.
    pub fn state(&self) -> State {
        self.state
    }

    /// True when block I/O may be issued.
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// The validated capabilities (after init's verify step).
    pub fn capabilities(&self) -> Option<Capabilities> {
        self.caps
    }

    /// Identify Controller, as validated.
    pub fn controller_info(&self) -> Option<ControllerInfo> {
        self.controller
    }

    /// Identify Namespace of the namespace in use, as validated.
    pub fn namespace_info(&self) -> Option<NamespaceInfo> {
        self.namespace
    }

    /// The controller's serial number (Identify Controller SN, trimmed and
    /// checked printable ASCII), once init identified it.
    ///
    /// # Errors
    ///
    /// [`NvmeError::NotReady`] before Identify, [`NvmeError::BadIdentify`]
    /// for a serial number that is not printable ASCII.
    pub fn serial_number(&self) -> Result<&str, NvmeError> {
        match &self.controller {
            Some(c) => c.serial_number(),
            None => Err(NvmeError::NotReady),
        }
    }

    /// I/O queue pairs the controller granted (Set Features Number of
    /// Queues: NSQA + 1, NCQA + 1), once init asked.
    pub fn granted_io_queues(&self) -> Option<(u32, u32)> {
        self.granted
    }

    /// Data-path counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The PCI address.
    pub fn address(&self) -> PciAddress {
        self.function.address()
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Reads CSTS, treating all-ones as a gone controller.
    pub(crate) fn read_csts(&mut self) -> Result<Untrusted<u32>, NvmeError> {
        self.regs
            .csts()
            .not_all_ones()
            .map_err(|_| NvmeError::DeviceGone {
                register: Register::Csts,
            })
    }

    /// Waits until CSTS.RDY equals `expected` (or, when waiting for 1, CSTS.CFS
    /// sets), ending early on an all-ones read.
    pub(crate) fn wait_ready(
        &mut self,
        expected: bool,
        deadline: Deadline,
    ) -> Result<Untrusted<u32>, NvmeError> {
        let start = self.clock.now_ns();
        let clock = &self.clock;
        let regs = &mut self.regs;
        let seen = try_poll(
            clock,
            deadline,
            || {
                if mutant!("nvme_skip_all_ones") {
                    return Ok(regs.csts());
                }
                regs.csts()
                    .not_all_ones()
                    .map_err(|_| NvmeError::DeviceGone {
                        register: Register::Csts,
                    })
            },
            |c| csts::RDY.get(*c).is(u32::from(expected)) || (expected && c.bit(1)),
        );
        match seen {
            Ok(c) => Ok(c),
            Err(PollError::Failed(e)) => Err(e),
            Err(PollError::Timeout(t)) => Err(NvmeError::ReadyTimeout {
                expected,
                csts: t.last.into_raw_for_report(),
                waited: Duration::from_nanos(self.clock.now_ns().saturating_sub(start)),
                deadline_ns: deadline.as_ns(),
            }),
        }
    }

    /// The deadline for a CSTS.RDY transition: CAP.TO (validated) or the floor
    /// when CAP has not been validated yet, capped by `outer`.
    pub(crate) fn ready_deadline(
        &self,
        cap_timeout: Option<Duration>,
        outer: Deadline,
    ) -> Deadline {
        let t = cap_timeout.unwrap_or(self.config.ready_timeout_floor);
        Deadline::after(&self.clock, t).min(outer)
    }

    /// Polls queue `which` until the completion of `cid` arrives (others that
    /// were outstanding are consumed and dropped), or `deadline` passes (`None`).
    pub(crate) fn wait_for(
        &mut self,
        which: Which,
        cid: u16,
        deadline: Deadline,
    ) -> Result<Option<Completion>, NvmeError> {
        self.wait_for_with::<true>(which, cid, deadline, &mut || {})
    }

    /// [`wait_for`](Self::wait_for), completions unvalidated when `CHECKED` is
    /// false (benchmark baseline only), and `during` called on every poll
    /// (the caller's heartbeats: a wait may last up to its deadline).
    pub(crate) fn wait_for_with<const CHECKED: bool>(
        &mut self,
        which: Which,
        cid: u16,
        deadline: Deadline,
        during: &mut dyn FnMut(),
    ) -> Result<Option<Completion>, NvmeError> {
        let clock = &self.clock;
        let regs = &mut self.regs;
        let queue = match which {
            Which::Admin => &mut self.admin,
            Which::Io => &mut self.io,
        };
        let seen = try_poll(
            clock,
            deadline,
            || {
                during();
                match queue.poll_once_with::<R, CHECKED>(regs)? {
                    Some(c) if c.cid == cid => Ok(Some(c)),
                    _ => Ok(None),
                }
            },
            Option::is_some,
        );
        match seen {
            Ok(c) => Ok(c),
            Err(PollError::Timeout(_)) => Ok(None),
            Err(PollError::Failed(e)) => {
                if matches!(e, NvmeError::BadCompletion { .. }) {
                    self.stats.bad_completions += 1;
                }
                Err(e)
            }
        }
    }

    /// Submits an admin command and waits for it (admin timeout, capped by
    /// `outer`).
    ///
    /// # Errors
    ///
    /// [`NvmeError::CommandTimeout`] (not recovered: init escalates instead),
    /// [`NvmeError::CommandFailed`], completion validation errors.
    pub(crate) fn admin_command(
        &mut self,
        cmd: Command,
        outer: Deadline,
    ) -> Result<Completion, NvmeError> {
        let start = self.clock.now_ns();
        let deadline = Deadline::after(&self.clock, self.config.admin_timeout).min(outer);
        let cid = self.admin.submit(&mut self.regs, cmd)?;
        match self.wait_for(Which::Admin, cid, deadline)? {
            Some(c) if c.status.is_success() => {
                self.stats.commands += 1;
                Ok(c)
            }
            Some(c) => Err(NvmeError::CommandFailed {
                queue: 0,
                opcode: c.opcode,
                status: c.status,
            }),
            None => {
                self.stats.timeouts += 1;
                Err(NvmeError::CommandTimeout {
                    queue: 0,
                    opcode: cmd.opcode(),
                    cid,
                    waited: Duration::from_nanos(self.clock.now_ns().saturating_sub(start)),
                    deadline_ns: deadline.as_ns(),
                    recovered: false,
                })
            }
        }
    }

    /// Bus mastering and INTx off for good, and CC.EN cleared without waiting.
    pub(crate) fn fence_now(&mut self) {
        self.function.fence();
        self.regs.set_cc(0);
        self.admin.forget_all();
        self.io.forget_all();
        self.abandon_in_flight();
        self.state = State::Fenced;
    }

    /// Turns bus mastering on (the last step before the controller may DMA).
    pub(crate) fn bus_master_on(&mut self) -> Result<(), NvmeError> {
        self.function.bus_master_on()?;
        Ok(())
    }
}

impl<R, P, C, W> Nvme<R, P, C, W>
where
    R: RegisterIo,
    P: ConfigAccess,
    C: Clock,
    W: Window,
{
    /// The active namespace ids (Identify CNS 02h from NSID 0), ascending:
    /// the namespaces a recovery kernel may pick from.
    ///
    /// # Errors
    ///
    /// [`NvmeError::NotReady`] before init, [`NvmeError::Busy`] with
    /// pipelined writes in flight, command errors, [`NvmeError::BadIdentify`]
    /// for a list out of order or with ids above NN.
    pub fn active_namespaces(&mut self) -> Result<crate::identify::ActiveNamespaces, NvmeError> {
        self.admin_ready()?;
        let nn = self.controller.map_or(0, |c| c.nn);
        self.identify.write_bytes(0, &[0u8; NVME_PAGE])?;
        let deadline = Deadline::after(&self.clock, self.config.admin_timeout);
        self.admin_command(
            Command::new(crate::command::admin::IDENTIFY)
                .prps(self.identify.iova(), None)
                .cdw(10, crate::command::cns::ACTIVE_NAMESPACES),
            deadline,
        )?;
        crate::identify::parse_active_namespaces(&mut self.identify, nn)
    }

    /// The geometry of namespace `nsid` (Identify Namespace), without
    /// switching to it.
    ///
    /// # Errors
    ///
    /// [`NvmeError::NamespaceAbsent`] (0 or above NN),
    /// [`NvmeError::NamespaceInactive`], [`NvmeError::UnsupportedFormat`],
    /// as [`active_namespaces`](Self::active_namespaces) otherwise.
    pub fn namespace(&mut self, nsid: u32) -> Result<NamespaceInfo, NvmeError> {
        self.admin_ready()?;
        let deadline = Deadline::after(&self.clock, self.config.admin_timeout);
        self.identify_namespace_id(nsid, deadline)
    }

    /// Switches block I/O to namespace `nsid` (checked active and in a
    /// format the driver writes) and returns its geometry; a later recovery
    /// re-identifies this namespace. On error the namespace in use is kept.
    ///
    /// # Errors
    ///
    /// As [`namespace`](Self::namespace).
    pub fn select_namespace(&mut self, nsid: u32) -> Result<NamespaceInfo, NvmeError> {
        let ns = self.namespace(nsid)?;
        self.namespace = Some(ns);
        self.config.nsid = nsid;
        Ok(ns)
    }

    fn admin_ready(&self) -> Result<(), NvmeError> {
        if self.state != State::Ready {
            return Err(NvmeError::NotReady);
        }
        match self.io.outstanding() {
            0 => Ok(()),
            in_flight => Err(NvmeError::Busy { in_flight }),
        }
    }
}
