//! The dump plan: which memory, in which order. The crashed kernel's own
//! stacks, descriptor and image first (by the priorities its descriptor gives),
//! then the rest of its RAM in address order; regions it marks free last, or
//! not at all with `exclude_free=on`.

use paranoid_dump::{Range, MAX_EXCLUDED, MAX_RANGES};

use crate::descriptor::{Descriptor, RegionKind};

/// The ordered ranges to dump, and the free ranges left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Ranges in dump order.
    pub ranges: [Range; MAX_RANGES],
    /// Ranges in use.
    pub count: usize,
    /// Free ranges excluded (with `exclude_free`).
    pub free: [Range; MAX_EXCLUDED],
    /// Free ranges in use.
    pub free_count: usize,
}

/// Why a plan could not follow the descriptor (the caller falls back to plain
/// RAM order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyRanges;

impl Plan {
    /// The ranges in dump order.
    pub fn ranges(&self) -> &[Range] {
        self.ranges.get(..self.count).unwrap_or(&[])
    }

    /// The free ranges left out.
    pub fn free(&self) -> &[Range] {
        self.free.get(..self.free_count).unwrap_or(&[])
    }

    fn push(&mut self, r: Range) -> Result<(), TooManyRanges> {
        if r.len == 0 {
            return Ok(());
        }
        let slot = self.ranges.get_mut(self.count).ok_or(TooManyRanges)?;
        *slot = r;
        self.count += 1;
        Ok(())
    }

    /// RAM as it is, in the order given.
    pub fn plain(ram: &[Range]) -> Result<Self, TooManyRanges> {
        let mut p = Self::empty();
        for r in ram {
            p.push(*r)?;
        }
        Ok(p)
    }

    const fn empty() -> Self {
        Self {
            ranges: [Range { start: 0, len: 0 }; MAX_RANGES],
            count: 0,
            free: [Range { start: 0, len: 0 }; MAX_EXCLUDED],
            free_count: 0,
        }
    }

    /// The plan for `ram` guided by a validated descriptor: its non-free
    /// regions by priority (then address), then the rest of RAM in address
    /// order with free regions last; free regions left out (up to
    /// [`MAX_EXCLUDED`] of them) when `exclude_free`.
    ///
    /// # Errors
    ///
    /// [`TooManyRanges`] when the pieces do not fit a header's plan.
    pub fn guided(
        ram: &[Range],
        d: &Descriptor,
        exclude_free: bool,
    ) -> Result<Self, TooManyRanges> {
        let mut p = Self::empty();
        // Most useful first: priority, then address.
        let mut last: Option<(u32, u64)> = None;
        loop {
            let next = d
                .regions()
                .filter(|r| r.kind != RegionKind::Free)
                .filter(|r| last.is_none_or(|l| (r.priority, r.range.start) > l))
                .min_by_key(|r| (r.priority, r.range.start));
            let Some(r) = next else { break };
            p.push(r.range)?;
            last = Some((r.priority, r.range.start));
        }
        // The rest of RAM, not yet planned and not free, in address order; then
        // the free regions.
        let mut free = [Range::default(); MAX_RANGES];
        let mut nfree = 0;
        for r in d.regions().filter(|r| r.kind == RegionKind::Free) {
            if let Some(slot) = free.get_mut(nfree) {
                *slot = r.range;
                nfree += 1;
            }
        }
        let free = free.get(..nfree).unwrap_or(&[]);
        let planned = p;
        for m in ram {
            let mut at = m.start;
            while at < m.end() {
                // The first planned or free range at or after `at` in this RAM range.
                let blocker = planned
                    .ranges()
                    .iter()
                    .chain(free)
                    .filter(|b| b.end() > at && b.start < m.end())
                    .min_by_key(|b| b.start);
                match blocker {
                    Some(b) if b.start <= at => at = b.end(),
                    Some(b) => {
                        p.push(Range {
                            start: at,
                            len: b.start - at,
                        })?;
                        at = b.end();
                    }
                    None => {
                        p.push(Range {
                            start: at,
                            len: m.end() - at,
                        })?;
                        at = m.end();
                    }
                }
            }
        }
        for f in free {
            let kept = exclude_free
                && match p.free.get_mut(p.free_count) {
                    Some(slot) => {
                        *slot = *f;
                        p.free_count += 1;
                        true
                    }
                    None => false,
                };
            if !kept {
                p.push(*f)?;
            }
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, len: u64) -> Range {
        Range { start, len }
    }

    #[test]
    fn stacks_first_then_ram_then_free() {
        let ram = [r(0x1000, 0xf000), r(0x10_0000, 0x10_0000)];
        let mut d = Descriptor::new();
        d.push(r(0x10_0000, 0x1000), RegionKind::KernelImage, 1);
        d.push(r(0x10_8000, 0x1000), RegionKind::Stack, 0);
        d.push(r(0x18_0000, 0x8_0000), RegionKind::Free, 255);
        let p = Plan::guided(&ram, &d, false).unwrap();
        assert_eq!(
            p.ranges(),
            &[
                r(0x10_8000, 0x1000),
                r(0x10_0000, 0x1000),
                r(0x1000, 0xf000),
                r(0x10_1000, 0x7000),
                r(0x10_9000, 0x7_7000),
                r(0x18_0000, 0x8_0000),
            ]
        );
        let total: u64 = p.ranges().iter().map(|x| x.len).sum();
        assert_eq!(total, 0xf000 + 0x10_0000);
        let p = Plan::guided(&ram, &d, true).unwrap();
        assert_eq!(p.free(), &[r(0x18_0000, 0x8_0000)]);
        assert_eq!(p.ranges().len(), 5);
    }
}
