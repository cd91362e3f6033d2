//! Safe CPU primitives: the time-stamp counter, interrupt masking, halting,
//! and cache-line write-back. Each is one instruction whose use needs no
//! contract from the caller (nothing it touches can break memory safety), so
//! kernels and drivers call them without an `unsafe` block of their own.

use core::arch::asm;

/// Bytes in a cache line on every x86_64 CPU paranoid runs on (CPUID leaf 1,
/// EBX\[15:8\] × 8 is 64 on all of them; a larger line only flushes more).
pub const CACHE_LINE: u64 = 64;

/// Reads the time-stamp counter (`rdtsc`).
#[inline(always)]
pub fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` exists on every x86_64 CPU, reads a counter and writes
    // only the output registers.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Masks maskable interrupts on this CPU (`cli`).
///
/// Memory safety does not depend on interrupts being on; a kernel that masks
/// them for good (a panic path, a jump to another kernel) just calls this.
#[inline(always)]
pub fn disable_interrupts() {
    // SAFETY: `cli` clears RFLAGS.IF only; no memory, no stack.
    unsafe { asm!("cli", options(nomem, nostack)) };
}

/// Stops this CPU for good: interrupts masked, then `hlt` forever.
#[inline]
pub fn halt() -> ! {
    loop {
        // SAFETY: `cli; hlt` masks interrupts and waits; nothing is accessed
        // (an NMI returns to the loop, which halts again).
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

/// Writes back and invalidates the cache line holding `addr` (`clflush`).
///
/// # Safety
///
/// `addr` must be mapped in the current address space: `clflush` of an
/// unmapped address faults. It never changes what memory holds.
#[inline(always)]
pub unsafe fn clflush(addr: *const u8) {
    // SAFETY: the caller guarantees `addr` is mapped; clflush writes the line
    // back and changes no memory contents.
    unsafe { asm!("clflush [{0}]", in(reg) addr, options(nostack, preserves_flags)) };
}

/// Writes back every cache line of `bytes` (a unit that does not snoop the
/// caches then sees what the CPU wrote).
#[inline]
pub fn flush_lines(bytes: &[u8]) {
    let start = bytes.as_ptr() as u64 & !(CACHE_LINE - 1);
    let end = bytes.as_ptr() as u64 + bytes.len() as u64;
    let mut line = start;
    while line < end {
        // SAFETY: every line from the one holding `bytes[0]` to the one holding
        // its last byte contains part of `bytes`, which a live reference maps.
        unsafe { clflush(line as *const u8) };
        line += CACHE_LINE;
    }
}

/// The CPU's registers at one point, as [`capture_registers`] saw them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registers {
    /// General-purpose, instruction-pointer, flags and segment registers in
    /// Linux's x86_64 `user_regs_struct` order (r15, r14, r13, r12, rbp, rbx,
    /// r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs, eflags,
    /// rsp, ss, fs_base, gs_base, ds, es, fs, gs). `orig_rax` is all-ones (no
    /// system call); `fs_base` and `gs_base` are 0 (not read).
    pub gp: [u64; 27],
    /// CR0, CR2, CR3, CR4.
    pub cr: [u64; 4],
}

/// The CPU's registers here and now (inlined into the caller, so `rip` and
/// `rsp` are the caller's), and its control registers. Reads registers only:
/// no memory but the result, no device.
#[inline(always)]
pub fn capture_registers() -> Registers {
    let mut r = Registers {
        gp: [0; 27],
        cr: [0; 4],
    };
    let gp = r.gp.as_mut_ptr();
    let cr = r.cr.as_mut_ptr();
    // SAFETY:
    // - the stores go to `r.gp` (27 words; offsets 0..=26 * 8 below) and
    //   `r.cr` (4 words), both of a live local;
    // - pushfq/pop leave the stack as they found it; nothing else is written;
    // - moves from segment and control registers have no side effects at
    //   CPL 0 (the kernels run there; at CPL 3 the control-register moves
    //   fault, they never corrupt memory).
    unsafe {
        asm!(
            "mov [{r} + 0], r15",
            "mov [{r} + 8], r14",
            "mov [{r} + 16], r13",
            "mov [{r} + 24], r12",
            "mov [{r} + 32], rbp",
            "mov [{r} + 40], rbx",
            "mov [{r} + 48], r11",
            "mov [{r} + 56], r10",
            "mov [{r} + 64], r9",
            "mov [{r} + 72], r8",
            "mov [{r} + 80], rax",
            "mov [{r} + 88], rcx",
            "mov [{r} + 96], rdx",
            "mov [{r} + 104], rsi",
            "mov [{r} + 112], rdi",
            "mov qword ptr [{r} + 120], -1",
            "lea {t}, [rip]",
            "mov [{r} + 128], {t}",
            "mov {t:e}, cs",
            "mov [{r} + 136], {t}",
            "pushfq",
            "pop {t}",
            "mov [{r} + 144], {t}",
            "mov [{r} + 152], rsp",
            "mov {t:e}, ss",
            "mov [{r} + 160], {t}",
            "mov {t:e}, ds",
            "mov [{r} + 184], {t}",
            "mov {t:e}, es",
            "mov [{r} + 192], {t}",
            "mov {t:e}, fs",
            "mov [{r} + 200], {t}",
            "mov {t:e}, gs",
            "mov [{r} + 208], {t}",
            "mov {t}, cr0",
            "mov [{c} + 0], {t}",
            "mov {t}, cr2",
            "mov [{c} + 8], {t}",
            "mov {t}, cr3",
            "mov [{c} + 16], {t}",
            "mov {t}, cr4",
            "mov [{c} + 24], {t}",
            r = in(reg) gp,
            c = in(reg) cr,
            t = out(reg) _,
        );
    }
    r
}
