//! Canaries: fill the recovery kernel's free memory with a known pattern at
//! boot and check it at the end, so stale DMA that landed in recovery memory is
//! caught, not assumed away.

use paranoid::phys::RamRegion;
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

/// Bytes filled or checked between two calls of the `between_chunks`
/// callback: a 16 MiB region under QEMU's TCG takes over 100 ms, longer than
/// a heartbeat period, so the caller keeps its heartbeats going in between.
pub const CHUNK: u64 = 1 << 20;

/// Fills `ram` with canary words (each 8-byte word at physical address `a`
/// holds [`canary_word`]`(a)`); a trailing part shorter than a word is left.
/// Calls `between_chunks` after every [`CHUNK`] bytes.
pub fn fill(ram: &mut RamRegion, mut between_chunks: impl FnMut()) {
    let start = ram.start();
    for offset in (0..ram.len() / 8).map(|i| i * 8) {
        ram.write_u64(offset, canary_word(start + offset));
        if (offset + 8) % CHUNK == 0 {
            between_chunks();
        }
    }
}

/// Checks a region filled by [`fill`] (a device may have written it since:
/// that is what we check). Calls `between_chunks` after every [`CHUNK`]
/// bytes.
pub fn check(ram: &RamRegion, mut between_chunks: impl FnMut()) -> CanaryCheck {
    let start = ram.start();
    let words = ram.len() / 8;
    let mut out = CanaryCheck {
        words,
        changed: 0,
        first_changed: None,
    };
    for offset in (0..words).map(|i| i * 8) {
        let a = start + offset;
        if ram.read_u64(offset) != Some(canary_word(a)) {
            out.changed += 1;
            out.first_changed.get_or_insert(a);
        }
        if (offset + 8) % CHUNK == 0 {
            between_chunks();
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
        let at = mem.as_mut_ptr() as u64;
        {
            // SAFETY: `mem` is a live vector of 512 words at its own address (the
            // host's identity), used only through the region in this block.
            let mut ram = unsafe { RamRegion::new(at, 512 * 8) };
            fill(&mut ram, || {});
            assert_eq!(check(&ram, || {}).changed, 0);
            assert_eq!(check(&ram, || {}).words, 512);
            // A stale DMA write: the device side of the region.
            assert!(ram.write_u32(800, 0xdead));
            let c = check(&ram, || {});
            assert_eq!((c.changed, c.first_changed), (1, Some(at + 800)));
        }
        // The region is gone: the vector is ours again, with the stale write.
        assert_eq!(mem[100] as u32, 0xdead);
    }

    #[test]
    fn the_callback_runs_once_per_chunk() {
        let words = (3 * CHUNK / 8 + 5) as usize;
        let mut mem = vec![0u64; words];
        let at = mem.as_mut_ptr() as u64;
        // SAFETY: `mem` is a live vector of `words` words at its own address,
        // used only through the region in this test.
        let mut ram = unsafe { RamRegion::new(at, words as u64 * 8) };
        let mut calls = 0;
        fill(&mut ram, || calls += 1);
        assert_eq!(calls, 3, "three whole chunks filled, the tail is shorter");
        calls = 0;
        assert_eq!(check(&ram, || calls += 1).changed, 0);
        assert_eq!(calls, 3);
    }
}
