//! Why kernel A could not arm its crash: one variant per step that can fail,
//! carrying the error that step got, in its own type (kernel A fails only
//! before the crash is armed, and says so on its result line).
//!
//! The result line keeps its two fields: `reason=` is the step's name
//! ([`KernelAError::step`], the names the host knows), `error=` the error in
//! words ([`KernelAError::cause`]), when the step had one.

use core::convert::Infallible;
use core::fmt;

use paranoid::acpi::AcpiError;
use paranoid::dma::{DmaError, MapError};
use paranoid::init::InitFailure;
use paranoid::lifecycle::{Cause, Lifecycle};
use paranoid::pci::PciError;
use paranoid::phys::MapFull;
use paranoid::poll::PollError;
use paranoid::untrusted::UntrustedError;
use paranoid::Untrusted;
use paranoid_boot::frames::FrameError;
use paranoid_boot::handoff::HandoffError;
use paranoid_boot::platform::PlatformError;
use paranoid_boot::println;
use paranoid_e1000::E1000Error;
use paranoid_i6300esb::WatchdogError;
use paranoid_nvme::NvmeError;
use paranoid_recovery::config::ConfigError;
use paranoid_vtd::VtdError;

/// A step of kernel A that failed, with the error it got.
#[derive(Debug)]
pub enum KernelAError {
    /// The boot code's frame allocator was taken before `run`.
    FramesTaken,
    /// The frame allocator could not be built from the memory map.
    FrameAllocator(FrameError),
    /// The DMA arena's RAM could not be claimed.
    ArenaRam(FrameError),
    /// The pattern or the recovery region could not be claimed.
    Reserve(FrameError),
    /// The recovery kernel's settings (kernel A's command line) do not parse.
    RecoverySettings(ConfigError),
    /// The recovery kernel's ELF image does not parse.
    RecoveryElf(HandoffError),
    /// The recovery kernel's segments could not be loaded.
    RecoveryLoad(HandoffError),
    /// The recovery kernel's start info could not be written.
    RecoveryStartInfo(HandoffError),
    /// The DMAR table could not be found.
    NoDmar(PlatformError),
    /// The DMAR table does not parse.
    BadDmar(AcpiError),
    /// The DRHD's register block could not be mapped.
    DrhdRegisters(PlatformError),
    /// No frames for the translation tables.
    TableFrames(FrameError),
    /// The memory map has more RAM ranges than the VT-d driver keeps.
    MemoryMap(MapFull),
    /// Turning translation on failed.
    TranslationOn(VtdError),
    /// A device could not be attached to kernel A's domain.
    Attach {
        /// Its source id (requester id).
        source: u16,
        /// What the VT-d driver said.
        error: VtdError,
    },
    /// The arena's window could not be mapped.
    MapArena(VtdError),
    /// The fault log could not be drained (planned handoff).
    FaultLog(VtdError),
    /// Translation and queued invalidation could not be turned off (planned
    /// handoff).
    TranslationOff(VtdError),
    /// The DMAR table is there but could not be read.
    DmarUnreadable(PlatformError),
    /// The identity mapping of the arena (no IOMMU) was refused.
    ArenaMapping(MapError<Infallible>),
    /// The arena could not be built over its RAM and mapping.
    Arena(DmaError),
    /// A disk probe kept buffers in the arena, so its RAM could not be taken
    /// back for the devices kernel A keeps.
    ArenaBusy {
        /// Buffers not given back.
        live: usize,
    },
    /// The NVMe controller's BAR 0 could not be mapped.
    NvmeBar(PlatformError),
    /// The NVMe driver could not be set up in the arena.
    NvmeNew(NvmeError),
    /// The NVMe driver's init gave up (the controller is fenced).
    NvmeInit(InitFailed<NvmeError>),
    /// A DMA buffer could not be allocated.
    DmaBuffer(DmaError),
    /// A DMA buffer could not be filled.
    Fill(DmaError),
    /// A write to the scratch area failed.
    ScratchWrite(NvmeError),
    /// A scratch extent does not fit the namespace's blocks.
    Extent(NvmeError),
    /// The NVMe controller did not shut down cleanly (planned handoff).
    NvmeShutdown(NvmeError),
    /// The edu device's BAR 0 could not be mapped.
    EduBar(PlatformError),
    /// The edu device's bus mastering could not be turned on.
    EduBusMaster(PciError),
    /// The edu source buffer could not be allocated.
    EduSource(DmaError),
    /// The edu source buffer could not be filled.
    EduFill(DmaError),
    /// The edu landing buffer could not be allocated.
    EduLanding(DmaError),
    /// The edu priming transfer did not finish, or edu read all-ones.
    EduPriming(PollError<Untrusted<u64>, UntrustedError>),
    /// `watchdog_ms=` was given but the machine has no i6300esb.
    NoWatchdog(PlatformError),
    /// The i6300esb's BAR 0 could not be mapped.
    WatchdogBar(PlatformError),
    /// The watchdog refused the period.
    WatchdogPeriod(WatchdogError),
    /// The watchdog could not be enabled.
    WatchdogEnable(WatchdogError),
    /// The e1000's BAR 0 could not be mapped.
    E1000Bar(PlatformError),
    /// The e1000 driver could not be set up in the arena.
    E1000New(E1000Error),
    /// The e1000 driver's init gave up (the NIC is fenced).
    E1000Init(InitFailed<E1000Error>),
    /// The e1000 did not shut down cleanly (planned handoff).
    E1000Shutdown(E1000Error),
    /// A check of kernel A's own failed.
    Check(Check),
}

/// A check of kernel A's own that failed, with the values it saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The layout constants do not split the reserved recovery region.
    RecoveryLayout {
        /// The region's start.
        start: u64,
        /// Its length.
        len: u64,
    },
    /// QEMU was started without a module (`-initrd recovery-kernel`).
    NoRecoveryKernel,
    /// The module lies (partly) outside RAM.
    ModuleOutsideRam {
        /// The module's start.
        start: u64,
        /// Its size.
        size: u64,
    },
    /// The recovery kernel's segments are not all inside the image part of
    /// the reserved region.
    RecoveryNotInReserved {
        /// The image's first byte.
        start: u64,
        /// One past its last byte.
        end: u64,
        /// The image part's start.
        base: u64,
        /// One past the image part's end.
        limit: u64,
    },
    /// The NVMe controller came up without the namespace asked for.
    NoNamespace {
        /// The namespace id asked for.
        nsid: u32,
    },
    /// The DMAR table lists no DRHD (no remapping unit).
    NoDrhd,
    /// The machine's RAM does not reach the end of kernel A's fixed layout
    /// (the DMA arena is the highest part).
    TooLittleRam {
        /// One past the layout's last byte.
        needed: u64,
        /// One past the last RAM byte below that.
        ram_end: u64,
    },
}

/// A driver init that gave up: the step that failed last and why (the
/// trace is printed where the failure is seen; the fenced device is dropped).
#[derive(Debug)]
pub struct InitFailed<E> {
    /// The init step that failed last.
    pub step: &'static str,
    /// Why.
    pub cause: Cause<E>,
}

impl<E: fmt::Display> fmt::Display for InitFailed<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            Cause::Device(e) => write!(f, "gave up after step `{}`: {e}", self.step),
            Cause::Budget { step } => write!(f, "init budget exhausted at step `{step}`"),
        }
    }
}

impl From<Check> for KernelAError {
    fn from(check: Check) -> Self {
        Self::Check(check)
    }
}

impl KernelAError {
    /// The step's name: the `reason=` of kernel A's result line.
    pub const fn step(&self) -> &'static str {
        match self {
            Self::FramesTaken => "frames taken",
            Self::FrameAllocator(_) => "frame allocator",
            Self::ArenaRam(_) | Self::Arena(_) => "arena",
            Self::Reserve(_) => "reserve",
            Self::RecoverySettings(_) => "recovery settings",
            Self::RecoveryElf(_) => "recovery kernel ELF",
            Self::RecoveryLoad(_) => "recovery load",
            Self::RecoveryStartInfo(_) => "recovery start info",
            Self::NoDmar(_) => "no DMAR",
            Self::BadDmar(_) => "bad DMAR",
            Self::DrhdRegisters(_) => "DRHD registers",
            Self::TableFrames(_) => "table frames",
            Self::MemoryMap(_) => "memory map",
            Self::TranslationOn(_) => "translation on",
            Self::Attach { .. } => "attach",
            Self::MapArena(_) => "map arena",
            Self::FaultLog(_) => "fault log",
            Self::TranslationOff(_) => "translation and queued invalidation off",
            Self::DmarUnreadable(_) => "DMAR table unreadable",
            Self::ArenaMapping(_) => "arena mapping",
            Self::ArenaBusy { .. } => "arena after disk probe",
            Self::NvmeBar(_) => "nvme bar",
            Self::NvmeNew(_) => "nvme new",
            Self::NvmeInit(_) => "nvme init",
            Self::DmaBuffer(_) => "dma buffer",
            Self::Fill(_) => "fill",
            Self::ScratchWrite(_) => "scratch write",
            Self::Extent(_) => "extent",
            Self::NvmeShutdown(_) => "nvme shutdown",
            Self::EduBar(_) => "edu bar",
            Self::EduBusMaster(_) => "edu bus master",
            Self::EduSource(_) => "edu source",
            Self::EduFill(_) => "edu fill",
            Self::EduLanding(_) => "edu landing",
            Self::EduPriming(_) => "edu priming DMA never completed (or edu is gone)",
            Self::NoWatchdog(_) => "watchdog_ms= given but no i6300esb",
            Self::WatchdogBar(_) => "i6300esb bar",
            Self::WatchdogPeriod(_) => "watchdog period",
            Self::WatchdogEnable(_) => "watchdog enable",
            Self::E1000Bar(_) => "e1000 bar",
            Self::E1000New(_) => "e1000 new",
            Self::E1000Init(_) => "e1000 init",
            Self::E1000Shutdown(_) => "e1000 shutdown",
            Self::Check(c) => c.step(),
        }
    }

    /// The error the step got, in words: the `error=` of the result line
    /// (`None`: the step's name says it all).
    pub fn cause(&self) -> Option<impl fmt::Display + '_> {
        match self {
            Self::FramesTaken | Self::Check(Check::NoRecoveryKernel | Check::NoDrhd) => None,
            _ => Some(CauseText(self)),
        }
    }
}

/// [`KernelAError::cause`]'s text.
struct CauseText<'a>(&'a KernelAError);

impl fmt::Display for CauseText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use KernelAError as K;
        match self.0 {
            K::FramesTaken => Ok(()),
            K::FrameAllocator(e) | K::ArenaRam(e) | K::Reserve(e) | K::TableFrames(e) => {
                write!(f, "{e}")
            }
            K::RecoverySettings(e) => write!(f, "{e}"),
            K::RecoveryElf(e) | K::RecoveryLoad(e) | K::RecoveryStartInfo(e) => write!(f, "{e}"),
            K::NoDmar(e)
            | K::DrhdRegisters(e)
            | K::DmarUnreadable(e)
            | K::NvmeBar(e)
            | K::EduBar(e)
            | K::NoWatchdog(e)
            | K::WatchdogBar(e)
            | K::E1000Bar(e) => write!(f, "{e}"),
            K::BadDmar(e) => write!(f, "{e}"),
            K::MemoryMap(e) => write!(f, "{e}"),
            K::TranslationOn(e) | K::MapArena(e) | K::FaultLog(e) | K::TranslationOff(e) => {
                write!(f, "{e}")
            }
            K::Attach { source, error } => write!(f, "source id {source:#06x}: {error}"),
            K::ArenaMapping(e) => write!(f, "{e}"),
            K::Arena(e)
            | K::DmaBuffer(e)
            | K::Fill(e)
            | K::EduSource(e)
            | K::EduFill(e)
            | K::EduLanding(e) => write!(f, "{e}"),
            K::ArenaBusy { live } => write!(
                f,
                "{live} DMA buffers of a disk probe were never given back, so the arena's RAM stays with them"
            ),
            K::NvmeNew(e) | K::ScratchWrite(e) | K::Extent(e) | K::NvmeShutdown(e) => {
                write!(f, "{e}")
            }
            K::NvmeInit(e) => write!(f, "{e}"),
            K::EduBusMaster(e) => write!(f, "{e}"),
            K::EduPriming(e) => write!(f, "{e}"),
            K::WatchdogPeriod(e) | K::WatchdogEnable(e) => write!(f, "{e}"),
            K::E1000New(e) | K::E1000Shutdown(e) => write!(f, "{e}"),
            K::E1000Init(e) => write!(f, "{e}"),
            K::Check(c) => write!(f, "{c}"),
        }
    }
}

impl Check {
    /// The step's name (see [`KernelAError::step`]).
    pub const fn step(&self) -> &'static str {
        match self {
            Self::RecoveryLayout { .. } => "recovery region layout",
            Self::NoRecoveryKernel => "no recovery kernel: start QEMU with -initrd recovery-kernel",
            Self::ModuleOutsideRam { .. } => "recovery kernel module outside RAM",
            Self::RecoveryNotInReserved { .. } => {
                "recovery kernel not linked inside the reserved region"
            }
            Self::NoNamespace { .. } => "nvme namespace",
            Self::NoDrhd => "no DRHD",
            Self::TooLittleRam { .. } => "ram size",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::RecoveryLayout { start, len } => write!(
                f,
                "the layout constants do not fit the reserved region {start:#x}+{len:#x}"
            ),
            Self::NoRecoveryKernel => write!(f, "no module given"),
            Self::ModuleOutsideRam { start, size } => {
                write!(f, "module {start:#x}+{size:#x} is not all in RAM")
            }
            Self::RecoveryNotInReserved {
                start,
                end,
                base,
                limit,
            } => write!(
                f,
                "image {start:#x}..{end:#x} is not inside {base:#x}..{limit:#x}"
            ),
            Self::NoNamespace { nsid } => {
                write!(f, "the controller came up without namespace {nsid}")
            }
            Self::NoDrhd => write!(f, "the DMAR table lists no remapping unit"),
            Self::TooLittleRam { needed, ram_end } => write!(
                f,
                "kernel A's layout needs RAM up to {needed:#x} ({} MiB: its DMA arena sits above \
                 the recovery kernel's reserved region); this machine's RAM ends at {ram_end:#x} \
                 ({} MiB): give QEMU -m 256M or more",
                needed >> 20,
                ram_end >> 20
            ),
        }
    }
}

impl fmt::Display for KernelAError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cause() {
            Some(cause) => write!(f, "{}: {cause}", self.step()),
            None => f.write_str(self.step()),
        }
    }
}

impl<E> InitFailed<E> {
    /// The step and cause of `failure`; its trace (every step of every
    /// attempt) goes to the serial log first, as the record of what the
    /// driver tried.
    pub fn logged<D>(failure: InitFailure<D>) -> Self
    where
        D: Lifecycle<Error = E>,
    {
        println!("kernel-a: {}", failure.trace);
        Self {
            step: failure.step,
            cause: failure.cause,
        }
    }
}
