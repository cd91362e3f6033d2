//! COM1 output (16550 UART at port 0x3F8), behind [`print!`](crate::print) and
//! [`println!`](crate::println).
//!
//! The kernels are single-threaded and run with interrupts off, so the writer
//! needs no lock: each byte is one `out` after a bounded wait for the transmit
//! holding register (LSR.THRE). QEMU's UART is always ready; on a wedged or
//! missing UART the wait gives up after [`THRE_SPINS`] reads and the byte is
//! written anyway (output may be lost; the kernel never hangs on it).

use core::fmt;

use paranoid::port::Port;

/// COM1 base port.
pub const COM1: u16 = 0x3f8;

/// Register offsets from the base (16550 datasheet, "Register summary").
mod reg {
    /// Transmit holding register (DLAB = 0) / divisor latch low (DLAB = 1).
    pub const THR_DLL: u16 = 0;
    /// Interrupt enable (DLAB = 0) / divisor latch high (DLAB = 1).
    pub const IER_DLM: u16 = 1;
    /// FIFO control (write).
    pub const FCR: u16 = 2;
    /// Line control: word length, DLAB.
    pub const LCR: u16 = 3;
    /// Modem control.
    pub const MCR: u16 = 4;
    /// Line status.
    pub const LSR: u16 = 5;
}

/// LSR.THRE (bit 5): the transmit holding register is empty.
const LSR_THRE_BIT: u32 = 5;

/// How many LSR reads to wait for THRE before writing anyway.
pub const THRE_SPINS: u32 = 100_000;

/// Programs COM1 for 115200 baud, 8 data bits, no parity, 1 stop bit, FIFOs on,
/// interrupts off.
///
/// Not a `#[paranoid_init]`: the test kernels' boot console, not a device
/// taken over (fixed 16550 programming; writes to an absent UART go nowhere).
pub fn init() {
    out(reg::IER_DLM, 0x00);
    out(reg::LCR, 0x80); // DLAB on
    out(reg::THR_DLL, 0x01); // divisor 1: 115200 baud
    out(reg::IER_DLM, 0x00);
    out(reg::LCR, 0x03); // 8N1, DLAB off
    out(reg::FCR, 0xc7); // FIFO on, cleared, 14-byte threshold
    out(reg::MCR, 0x03); // DTR, RTS
}

/// Writes one byte, waiting a bounded time for room in the transmitter.
pub fn write_byte(byte: u8) {
    if let Some(mut lsr) = Port::<u8>::inert(COM1 + reg::LSR) {
        for _ in 0..THRE_SPINS {
            if lsr.read().bit(LSR_THRE_BIT) {
                break;
            }
            core::hint::spin_loop();
        }
    }
    out(reg::THR_DLL, byte);
}

/// Writes `value` to the UART register at `offset`: a port of COM1, which
/// the HAL hands out as [`Port::inert`] (a UART cannot reach memory).
fn out(offset: u16, value: u8) {
    if let Some(mut port) = Port::<u8>::inert(COM1 + offset) {
        port.write(value);
    }
}

/// A [`fmt::Write`] over COM1; `\n` becomes `\r\n`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Serial;

impl fmt::Write for Serial {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                write_byte(b'\r');
            }
            write_byte(b);
        }
        Ok(())
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    // Serial never fails; a formatting error of a user's Display impl is dropped.
    let _ = fmt::Write::write_fmt(&mut Serial, args);
}

/// Prints to COM1.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::serial::_print(format_args!($($arg)*)) };
}

/// Prints to COM1, with a newline.
#[macro_export]
macro_rules! println {
    () => { $crate::serial::_print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::serial::_print(format_args!("{}\n", format_args!($($arg)*))) };
}
