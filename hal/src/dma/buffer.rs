//! DMA buffers typed by direction and branded by window, carved from an arena of
//! memory that the platform maps into the window.

use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{fence, Ordering};

use volatile::VolatilePtr;

use super::{DmaError, Iova, IovaAllocator, Window, WindowMapping};
use crate::phys::RamRegion;
use crate::Untrusted;

/// Who writes a buffer.
pub trait Direction: sealed::Sealed + 'static {
    /// Name used in reports.
    const NAME: &'static str;
}
/// Directions in which the CPU writes and the device reads.
pub trait CpuWrites: Direction {}
/// Directions in which the device writes and the CPU reads (untrusted).
pub trait DeviceWrites: Direction {}

mod sealed {
    pub trait Sealed {}
}

/// The CPU fills it, the device reads it (TX frames, submission queues, write data).
#[derive(Debug)]
pub enum ToDevice {}
/// The device fills it, the CPU reads it (RX frames, completion queues, read data).
#[derive(Debug)]
pub enum FromDevice {}
/// Both sides write (descriptor rings with write-back).
#[derive(Debug)]
pub enum Bidirectional {}

impl sealed::Sealed for ToDevice {}
impl sealed::Sealed for FromDevice {}
impl sealed::Sealed for Bidirectional {}
impl Direction for ToDevice {
    const NAME: &'static str = "to-device";
}
impl Direction for FromDevice {
    const NAME: &'static str = "from-device";
}
impl Direction for Bidirectional {
    const NAME: &'static str = "bidirectional";
}
impl CpuWrites for ToDevice {}
impl CpuWrites for Bidirectional {}
impl DeviceWrites for FromDevice {}
impl DeviceWrites for Bidirectional {}

/// Memory that backs window `W`: a physically contiguous region mapped at the
/// window's base (by the IOMMU, or 1:1 without one), and the allocator for it.
///
/// Built from the [`WindowMapping<W>`] the mapping step returned, so the
/// physical address the device reaches and the memory the CPU fills are one
/// value, never two that a comment says agree.
///
/// # Invariants
///
/// `cpu..cpu + len` is memory the arena owns, device-visible at
/// `W::BASE..W::BASE + len` (IOVA) and `phys..phys + len` (physical).
pub struct DmaArena<W: Window, const N: usize = 256> {
    cpu: NonNull<u8>,
    phys: u64,
    len: u64,
    iovas: IovaAllocator<W, N>,
    /// The RAM the arena was made from, held so nothing else can own it
    /// (given back by [`DmaArena::into_ram`] once no buffer is live).
    ram: Option<RamRegion>,
}

impl<W: Window, const N: usize> DmaArena<W, N> {
    /// The arena over `ram`, which `mapping` makes device-visible in `W`; a
    /// kernel's way, with no `unsafe` of its own: `ram`'s owner claimed the
    /// memory once (a frame allocator), the translator vouched for the
    /// mapping.
    ///
    /// # Errors
    ///
    /// [`DmaError::BadRequest`] when `ram` is not the memory behind `mapping`
    /// (another start, or shorter than the mapping).
    ///
    /// # Examples
    ///
    /// The window type travels from the mapping into the arena: a mapping of
    /// one window cannot back another's arena.
    ///
    /// ```compile_fail,E0308
    /// use paranoid::dma::{DmaArena, Window, WindowMapping};
    /// use paranoid::phys::RamRegion;
    /// struct Normal;
    /// impl Window for Normal { const NAME: &'static str = "normal"; const BASE: u64 = 0x1000_0000; const SIZE: u64 = 0x10_0000; }
    /// struct Recovery;
    /// impl Window for Recovery { const NAME: &'static str = "recovery"; const BASE: u64 = 0x7f_fff0_0000; const SIZE: u64 = 0x10_0000; }
    /// fn arena(m: WindowMapping<Normal>, ram: RamRegion) -> DmaArena<Recovery> {
    ///     DmaArena::new(m, ram).unwrap()
    /// }
    /// ```
    pub fn new(mapping: WindowMapping<W>, ram: RamRegion) -> Result<Self, DmaError> {
        let bad = DmaError::BadRequest {
            size: ram.len(),
            align: mapping.len(),
        };
        if ram.start() != mapping.phys() || ram.len() < mapping.len() {
            return Err(bad);
        }
        let cpu = usize::try_from(ram.start())
            .ok()
            .and_then(|a| NonNull::new(a as *mut u8))
            .ok_or(bad)?;
        Ok(Self {
            cpu,
            phys: mapping.phys(),
            len: mapping.len(),
            iovas: IovaAllocator::new(),
            ram: Some(ram),
        })
    }

    /// The arena over `mapping`'s memory, seen by the CPU at `cpu`: for
    /// memory the CPU does not reach at its physical address (host tests,
    /// simulated memory).
    ///
    /// # Safety
    ///
    /// `cpu..cpu + mapping.len()` must be the CPU's view of physical
    /// `mapping.phys()..`: valid, writable memory, page-aligned, owned by the
    /// arena for its lifetime and never referenced by Rust references. (That
    /// devices reach it is what `mapping` already vouches for.)
    pub unsafe fn from_raw(cpu: NonNull<u8>, mapping: WindowMapping<W>) -> Self {
        Self {
            cpu,
            phys: mapping.phys(),
            len: mapping.len(),
            iovas: IovaAllocator::new(),
            ram: None,
        }
    }

    /// The physical address backing the window's base.
    pub fn phys_base(&self) -> u64 {
        self.phys
    }

    /// Bytes of window backed by memory.
    pub fn backed_len(&self) -> u64 {
        self.len
    }

    /// Allocates a zeroed buffer of `size` bytes aligned to `align`.
    ///
    /// # Errors
    ///
    /// Allocator errors ([`DmaError::Exhausted`], ...), also when the range lies
    /// past the memory backing the window.
    pub fn alloc<D: Direction>(
        &mut self,
        size: usize,
        align: usize,
    ) -> Result<DmaBuffer<W, D>, DmaError> {
        let (iova, len) = self.iovas.alloc(size as u64, align as u64)?;
        let offset = iova.get() - W::BASE;
        if offset + len > self.len {
            self.iovas.free(iova.get(), len)?;
            return Err(DmaError::Exhausted {
                requested: size as u64,
            });
        }
        let Ok(offset_usize) = usize::try_from(offset) else {
            self.iovas.free(iova.get(), len)?;
            return Err(DmaError::Exhausted {
                requested: size as u64,
            });
        };
        // The range is inside the arena (checked above): the pointer stays in bounds.
        let cpu = self.cpu.as_ptr().wrapping_add(offset_usize);
        let len_usize = len as usize;
        // SAFETY:
        // - `cpu..cpu + len` is inside the arena's memory (offset + len ≤ self.len);
        // - the allocator just handed out this range, so no other buffer covers it;
        // - a fresh allocation is not yet visible to any device.
        unsafe { core::ptr::write_bytes(cpu, 0, len_usize) };
        Ok(DmaBuffer {
            cpu: NonNull::new(cpu).ok_or(DmaError::Exhausted {
                requested: size as u64,
            })?,
            iova,
            phys: self.phys + offset,
            reserved: len_usize,
            len: size,
            _dir: PhantomData,
        })
    }

    /// Returns a buffer to the arena.
    ///
    /// The caller must have stopped the device from using it (the type system
    /// cannot see device state): free after the queue is disabled or reset.
    ///
    /// # Errors
    ///
    /// [`DmaError::NotAllocated`] if the buffer did not come from this arena
    /// (another arena's buffer at the same IOVA is refused too: its memory
    /// is not this arena's, so [`live`](Self::live) counts only this arena's
    /// buffers, which [`into_ram`](Self::into_ram) relies on).
    pub fn free<D: Direction>(&mut self, buffer: DmaBuffer<W, D>) -> Result<(), DmaError> {
        let (iova, len) = (buffer.iova.get(), buffer.reserved as u64);
        let offset = iova.wrapping_sub(W::BASE);
        let ours = usize::try_from(offset).is_ok_and(|o| {
            buffer.phys == self.phys.wrapping_add(offset)
                && buffer.cpu.as_ptr() == self.cpu.as_ptr().wrapping_add(o)
        });
        if !ours {
            return Err(DmaError::NotAllocated { iova, len });
        }
        self.iovas.free(iova, len)
    }

    /// Live buffers.
    pub fn live(&self) -> usize {
        self.iovas.live()
    }

    /// The arena's RAM back, for another arena over the same memory (a probe
    /// that identifies devices, then the arena the devices keep), once every
    /// buffer came back through [`free`](Self::free): no buffer of this
    /// arena can reach the memory any more.
    ///
    /// Devices must not DMA into it either: give the buffers back after the
    /// device is disabled or fenced.
    ///
    /// # Errors
    ///
    /// The arena back (`Err(self)`) while buffers are live, or when it owns
    /// no [`RamRegion`] (made with [`from_raw`](Self::from_raw)).
    pub fn into_ram(self) -> Result<RamRegion, Self> {
        if self.live() != 0 {
            return Err(self);
        }
        let Self {
            cpu,
            phys,
            len,
            iovas,
            ram,
        } = self;
        ram.ok_or(Self {
            cpu,
            phys,
            len,
            iovas,
            ram: None,
        })
    }
}

/// A DMA buffer in window `W` that direction `D` says who writes.
///
/// All access is through raw pointers (volatile for elements), because the device
/// may write the memory at any time. Reads of device-written buffers come back
/// [`Untrusted`].
pub struct DmaBuffer<W: Window, D: Direction> {
    cpu: NonNull<u8>,
    iova: Iova<W>,
    phys: u64,
    /// Bytes reserved (page multiple).
    reserved: usize,
    /// Bytes asked for.
    len: usize,
    _dir: PhantomData<fn() -> D>,
}

// SAFETY: the buffer owns its memory range exclusively; moving it moves ownership.
unsafe impl<W: Window, D: Direction> Send for DmaBuffer<W, D> {}

impl<W: Window, D: Direction> DmaBuffer<W, D> {
    /// The device-visible address, for descriptors and registers.
    pub fn iova(&self) -> Iova<W> {
        self.iova
    }

    /// The physical address (what an IOMMU maps the IOVA to).
    pub fn phys(&self) -> u64 {
        self.phys
    }

    /// Usable size in bytes (as requested).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a zero-length buffer (never produced by [`DmaArena::alloc`]).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check<T>(&self, offset: usize, count: usize) -> Result<*mut T, DmaError> {
        let bytes = size_of::<T>()
            .checked_mul(count)
            .ok_or(DmaError::OutOfBounds {
                offset,
                len: usize::MAX,
                size: self.len,
            })?;
        match offset.checked_add(bytes) {
            Some(end) if end <= self.len => {}
            _ => {
                return Err(DmaError::OutOfBounds {
                    offset,
                    len: bytes,
                    size: self.len,
                })
            }
        }
        if offset % align_of::<T>() != 0 {
            return Err(DmaError::MisalignedAccess { offset });
        }
        // In bounds by the check above.
        Ok(self.cpu.as_ptr().wrapping_add(offset).cast())
    }

    /// A volatile view of the `T` at byte `offset`, for descriptor and queue
    /// entries the device also touches.
    ///
    /// # Errors
    ///
    /// [`DmaError::OutOfBounds`] or [`DmaError::MisalignedAccess`].
    pub fn view<T: Copy>(&mut self, offset: usize) -> Result<VolatilePtr<'_, T>, DmaError> {
        let p = self.check::<T>(offset, 1)?;
        // SAFETY:
        // - `check` keeps `p` inside the buffer and aligned for `T`;
        // - the buffer owns the memory and `&mut self` makes this view exclusive on
        //   the CPU side; the device side is why the access is volatile.
        Ok(unsafe { VolatilePtr::new(NonNull::new_unchecked(p)) })
    }
}

impl<W: Window, D: CpuWrites> DmaBuffer<W, D> {
    /// Writes `value` at byte `offset` (one volatile store).
    ///
    /// # Errors
    ///
    /// [`DmaError::OutOfBounds`] or [`DmaError::MisalignedAccess`].
    pub fn write<T: Copy>(&mut self, offset: usize, value: T) -> Result<(), DmaError> {
        self.view::<T>(offset)?.write(value);
        Ok(())
    }

    /// Copies `data` in at byte `offset`, then orders the copy before any later
    /// doorbell write.
    ///
    /// # Errors
    ///
    /// [`DmaError::OutOfBounds`].
    pub fn write_bytes(&mut self, offset: usize, data: &[u8]) -> Result<(), DmaError> {
        let p = self.check::<u8>(offset, data.len())?;
        // SAFETY: `check` keeps `p..p + data.len()` inside the buffer, which we own;
        // `data` is ordinary memory and cannot overlap DMA memory we own.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), p, data.len()) };
        fence(Ordering::Release);
        Ok(())
    }
}

impl<W: Window, D: DeviceWrites> DmaBuffer<W, D> {
    /// Reads the `T` at byte `offset` (one volatile load); the device wrote it.
    ///
    /// # Errors
    ///
    /// [`DmaError::OutOfBounds`] or [`DmaError::MisalignedAccess`].
    pub fn read<T: Copy>(&mut self, offset: usize) -> Result<Untrusted<T>, DmaError> {
        Ok(Untrusted::new(self.view::<T>(offset)?.read()))
    }

    /// Copies bytes out at `offset` into `out`, after ordering against the
    /// completion that announced them.
    ///
    /// The bytes are data, not control: they are returned as plain bytes because
    /// the device cannot make us index with them unless the caller parses them.
    ///
    /// # Errors
    ///
    /// [`DmaError::OutOfBounds`].
    pub fn read_bytes(&mut self, offset: usize, out: &mut [u8]) -> Result<(), DmaError> {
        let p = self.check::<u8>(offset, out.len())?;
        fence(Ordering::Acquire);
        // SAFETY: `check` keeps the range inside the buffer, which we own; `out` is
        // ordinary memory disjoint from it.
        unsafe { core::ptr::copy_nonoverlapping(p, out.as_mut_ptr(), out.len()) };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct W;
    impl Window for W {
        const NAME: &'static str = "test";
        const BASE: u64 = 0x4000_0000;
        const SIZE: u64 = 0x4000;
    }

    #[repr(C, align(4096))]
    struct Pages([u8; 0x4000]);

    #[test]
    fn directions_bounds_and_brand() {
        let mut mem = Box::new(Pages([0xaa; 0x4000]));
        let cpu = NonNull::new(mem.0.as_mut_ptr()).unwrap();
        let mapping = WindowMapping::<W>::identity(W::BASE, 0x4000).unwrap();
        // SAFETY: `mem` outlives the arena and is only used through it.
        let mut arena = unsafe { DmaArena::<W, 4>::from_raw(cpu, mapping) };
        let mut tx = arena.alloc::<ToDevice>(100, 64).unwrap();
        assert_eq!(tx.iova().get(), 0x4000_0000);
        assert_eq!(tx.phys(), W::BASE);
        tx.write(4, 0xdead_beefu32).unwrap();
        assert_eq!(
            tx.write(100, 1u8),
            Err(DmaError::OutOfBounds {
                offset: 100,
                len: 1,
                size: 100
            })
        );
        assert_eq!(
            tx.write(2, 1u32),
            Err(DmaError::MisalignedAccess { offset: 2 })
        );
        assert_eq!(
            tx.write_bytes(usize::MAX, &[1]),
            Err(DmaError::OutOfBounds {
                offset: usize::MAX,
                len: 1,
                size: 100
            })
        );
        let mut rx = arena.alloc::<FromDevice>(8, 1).unwrap();
        assert_eq!(
            rx.read::<u64>(0).unwrap().into_raw_for_report(),
            0,
            "fresh buffers are zeroed"
        );
        arena.alloc::<Bidirectional>(0x2000, 1).unwrap();
        assert!(matches!(
            arena.alloc::<ToDevice>(0x1000, 1),
            Err(DmaError::Exhausted { .. })
        ));
        assert_eq!(arena.live(), 3);
        arena.free(tx).unwrap();
        assert_eq!(arena.live(), 2);
    }

    /// Maps whatever it is asked to; no device sees its mappings.
    struct Untranslated;

    // SAFETY: a test translator for arenas no device is given: there is no
    // DMA whose target could differ from `phys`.
    unsafe impl super::super::MapWindow for Untranslated {
        type Error = core::convert::Infallible;
        fn map_range(
            &mut self,
            _: u64,
            _: u64,
            _: u64,
            _: crate::time::Deadline,
        ) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    struct Still;
    impl crate::time::Clock for Still {
        fn now_ns(&self) -> u64 {
            0
        }
    }

    #[test]
    fn ram_comes_back_only_when_every_buffer_did() {
        let mut owned = Box::new(Pages([0; 0x4000]));
        let at = owned.0.as_mut_ptr() as u64;
        let deadline = crate::time::Deadline::after(&Still, core::time::Duration::from_secs(1));
        let mapping = WindowMapping::<W>::map(&mut Untranslated, at, 0x4000, deadline).unwrap();
        // SAFETY: `owned` is host memory, "mapped 1:1" in the sense `RamRegion`
        // needs (its address is its pointer); it outlives the region and is
        // used only through it.
        let ram = unsafe { RamRegion::new(at, 0x4000) };
        let mut arena = DmaArena::<W, 4>::new(mapping, ram).unwrap();

        // Another arena of the same window, over other memory: its buffer has
        // the same IOVA as ours but is not ours to free.
        let mut other_mem = Box::new(Pages([0; 0x4000]));
        let other_cpu = NonNull::new(other_mem.0.as_mut_ptr()).unwrap();
        let other_mapping = WindowMapping::<W>::identity(W::BASE, 0x4000).unwrap();
        // SAFETY: `other_mem` outlives the arena and is only used through it.
        let mut other = unsafe { DmaArena::<W, 4>::from_raw(other_cpu, other_mapping) };

        let ours = arena.alloc::<ToDevice>(64, 64).unwrap();
        let theirs = other.alloc::<ToDevice>(64, 64).unwrap();
        assert_eq!(ours.iova(), theirs.iova());
        assert_eq!(
            arena.free(theirs),
            Err(DmaError::NotAllocated {
                iova: W::BASE,
                len: 0x1000
            })
        );
        assert_eq!(arena.live(), 1, "another arena's buffer freed ours");

        let mut arena = match arena.into_ram() {
            Ok(_) => panic!("RAM given back with a buffer live"),
            Err(arena) => arena,
        };
        arena.free(ours).unwrap();
        let ram = arena.into_ram().ok().unwrap();
        assert_eq!((ram.start(), ram.len()), (at, 0x4000));

        // The other arena still counts the buffer it never got back (and,
        // made over raw memory, owns no RAM to give back anyway).
        assert_eq!(other.live(), 1);
        assert!(other.into_ram().is_err());
    }
}
