//! The panic path: record why and the CPU's registers, then jump to the
//! preloaded recovery kernel.
//!
//! No device I/O here, not even the serial port: a kernel that panicked cannot
//! trust its devices, and must not wait on them. Everything the jump needs (the
//! recovery kernel's entry, its start info, most of the crash note, the
//! descriptor of kernel A's memory) was prepared while the kernel was healthy;
//! the panic path only saves the registers, formats the message into memory,
//! encodes the note and jumps.

use core::fmt::{self, Write};
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use paranoid::phys::RamRegion;
use paranoid::sync::TryLock;
use paranoid::time::Clock;
use paranoid_boot::handoff;
use paranoid_boot::TscClock;
use paranoid_dump::{CpuState, Range, REASON_LEN};
use paranoid_recovery::descriptor::{Descriptor, DESCRIPTOR_LEN};
use paranoid_recovery::note::{CrashNote, NOTE_LEN};

/// Prepared state the panic path reads.
struct Prepared {
    note: CrashNote,
    clock: Option<TscClock>,
}

/// Written while healthy; the panic path takes it last. A panic while a
/// healthy-path update holds it (inside `update`'s closure) finds it taken:
/// the note keeps what was prepared and the jump goes ahead.
static PREPARED: TryLock<Prepared> = TryLock::new(Prepared {
    note: CrashNote::new(),
    clock: None,
});

/// The published descriptor, encoded (the recovery kernel finds it from the
/// note, by the address of this buffer inside kernel A's image).
static DESCRIPTOR: TryLock<[u8; DESCRIPTOR_LEN]> = TryLock::new([0; DESCRIPTOR_LEN]);

/// The crash note's page, claimed from the frame allocator while healthy.
static NOTE_PAGE: TryLock<Option<RamRegion>> = TryLock::new(None);

/// A value kernel A writes while healthy, for the debugger check: in the core
/// file, `x/gx &KERNEL_A_MARKER` must read back what the serial log printed.
#[no_mangle]
pub static KERNEL_A_MARKER: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Where the descriptor lives (inside kernel A's image).
pub fn descriptor_range() -> Range {
    Range {
        start: DESCRIPTOR.as_ptr() as u64,
        len: DESCRIPTOR_LEN as u64,
    }
}

/// Publishes `d` (and its place in the note): from now on a crash hands the
/// recovery kernel a map of kernel A's memory.
pub fn publish(d: &Descriptor) {
    // Single-threaded and outside the panic path: never found taken.
    let _ = DESCRIPTOR.with(|buf| d.encode(buf));
    update(|n| n.descriptor = descriptor_range());
}
static ENTRY: AtomicU32 = AtomicU32::new(0);
static START_INFO: AtomicU32 = AtomicU32::new(0);
static CRASH_POINT_SET: AtomicBool = AtomicBool::new(false);
static PANICKING: AtomicBool = AtomicBool::new(false);

/// Arms the panic path: the recovery kernel's entry and start info, the clock,
/// the note as known so far and the page it is written to at the crash
/// ([`crate::layout::CRASH_NOTE`], claimed by the caller).
pub fn arm(entry: u32, start_info: u32, clock: TscClock, note: CrashNote, page: RamRegion) {
    // Single-threaded, and the panic path is not running (it never returns,
    // so nothing runs after it): never found taken.
    let _ = PREPARED.with(|p| {
        p.note = note;
        p.clock = Some(clock);
    });
    let _ = NOTE_PAGE.with(|p| *p = Some(page));
    ENTRY.store(entry, Ordering::Release);
    START_INFO.store(start_info, Ordering::Release);
    paranoid_boot::set_panic_hook(on_panic);
}

/// Updates the note (more memory described, devices made live).
pub fn update(f: impl FnOnce(&mut CrashNote)) {
    // Single-threaded and outside the panic path (see `arm`).
    let _ = PREPARED.with(|p| f(&mut p.note));
}

/// Names the crash point about to be reached.
pub fn at(point: &str) {
    update(|n| n.set_point(point));
    CRASH_POINT_SET.store(true, Ordering::Release);
}

/// Formats into a fixed buffer, truncating.
struct Fixed {
    buf: [u8; REASON_LEN],
    len: usize,
}

impl Write for Fixed {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if let Some(slot) = self.buf.get_mut(self.len) {
                // One line: the report and the harness read the reason as such.
                *slot = if b == b'\n' { b' ' } else { b };
                self.len += 1;
            }
        }
        Ok(())
    }
}

fn on_panic(info: &PanicInfo<'_>) -> ! {
    leave(format_args!("{info}"))
}

/// A planned handoff (not a crash): the devices were shut down in order; record
/// why and pass control to the next kernel the same way.
pub fn hand_over(why: fmt::Arguments<'_>) -> ! {
    leave(why)
}

/// Writes the note and jumps to the preloaded kernel. No device I/O.
fn leave(why: fmt::Arguments<'_>) -> ! {
    // The next kernel expects interrupts off.
    paranoid::arch::x86_64::disable_interrupts();
    let entry = ENTRY.load(Ordering::Acquire);
    let start_info = START_INFO.load(Ordering::Acquire);
    // A panic inside this path: do not format again, just go.
    if !PANICKING.swap(true, Ordering::AcqRel) {
        // Single CPU, interrupts off, the only code running; the note and
        // clock were written before the hook was armed.
        let _ = PREPARED.with(|p| finish_note(p, why));
    }
    if entry == 0 {
        // Not armed yet: there is no recovery kernel to go to.
        paranoid_boot::exit(paranoid_boot::ExitCode::Failure)
    }
    // SAFETY: the recovery kernel was loaded and its start info written by
    // `arm`'s caller; kernel A needs nothing afterwards.
    unsafe { handoff::jump(entry, start_info) }
}

/// Completes the note (registers, reason, crash point, times) and writes it
/// to its page.
#[inline(always)]
fn finish_note(p: &mut Prepared, why: fmt::Arguments<'_>) {
    let (note, clock) = (&mut p.note, p.clock);
    note.cpu = capture();
    let mut reason = Fixed {
        buf: [0; REASON_LEN],
        len: 0,
    };
    let _ = reason.write_fmt(why);
    note.reason = reason.buf;
    if !CRASH_POINT_SET.load(Ordering::Acquire) {
        note.set_point("unplanned");
    }
    note.crash_ns = clock.map_or(0, |c| c.now_ns());
    note.crash_tsc = paranoid::arch::x86_64::rdtsc();
    let mut page = [0u8; NOTE_LEN];
    note.encode(&mut page);
    // CRASH_NOTE is a page of the reserved recovery region that kernel A
    // set aside for the note (layout.rs) and claimed for it.
    let _ = NOTE_PAGE.with(|p| p.as_mut().map(|ram| ram.copy_from_slice(0, &page)));
}

/// The CPU's registers here and now, in `user_regs_struct` order, and its
/// control registers (the HAL's one capture). No memory but the result, no
/// device.
#[inline(always)]
fn capture() -> CpuState {
    let r = paranoid::arch::x86_64::capture_registers();
    let mut state = CpuState::empty();
    state.regs = r.gp;
    [state.cr0, state.cr2, state.cr3, state.cr4] = r.cr;
    state.valid = true;
    state
}
