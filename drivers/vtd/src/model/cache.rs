//! Memory as a unit that does not snoop the processor's caches sees it
//! (ECAP.C = 0, QEMU's default): the driver's writes stay in the cache until
//! it flushes their lines ([`PhysWrite::flush`]), so a table entry or an
//! invalidation descriptor written without a flush is not what the unit reads.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use paranoid::phys::{PhysError, PhysRead, PhysWrite};
use paranoid::sim::SimMemory;

/// Bytes one flush writes back at least (the x86 cache line).
pub const LINE: u64 = 64;

/// The processor's view of `memory` through a write-back cache that the unit
/// does not snoop. Clones share the cache.
#[derive(Clone)]
pub struct CpuCache {
    memory: SimMemory,
    /// Written words not yet in memory, by address.
    dirty: Rc<RefCell<BTreeMap<u64, u64>>>,
}

impl CpuCache {
    /// An empty cache in front of `memory` (which the unit reads directly).
    pub fn new(memory: SimMemory) -> Self {
        Self {
            memory,
            dirty: Rc::new(RefCell::new(BTreeMap::new())),
        }
    }

    /// Words written and not flushed yet.
    pub fn dirty_words(&self) -> usize {
        self.dirty.borrow().len()
    }
}

impl PhysRead for CpuCache {
    fn read(&self, pa: u64, out: &mut [u8]) -> Result<(), PhysError> {
        PhysRead::read(&self.memory, pa, out)?;
        // The processor sees its own writes.
        let end = pa + out.len() as u64;
        for (&at, &word) in self.dirty.borrow().range(pa.saturating_sub(7)..end) {
            for (i, byte) in word.to_le_bytes().into_iter().enumerate() {
                let b = at + i as u64;
                if (pa..end).contains(&b) {
                    out[(b - pa) as usize] = byte;
                }
            }
        }
        Ok(())
    }
}

impl PhysWrite for CpuCache {
    fn write_u64(&mut self, pa: u64, value: u64) -> Result<(), PhysError> {
        // The same checks as memory itself, without storing there.
        let mut probe = [0u8; 8];
        if pa % 8 != 0 {
            return Err(PhysError::OutOfRange {
                at: pa,
                len: 8,
                limit: 0,
            });
        }
        PhysRead::read(&self.memory, pa, &mut probe)?;
        self.dirty.borrow_mut().insert(pa, value);
        Ok(())
    }

    fn flush(&mut self, pa: u64, len: u64) {
        let first = pa & !(LINE - 1);
        let end = pa.saturating_add(len).div_ceil(LINE) * LINE;
        let lines: Vec<(u64, u64)> = self
            .dirty
            .borrow()
            .range(first..end)
            .map(|(&a, &w)| (a, w))
            .collect();
        for (at, word) in lines {
            self.memory.write_u64(at, word);
            self.dirty.borrow_mut().remove(&at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_reach_memory_when_their_line_is_flushed() {
        let memory = SimMemory::new(0x1000, 0x1000);
        let mut cpu = CpuCache::new(memory.clone());
        cpu.write_u64(0x1040, 7).unwrap();
        cpu.write_u64(0x1080, 9).unwrap();
        assert_eq!(PhysRead::read_u64(&cpu, 0x1040), Ok(7), "the CPU sees it");
        assert_eq!(memory.read_u64(0x1040), Some(0), "the unit does not");
        assert_eq!(PhysRead::read_u32(&cpu, 0x1044), Ok(0));
        cpu.flush(0x1000, 0x40);
        assert_eq!(memory.read_u64(0x1040), Some(0), "another line");
        cpu.flush(0x107f, 1);
        assert_eq!(memory.read_u64(0x1040), Some(7));
        assert_eq!(memory.read_u64(0x1080), Some(0));
        assert_eq!(cpu.dirty_words(), 1);
        assert!(cpu.write_u64(0x2000, 1).is_err());
        assert!(cpu.write_u64(0x1004, 1).is_err());
    }
}
