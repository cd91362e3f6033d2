//! Canaries: fill the recovery kernel's free memory with a known pattern at
//! boot and check it at the end, so stale DMA that landed in recovery memory is
//! caught, not assumed away.

use paranoid_dump::pattern_word;

/// The result of a canary check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CanaryCheck {
    /// Words checked.
    pub words: u64,
    /// Words that changed.
    pub changed: u64,
    /// Address of the first changed word.
    pub first_changed: Option<u64>,
}

/// Seed that keeps canary words distinct from the crashed kernel's pattern.
const CANARY_SEED: u64 = 0x6361_6e61_7279_2121;

/// The canary word at `addr`.
pub const fn canary_word(addr: u64) -> u64 {
    pattern_word(CANARY_SEED, addr)
}

/// Fills `words` 64-bit words at `base` (physical = virtual address `addr`).
///
/// # Safety
///
/// `base..base + words` must be writable memory owned by the caller, with no
/// Rust references into it.
pub unsafe fn fill(base: *mut u64, addr: u64, words: usize) {
    for i in 0..words {
        // SAFETY: `i < words`, inside the caller's region (see `# Safety`).
        // paranoid:allow(raw_mmio): ordinary RAM (the recovery kernel's own free memory), not device memory
        unsafe { base.add(i).write_volatile(canary_word(addr + 8 * i as u64)) };
    }
}

/// Checks a region filled by [`fill`].
///
/// # Safety
///
/// `base..base + words` must be readable memory, with no Rust references into
/// it (a device may still write it: that is what we check).
pub unsafe fn check(base: *const u64, addr: u64, words: usize) -> CanaryCheck {
    let mut out = CanaryCheck {
        words: words as u64,
        changed: 0,
        first_changed: None,
    };
    for i in 0..words {
        let a = addr + 8 * i as u64;
        // SAFETY: `i < words`, inside the caller's region (see `# Safety`).
        // paranoid:allow(raw_mmio): ordinary RAM that stale DMA might have hit, not device memory
        let v = unsafe { base.add(i).read_volatile() };
        if v != canary_word(a) {
            out.changed += 1;
            out.first_changed.get_or_insert(a);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_a_stale_write() {
        let mut mem = vec![0u64; 512];
        // SAFETY: `mem` is a live vector of 512 words, used only through the pointer.
        unsafe { fill(mem.as_mut_ptr(), 0x100_0000, 512) };
        // SAFETY: as above.
        assert_eq!(unsafe { check(mem.as_ptr(), 0x100_0000, 512) }.changed, 0);
        mem[100] = 0xdead;
        // SAFETY: as above.
        let c = unsafe { check(mem.as_ptr(), 0x100_0000, 512) };
        assert_eq!((c.changed, c.first_changed), (1, Some(0x100_0000 + 800)));
    }
}
