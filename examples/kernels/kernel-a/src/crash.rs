//! The panic path: record why and the CPU's registers, then jump to the
//! preloaded recovery kernel.
//!
//! No device I/O here, not even the serial port: a kernel that panicked cannot
//! trust its devices, and must not wait on them. Everything the jump needs (the
//! recovery kernel's entry, its start info, most of the crash note, the
//! descriptor of kernel A's memory) was prepared while the kernel was healthy;
//! the panic path only saves the registers, formats the message into memory,
//! encodes the note and jumps.

use core::cell::UnsafeCell;
use core::fmt::{self, Write};
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use paranoid::time::Clock;
use paranoid_boot::handoff;
use paranoid_boot::TscClock;
use paranoid_dump::{CpuState, Range, REASON_LEN};
use paranoid_recovery::descriptor::{Descriptor, DESCRIPTOR_LEN};
use paranoid_recovery::note::{CrashNote, NOTE_LEN};

use crate::layout::CRASH_NOTE;

/// Prepared state the panic path reads.
struct Prepared {
    note: UnsafeCell<CrashNote>,
    clock: UnsafeCell<Option<TscClock>>,
    /// The published descriptor, encoded (the recovery kernel finds it from the
    /// note).
    descriptor: UnsafeCell<[u8; DESCRIPTOR_LEN]>,
}

// SAFETY: kernel A is single-threaded; `Prepared` is written while healthy and
// read by the panic path on the same CPU afterwards.
unsafe impl Sync for Prepared {}

static PREPARED: Prepared = Prepared {
    note: UnsafeCell::new(CrashNote::new()),
    clock: UnsafeCell::new(None),
    descriptor: UnsafeCell::new([0; DESCRIPTOR_LEN]),
};

/// A value kernel A writes while healthy, for the debugger check: in the core
/// file, `x/gx &KERNEL_A_MARKER` must read back what the serial log printed.
#[no_mangle]
pub static KERNEL_A_MARKER: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Where the descriptor lives (inside kernel A's image).
pub fn descriptor_range() -> Range {
    Range {
        start: PREPARED.descriptor.get() as u64,
        len: DESCRIPTOR_LEN as u64,
    }
}

/// Publishes `d` (and its place in the note): from now on a crash hands the
/// recovery kernel a map of kernel A's memory.
pub fn publish(d: &Descriptor) {
    // SAFETY: single-threaded and outside the panic path (see `arm`); no
    // reference to the buffer outlives this call.
    d.encode(unsafe { &mut *PREPARED.descriptor.get() });
    update(|n| n.descriptor = descriptor_range());
}
static ENTRY: AtomicU32 = AtomicU32::new(0);
static START_INFO: AtomicU32 = AtomicU32::new(0);
static CRASH_POINT_SET: AtomicBool = AtomicBool::new(false);
static PANICKING: AtomicBool = AtomicBool::new(false);

/// Arms the panic path: the recovery kernel's entry and start info, the clock,
/// and the note as known so far.
pub fn arm(entry: u32, start_info: u32, clock: TscClock, note: CrashNote) {
    // SAFETY: single-threaded, and the panic path is not running (it never
    // returns, so nothing runs after it).
    unsafe {
        *PREPARED.note.get() = note;
        *PREPARED.clock.get() = Some(clock);
    }
    ENTRY.store(entry, Ordering::Release);
    START_INFO.store(start_info, Ordering::Release);
    paranoid_boot::set_panic_hook(on_panic);
}

/// Updates the note (more memory described, devices made live).
pub fn update(f: impl FnOnce(&mut CrashNote)) {
    // SAFETY: single-threaded and outside the panic path (see `arm`).
    f(unsafe { &mut *PREPARED.note.get() });
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
        // SAFETY: single CPU, interrupts off, the only code running; the note and
        // clock were written before the hook was armed.
        let (note, clock) = unsafe { (&mut *PREPARED.note.get(), *PREPARED.clock.get()) };
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
        // SAFETY: CRASH_NOTE is a page of the reserved recovery region that kernel
        // A set aside for the note (layout.rs); nothing else uses it.
        unsafe { core::ptr::copy_nonoverlapping(page.as_ptr(), CRASH_NOTE as *mut u8, NOTE_LEN) };
    }
    if entry == 0 {
        // Not armed yet: there is no recovery kernel to go to.
        paranoid_boot::exit(paranoid_boot::ExitCode::Failure)
    }
    // SAFETY: the recovery kernel was loaded and its start info written by
    // `arm`'s caller; kernel A needs nothing afterwards.
    unsafe { handoff::jump(entry, start_info) }
}

/// The CPU's registers here and now, in `user_regs_struct` order, and its
/// control registers. Reads registers only: no memory but `state`, no device.
#[inline(always)]
fn capture() -> CpuState {
    let mut state = CpuState::empty();
    let regs = state.regs.as_mut_ptr();
    let mut cr = [0u64; 4];
    // SAFETY:
    // - the stores go to `state.regs` (27 words; offsets 0..=26 * 8 below) and
    //   `cr` (4 words), both live locals;
    // - pushfq/pop leave the stack as they found it; nothing else is written;
    // - moves from segment and control registers have no side effects at CPL 0.
    unsafe {
        core::arch::asm!(
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
            r = in(reg) regs,
            c = in(reg) cr.as_mut_ptr(),
            t = out(reg) _,
        );
    }
    [state.cr0, state.cr2, state.cr3, state.cr4] = cr;
    state.valid = true;
    state
}
