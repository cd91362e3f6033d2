//! Bench only: the compressor candidates of the dump, measured where the dump
//! runs.
//!
//! Kernel A loads this kernel in the recovery kernel's place (`-initrd
//! codec-bench`) and its panic path jumps to it the same way, so it sees the
//! same RAM the recovery kernel dumps (the ranges of the crash note). It reads
//! that RAM as the dump writer does, in chunks of the dump's default size,
//! gathers each chunk's non-zero pages (zero pages are recorded, never
//! compressed), and compresses them with each candidate in turn, chunk by
//! chunk (so a change of the host's load hits every candidate alike):
//!
//! - `lz4_flex` block format (what the dump ships, no allocation);
//! - `miniz_oxide` DEFLATE at level 1 (its fastest that compresses);
//! - `ruzstd` zstd at `CompressionLevel::Fastest` (its only compressing
//!   level).
//!
//! Each output is decompressed again and compared with the input (outside
//! the timing): a candidate that does not round-trip fails the run.
//! `miniz_oxide` and `ruzstd` need an allocator; this kernel has a bump heap
//! that is reset whenever every per-chunk allocation was freed. None of this
//! is in the recovery kernel: it ships `lz4_flex` alone (see the README for
//! the numbers and the choice).
//!
//! Result line: `PARANOID-RESULT test=recovery verdict=pass ram_bytes=N
//! nonzero_bytes=N chunks=N gather_ns=N` and per candidate `NAME_out=N
//! NAME_ns=N` (`lz4`, `deflate1`, `zstd1`).
#![no_std]
#![no_main]

extern crate alloc;

use core::alloc::{GlobalAlloc, Layout};
use core::fmt::{self, Write as _};
use core::sync::atomic::{AtomicUsize, Ordering};

use paranoid::time::Clock;
use paranoid_boot::result::{self, Fields, Text, Verdict};
use paranoid_boot::start_info::IDENTITY_LIMIT;
use paranoid_boot::{println, BootInfo, ExitCode};
use paranoid_dump::PAGE;
use paranoid_recovery::note::{CrashNote, NOTE_LEN};

paranoid_boot::entry!(main);

/// Memory per chunk: the dump's default (`chunk_kib=256`).
const CHUNK: usize = 256 * 1024;
/// Heap for the candidates' own allocations.
const HEAP: u64 = 16 << 20;
/// Output room per chunk (more than any candidate's worst case).
const OUT: usize = 2 * CHUNK + 64 * 1024;

/// A bump heap over frames of this kernel; freed memory is taken back when
/// the allocations since the last [`Bump::mark`] are all freed.
struct Bump {
    next: AtomicUsize,
    end: AtomicUsize,
    mark: AtomicUsize,
    live: AtomicUsize,
    marked_live: AtomicUsize,
}

impl Bump {
    /// Allocations up to now stay; later ones are taken back once all freed.
    fn mark(&self) {
        self.mark
            .store(self.next.load(Ordering::Relaxed), Ordering::Relaxed);
        self.marked_live
            .store(self.live.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

// SAFETY: `alloc` hands out disjoint ranges of the heap (a bump pointer, each
// range aligned as asked and inside `next..end`), never twice while live:
// the pointer goes back to the mark only when every allocation made since it
// was freed. One CPU, no interrupts: no allocation races another.
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let next = self.next.load(Ordering::Relaxed);
        let Some(at) = next.checked_next_multiple_of(layout.align()) else {
            return core::ptr::null_mut();
        };
        let Some(end) = at.checked_add(layout.size()) else {
            return core::ptr::null_mut();
        };
        if at == 0 || end > self.end.load(Ordering::Relaxed) {
            return core::ptr::null_mut();
        }
        self.next.store(end, Ordering::Relaxed);
        self.live.fetch_add(1, Ordering::Relaxed);
        at as *mut u8
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {
        let live = self.live.fetch_sub(1, Ordering::Relaxed) - 1;
        if live == self.marked_live.load(Ordering::Relaxed) {
            self.next
                .store(self.mark.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }
}

#[global_allocator]
static ALLOC: Bump = Bump {
    next: AtomicUsize::new(0),
    end: AtomicUsize::new(0),
    mark: AtomicUsize::new(0),
    live: AtomicUsize::new(0),
    marked_live: AtomicUsize::new(0),
};

fn main(boot: &'static BootInfo) -> ExitCode {
    println!("codec-bench: entered at {:#x}", boot.kernel_image().start);
    let (verdict, fields) = match run(boot) {
        Ok(fields) => (Verdict::Pass, fields),
        Err(why) => {
            let mut fields = Fields::new();
            fields.quoted("reason", why.0.as_str());
            (Verdict::Fail, fields)
        }
    };
    result::finish("recovery", verdict, &fields)
}

/// A failure, as text for the result line.
struct Why(paranoid::init::Note);

fn fail(step: &str, e: impl fmt::Debug) -> Why {
    Why(paranoid::init::Note::format(format_args!("{step}: {e:?}")))
}

/// One candidate's totals.
#[derive(Default, Clone, Copy)]
struct Totals {
    out: u64,
    ns: u64,
}

fn run(boot: &'static BootInfo) -> Result<Fields, Why> {
    let clock = boot.clock();
    let note = read_note(boot)?;
    let mut frames = boot
        .take_frames()
        .ok_or(fail("frames", "taken"))?
        .map_err(|e| fail("frames", e))?;
    let mut take = |bytes: u64| -> Result<&'static mut [u8], Why> {
        frames
            .alloc_bytes(bytes as usize, 4096)
            .map_err(|e| fail("frames", e))
    };
    let heap = take(HEAP)?;
    let start = heap.as_mut_ptr() as usize;
    ALLOC.next.store(start, Ordering::Relaxed);
    ALLOC.end.store(start + heap.len(), Ordering::Relaxed);
    let bounce = take(CHUNK as u64)?;
    let plain = take(CHUNK as u64)?;
    let out = take(OUT as u64)?;
    let back = take(CHUNK as u64)?;

    let flags = miniz_oxide::deflate::core::create_comp_flags_from_zip_params(1, -15, 0);
    let mut deflate =
        alloc::boxed::Box::new(miniz_oxide::deflate::core::CompressorOxide::new(flags));
    let mut inflate = alloc::boxed::Box::new(miniz_oxide::inflate::core::DecompressorOxide::new());
    ALLOC.mark();

    let (mut ram, mut nonzero, mut chunks, mut gather_ns) = (0u64, 0u64, 0u64, 0u64);
    let mut totals = [Totals::default(); 3];
    for r in note.ranges() {
        let end = r.start.saturating_add(r.len).min(IDENTITY_LIMIT);
        let mut at = r.start;
        while at < end {
            let len = ((end - at) as usize).min(CHUNK);
            let data = bounce.get_mut(..len).ok_or(fail("chunk", len))?;
            paranoid::phys::PhysRead::read(boot.ram(), at, data)
                .map_err(|e| fail("crashed memory", e))?;
            let t = clock.now_ns();
            let mut n = 0;
            for page in data.chunks(PAGE) {
                if page.iter().any(|&b| b != 0) {
                    plain
                        .get_mut(n..n + page.len())
                        .ok_or(fail("gather", n))?
                        .copy_from_slice(page);
                    n += page.len();
                }
            }
            gather_ns += clock.now_ns().saturating_sub(t);
            ram += len as u64;
            nonzero += n as u64;
            chunks += 1;
            at += len as u64;
            if n == 0 {
                continue;
            }
            let input = plain.get(..n).ok_or(fail("gather", n))?;
            for (i, total) in totals.iter_mut().enumerate() {
                let t = clock.now_ns();
                let stored = match i {
                    0 => lz4_flex::block::compress_into(input, out).map_err(|e| fail("lz4", e))?,
                    1 => {
                        deflate.reset();
                        let (status, used, written) = miniz_oxide::deflate::core::compress(
                            &mut deflate,
                            input,
                            out,
                            miniz_oxide::deflate::core::TDEFLFlush::Finish,
                        );
                        if status != miniz_oxide::deflate::core::TDEFLStatus::Done || used != n {
                            return Err(fail("deflate", status));
                        }
                        written
                    }
                    _ => {
                        let mut sink: &mut [u8] = &mut out[..];
                        let room = sink.len();
                        ruzstd::encoding::compress(
                            input,
                            &mut sink,
                            ruzstd::encoding::CompressionLevel::Fastest,
                        );
                        room - sink.len()
                    }
                };
                total.ns += clock.now_ns().saturating_sub(t);
                total.out += stored as u64;
                let packed = out.get(..stored).ok_or(fail("output", stored))?;
                let got = match i {
                    0 => lz4_flex::block::decompress_into(packed, back)
                        .map_err(|e| fail("lz4 decode", e))?,
                    1 => {
                        inflate.init();
                        let (status, _, written) = miniz_oxide::inflate::core::decompress(
                            &mut inflate,
                            packed,
                            back,
                            0,
                            miniz_oxide::inflate::core::inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
                        );
                        if status != miniz_oxide::inflate::TINFLStatus::Done {
                            return Err(fail("deflate decode", status));
                        }
                        written
                    }
                    _ => ruzstd::decoding::FrameDecoder::new()
                        .decode_all(packed, back)
                        .map_err(|e| fail("zstd decode", e))?,
                };
                if back.get(..got) != Some(input) {
                    return Err(fail("round trip", i));
                }
            }
        }
    }
    let mut fields = Fields::new();
    fields
        .add("ram_bytes", ram)
        .add("nonzero_bytes", nonzero)
        .add("chunks", chunks)
        .add("gather_ns", gather_ns);
    for (name, t) in ["lz4", "deflate1", "zstd1"].iter().zip(totals) {
        let (mut out, mut ns) = (Text::<32>::new(), Text::<32>::new());
        let _ = write!(out, "{name}_out");
        let _ = write!(ns, "{name}_ns");
        fields.add(out.as_str(), t.out).add(ns.as_str(), t.ns);
    }
    Ok(fields)
}

fn read_note(boot: &'static BootInfo) -> Result<CrashNote, Why> {
    let at = boot
        .cmdline()
        .get("crash_note")
        .ok_or(fail("crash note", "no crash_note="))?;
    let addr = u64::from_str_radix(at.trim_start_matches("0x"), 16)
        .map_err(|_| fail("crash note", "not hex"))?;
    if addr % 4096 != 0 || addr >= 1 << 32 {
        return Err(fail("crash note", "not a page below 4 GiB"));
    }
    let mut page = [0u8; NOTE_LEN];
    paranoid::phys::PhysRead::read(boot.ram(), addr, &mut page)
        .map_err(|e| fail("crash note", e))?;
    CrashNote::decode(&page).map_err(|e| fail("crash note", e))
}
