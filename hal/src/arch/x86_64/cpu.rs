//! Safe CPU primitives: the time-stamp counter, interrupt masking, halting,
//! and cache-line write-back. Each is one instruction whose use needs no
//! contract from the caller (nothing it touches can break memory safety), so
//! kernels and drivers call them without an `unsafe` block of their own.

use core::arch::asm;

/// Bytes in a cache line on every x86_64 CPU paranoid runs on (CPUID leaf 1,
/// EBX[15:8] × 8 is 64 on all of them; a larger line only flushes more).
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
