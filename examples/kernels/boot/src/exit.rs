//! Leaving QEMU with a status: the `isa-debug-exit` device.
//!
//! With `-device isa-debug-exit,iobase=0xf4,iosize=0x04`, writing `v` to port
//! 0xF4 ends QEMU with exit status `(v << 1) | 1`. A triple fault under
//! `-no-reboot` ends it with status 0, so the harness requires the expected
//! status *and* a result line on serial.

use paranoid::port::Port;

/// The debug-exit port.
pub const DEBUG_EXIT_PORT: u16 = 0xf4;

/// What a kernel reports through debug-exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitCode {
    /// Everything the kernel checked passed: QEMU exits with status 33.
    Success = 0x10,
    /// Something failed (a check, a boot step, a panic): QEMU exits with status 35.
    Failure = 0x11,
}

impl ExitCode {
    /// The QEMU process exit status this code produces.
    pub const fn qemu_status(self) -> i32 {
        ((self as i32) << 1) | 1
    }
}

/// Ends the VM with `code`.
///
/// Without a debug-exit device (real hardware), the CPU halts with interrupts
/// off: the end state of a kernel that has nothing left to do.
pub fn exit(code: ExitCode) -> ! {
    exit_raw(code as u32)
}

/// Ends the VM with a raw debug-exit value (QEMU status `(value << 1) | 1`).
pub fn exit_raw(value: u32) -> ! {
    // Port 0xF4 is the debug-exit device in every VM the harness starts (an
    // inert port to the HAL: it cannot reach memory); on a machine without
    // it the write goes nowhere.
    if let Some(mut port) = Port::<u32>::inert(DEBUG_EXIT_PORT) {
        // paranoid:allow(device_io_in_panic_path): isa-debug-exit is how a test kernel reports its result (and a panic) to the harness; it has no state to corrupt
        port.write(value);
    }
    halt()
}

/// Stops the CPU: interrupts off, then `hlt` forever.
pub fn halt() -> ! {
    paranoid::arch::x86_64::halt()
}
