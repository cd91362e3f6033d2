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

/// A legacy device's I/O ports (`start..end`) that [`Port::inert`] hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InertRange {
    /// First port.
    pub start: u16,
    /// One past the last port.
    pub end: u16,
    /// The device.
    pub device: &'static str,
}

/// The legacy devices whose ports [`Port::inert`] claims without a contract:
/// each is an ISA device with no path to memory (it cannot master the bus or
/// decode memory), so nothing written to it can break memory safety.
pub const INERT: [InertRange; 7] = [
    InertRange {
        start: 0x40,
        end: 0x44,
        device: "8254 PIT (counters 0-2, mode)",
    },
    InertRange {
        start: 0x61,
        end: 0x62,
        device: "system control port B (PIT gate, speaker, NMI status)",
    },
    InertRange {
        start: 0xf0,
        end: 0x100,
        device: "x87 error ports; QEMU's isa-debug-exit at 0xf4",
    },
    InertRange {
        start: 0x2e8,
        end: 0x2f0,
        device: "16550 UART COM4",
    },
    InertRange {
        start: 0x2f8,
        end: 0x300,
        device: "16550 UART COM2",
    },
    InertRange {
        start: 0x3e8,
        end: 0x3f0,
        device: "16550 UART COM3",
    },
    InertRange {
        start: 0x3f8,
        end: 0x400,
        device: "16550 UART COM1",
    },
];

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

    /// Claims `port` when it belongs to a legacy device that has no path to
    /// memory ([`INERT`]): no DMA, no bus mastering, no memory decode. Any
    /// access to such a port is memory-safe whoever else uses it (a second
    /// user can only disturb the device, never memory), so no contract is
    /// needed. `None` for any other port, or when the access would run past
    /// the end of the device's range.
    ///
    /// # Examples
    ///
    /// ```
    /// use paranoid::port::Port;
    ///
    /// assert!(Port::<u8>::inert(0x3f8 + 7).is_some(), "COM1 scratch register");
    /// assert!(Port::<u32>::inert(0xcf8).is_none(), "PCI configuration address");
    /// assert!(Port::<u32>::inert(0x3fe).is_none(), "runs past COM1");
    /// ```
    pub fn inert(port: u16) -> Option<Self> {
        let end = u32::from(port) + core::mem::size_of::<T>() as u32;
        INERT
            .iter()
            .any(|r| u32::from(r.start) <= u32::from(port) && end <= u32::from(r.end))
            // SAFETY: `port..end` lies inside one device of `INERT`, none of
            // which can reach memory: accessing it cannot break memory safety,
            // which is all `new` asks beyond ownership (an inert port's other
            // users can only see the device disturbed).
            .then(|| unsafe { Self::new(port) })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inert_claims_only_whole_accesses_inside_a_listed_device() {
        assert!(Port::<u8>::inert(0x40).is_some());
        assert!(Port::<u8>::inert(0x43).is_some());
        assert!(Port::<u16>::inert(0x43).is_none(), "runs past the PIT");
        assert!(Port::<u8>::inert(0x44).is_none());
        assert!(Port::<u8>::inert(0x61).is_some());
        assert!(Port::<u16>::inert(0x61).is_none());
        assert!(Port::<u32>::inert(0xf4).is_some(), "debug-exit");
        assert!(Port::<u32>::inert(0xfd).is_none(), "runs past 0xff");
        assert!(Port::<u8>::inert(0x3ff).is_some());
        assert!(Port::<u8>::inert(0x400).is_none());
        assert!(Port::<u8>::inert(u16::MAX).is_none());
        for dma in [0x00u16, 0x0d, 0x80, 0x87, 0xc0, 0xcf8, 0xcfc] {
            assert!(
                Port::<u8>::inert(dma).is_none(),
                "{dma:#x} can reach memory"
            );
        }
    }

    #[test]
    fn inert_ranges_are_sorted_and_disjoint() {
        for w in INERT.windows(2) {
            assert!(w[0].start < w[0].end && w[0].end <= w[1].start, "{w:?}");
        }
    }
}
