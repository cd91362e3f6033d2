//! The reserved recovery window: the only IOVAs the recovery domain maps.
//!
//! Mappings change in batches: page-table edits first, then one write-buffer
//! flush and one IOTLB invalidation covering the batch (page-selective with the
//! smallest aligned block that covers it, else domain-selective). Unmapping
//! page by page with an invalidation each is what [`Vtd::unmap_page_now`] does,
//! for comparison (the benchmark shows the difference).

use paranoid::dma::{MapError, MapWindow, Window, WindowMapping};
use paranoid::mmio::RegisterIo;
use paranoid::time::{Clock, Deadline};

use crate::invalidate::{IotlbScope, Request};
use crate::takeover::Vtd;
use crate::VtdError;
use paranoid::phys::PhysWrite;

/// Pending page-table changes awaiting one invalidation.
pub struct Batch<'v, R: RegisterIo, C: Clock, M: PhysWrite> {
    vtd: &'v mut Vtd<R, C, M>,
    lowest: u64,
    highest: u64,
    unmapped: u32,
    mapped: u32,
}

impl<R: RegisterIo, C: Clock, M: PhysWrite> Batch<'_, R, C, M> {
    fn check(&self, iova: u64) -> Result<(), VtdError> {
        if iova % 4096 != 0 {
            return Err(VtdError::Misaligned { value: iova });
        }
        if !self.vtd.window.contains(iova, 4096) {
            return Err(VtdError::OutsideWindow { iova, len: 4096 });
        }
        Ok(())
    }

    fn touch(&mut self, iova: u64) {
        self.lowest = self.lowest.min(iova);
        self.highest = self.highest.max(iova);
    }

    /// Maps the window page at `iova` to physical `pa`.
    ///
    /// # Errors
    ///
    /// [`VtdError::OutsideWindow`], [`VtdError::Misaligned`],
    /// [`VtdError::AlreadyMapped`], [`VtdError::OutOfFrames`].
    pub fn map(&mut self, iova: u64, pa: u64, writable: bool) -> Result<(), VtdError> {
        self.check(iova)?;
        let v = &mut *self.vtd;
        v.recovery
            .map(&mut v.mem, &mut v.pool, iova, pa, writable)?;
        self.mapped += 1;
        self.touch(iova);
        Ok(())
    }

    /// Unmaps the window page at `iova`; returns the physical page. The page
    /// may be reused only after the batch is committed.
    ///
    /// # Errors
    ///
    /// [`VtdError::OutsideWindow`], [`VtdError::Misaligned`],
    /// [`VtdError::NotMapped`].
    pub fn unmap(&mut self, iova: u64) -> Result<u64, VtdError> {
        self.check(iova)?;
        let v = &mut *self.vtd;
        let pa = v.recovery.unmap(&mut v.mem, iova)?;
        self.unmapped += 1;
        self.touch(iova);
        Ok(pa)
    }

    /// Flushes and invalidates once for everything in the batch.
    fn commit(self, deadline: Deadline) -> Result<(), VtdError> {
        let v = self.vtd;
        if self.mapped == 0 && self.unmapped == 0 {
            return Ok(());
        }
        v.unit.flush_write_buffer(deadline)?;
        // Not-present → present needs no invalidation unless the unit caches
        // not-present entries (CAP.CM); present → not-present always does.
        if self.unmapped == 0 && !v.unit.caps().caching_mode {
            return Ok(());
        }
        let scope = covering(v.recovery_did, self.lowest, self.highest);
        v.inval
            .run(&mut v.unit, &mut v.mem, &[Request::Iotlb(scope)], deadline)
    }
}

/// The smallest naturally aligned block of pages covering `lowest..=highest`.
fn covering(did: u16, lowest: u64, highest: u64) -> IotlbScope {
    let mut order = 0u8;
    while order < 52 && (lowest >> (12 + order)) != (highest >> (12 + order)) {
        order += 1;
    }
    IotlbScope::Pages {
        did,
        iova: lowest & !((4096u64 << order) - 1),
        order,
    }
}

impl<R: RegisterIo, C: Clock, M: PhysWrite> Vtd<R, C, M> {
    /// Runs `edit` on a batch and commits it with one invalidation, also when
    /// `edit` fails part-way (what it changed is invalidated either way).
    ///
    /// # Errors
    ///
    /// `edit`'s error, else the commit's.
    pub fn batch<T>(
        &mut self,
        deadline: Deadline,
        edit: impl FnOnce(&mut Batch<'_, R, C, M>) -> Result<T, VtdError>,
    ) -> Result<T, VtdError> {
        let mut b = Batch {
            vtd: self,
            lowest: u64::MAX,
            highest: 0,
            unmapped: 0,
            mapped: 0,
        };
        let r = edit(&mut b);
        let c = b.commit(deadline);
        let v = r?;
        c?;
        Ok(v)
    }

    /// Maps `len` bytes of the window from `iova` to physical `pa` (writable),
    /// in one batch: what a `paranoid::dma::DmaArena` needs.
    ///
    /// # Errors
    ///
    /// As [`Batch::map`].
    pub fn map_range(
        &mut self,
        iova: u64,
        pa: u64,
        len: u64,
        deadline: Deadline,
    ) -> Result<(), VtdError> {
        if len % 4096 != 0 {
            return Err(VtdError::Misaligned { value: len });
        }
        if !self.window.contains(iova, len) {
            return Err(VtdError::OutsideWindow { iova, len });
        }
        self.batch(deadline, |b| {
            for off in (0..len).step_by(4096) {
                b.map(iova + off, pa + off, true)?;
            }
            Ok(())
        })
    }

    /// Maps all of window `W` to physical `phys..phys + W::SIZE` in the
    /// recovery domain (one batch, one invalidation) and returns the mapping
    /// a `paranoid::dma::DmaArena` is built from. The pages stay mapped: an
    /// unmap of any of them is refused ([`VtdError::Pinned`]).
    ///
    /// # Errors
    ///
    /// [`VtdError::OutsideWindow`] when `W` is not inside the recovery window
    /// this unit was taken over with, [`VtdError::Window`] for a misaligned
    /// `phys`, then as [`Batch::map`].
    pub fn map_window<W: Window>(
        &mut self,
        phys: u64,
        deadline: Deadline,
    ) -> Result<WindowMapping<W>, VtdError> {
        if !self.window.contains(W::BASE, W::SIZE) {
            return Err(VtdError::OutsideWindow {
                iova: W::BASE,
                len: W::SIZE,
            });
        }
        WindowMapping::map(self, phys, W::SIZE, deadline).map_err(|e| match e {
            MapError::Request(e) => VtdError::Window(e),
            MapError::Translator(e) => e,
        })
    }

    /// Unmaps `len` bytes of the window from `iova`, in one batch.
    ///
    /// # Errors
    ///
    /// As [`Batch::unmap`].
    pub fn unmap_range(&mut self, iova: u64, len: u64, deadline: Deadline) -> Result<(), VtdError> {
        if len % 4096 != 0 {
            return Err(VtdError::Misaligned { value: len });
        }
        self.batch(deadline, |b| {
            for off in (0..len).step_by(4096) {
                b.unmap(iova + off)?;
            }
            Ok(())
        })
    }

    /// Maps one page and commits at once (a batch of one).
    ///
    /// # Errors
    ///
    /// As [`Batch::map`].
    pub fn map_page_now(&mut self, iova: u64, pa: u64, deadline: Deadline) -> Result<(), VtdError> {
        self.batch(deadline, |b| b.map(iova, pa, true))
    }

    /// Unmaps one page and invalidates at once (a batch of one).
    ///
    /// # Errors
    ///
    /// As [`Batch::unmap`].
    pub fn unmap_page_now(&mut self, iova: u64, deadline: Deadline) -> Result<u64, VtdError> {
        self.batch(deadline, |b| b.unmap(iova))
    }

    /// The physical address the recovery domain maps `iova` to.
    pub fn translate_window(&mut self, iova: u64) -> Option<u64> {
        let t = self.recovery;
        t.translate(&mut self.mem, iova).map(|(pa, _)| pa)
    }
}

// SAFETY:
// - `map_range` maps each page of the range in the recovery domain's page
//   table (refusing any page mapped already, so none points elsewhere) and
//   commits with a write-buffer flush and IOTLB invalidation before it
//   returns `Ok`: every device attached to the recovery domain then reaches
//   `phys + x` at `iova + x`;
// - it pins the range: `Batch::unmap` (the only unmapping path of the
//   mapping API) refuses pinned pages, and `Batch::map` refuses mapped ones.
//   The raw views `unit()` and `memory()` give register and table access
//   for diagnosis; editing the recovery domain through them is outside what
//   any mapping can vouch for.
unsafe impl<R: RegisterIo, C: Clock, M: PhysWrite> MapWindow for Vtd<R, C, M> {
    type Error = VtdError;

    fn map_range(
        &mut self,
        iova: u64,
        phys: u64,
        len: u64,
        deadline: Deadline,
    ) -> Result<(), VtdError> {
        Vtd::map_range(self, iova, phys, len, deadline)?;
        self.recovery.pin(iova, len);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covering_block_is_minimal_and_aligned() {
        assert_eq!(
            covering(3, 0x10_0000, 0x10_0000),
            IotlbScope::Pages {
                did: 3,
                iova: 0x10_0000,
                order: 0
            }
        );
        assert_eq!(
            covering(3, 0x10_1000, 0x10_2000),
            IotlbScope::Pages {
                did: 3,
                iova: 0x10_0000,
                order: 2
            }
        );
        assert_eq!(
            covering(3, 0x10_0000, 0x1f_f000),
            IotlbScope::Pages {
                did: 3,
                iova: 0x10_0000,
                order: 8
            }
        );
    }
}
