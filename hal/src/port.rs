//! x86 port I/O: one `in` or `out` per access.

use core::arch::asm;
use core::marker::PhantomData;

use crate::Untrusted;

/// Reads a byte from an I/O port.
///
/// # Safety
///
/// Reading `port` must have no side effect that breaks another owner of the port.
#[inline(always)]
pub unsafe fn inb(port: u16) -> u8 {
    let v: u8;
    // SAFETY: the caller owns `port`; `in` touches no memory.
    unsafe {
        asm!("in al, dx", in("dx") port, out("al") v, options(nomem, nostack, preserves_flags))
    };
    v
}

/// Reads a 16-bit word from an I/O port.
///
/// # Safety
///
/// As for [`inb`].
#[inline(always)]
pub unsafe fn inw(port: u16) -> u16 {
    let v: u16;
    // SAFETY: the caller owns `port`; `in` touches no memory.
    unsafe {
        asm!("in ax, dx", in("dx") port, out("ax") v, options(nomem, nostack, preserves_flags))
    };
    v
}

/// Reads a 32-bit word from an I/O port.
///
/// # Safety
///
/// As for [`inb`].
#[inline(always)]
pub unsafe fn inl(port: u16) -> u32 {
    let v: u32;
    // SAFETY: the caller owns `port`; `in` touches no memory.
    unsafe {
        asm!("in eax, dx", in("dx") port, out("eax") v, options(nomem, nostack, preserves_flags))
    };
    v
}

/// Writes a byte to an I/O port.
///
/// # Safety
///
/// The caller must own `port`, and the write must not break memory safety (a DMA
/// engine programmed through it, say).
#[inline(always)]
pub unsafe fn outb(port: u16, value: u8) {
    // SAFETY: the caller owns `port` and vouches for the effect of the write.
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags))
    };
}

/// Writes a 16-bit word to an I/O port.
///
/// # Safety
///
/// As for [`outb`].
#[inline(always)]
pub unsafe fn outw(port: u16, value: u16) {
    // SAFETY: the caller owns `port` and vouches for the effect of the write.
    unsafe {
        asm!("out dx, ax", in("dx") port, in("ax") value, options(nomem, nostack, preserves_flags))
    };
}

/// Writes a 32-bit word to an I/O port.
///
/// # Safety
///
/// As for [`outb`].
#[inline(always)]
pub unsafe fn outl(port: u16, value: u32) {
    // SAFETY: the caller owns `port` and vouches for the effect of the write.
    unsafe {
        asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags))
    };
}

/// Widths of port access.
pub trait PortWidth: Copy + sealed::Sealed {
    /// Reads this width from `port`.
    ///
    /// # Safety
    ///
    /// As for [`inb`].
    unsafe fn read_port(port: u16) -> Self;
    /// Writes this width to `port`.
    ///
    /// # Safety
    ///
    /// As for [`outb`].
    unsafe fn write_port(port: u16, value: Self);
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for u8 {}
    impl Sealed for u16 {}
    impl Sealed for u32 {}
}

macro_rules! port_width {
    ($t:ty, $in:ident, $out:ident) => {
        impl PortWidth for $t {
            #[inline(always)]
            unsafe fn read_port(port: u16) -> Self {
                // SAFETY: forwarded contract of `read_port`.
                unsafe { $in(port) }
            }
            #[inline(always)]
            unsafe fn write_port(port: u16, value: Self) {
                // SAFETY: forwarded contract of `write_port`.
                unsafe { $out(port, value) }
            }
        }
    };
}
port_width!(u8, inb, outb);
port_width!(u16, inw, outw);
port_width!(u32, inl, outl);

/// An owned I/O port of one width; reads are untrusted.
#[derive(Debug)]
pub struct Port<T: PortWidth> {
    port: u16,
    _width: PhantomData<T>,
}

impl<T: PortWidth> Port<T> {
    /// Claims `port`.
    ///
    /// # Safety
    ///
    /// The caller must own the port exclusively, and writes to it must not break
    /// memory safety.
    pub const unsafe fn new(port: u16) -> Self {
        Self {
            port,
            _width: PhantomData,
        }
    }

    /// Reads the port.
    #[inline(always)]
    pub fn read(&mut self) -> Untrusted<T> {
        // SAFETY: `new`'s contract: we own the port.
        Untrusted::new(unsafe { T::read_port(self.port) })
    }

    /// Writes the port.
    #[inline(always)]
    pub fn write(&mut self, value: T) {
        // SAFETY: `new`'s contract: we own the port and its writes are sound.
        unsafe { T::write_port(self.port, value) }
    }
}
