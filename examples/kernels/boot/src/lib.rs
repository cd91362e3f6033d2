//! PVH boot for paranoid's bare-metal kernels.
//!
//! QEMU (`-kernel kernel.elf`) loads an ELF that carries a PVH note and enters it
//! in 32-bit protected mode. This crate provides everything between that entry
//! and a kernel's `main`:
//!
//! - the PVH note and the 32-bit entry (`entry.S`): GDT, identity map of the first
//!   64 GiB with 2 MiB pages (2..4 GiB uncached, for ECAM, BARs and VT-d), long
//!   mode, stack, zeroed `.bss`;
//! - [`paging`]: once the memory map is read, the RAM it lists in 2..4 GiB is
//!   switched to write-back, and [`paging::MemoryLayout`] says where low RAM
//!   ends and where device memory may be mapped;
//! - [`BootInfo`]: the parsed start info (command line, modules, RSDP, memory
//!   map), a TSC [`TscClock`] calibrated against the PIT, and the
//!   kernel image bounds;
//! - serial output on COM1 ([`println!`]), [`exit`] through `isa-debug-exit`, a
//!   panic handler that prints `PARANOID-PANIC` and exits with
//!   [`ExitCode::Failure`];
//! - [`result`]: the one writer of the `PARANOID-RESULT` line every kernel
//!   ends with (format: `paranoid-result-line`, which the harness parses with);
//! - [`frames::FrameAllocator`], a bump allocator of physical pages;
//! - [`acpi`]: finding firmware tables (MCFG for ECAM, DMAR for VT-d);
//! - [`handoff`]: loading another PVH kernel and jumping to it in 32-bit mode.
//!
//! # Writing a kernel
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//!
//! use paranoid_boot::{println, BootInfo, ExitCode};
//!
//! paranoid_boot::entry!(main);
//!
//! fn main(boot: &'static BootInfo) -> ExitCode {
//!     println!("hello, cmdline = {}", boot.cmdline().as_str());
//!     ExitCode::Success
//! }
//! ```
//!
//! # Building a kernel
//!
//! The binary's `build.rs` picks the load address and the linker script that
//! this crate's build script provides:
//!
//! ```text
//! println!("cargo:rustc-link-arg-bins=-Tparanoid-boot.ld");
//! println!("cargo:rustc-link-arg-bins=--defsym=PARANOID_KERNEL_BASE=0x100000");
//! ```
//!
//! Build with `--target x86_64-unknown-none` and `-C relocation-model=static`
//! (`examples/kernels/.cargo/config.toml` sets both). A kernel that another
//! kernel loads with [`handoff`] uses a different base (e.g. `0x4000000`).
#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod acpi;
pub mod edu;
pub mod exit;
pub mod frames;
pub mod handoff;
pub mod paging;
pub mod platform;
pub mod result;
pub mod serial;
pub mod start_info;

use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

pub use exit::{exit, exit_raw, halt, ExitCode};
pub use paranoid::arch::x86_64::{TscClock, TscError};
pub use start_info::{Cmdline, MemoryKind, MemoryRegion, Module, StartInfo, StartInfoError};

use frames::{FrameAllocator, FrameError, PhysRange};
use paging::MemoryLayout;
use paranoid::phys::IdentityMap;
use paranoid::sync::{OnceCell, TryLock};

core::arch::global_asm!(include_str!("entry.S"), options(att_syntax));

/// What a kernel's `main` receives.
pub struct BootInfo {
    start: StartInfo,
    clock: TscClock,
    kernel: PhysRange,
    frames_taken: AtomicBool,
    layout: MemoryLayout,
    ram: IdentityMap,
    tables: IdentityMap,
}

impl BootInfo {
    /// The parsed start info.
    pub fn start_info(&self) -> &StartInfo {
        &self.start
    }

    /// The command line.
    pub fn cmdline(&self) -> Cmdline<'_> {
        self.start.cmdline()
    }

    /// Modules the loader placed in memory.
    pub fn modules(&self) -> &[Module] {
        self.start.modules()
    }

    /// The bytes of the module at `index` in [`BootInfo::modules`] (another
    /// kernel's image, say); `None` past the last module or when the module
    /// does not lie inside [`BootInfo::tables`], below the end of low RAM
    /// (loaders put modules in low RAM: QEMU's at its top, on a q35 machine
    /// with 2.5 GiB above 2 GiB; it may end a little past the last RAM range,
    /// in the firmware's reserved range after it).
    pub fn module_bytes(&self, index: usize) -> Option<&'static [u8]> {
        let m = self.start.modules().get(index)?;
        let len = usize::try_from(m.size).ok()?;
        if m.start == 0 || !self.tables.contains(m.start, m.size) {
            return None;
        }
        // SAFETY:
        // - the module lies inside `tables` (checked): below the end of low
        //   RAM, which the boot page tables identity-map and which holds RAM
        //   and firmware data only (the `tables` reader's contract), so
        //   `start..start + size` is mapped 1:1, readable without side effect
        //   for the kernel's life, and not address 0;
        // - nothing writes it for the kernel's life: loader memory that the
        //   frame allocator reserves at creation (so never hands out nor lets
        //   a kernel claim as a `RamRegion`), and the boot crate gives no other
        //   write access to it (`handoff::load` refuses to overlap its source);
        // - memory holds initialized bytes, any bits are a valid `u8`.
        Some(unsafe { core::slice::from_raw_parts(m.start as usize as *const u8, len) })
    }

    /// Physical address of the ACPI RSDP.
    pub fn rsdp(&self) -> Option<u64> {
        self.start.rsdp()
    }

    /// The memory map.
    pub fn memory_map(&self) -> &[MemoryRegion] {
        self.start.memory_map()
    }

    /// The TSC clock, calibrated against the PIT at boot.
    pub fn clock(&self) -> TscClock {
        self.clock
    }

    /// Where low RAM ends and which pages of 2..4 GiB are write-back RAM.
    pub fn layout(&self) -> &MemoryLayout {
        &self.layout
    }

    /// True when `base..base + size` (not empty) may be mapped as device
    /// memory: it lies in the uncached part of the identity map above low
    /// RAM and no range of the memory map that is memory overlaps it
    /// ([`MemoryLayout::is_device_memory`]).
    pub fn is_device_memory(&self, base: u64, size: u64) -> bool {
        self.layout.is_device_memory(self.memory_map(), base, size)
    }

    /// Physical range of this kernel's image, `.bss` (stack, page tables) included.
    pub fn kernel_image(&self) -> PhysRange {
        self.kernel
    }

    /// The memory of the memory map (RAM, ACPI memory, persistent memory, the
    /// kinds another kernel marks its own RAM with: [`paging::is_memory`],
    /// wherever it lies below [`start_info::IDENTITY_LIMIT`]; reserved
    /// ranges below the end of low RAM, [`paging::MemoryLayout::low_end`]),
    /// as the identity map reaches it: the reader of memory this kernel does
    /// not own, and of its own image. Never device memory: of 2..4 GiB, where
    /// device memory lives, only what the memory map calls memory and the
    /// firmware data at the top of low RAM.
    pub fn ram(&self) -> &IdentityMap {
        &self.ram
    }

    /// Everything below the end of low RAM
    /// ([`paging::MemoryLayout::low_end`]: 2 GiB, or higher when the memory
    /// map lists RAM from there on), as one range: RAM and firmware data,
    /// where loaders put the start info and the modules and firmware its
    /// tables. What ACPI table pointers and the start info are followed
    /// through. Never device memory.
    ///
    /// Made once at boot, like [`BootInfo::ram`]: a kernel borrows it (or a
    /// [`IdentityMap::restrict`]ed part) and never makes an identity map of
    /// its own.
    pub fn tables(&self) -> &IdentityMap {
        &self.tables
    }

    /// The frame allocator over free RAM; `None` after the first call, so frames
    /// are never handed out twice.
    ///
    /// # Errors
    ///
    /// As [`FrameAllocator::new`].
    pub fn take_frames(&self) -> Option<Result<FrameAllocator, FrameError>> {
        if self.frames_taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some(FrameAllocator::new(&self.start, self.kernel))
    }
}

/// The one `BootInfo`, written once before `main` runs.
static BOOT: OnceCell<BootInfo> = OnceCell::new();

/// The `BootInfo`, once the boot code made it (always, when `main` runs).
pub(crate) fn boot_info() -> Option<&'static BootInfo> {
    BOOT.get()
}

unsafe extern "C" {
    static __paranoid_kernel_start: u8;
    static __paranoid_kernel_end: u8;
}

unsafe extern "Rust" {
    /// Defined by [`entry!`] in the kernel binary.
    fn __paranoid_boot_main(boot: &'static BootInfo) -> ExitCode;
}

/// Declares the kernel's `main`: `fn(&'static BootInfo) -> ExitCode`.
///
/// When it returns, the VM exits with that code.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[doc(hidden)]
        #[export_name = "__paranoid_boot_main"]
        pub fn __paranoid_boot_main(boot: &'static $crate::BootInfo) -> $crate::ExitCode {
            let main: fn(&'static $crate::BootInfo) -> $crate::ExitCode = $main;
            main(boot)
        }
    };
}

/// Called by `entry.S` in long mode with the PVH start info address.
#[unsafe(no_mangle)]
extern "C" fn paranoid_boot_rust_start(start_info: u32) -> ! {
    serial::init();
    // SAFETY:
    // - the boot page tables identity-map the first 64 GiB (entry.S), so
    //   every address below START_INFO_LIMIT (2 GiB) is mapped 1:1 for the
    //   kernel's life;
    // - below 2 GiB a PC has RAM and firmware tables (device memory lives in
    //   the uncached 2..4 GiB part), so reading it has no side effect.
    let below_2g = unsafe { IdentityMap::new([(1, start_info::START_INFO_LIMIT)]) };
    let start = match StartInfo::parse(&below_2g, start_info.into()) {
        Ok(s) => s,
        Err(e) => {
            println!("PARANOID-BOOT error=start-info detail=\"{e}\"");
            exit(ExitCode::Failure)
        }
    };
    // A kernel started by another kernel (a recovery kernel) may be told the TSC
    // frequency (`tsc_khz=`): calibrating takes 30 ms it may not have. The value
    // is still checked for plausibility.
    let told = start
        .cmdline()
        .get("tsc_khz")
        .and_then(|k| k.parse::<u64>().ok())
        .map(TscClock::from_khz);
    let clock = match told {
        Some(Ok(c)) => Ok(c),
        // Nothing else in the kernel uses the PIT or port 0x61 at this point.
        _ => TscClock::calibrate_with_pit(),
    };
    let clock = match clock {
        Ok(c) => c,
        Err(e) => {
            println!("PARANOID-BOOT error=tsc detail=\"{e:?}\"");
            exit(ExitCode::Failure)
        }
    };
    let kernel = PhysRange {
        start: (&raw const __paranoid_kernel_start) as u64,
        end: (&raw const __paranoid_kernel_end) as u64,
    };
    // The RAM the memory map lists in 2..4 GiB becomes write-back.
    let layout = MemoryLayout::new(start.memory_map());
    paging::apply(&layout);
    let low_end = layout.low_end();
    // SAFETY:
    // - the boot page tables identity-map the first 64 GiB, so every address
    //   below the end of low RAM (at most 4 GiB) is mapped 1:1;
    // - below 2 GiB a PC has RAM and firmware tables; from 2 GiB to the end
    //   of low RAM every byte lies in a range the memory map calls memory or
    //   in the reserved range right after one (`MemoryLayout::low_end`):
    //   firmware data, never device registers. Reading it has no side effect
    //   (pages that are not all memory stay uncached, which is only slower).
    let tables = unsafe { IdentityMap::new([(1, low_end)]) };
    let ranges = start
        .memory_map()
        .iter()
        .map(|r| identity_part(r.kind, r.start, r.end(), low_end));
    // SAFETY:
    // - the boot page tables identity-map everything below IDENTITY_LIMIT,
    //   and `identity_part` keeps each range below it;
    // - the kinds kept are memory (RAM, ACPI, persistent, another kernel's
    //   RAM), never device registers, and reserved ranges only below the end
    //   of low RAM (firmware data, as for `tables`); of the 2..4 GiB window
    //   mapped uncached for device memory nothing else is kept.
    let ram = unsafe { IdentityMap::new(ranges) };
    let info = BootInfo {
        start,
        clock,
        kernel,
        frames_taken: AtomicBool::new(false),
        layout,
        ram,
        tables,
    };
    let Ok(boot) = BOOT.set(info) else {
        println!("PARANOID-BOOT error=entered-twice");
        exit(ExitCode::Failure)
    };
    // SAFETY: `entry!` defines the symbol with exactly this signature.
    let code = unsafe { __paranoid_boot_main(boot) };
    exit(code)
}

/// `start..end` of kind `kind`, cut to what the identity map reaches as
/// memory: below [`start_info::IDENTITY_LIMIT`]. RAM, ACPI, persistent memory
/// and the kinds another kernel marks its own RAM with
/// ([`paging::is_memory`]) count wherever they are, 2..4 GiB included (where
/// the memory map lists them there, they are RAM, not device memory);
/// reserved ranges only below `low_end`, the end of low RAM (firmware data,
/// the pages a crashed kernel hands over outside its RAM: its note, the start
/// info), where no device registers live; unusable and disabled ranges never.
fn identity_part(kind: MemoryKind, start: u64, end: u64, low_end: u64) -> (u64, u64) {
    let end = if paging::is_memory(kind) {
        end.min(start_info::IDENTITY_LIMIT)
    } else if kind == MemoryKind::Reserved {
        end.min(low_end)
    } else {
        start
    };
    (start, end)
}

/// A kernel's own panic path, set with [`set_panic_hook`].
pub type PanicHook = fn(&PanicInfo<'_>) -> !;

/// The hook (`None`: the default path).
static PANIC_HOOK: TryLock<Option<PanicHook>> = TryLock::new(None);

/// Replaces the default panic path (print `PARANOID-PANIC`, exit with
/// [`ExitCode::Failure`]) with `hook`.
///
/// A crashing kernel uses this to record a crash note and jump to its recovery
/// kernel without touching any device: the default path writes to the serial
/// port, which is device I/O.
pub fn set_panic_hook(hook: PanicHook) {
    // Only `set_panic_hook` and the panic handler take the lock, each for one
    // copy: it is never found taken on a single-CPU kernel.
    let _ = PANIC_HOOK.with(|h| *h = Some(hook));
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    if let Some(hook) = PANIC_HOOK.with(|h| *h).flatten() {
        hook(info)
    }
    println!("PARANOID-PANIC {info}");
    exit(ExitCode::Failure)
}
