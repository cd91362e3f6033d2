//! A window mapped to memory: the value an IOMMU (or the absence of one) hands
//! back, carrying the window type `W` into the arena built on it.
//!
//! Before this type the physical address behind a window was passed twice, once
//! to the IOMMU and once to the arena, and only a comment said the two agreed.
//! Now the mapping step returns a [`WindowMapping<W>`] and the arena is made
//! from it ([`DmaArena::new`](super::DmaArena::new)), so the address the device
//! was given and the memory the CPU fills are the same value.

use core::fmt;
use core::marker::PhantomData;

use super::{DmaError, Iova, Window};
use crate::time::Deadline;

/// Something that translates device DMA, and can map part of a window's IOVA
/// space to physical memory: an IOMMU driver.
///
/// # Safety
///
/// An implementation guarantees that when [`map_range`](Self::map_range)
/// returns `Ok`:
///
/// - every device DMA this translation applies to, at IOVA `iova + x` for
///   `x < len`, reaches physical address `phys + x` (and nothing else);
/// - no safe method can unmap any page of that range or map it elsewhere for
///   as long as the implementation lives (the range is pinned).
///
/// [`WindowMapping::map`] relies on both to hand out a mapping that an arena
/// may trust without an `unsafe` block of its caller's.
pub unsafe trait MapWindow {
    /// The translator's error.
    type Error;

    /// Maps `iova..iova + len` (page-aligned, inside one window) to
    /// `phys..phys + len`, pinned, and makes the change visible to devices
    /// (write-buffer flush, invalidation) before `deadline`.
    ///
    /// # Errors
    ///
    /// The translator's; on error nothing of the range may be assumed mapped.
    fn map_range(
        &mut self,
        iova: u64,
        phys: u64,
        len: u64,
        deadline: Deadline,
    ) -> Result<(), Self::Error>;
}

/// Why a window could not be mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError<E> {
    /// The request itself is wrong: misaligned, empty, larger than the window,
    /// or (for [`WindowMapping::identity`]) an address that is not the window's.
    Request(DmaError),
    /// The translator refused or failed.
    Translator(E),
}

impl<E: fmt::Display> fmt::Display for MapError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Request(e) => write!(f, "bad window mapping: {e}"),
            Self::Translator(e) => write!(f, "mapping the window failed: {e}"),
        }
    }
}

/// The first `len` bytes of window `W`, device-visible at `W::BASE..` and
/// backed by physical memory at `phys..phys + len`.
///
/// Made only by a translator that did the mapping ([`WindowMapping::map`]) or,
/// on a machine where nothing translates, by the checked identity form
/// ([`WindowMapping::identity`]). It is neither `Clone` nor `Copy`: one
/// mapping backs one arena.
///
/// # Invariants
///
/// `phys` and `len` are page-aligned, `0 < len ≤ W::SIZE`, and device DMA to
/// `W::BASE + x` reaches `phys + x` for every `x < len`.
pub struct WindowMapping<W: Window> {
    phys: u64,
    len: u64,
    _window: PhantomData<fn() -> W>,
}

impl<W: Window> WindowMapping<W> {
    fn check(phys: u64, len: u64) -> Result<(), DmaError> {
        let page = W::PAGE_SIZE;
        if len == 0 || len > W::SIZE {
            return Err(DmaError::BadRequest {
                size: len,
                align: page,
            });
        }
        for value in [phys, len] {
            if value % page != 0 {
                return Err(DmaError::Misaligned {
                    window: W::NAME,
                    value,
                    page_size: page,
                });
            }
        }
        if phys.checked_add(len).is_none() {
            return Err(DmaError::Exhausted { requested: len });
        }
        Ok(())
    }

    /// Maps the first `len` bytes of `W` to `phys..phys + len` through
    /// `translator`, and returns the mapping.
    ///
    /// # Errors
    ///
    /// [`MapError::Request`] for a misaligned, empty or oversized request
    /// (nothing is asked of the translator), [`MapError::Translator`] for the
    /// translator's own failure.
    pub fn map<T: MapWindow + ?Sized>(
        translator: &mut T,
        phys: u64,
        len: u64,
        deadline: Deadline,
    ) -> Result<Self, MapError<T::Error>> {
        Self::check(phys, len).map_err(MapError::Request)?;
        translator
            .map_range(W::BASE, phys, len, deadline)
            .map_err(MapError::Translator)?;
        // `MapWindow`'s contract: the range now reaches `phys` and stays so.
        Ok(Self {
            phys,
            len,
            _window: PhantomData,
        })
    }

    /// The mapping of a machine where device DMA is not translated (no IOMMU,
    /// or none in use): a device's address is the physical address, so the
    /// window must sit exactly on the memory (`W::BASE == phys`).
    ///
    /// Such a machine has no fence but bus mastering; the caller turns it off
    /// on every device it does not drive.
    ///
    /// # Errors
    ///
    /// [`MapError::Request`] with [`DmaError::Misaligned`] when `phys` is not
    /// `W::BASE` (the value reported is `phys`), or as [`map`](Self::map).
    ///
    /// # Examples
    ///
    /// ```
    /// use paranoid::dma::{DmaError, MapError, Window, WindowMapping};
    /// struct Direct;
    /// impl Window for Direct { const NAME: &'static str = "direct"; const BASE: u64 = 0x700_0000; const SIZE: u64 = 0x10_0000; }
    /// assert!(WindowMapping::<Direct>::identity(0x700_0000, 0x10_0000).is_ok());
    /// assert!(matches!(
    ///     WindowMapping::<Direct>::identity(0x600_0000, 0x10_0000),
    ///     Err(MapError::Request(DmaError::Misaligned { value: 0x600_0000, .. }))
    /// ));
    /// ```
    pub fn identity(phys: u64, len: u64) -> Result<Self, MapError<core::convert::Infallible>> {
        Self::check(phys, len).map_err(MapError::Request)?;
        if phys != W::BASE {
            return Err(MapError::Request(DmaError::Misaligned {
                window: W::NAME,
                value: phys,
                page_size: W::PAGE_SIZE,
            }));
        }
        Ok(Self {
            phys,
            len,
            _window: PhantomData,
        })
    }

    /// The physical address behind the window's base.
    pub const fn phys(&self) -> u64 {
        self.phys
    }

    /// Bytes of the window mapped.
    pub const fn len(&self) -> u64 {
        self.len
    }

    /// Always false: a mapping has at least one page.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The window's first address.
    pub const fn base(&self) -> Option<Iova<W>> {
        Iova::new(W::BASE)
    }
}

impl<W: Window> fmt::Debug for WindowMapping<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WindowMapping<{}>({:#x}+{:#x} -> {:#x})",
            W::NAME,
            W::BASE,
            self.len,
            self.phys
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Clock;

    struct W;
    impl Window for W {
        const NAME: &'static str = "w";
        const BASE: u64 = 0x4000_0000;
        const SIZE: u64 = 0x4000;
    }

    /// Records what it was asked to map.
    #[derive(Default)]
    struct Recorder {
        asked: Option<(u64, u64, u64)>,
        refuse: bool,
    }

    // SAFETY: a test translator that translates nothing; no arena built on
    // its mappings is handed to a device.
    unsafe impl MapWindow for Recorder {
        type Error = &'static str;
        fn map_range(
            &mut self,
            iova: u64,
            phys: u64,
            len: u64,
            _: Deadline,
        ) -> Result<(), &'static str> {
            if self.refuse {
                return Err("refused");
            }
            self.asked = Some((iova, phys, len));
            Ok(())
        }
    }

    struct Never;
    impl Clock for Never {
        fn now_ns(&self) -> u64 {
            0
        }
        fn delay(&self, _: core::time::Duration) {}
    }

    fn deadline() -> Deadline {
        Deadline::after(&Never, core::time::Duration::from_secs(1))
    }

    #[test]
    fn map_asks_the_translator_for_the_window_base() {
        let mut t = Recorder::default();
        let m = WindowMapping::<W>::map(&mut t, 0x80_0000, 0x2000, deadline()).unwrap();
        assert_eq!(t.asked, Some((W::BASE, 0x80_0000, 0x2000)));
        assert_eq!((m.phys(), m.len()), (0x80_0000, 0x2000));
        assert_eq!(m.base().map(|b| b.get()), Some(W::BASE));
    }

    #[test]
    fn bad_requests_never_reach_the_translator() {
        let mut t = Recorder::default();
        for (phys, len) in [
            (0x80_0000, 0),
            (0x80_0000, 0x5000),
            (0x80_0800, 0x1000),
            (0x80_0000, 0x1800),
        ] {
            assert!(matches!(
                WindowMapping::<W>::map(&mut t, phys, len, deadline()),
                Err(MapError::Request(_))
            ));
        }
        assert_eq!(t.asked, None);
        t.refuse = true;
        assert!(matches!(
            WindowMapping::<W>::map(&mut t, 0x80_0000, 0x1000, deadline()),
            Err(MapError::Translator("refused"))
        ));
    }

    #[test]
    fn identity_sits_on_the_window() {
        assert!(WindowMapping::<W>::identity(W::BASE, W::SIZE).is_ok());
        assert!(WindowMapping::<W>::identity(W::BASE + 0x1000, 0x1000).is_err());
        assert!(WindowMapping::<W>::identity(W::BASE, W::SIZE + 0x1000).is_err());
    }
}
