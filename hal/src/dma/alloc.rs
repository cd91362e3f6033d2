//! An IOVA allocator confined to one window.
//!
//! Live allocations are kept sorted in a fixed table (no heap: this runs in a
//! recovery kernel). Allocation is first fit with alignment; exhaustion, a full
//! table and double frees are errors, never panics.

use core::marker::PhantomData;

use super::{DmaError, Iova, Window};

/// Allocates IOVA ranges inside window `W`, with at most `N` live at once.
pub struct IovaAllocator<W: Window, const N: usize = 256> {
    /// Live allocations as (start, len), sorted by start.
    live: [(u64, u64); N],
    count: usize,
    _window: PhantomData<fn() -> W>,
}

impl<W: Window, const N: usize> Default for IovaAllocator<W, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<W: Window, const N: usize> IovaAllocator<W, N> {
    /// An allocator with the whole window free.
    pub const fn new() -> Self {
        Self {
            live: [(0, 0); N],
            count: 0,
            _window: PhantomData,
        }
    }

    /// Number of live allocations.
    pub fn live(&self) -> usize {
        self.count
    }

    /// Bytes currently allocated.
    pub fn allocated_bytes(&self) -> u64 {
        self.entries().iter().map(|&(_, len)| len).sum()
    }

    fn entries(&self) -> &[(u64, u64)] {
        self.live.get(..self.count).unwrap_or(&[])
    }

    /// Allocates `size` bytes (rounded up to the window's page size) aligned to
    /// `align` (at least the page size).
    ///
    /// # Errors
    ///
    /// [`DmaError::BadRequest`] for size 0 or a non-power-of-two alignment,
    /// [`DmaError::Exhausted`] when no gap fits, [`DmaError::TooManyAllocations`]
    /// when the table is full.
    pub fn alloc(&mut self, size: u64, align: u64) -> Result<(Iova<W>, u64), DmaError> {
        if size == 0 || !align.is_power_of_two() {
            return Err(DmaError::BadRequest { size, align });
        }
        let page = W::PAGE_SIZE;
        let len = size
            .checked_next_multiple_of(page)
            .ok_or(DmaError::Exhausted { requested: size })?;
        let align = align.max(page);
        if self.count >= N {
            return Err(DmaError::TooManyAllocations);
        }
        let window_end = W::BASE.saturating_add(W::SIZE);
        let mut cursor = W::BASE;
        let mut slot = self.count;
        for (i, &(start, l)) in self.entries().iter().enumerate() {
            if let Some(s) = fit(cursor, len, align, start) {
                cursor = s;
                slot = i;
                break;
            }
            cursor = start + l;
        }
        let start = if slot == self.count {
            fit(cursor, len, align, window_end).ok_or(DmaError::Exhausted { requested: size })?
        } else {
            cursor
        };
        let iova = Iova::new(start).ok_or(DmaError::Exhausted { requested: size })?;
        // Insert keeping the table sorted.
        let Some(tail) = self.live.get_mut(slot..=self.count) else {
            return Err(DmaError::TooManyAllocations);
        };
        tail.rotate_right(1);
        if let Some(dst) = tail.first_mut() {
            *dst = (start, len);
        }
        self.count += 1;
        Ok((iova, len))
    }

    /// Frees the allocation starting at `iova` of `len` bytes (as returned by
    /// [`alloc`](Self::alloc)).
    ///
    /// # Errors
    ///
    /// [`DmaError::NotAllocated`] when no live allocation matches exactly: a double
    /// free or a foreign range. Nothing changes then.
    pub fn free(&mut self, iova: u64, len: u64) -> Result<(), DmaError> {
        let pos = self
            .entries()
            .iter()
            .position(|&e| e == (iova, len))
            .ok_or(DmaError::NotAllocated { iova, len })?;
        if let Some(tail) = self.live.get_mut(pos..self.count) {
            tail.rotate_left(1);
        }
        self.count -= 1;
        Ok(())
    }

    /// True when `iova..iova + len` lies inside a live allocation.
    pub fn is_allocated(&self, iova: u64, len: u64) -> bool {
        let Some(end) = iova.checked_add(len) else {
            return false;
        };
        self.entries()
            .iter()
            .any(|&(s, l)| iova >= s && end <= s + l)
    }
}

/// The aligned start of a `len`-byte range at or after `cursor` that ends by
/// `limit`, if there is one.
fn fit(cursor: u64, len: u64, align: u64, limit: u64) -> Option<u64> {
    let start = cursor.checked_next_multiple_of(align)?;
    let end = start.checked_add(len)?;
    (end <= limit).then_some(start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    struct Small;
    impl Window for Small {
        const NAME: &'static str = "small";
        const BASE: u64 = 0x10_0000;
        const SIZE: u64 = 0x10_000; // 16 pages
    }

    #[test]
    fn exhaustion_double_free_and_reuse() {
        let mut a = IovaAllocator::<Small, 8>::new();
        let (x, xl) = a.alloc(1, 1).unwrap();
        assert_eq!((x.get(), xl), (0x10_0000, 0x1000));
        let (y, _) = a.alloc(0x2000, 0x4000).unwrap();
        assert_eq!(y.get(), 0x10_4000);
        assert_eq!(
            a.alloc(0x10_000, 1),
            Err(DmaError::Exhausted {
                requested: 0x10_000
            })
        );
        a.free(x.get(), xl).unwrap();
        assert_eq!(
            a.free(x.get(), xl),
            Err(DmaError::NotAllocated {
                iova: x.get(),
                len: xl
            })
        );
        assert_eq!(
            a.free(y.get(), 0x1000),
            Err(DmaError::NotAllocated {
                iova: y.get(),
                len: 0x1000
            })
        );
        let (z, _) = a.alloc(0x3000, 1).unwrap();
        assert_eq!(z.get(), 0x10_0000, "first fit reuses the freed gap");
        assert_eq!(
            a.alloc(0, 1),
            Err(DmaError::BadRequest { size: 0, align: 1 })
        );
        assert_eq!(
            a.alloc(1, 3),
            Err(DmaError::BadRequest { size: 1, align: 3 })
        );
        assert_eq!(
            a.alloc(u64::MAX, 1),
            Err(DmaError::Exhausted {
                requested: u64::MAX
            })
        );
    }

    #[test]
    fn table_full_is_an_error() {
        let mut a = IovaAllocator::<Small, 2>::new();
        a.alloc(1, 1).unwrap();
        a.alloc(1, 1).unwrap();
        assert_eq!(a.alloc(1, 1), Err(DmaError::TooManyAllocations));
    }

    proptest! {
        #[test]
        fn allocations_stay_in_window_aligned_and_disjoint(ops in proptest::collection::vec((any::<bool>(), 1u64..0x6000, 0u32..16, any::<prop::sample::Index>()), 1..200)) {
            let mut a = IovaAllocator::<Small, 16>::new();
            let mut live: Vec<(u64, u64)> = Vec::new();
            for (is_alloc, size, align_log, pick) in ops {
                if is_alloc || live.is_empty() {
                    let align = 1u64 << align_log;
                    match a.alloc(size, align) {
                        Ok((iova, len)) => {
                            let s = iova.get();
                            prop_assert!(s >= Small::BASE && s + len <= Small::BASE + Small::SIZE);
                            prop_assert_eq!(s % align.max(4096), 0);
                            prop_assert!(len >= size);
                            for &(o, ol) in &live {
                                prop_assert!(s + len <= o || o + ol <= s, "overlap");
                            }
                            live.push((s, len));
                        }
                        Err(DmaError::Exhausted { .. }) | Err(DmaError::TooManyAllocations) => {}
                        Err(e) => prop_assert!(false, "unexpected {e:?}"),
                    }
                } else {
                    let (s, l) = live.swap_remove(pick.index(live.len()));
                    prop_assert_eq!(a.free(s, l), Ok(()));
                    prop_assert!(a.free(s, l).is_err());
                }
                prop_assert_eq!(a.live(), live.len());
            }
        }
    }
}
