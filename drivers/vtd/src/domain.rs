//! Domain ids: which are the dead kernel's (kept reserved, so its cached
//! translations are never confused with ours) and which are free.

/// A set of domain ids, up to the 65536 a 16-bit DID allows.
#[derive(Clone)]
pub struct DomainIds {
    used: [u64; 1024],
    limit: u32,
}

impl core::fmt::Debug for DomainIds {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "DomainIds({} of {} used)", self.count(), self.limit)
    }
}

impl DomainIds {
    /// Ids `0..limit` (CAP.ND's count), all free except 0 when `caching_mode`
    /// (CAP.CM = 1 reserves domain 0, 9.3).
    pub fn new(limit: u32, caching_mode: bool) -> Self {
        let mut s = Self {
            used: [0; 1024],
            limit: limit.min(65536),
        };
        if caching_mode {
            s.reserve(0);
        }
        s
    }

    /// Marks `did` used; false when out of range.
    pub fn reserve(&mut self, did: u16) -> bool {
        if u32::from(did) >= self.limit {
            return false;
        }
        if let Some(w) = self.used.get_mut(usize::from(did) / 64) {
            *w |= 1 << (did % 64);
        }
        true
    }

    /// True when `did` is used.
    pub fn is_used(&self, did: u16) -> bool {
        self.used
            .get(usize::from(did) / 64)
            .is_some_and(|w| (w >> (did % 64)) & 1 == 1)
    }

    /// Takes the lowest free id (1 and up: 0 stays free for firmware habits).
    pub fn allocate(&mut self) -> Option<u16> {
        let did = (1..self.limit)
            .filter_map(|d| u16::try_from(d).ok())
            .find(|&d| !self.is_used(d))?;
        self.reserve(did);
        Some(did)
    }

    /// Ids in use.
    pub fn count(&self) -> u32 {
        self.used.iter().map(|w| w.count_ones()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_ids_are_never_handed_out() {
        let mut d = DomainIds::new(16, true);
        assert!(d.is_used(0));
        for id in [1, 2, 5] {
            assert!(d.reserve(id));
        }
        assert!(!d.reserve(16));
        assert_eq!(d.allocate(), Some(3));
        assert_eq!(d.allocate(), Some(4));
        assert_eq!(d.allocate(), Some(6));
        while d.allocate().is_some() {}
        assert_eq!(d.count(), 16);
    }
}
