//! Exported wrappers around the HAL's register access, for the codegen check.
//!
//! `cargo xtask test` builds this crate in release for `x86_64-unknown-none`,
//! disassembles it with `objdump -d` and asserts that each 32-bit register
//! read or write is a single `mov` (see `tests/src/codegen.rs`): the HAL costs
//! nothing over a raw access.
#![no_std]
#![deny(missing_docs)]
// The `probe_*` names are the symbols the codegen check disassembles, not device bring-up;
// each wrapper is one register access on purpose, so there is nothing to check it against.
#![cfg_attr(
    any(),
    paranoid::allow(
        missing_paranoid_init,
        device_gone_unchecked,
        reason = "codegen probes: one raw access each, disassembled by the codegen check"
    )
)]

use core::ptr::NonNull;

use paranoid::mmio::{Mmio, RegisterIo};

/// A raw 32-bit register read through `paranoid::arch::read32`.
///
/// # Safety
///
/// `p` must be mapped, 4-byte aligned, and not aliased by a Rust reference.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn probe_read32(p: *const u32) -> u32 {
    // SAFETY: forwarded contract.
    unsafe { paranoid::arch::read32(p) }
}

/// A raw 32-bit register write through `paranoid::arch::write32`.
///
/// # Safety
///
/// As [`probe_read32`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn probe_write32(p: *mut u32, v: u32) {
    // SAFETY: forwarded contract.
    unsafe { paranoid::arch::write32(p, v) }
}

/// A 32-bit read through [`Mmio`]'s [`RegisterIo::read32`]: the bounds and
/// alignment check, then one `mov`.
///
/// # Safety
///
/// `base..base + size` must be mapped device memory owned by the caller.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn probe_mmio_read32(base: NonNull<u8>, size: usize, offset: usize) -> u32 {
    // SAFETY: forwarded contract.
    let mut regs = unsafe { Mmio::new(base, size) };
    regs.read32(offset).into_raw_for_report()
}

/// A 32-bit write through [`Mmio`]'s [`RegisterIo::write32`].
///
/// # Safety
///
/// As [`probe_mmio_read32`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn probe_mmio_write32(base: NonNull<u8>, size: usize, offset: usize, v: u32) {
    // SAFETY: forwarded contract.
    let mut regs = unsafe { Mmio::new(base, size) };
    regs.write32(offset, v)
}
