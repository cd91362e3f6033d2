//! The DMA path of simulated devices: translation, memory, and a record of every
//! access that was not allowed.

use std::cell::RefCell;
use std::rc::Rc;

use super::SimMemory;

/// One DMA access by a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmaAccess {
    /// Requester id (bus << 8 | device << 3 | function).
    pub source: u16,
    /// Device-visible address.
    pub iova: u64,
    /// Length in bytes.
    pub len: u64,
    /// True for a write into memory.
    pub write: bool,
}

/// A DMA access that did not land.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DmaFault {
    /// The access.
    pub access: DmaAccess,
    /// Why it was refused.
    pub reason: &'static str,
}

/// Address translation for simulated DMA (an IOMMU model).
pub trait Translate {
    /// Translates `access` to a physical address, or refuses it (the translator
    /// records the fault itself: a VT-d model writes a fault record).
    ///
    /// # Errors
    ///
    /// The fault, when the access is not mapped or not permitted.
    fn translate(&mut self, access: DmaAccess) -> Result<u64, DmaFault>;
}

/// A simple IOMMU: a list of allowed mappings, and a log of refused accesses.
#[derive(Debug, Default)]
pub struct SimIommu {
    mappings: Vec<(Option<u16>, u64, u64, u64, bool)>,
    faults: Vec<DmaFault>,
}

impl SimIommu {
    /// An IOMMU with nothing mapped.
    pub fn new() -> Self {
        Self::default()
    }

    /// Allows `source` (or any source when `None`) to reach `iova..iova + len`,
    /// translated to `pa..`; `writable` permits writes into memory.
    pub fn map(&mut self, source: Option<u16>, iova: u64, len: u64, pa: u64, writable: bool) {
        self.mappings.push((source, iova, len, pa, writable));
    }

    /// Every refused access so far.
    pub fn faults(&self) -> &[DmaFault] {
        &self.faults
    }
}

impl SimIommu {
    /// The IOMMU as a [`MapWindow`](crate::dma::MapWindow) translator whose
    /// mappings only `source` may use (as a VT-d domain holds one device).
    pub fn for_source(&mut self, source: u16) -> SourceMapper<'_> {
        SourceMapper {
            iommu: self,
            source: Some(source),
        }
    }

    fn map_pinned(
        &mut self,
        source: Option<u16>,
        iova: u64,
        phys: u64,
        len: u64,
    ) -> Result<(), &'static str> {
        let end = iova.checked_add(len).ok_or("range overflows")?;
        phys.checked_add(len).ok_or("range overflows")?;
        let taken = self
            .mappings
            .iter()
            .any(|&(_, at, n, _, _)| iova < at.saturating_add(n) && at < end);
        if taken {
            return Err("range mapped already");
        }
        self.map(source, iova, len, phys, true);
        Ok(())
    }
}

/// [`SimIommu`] mapping for one source only ([`SimIommu::for_source`]).
pub struct SourceMapper<'a> {
    iommu: &'a mut SimIommu,
    source: Option<u16>,
}

// SAFETY: a mapping made here is never removed, and `translate` takes the
// first mapping that covers an access, so a range mapped after checking that
// no earlier mapping covers any of it reaches `phys` for as long as the IOMMU
// lives; `SimIommu::map` adds later mappings behind it, never before.
unsafe impl crate::dma::MapWindow for SimIommu {
    type Error = &'static str;

    fn map_range(
        &mut self,
        iova: u64,
        phys: u64,
        len: u64,
        _deadline: crate::time::Deadline,
    ) -> Result<(), &'static str> {
        self.map_pinned(None, iova, phys, len)
    }
}

// SAFETY: as for `SimIommu`, for the one source the mapping applies to.
unsafe impl crate::dma::MapWindow for SourceMapper<'_> {
    type Error = &'static str;

    fn map_range(
        &mut self,
        iova: u64,
        phys: u64,
        len: u64,
        _deadline: crate::time::Deadline,
    ) -> Result<(), &'static str> {
        self.iommu.map_pinned(self.source, iova, phys, len)
    }
}

impl Translate for SimIommu {
    fn translate(&mut self, a: DmaAccess) -> Result<u64, DmaFault> {
        let end = a.iova.checked_add(a.len);
        for &(src, iova, len, pa, writable) in &self.mappings {
            let inside = end.is_some_and(|e| a.iova >= iova && e <= iova + len);
            if inside && src.is_none_or(|s| s == a.source) {
                if a.write && !writable {
                    break;
                }
                return Ok(pa + (a.iova - iova));
            }
        }
        let fault = DmaFault {
            access: a,
            reason: "not mapped",
        };
        self.faults.push(fault);
        Err(fault)
    }
}

/// The DMA engine shared by simulated devices: memory plus an optional IOMMU.
#[derive(Clone)]
pub struct SimDma {
    memory: SimMemory,
    iommu: Option<Rc<RefCell<dyn Translate>>>,
    log: Rc<RefCell<Vec<DmaAccess>>>,
    refused: Rc<RefCell<Vec<DmaFault>>>,
    logging: bool,
}

impl SimDma {
    /// DMA straight to `memory` (no IOMMU: IOVA = physical address).
    pub fn new(memory: SimMemory) -> Self {
        Self {
            memory,
            iommu: None,
            log: Rc::default(),
            refused: Rc::default(),
            logging: false,
        }
    }

    /// DMA through `iommu`.
    pub fn with_iommu(memory: SimMemory, iommu: Rc<RefCell<dyn Translate>>) -> Self {
        Self {
            iommu: Some(iommu),
            ..Self::new(memory)
        }
    }

    /// Records every access in [`log`](Self::log) (off by default: campaigns run
    /// millions of accesses).
    pub fn set_logging(&mut self, on: bool) {
        self.logging = on;
    }

    /// The memory.
    pub fn memory(&self) -> &SimMemory {
        &self.memory
    }

    /// Accesses logged (when logging is on).
    pub fn log(&self) -> Vec<DmaAccess> {
        self.log.borrow().clone()
    }

    /// Accesses refused: by the IOMMU, or because they left physical memory.
    pub fn refused(&self) -> Vec<DmaFault> {
        self.refused.borrow().clone()
    }

    fn resolve(&self, access: DmaAccess) -> Result<u64, DmaFault> {
        if self.logging {
            self.log.borrow_mut().push(access);
        }
        let pa = match &self.iommu {
            Some(iommu) => iommu.borrow_mut().translate(access),
            None => Ok(access.iova),
        };
        if let Err(f) = pa {
            self.refused.borrow_mut().push(f);
        }
        pa
    }

    /// A device reads memory at `iova` into `out`.
    ///
    /// # Errors
    ///
    /// The fault when the access is refused or leaves memory; `out` is untouched.
    pub fn read(&self, source: u16, iova: u64, out: &mut [u8]) -> Result<(), DmaFault> {
        let access = DmaAccess {
            source,
            iova,
            len: out.len() as u64,
            write: false,
        };
        let pa = self.resolve(access)?;
        if self.memory.read(pa, out) {
            Ok(())
        } else {
            self.outside(access)
        }
    }

    /// A device writes `data` into memory at `iova`.
    ///
    /// # Errors
    ///
    /// The fault when the access is refused or leaves memory; nothing is written.
    pub fn write(&self, source: u16, iova: u64, data: &[u8]) -> Result<(), DmaFault> {
        let access = DmaAccess {
            source,
            iova,
            len: data.len() as u64,
            write: true,
        };
        let pa = self.resolve(access)?;
        if self.memory.write(pa, data) {
            Ok(())
        } else {
            self.outside(access)
        }
    }

    fn outside(&self, access: DmaAccess) -> Result<(), DmaFault> {
        let f = DmaFault {
            access,
            reason: "outside physical memory",
        };
        self.refused.borrow_mut().push(f);
        Err(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iommu_refuses_and_records_unmapped_and_readonly() {
        let mem = SimMemory::new(0x10_0000, 0x10_000);
        let iommu = Rc::new(RefCell::new(SimIommu::new()));
        iommu
            .borrow_mut()
            .map(Some(0x18), 0xff00_0000, 0x1000, 0x10_0000, false);
        iommu
            .borrow_mut()
            .map(None, 0xff00_1000, 0x1000, 0x10_1000, true);
        let dma = SimDma::with_iommu(mem.clone(), iommu.clone());
        assert!(dma.write(0x18, 0xff00_1008, &[1, 2, 3]).is_ok());
        assert_eq!(
            mem.read_u64(0x10_1008).map(|v| v & 0xff_ffff),
            Some(0x03_0201)
        );
        assert!(
            dma.write(0x18, 0xff00_0000, &[1]).is_err(),
            "read-only mapping"
        );
        assert!(
            dma.read(0x20, 0xff00_0000, &mut [0; 4]).is_err(),
            "other source"
        );
        assert!(
            dma.read(0x18, 0xff00_0ffe, &mut [0; 4]).is_err(),
            "crosses the mapping end"
        );
        assert_eq!(iommu.borrow().faults().len(), 3);
        assert_eq!(dma.refused().len(), 3);
        let direct = SimDma::new(mem);
        assert_eq!(
            direct.write(0, 0x20_0000, &[0]).unwrap_err().reason,
            "outside physical memory"
        );
    }
}
