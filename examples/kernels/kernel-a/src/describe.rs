//! Kernel A's descriptor of its own memory (published through the crash note
//! for the recovery kernel): its stack and the descriptor first, its image,
//! its DMA arena and pattern, and the RAM it never used marked free.

use paranoid::phys::{IdentityMap, PhysRead};
use paranoid_boot::frames::{FrameAllocator, PhysRange};
use paranoid_boot::{BootInfo, MemoryKind};
use paranoid_dump::{Range, BUILD_ID_LEN};
use paranoid_recovery::descriptor::{Descriptor, RegionKind};

use crate::layout::{
    ARENA_BASE, ARENA_LEN, PATTERN_BASE, PATTERN_LEN, RECOVERY_BASE, RECOVERY_LEN,
};

extern "C" {
    /// The boot stack (entry.S).
    static paranoid_boot_stack: u8;
    /// Its top.
    static paranoid_boot_stack_top: u8;
}

/// The boot stack kernel A runs on.
fn stack() -> Range {
    let start = (&raw const paranoid_boot_stack) as u64;
    let end = (&raw const paranoid_boot_stack_top) as u64;
    Range {
        start,
        len: end.saturating_sub(start),
    }
}

/// Pushes the parts of `r` outside every range of `holes`.
fn push_minus(d: &mut Descriptor, r: Range, holes: &[Range], kind: RegionKind, priority: u32) {
    let mut at = r.start;
    while at < r.end() {
        let next = holes
            .iter()
            .filter(|h| h.len > 0 && h.end() > at && h.start < r.end())
            .min_by_key(|h| h.start);
        let stop = match next {
            Some(h) if h.start <= at => {
                at = h.end();
                continue;
            }
            Some(h) => h.start,
            None => r.end(),
        };
        d.push(
            Range {
                start: at,
                len: stop - at,
            },
            kind,
            priority,
        );
        at = stop;
    }
}

/// A build id: FNV-1a over the first 64 KiB of kernel A's image (its code,
/// which the same build loads identically every boot), twice with two seeds.
fn build_id(ram: &IdentityMap, image: PhysRange) -> [u8; BUILD_ID_LEN] {
    let len = (image.end - image.start).min(64 * 1024);
    // Read by copy through the identity map (the image is in its ranges), a
    // page at a time; both hashes run over the same bytes.
    let (mut h0, mut h1) = (0xcbf2_9ce4_8422_2325u64, 0x6c62_272e_07bb_0142u64);
    let mut page = [0u8; 4096];
    let mut at = 0;
    while at < len {
        let n = (len - at).min(page.len() as u64) as usize;
        let chunk = &mut page[..n];
        if ram.read(image.start + at, chunk).is_err() {
            chunk.fill(0);
        }
        for &b in chunk.iter() {
            h0 = (h0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
            h1 = (h1 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        at += n as u64;
    }
    let mut id = [0u8; BUILD_ID_LEN];
    id[..8].copy_from_slice(&h0.to_le_bytes());
    id[8..].copy_from_slice(&h1.to_le_bytes());
    id
}

/// Kernel A's memory as it is now.
pub fn describe(boot: &BootInfo, frames: &FrameAllocator, descriptor: Range) -> Descriptor {
    let mut d = Descriptor::new();
    let image = boot.kernel_image();
    d.build_id = build_id(boot.ram(), image);
    let stack = stack();
    d.push(descriptor, RegionKind::Descriptor, 0);
    d.push(stack, RegionKind::Stack, 0);
    let image_range = Range {
        start: image.start,
        len: image.end - image.start,
    };
    push_minus(
        &mut d,
        image_range,
        &[stack, descriptor],
        RegionKind::KernelImage,
        1,
    );
    let arena = Range {
        start: ARENA_BASE,
        len: ARENA_LEN,
    };
    d.push(arena, RegionKind::Heap, 2);
    let pattern = Range {
        start: PATTERN_BASE,
        len: PATTERN_LEN,
    };
    d.push(pattern, RegionKind::Heap, 3);
    let reserved = Range {
        start: RECOVERY_BASE,
        len: RECOVERY_LEN,
    };
    let used = [pattern, reserved, arena, image_range];
    let mut untouched = [PhysRange::default(); 16];
    let n = frames.untouched(&mut untouched);
    for r in untouched.iter().take(n) {
        let r = Range {
            start: r.start,
            len: r.end - r.start,
        };
        push_minus(&mut d, r, &used, RegionKind::Free, 255);
    }
    // RAM above 4 GiB: kernel A's frames never go there.
    for r in boot
        .memory_map()
        .iter()
        .filter(|r| r.kind == MemoryKind::Ram)
    {
        let start = r.start.max(1 << 32);
        if start < r.end() {
            d.push(
                Range {
                    start,
                    len: r.end() - start,
                },
                RegionKind::Free,
                255,
            );
        }
    }
    d
}
