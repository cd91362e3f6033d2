//! The DMA Remapping Reporting table (VT-d 4.1, chapter 8).
//!
//! [`Dmar::parse`] checks the whole table once: the header, the checksum, every
//! remapping structure's type and length, every device scope and path. After
//! that the iterators cannot fail; they still slice with checks and simply stop
//! at anything inconsistent, so no index can go out of bounds even if the
//! validation were wrong.

use super::{checksum, le, AcpiError, SdtHeader, SDT_HEADER_LEN};

/// Offset of the first remapping structure (header, HAW, flags, 10 reserved).
const STRUCTURES: usize = 48;

bitflags::bitflags! {
    /// DMAR.Flags (8.1).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct DmarFlags: u8 {
        /// Interrupt remapping supported.
        const INTR_REMAP = 1 << 0;
        /// Firmware asks the OS not to enable x2APIC mode.
        const X2APIC_OPT_OUT = 1 << 1;
        /// Platform opts in to DMA protection by the OS.
        const DMA_CTRL_PLATFORM_OPT_IN = 1 << 2;
    }
}

/// A checked DMAR table.
#[derive(Debug, Clone, Copy)]
pub struct Dmar<'a> {
    bytes: &'a [u8],
    /// Host address width in bits (DMAR.HAW + 1).
    pub host_address_width: u8,
    /// DMAR.Flags.
    pub flags: DmarFlags,
}

/// The kind of a device scope entry (8.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceScopeKind {
    /// A PCI endpoint device.
    Endpoint,
    /// A PCI-PCI bridge and every device below it.
    SubHierarchy,
    /// An I/O APIC.
    IoApic,
    /// An HPET.
    Hpet,
    /// An ACPI namespace device.
    AcpiNamespace,
    /// A type this parser does not know (kept, not rejected).
    Other(u8),
}

/// One device scope entry: a start bus and a path of (device, function) hops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceScope<'a> {
    /// What the scope names.
    pub kind: DeviceScopeKind,
    /// I/O APIC id, HPET number or ACPI device number.
    pub enumeration_id: u8,
    /// Bus number the path starts on.
    pub start_bus: u8,
    path: &'a [u8],
}

impl<'a> DeviceScope<'a> {
    /// The path hops as (device, function).
    pub fn path(&self) -> impl Iterator<Item = (u8, u8)> + 'a {
        self.path.chunks_exact(2).filter_map(|c| match *c {
            [d, f] => Some((d, f)),
            _ => None,
        })
    }

    /// Number of hops.
    pub fn path_len(&self) -> usize {
        self.path.len() / 2
    }

    /// The source-id of a device directly on the start bus (path of one hop);
    /// deeper paths need the bridges' secondary bus numbers, read from PCI
    /// configuration space by the caller.
    pub fn direct_source_id(&self) -> Option<u16> {
        match *self.path {
            [d, f] => Some(u16::from(self.start_bus) << 8 | u16::from(d) << 3 | u16::from(f)),
            _ => None,
        }
    }
}

/// Iterator over a structure's device scopes.
#[derive(Debug, Clone)]
pub struct Scopes<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Scopes<'a> {
    type Item = DeviceScope<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        let kind = le::u8_at(self.rest, 0)?;
        let len = usize::from(le::u8_at(self.rest, 1)?);
        let body = self.rest.get(..len)?;
        self.rest = self.rest.get(len..)?;
        Some(DeviceScope {
            kind: match kind {
                1 => DeviceScopeKind::Endpoint,
                2 => DeviceScopeKind::SubHierarchy,
                3 => DeviceScopeKind::IoApic,
                4 => DeviceScopeKind::Hpet,
                5 => DeviceScopeKind::AcpiNamespace,
                k => DeviceScopeKind::Other(k),
            },
            enumeration_id: le::u8_at(body, 4)?,
            start_bus: le::u8_at(body, 5)?,
            path: body.get(6..)?,
        })
    }
}

/// A DMA remapping hardware unit definition (8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drhd<'a> {
    /// Byte offset in the table (for reports).
    pub offset: usize,
    /// DRHD.Flags.
    pub flags: u8,
    /// DRHD.Size: the register set spans 2^size 4 KiB pages.
    pub size: u8,
    /// PCI segment.
    pub segment: u16,
    /// Physical base of the register set.
    pub register_base: u64,
    scopes: &'a [u8],
}

impl<'a> Drhd<'a> {
    /// DRHD.Flags.INCLUDE_PCI_ALL: the unit covers every device of the segment
    /// not claimed by another unit.
    pub fn include_all(&self) -> bool {
        self.flags & 1 != 0
    }

    /// Size of the register set in bytes.
    pub fn register_size(&self) -> u64 {
        4096u64 << self.size.min(15)
    }

    /// The device scopes.
    pub fn device_scopes(&self) -> Scopes<'a> {
        Scopes { rest: self.scopes }
    }
}

/// A reserved memory region the firmware needs DMA to (8.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rmrr<'a> {
    /// Byte offset in the table.
    pub offset: usize,
    /// PCI segment.
    pub segment: u16,
    /// First byte of the region.
    pub base: u64,
    /// Last byte of the region (inclusive).
    pub limit: u64,
    scopes: &'a [u8],
}

impl<'a> Rmrr<'a> {
    /// The devices that use the region.
    pub fn device_scopes(&self) -> Scopes<'a> {
        Scopes { rest: self.scopes }
    }

    /// True when the region shares a byte with `base..base + len`.
    pub fn overlaps(&self, base: u64, len: u64) -> bool {
        len != 0 && base <= self.limit && base.saturating_add(len - 1) >= self.base
    }
}

/// Root-port ATS capability reporting (8.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Atsr<'a> {
    /// Byte offset in the table.
    pub offset: usize,
    /// ATSR.Flags (bit 0: ALL_PORTS).
    pub flags: u8,
    /// PCI segment.
    pub segment: u16,
    scopes: &'a [u8],
}

impl<'a> Atsr<'a> {
    /// ATSR.Flags.ALL_PORTS.
    pub fn all_ports(&self) -> bool {
        self.flags & 1 != 0
    }

    /// The root ports.
    pub fn device_scopes(&self) -> Scopes<'a> {
        Scopes { rest: self.scopes }
    }
}

/// One remapping structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemappingStructure<'a> {
    /// Type 0.
    Drhd(Drhd<'a>),
    /// Type 1.
    Rmrr(Rmrr<'a>),
    /// Type 2.
    Atsr(Atsr<'a>),
    /// Types this crate does not use (RHSA, ANDD, SATC, SIDP, future ones).
    Other {
        /// The type.
        kind: u16,
        /// Byte offset in the table.
        offset: usize,
    },
}

/// Iterator over the remapping structures.
#[derive(Debug, Clone)]
pub struct Structures<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Iterator for Structures<'a> {
    type Item = RemappingStructure<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        let offset = self.offset;
        let kind = le::u16_at(self.bytes, offset)?;
        let len = usize::from(le::u16_at(self.bytes, offset + 2)?);
        let s = self.bytes.get(offset..offset.checked_add(len)?)?;
        if len < 4 {
            return None;
        }
        self.offset = offset + len;
        Some(match kind {
            0 => RemappingStructure::Drhd(Drhd {
                offset,
                flags: le::u8_at(s, 4)?,
                size: le::u8_at(s, 5)? & 0xf,
                segment: le::u16_at(s, 6)?,
                register_base: le::u64_at(s, 8)?,
                scopes: s.get(16..)?,
            }),
            1 => RemappingStructure::Rmrr(Rmrr {
                offset,
                segment: le::u16_at(s, 6)?,
                base: le::u64_at(s, 8)?,
                limit: le::u64_at(s, 16)?,
                scopes: s.get(24..)?,
            }),
            2 => RemappingStructure::Atsr(Atsr {
                offset,
                flags: le::u8_at(s, 4)?,
                segment: le::u16_at(s, 6)?,
                scopes: s.get(8..)?,
            }),
            k => RemappingStructure::Other { kind: k, offset },
        })
    }
}

impl<'a> Dmar<'a> {
    /// Checks a DMAR table (as returned by [`find_table`](super::find_table)).
    ///
    /// # Errors
    ///
    /// [`AcpiError::BadSignature`], [`AcpiError::BadChecksum`],
    /// [`AcpiError::BadLength`] (table, structure or scope lengths that are too
    /// small or run past their container), [`AcpiError::BadField`] (HAW, register
    /// base, RMRR range, device scope path).
    pub fn parse(table: &'a [u8]) -> Result<Self, AcpiError> {
        let header = SdtHeader::parse(table)?;
        if header.signature != *b"DMAR" {
            return Err(AcpiError::BadSignature {
                expected: *b"DMAR",
                found: header.signature,
            });
        }
        let len = header.length as usize;
        let bytes = table.get(..len).ok_or(AcpiError::BadLength {
            what: "DMAR",
            offset: 0,
            length: len as u64,
            available: table.len() as u64,
        })?;
        if len < STRUCTURES {
            return Err(AcpiError::BadLength {
                what: "DMAR",
                offset: 0,
                length: len as u64,
                available: STRUCTURES as u64,
            });
        }
        let sum = checksum(bytes);
        if sum != 0 {
            return Err(AcpiError::BadChecksum {
                signature: *b"DMAR    ",
                at: 0,
                sum,
            });
        }
        let haw = le::u8_at(bytes, SDT_HEADER_LEN).unwrap_or(0xff);
        // HAW is "width - 1"; VT-d addresses are at most 64 bits, and a width
        // below 32 bits cannot reach the usual register bases.
        if !(31..=63).contains(&haw) {
            return Err(AcpiError::BadField {
                field: "DMAR.HAW",
                offset: SDT_HEADER_LEN,
                value: haw.into(),
            });
        }
        let dmar = Self {
            bytes,
            host_address_width: haw + 1,
            flags: DmarFlags::from_bits_truncate(le::u8_at(bytes, SDT_HEADER_LEN + 1).unwrap_or(0)),
        };
        dmar.check_structures()?;
        Ok(dmar)
    }

    /// Validates every structure and scope, so the iterators cannot stop early.
    fn check_structures(&self) -> Result<(), AcpiError> {
        let mut offset = STRUCTURES;
        while offset < self.bytes.len() {
            let available = (self.bytes.len() - offset) as u64;
            let bad_len = |length: u64| AcpiError::BadLength {
                what: "remapping structure",
                offset,
                length,
                available,
            };
            let (Some(kind), Some(len)) = (
                le::u16_at(self.bytes, offset),
                le::u16_at(self.bytes, offset + 2),
            ) else {
                return Err(bad_len(available));
            };
            let len = usize::from(len);
            let min = match kind {
                0 => 16,
                1 => 24,
                2 => 8,
                3 => 20,
                _ => 4,
            };
            if len < min || len as u64 > available {
                return Err(bad_len(len as u64));
            }
            let s = self
                .bytes
                .get(offset..offset + len)
                .ok_or(bad_len(len as u64))?;
            match kind {
                0 => {
                    let base = le::u64_at(s, 8).unwrap_or(0);
                    if base == 0 || base % 4096 != 0 || !self.fits(base) {
                        return Err(AcpiError::BadField {
                            field: "DRHD.RegisterBaseAddress",
                            offset,
                            value: base,
                        });
                    }
                    check_scopes(s.get(16..).unwrap_or(&[]), offset + 16)?;
                }
                1 => {
                    let base = le::u64_at(s, 8).unwrap_or(0);
                    let limit = le::u64_at(s, 16).unwrap_or(0);
                    // 8.4: base 4 KiB aligned, limit + 1 4 KiB aligned, limit ≥ base.
                    if base % 4096 != 0 || limit < base || limit % 4096 != 0xfff {
                        return Err(AcpiError::BadField {
                            field: "RMRR range",
                            offset,
                            value: base,
                        });
                    }
                    check_scopes(s.get(24..).unwrap_or(&[]), offset + 24)?;
                }
                2 => check_scopes(s.get(8..).unwrap_or(&[]), offset + 8)?,
                _ => {}
            }
            offset += len;
        }
        Ok(())
    }

    /// True when `pa` is below the host address width.
    fn fits(&self, pa: u64) -> bool {
        self.host_address_width >= 64 || pa >> self.host_address_width == 0
    }

    /// The remapping structures, in table order.
    pub fn structures(&self) -> Structures<'a> {
        Structures {
            bytes: self.bytes,
            offset: STRUCTURES,
        }
    }

    /// The remapping hardware units.
    pub fn drhds(&self) -> impl Iterator<Item = Drhd<'a>> + 'a {
        self.structures().filter_map(|s| match s {
            RemappingStructure::Drhd(d) => Some(d),
            _ => None,
        })
    }

    /// The reserved memory regions.
    pub fn rmrrs(&self) -> impl Iterator<Item = Rmrr<'a>> + 'a {
        self.structures().filter_map(|s| match s {
            RemappingStructure::Rmrr(r) => Some(r),
            _ => None,
        })
    }

    /// The unit whose scope covers `source_id` on `segment`: a unit naming the
    /// device by a one-hop path (an endpoint, or the bridge a sub-hierarchy
    /// scope names), else the segment's INCLUDE_PCI_ALL unit. A device below
    /// a named bridge is on the bridge's secondary bus, which only PCI
    /// configuration space tells: the caller resolves those (8.3.1).
    pub fn unit_for(&self, segment: u16, source_id: u16) -> Option<Drhd<'a>> {
        let named = self.drhds().filter(|d| d.segment == segment).find(|d| {
            d.device_scopes().any(|s| match s.kind {
                DeviceScopeKind::Endpoint | DeviceScopeKind::SubHierarchy => {
                    s.direct_source_id() == Some(source_id)
                }
                _ => false,
            })
        });
        named.or_else(|| {
            self.drhds()
                .find(|d| d.segment == segment && d.include_all())
        })
    }
}

/// Validates the device scope list at `offset` in the table.
fn check_scopes(mut rest: &[u8], mut offset: usize) -> Result<(), AcpiError> {
    while !rest.is_empty() {
        let available = rest.len() as u64;
        let len = le::u8_at(rest, 1).map(usize::from).unwrap_or(0);
        // 8.3.1: type, length, 2 reserved, enumeration id, start bus, then
        // two-byte path entries.
        if len < 6 || (len - 6) % 2 != 0 || len as u64 > available {
            return Err(AcpiError::BadLength {
                what: "device scope",
                offset,
                length: len as u64,
                available,
            });
        }
        let body = rest.get(..len).unwrap_or(&[]);
        let kind = le::u8_at(body, 0).unwrap_or(0);
        let path = body.get(6..).unwrap_or(&[]);
        if matches!(kind, 1 | 2) && path.is_empty() {
            return Err(AcpiError::BadField {
                field: "device scope path",
                offset,
                value: 0,
            });
        }
        for hop in path.chunks_exact(2) {
            if let [d, f] = *hop {
                if d > 31 || f > 7 {
                    return Err(AcpiError::BadField {
                        field: "device scope path",
                        offset,
                        value: u64::from(d) << 8 | u64::from(f),
                    });
                }
            }
        }
        rest = rest.get(len..).unwrap_or(&[]);
        offset += len;
    }
    Ok(())
}

/// Builders for real-shaped DMAR tables (tests, the model and the fuzzer).
#[cfg(any(test, feature = "model"))]
pub mod build {
    use std::vec::Vec;

    /// A device scope entry of `kind` on `bus` with `path` hops.
    pub fn scope(kind: u8, enumeration_id: u8, bus: u8, path: &[(u8, u8)]) -> Vec<u8> {
        let mut s = vec![kind, (6 + 2 * path.len()) as u8, 0, 0, enumeration_id, bus];
        for &(d, f) in path {
            s.extend_from_slice(&[d, f]);
        }
        s
    }

    /// A DRHD structure.
    pub fn drhd(flags: u8, segment: u16, base: u64, scopes: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = scopes.concat();
        let mut s = Vec::new();
        s.extend_from_slice(&0u16.to_le_bytes());
        s.extend_from_slice(&((16 + body.len()) as u16).to_le_bytes());
        s.extend_from_slice(&[flags, 0]);
        s.extend_from_slice(&segment.to_le_bytes());
        s.extend_from_slice(&base.to_le_bytes());
        s.extend_from_slice(&body);
        s
    }

    /// An RMRR structure.
    pub fn rmrr(segment: u16, base: u64, limit: u64, scopes: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = scopes.concat();
        let mut s = Vec::new();
        s.extend_from_slice(&1u16.to_le_bytes());
        s.extend_from_slice(&((24 + body.len()) as u16).to_le_bytes());
        s.extend_from_slice(&[0, 0]);
        s.extend_from_slice(&segment.to_le_bytes());
        s.extend_from_slice(&base.to_le_bytes());
        s.extend_from_slice(&limit.to_le_bytes());
        s.extend_from_slice(&body);
        s
    }

    /// An ATSR structure.
    pub fn atsr(flags: u8, segment: u16, scopes: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = scopes.concat();
        let mut s = Vec::new();
        s.extend_from_slice(&2u16.to_le_bytes());
        s.extend_from_slice(&((8 + body.len()) as u16).to_le_bytes());
        s.extend_from_slice(&[flags, 0]);
        s.extend_from_slice(&segment.to_le_bytes());
        s.extend_from_slice(&body);
        s
    }

    /// A DMAR table with host address width `haw` bits and `structures`.
    pub fn dmar(haw: u8, flags: u8, structures: &[Vec<u8>]) -> Vec<u8> {
        let mut body = vec![haw.wrapping_sub(1), flags];
        body.extend_from_slice(&[0; 10]);
        for s in structures {
            body.extend_from_slice(s);
        }
        paranoid::acpi::build::build_table(*b"DMAR", 1, &body)
    }

    /// The DMAR of QEMU 7.2 q35 with `-device intel-iommu`: one INCLUDE_PCI_ALL
    /// unit at 0xfed90000, HAW 39 (plus an RMRR and an ATSR to exercise them).
    pub fn qemu_like() -> Vec<u8> {
        dmar(
            39,
            1,
            &[
                drhd(1, 0, 0xfed9_0000, &[scope(3, 0, 0xff, &[(0, 0)])]),
                rmrr(0, 0x000e_0000, 0x000e_ffff, &[scope(1, 0, 0, &[(0x1d, 0)])]),
                atsr(0, 0, &[scope(2, 0, 0, &[(0x1c, 0), (0, 0)])]),
            ],
        )
    }

    /// Parses `t` and walks everything the parser accepted, asserting the
    /// invariants the iterators promise (the fuzz target's body).
    ///
    /// # Panics
    ///
    /// When an accepted table breaks an invariant: that is the bug a fuzzer hunts.
    pub fn exercise(t: &[u8]) {
        if let Ok(d) = super::Dmar::parse(t) {
            // Everything the parser accepted must be walkable to the end.
            let n = d.structures().count();
            let mut offsets = 0;
            for s in d.structures() {
                offsets += 1;
                match s {
                    super::RemappingStructure::Drhd(u) => {
                        assert!(u.register_base % 4096 == 0 && u.register_base != 0);
                        for sc in u.device_scopes() {
                            assert!(sc.path().all(|(dv, f)| dv < 32 && f < 8));
                            let _ = sc.direct_source_id();
                        }
                    }
                    super::RemappingStructure::Rmrr(r) => {
                        assert!(r.limit >= r.base);
                        let _ = r.device_scopes().count();
                    }
                    super::RemappingStructure::Atsr(a) => {
                        let _ = a.device_scopes().count();
                    }
                    super::RemappingStructure::Other { .. } => {}
                }
            }
            assert_eq!(n, offsets);
            let _ = d.unit_for(0, 0x10);
        }
    }

    /// Recomputes the checksum of a (possibly mutated) table in place, so a
    /// fuzzer reaches the structure parser.
    pub fn fix_checksum(t: &mut [u8]) {
        if let Some(c) = t.get_mut(9) {
            *c = 0;
        }
        let len = t
            .get(4..8)
            .and_then(|l| <[u8; 4]>::try_from(l).ok())
            .map(|l| u32::from_le_bytes(l) as usize)
            .unwrap_or(0)
            .min(t.len());
        let sum = super::checksum(t.get(..len).unwrap_or(&[]));
        if let Some(c) = t.get_mut(9) {
            *c = 0u8.wrapping_sub(sum);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_qemu_like_table() {
        let t = qemu_like();
        let d = Dmar::parse(&t).unwrap();
        assert_eq!(d.host_address_width, 39);
        assert!(d.flags.contains(DmarFlags::INTR_REMAP));
        let units: Vec<_> = d.drhds().collect();
        assert_eq!(units.len(), 1);
        assert_eq!(units[0].register_base, 0xfed9_0000);
        assert!(units[0].include_all());
        assert_eq!(units[0].register_size(), 4096);
        let s: Vec<_> = units[0].device_scopes().collect();
        assert_eq!(s[0].kind, DeviceScopeKind::IoApic);
        let r: Vec<_> = d.rmrrs().collect();
        assert_eq!((r[0].base, r[0].limit), (0xe_0000, 0xe_ffff));
        assert_eq!(
            r[0].device_scopes().next().unwrap().direct_source_id(),
            Some(0xe8)
        );
        assert!(r[0].overlaps(0xe_f000, 0x2000));
        assert!(!r[0].overlaps(0xf_0000, 0x1000));
        let atsr = d
            .structures()
            .find_map(|s| match s {
                RemappingStructure::Atsr(a) => Some(a),
                _ => None,
            })
            .unwrap();
        assert_eq!(atsr.device_scopes().next().unwrap().path_len(), 2);
        assert_eq!(d.unit_for(0, 0x0010).unwrap().register_base, 0xfed9_0000);
        assert!(d.unit_for(1, 0x0010).is_none());
        assert_eq!(d.structures().count(), 3);
    }

    #[test]
    fn malformed_tables_are_typed_errors() {
        let good = qemu_like();
        // Truncated below the fixed part.
        assert!(Dmar::parse(&good[..40]).is_err());
        // Length field larger than the bytes.
        let mut t = good.clone();
        t[4..8].copy_from_slice(&0x1000u32.to_le_bytes());
        assert!(matches!(
            Dmar::parse(&t),
            Err(AcpiError::BadLength { what: "DMAR", .. })
        ));
        // Structure length past the end.
        let mut t = good.clone();
        t[48 + 2] = 0xff;
        fix_checksum(&mut t);
        assert!(matches!(
            Dmar::parse(&t),
            Err(AcpiError::BadLength {
                what: "remapping structure",
                ..
            })
        ));
        // Zero-length structure would loop forever in a naive parser.
        let mut t = good.clone();
        t[48 + 2] = 0;
        t[48 + 3] = 0;
        fix_checksum(&mut t);
        assert!(Dmar::parse(&t).is_err());
        // Bad scope length and bad path.
        let t = dmar(
            39,
            0,
            &[drhd(0, 0, 0xfed9_0000, &[vec![1, 7, 0, 0, 0, 0, 0]])],
        );
        assert!(matches!(
            Dmar::parse(&t),
            Err(AcpiError::BadLength {
                what: "device scope",
                ..
            })
        ));
        let t = dmar(
            39,
            0,
            &[drhd(0, 0, 0xfed9_0000, &[scope(1, 0, 0, &[(32, 0)])])],
        );
        assert!(matches!(Dmar::parse(&t), Err(AcpiError::BadField { .. })));
        let t = dmar(39, 0, &[drhd(0, 0, 0xfed9_0000, &[scope(1, 0, 0, &[])])]);
        assert!(matches!(Dmar::parse(&t), Err(AcpiError::BadField { .. })));
        // Unaligned register base, register base beyond HAW, bad RMRR, bad HAW.
        let t = dmar(39, 0, &[drhd(0, 0, 0xfed9_0010, &[])]);
        assert!(matches!(Dmar::parse(&t), Err(AcpiError::BadField { .. })));
        let t = dmar(39, 0, &[drhd(0, 0, 1 << 40, &[])]);
        assert!(matches!(Dmar::parse(&t), Err(AcpiError::BadField { .. })));
        let t = dmar(39, 0, &[rmrr(0, 0x2000, 0x1fff, &[])]);
        assert!(matches!(Dmar::parse(&t), Err(AcpiError::BadField { .. })));
        let t = dmar(0, 0, &[]);
        assert!(matches!(
            Dmar::parse(&t),
            Err(AcpiError::BadField {
                field: "DMAR.HAW",
                ..
            })
        ));
        // Bad checksum.
        let mut t = good.clone();
        t[60] ^= 1;
        assert!(matches!(
            Dmar::parse(&t),
            Err(AcpiError::BadChecksum { .. })
        ));
        // Unknown structure types are kept, trailing bytes are not.
        let t = dmar(39, 0, &[vec![9, 0, 6, 0, 1, 2]]);
        let d = Dmar::parse(&t).unwrap();
        assert_eq!(
            d.structures().next(),
            Some(RemappingStructure::Other {
                kind: 9,
                offset: 48
            })
        );
        let t = dmar(39, 0, &[vec![9, 0, 4, 0], vec![1, 2]]);
        assert!(Dmar::parse(&t).is_err());
    }

    #[test]
    fn a_unit_is_found_by_the_device_or_bridge_it_names() {
        // Unit A names an endpoint on bus 2 and a bridge on bus 0 (sub-hierarchy,
        // one hop) and, by a two-hop path, a bridge behind 00:03.0; B takes
        // the rest of segment 0.
        let t = dmar(
            39,
            0,
            &[
                drhd(
                    0,
                    0,
                    0xfed9_0000,
                    &[
                        scope(1, 0, 2, &[(4, 1)]),
                        scope(2, 0, 0, &[(1, 0)]),
                        scope(2, 0, 0, &[(3, 0), (0, 0)]),
                    ],
                ),
                drhd(1, 0, 0xfed9_1000, &[]),
            ],
        );
        let d = Dmar::parse(&t).unwrap();
        let unit = |sid| d.unit_for(0, sid).map(|u| u.register_base);
        assert_eq!(unit(0x0221), Some(0xfed9_0000), "endpoint 02:04.1");
        assert_eq!(unit(0x0008), Some(0xfed9_0000), "bridge 00:01.0");
        // Beside the named bridge, and the bridge a two-hop path starts at:
        // neither is in A's scope.
        assert_eq!(unit(0x0010), Some(0xfed9_1000), "00:02.0");
        assert_eq!(unit(0x0018), Some(0xfed9_1000), "00:03.0");
        assert_eq!(unit(0x0021), Some(0xfed9_1000), "00:04.1 (bus 0, not 2)");
        let s: Vec<_> = d.drhds().next().unwrap().device_scopes().collect();
        assert_eq!(s[0].direct_source_id(), Some(0x0221));
        assert_eq!(s[2].direct_source_id(), None);
    }

    #[test]
    fn atsr_all_ports_is_flag_bit_0() {
        for (flags, all) in [(0, false), (1, true), (2, false), (3, true)] {
            let t = dmar(39, 0, &[atsr(flags, 0, &[])]);
            let d = Dmar::parse(&t).unwrap();
            let a = d
                .structures()
                .find_map(|s| match s {
                    RemappingStructure::Atsr(a) => Some(a),
                    _ => None,
                })
                .unwrap();
            assert_eq!(a.all_ports(), all, "flags {flags}");
        }
    }

    #[test]
    fn structure_lengths_are_checked_per_type() {
        // A 4-byte structure of an unknown type is the smallest there is.
        let t = dmar(39, 0, &[vec![9, 0, 4, 0], vec![9, 0, 4, 0]]);
        assert_eq!(Dmar::parse(&t).unwrap().structures().count(), 2);
        // A DRHD shorter than its 16 fixed bytes is a length error (not a
        // field error from reading a base that is not there).
        for len in [4u8, 8, 12, 15] {
            let mut s = vec![0u8, 0, len, 0];
            s.resize(usize::from(len), 0);
            let t = dmar(39, 0, &[s]);
            assert!(
                matches!(
                    Dmar::parse(&t),
                    Err(AcpiError::BadLength {
                        what: "remapping structure",
                        ..
                    })
                ),
                "DRHD of {len} bytes"
            );
        }
    }

    #[test]
    fn scope_errors_name_the_offset_of_the_bad_scope() {
        // The structures start at byte 48; each type's scopes after its fixed
        // part (DRHD 16, RMRR 24, ATSR 8 bytes), the bad one after a good one.
        let good = scope(1, 0, 0, &[(1, 0)]);
        let bad = scope(1, 0, 0, &[(32, 0)]);
        let two = [good.clone(), bad];
        for (s, at) in [
            (drhd(0, 0, 0xfed9_0000, &two), 48 + 16 + 8),
            (rmrr(0, 0xe_0000, 0xe_ffff, &two), 48 + 24 + 8),
            (atsr(0, 0, &two), 48 + 8 + 8),
        ] {
            let t = dmar(39, 0, &[atsr(0, 0, std::slice::from_ref(&good)), s]);
            let at = at + 16;
            match Dmar::parse(&t) {
                Err(AcpiError::BadField { offset, .. }) => assert_eq!(offset, at),
                other => panic!("{other:?}"),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]
        #[test]
        fn mutated_tables_never_panic(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..12),
            cut in proptest::option::of(any::<prop::sample::Index>()),
            fix in any::<bool>(),
            extra_scopes in 0usize..4,
        ) {
            let scopes: Vec<Vec<u8>> = (0..extra_scopes).map(|i| scope(1, 0, i as u8, &[(i as u8, 0)])).collect();
            let mut t = dmar(39, 1, &[
                drhd(0, 0, 0xfed9_0000, &scopes),
                drhd(1, 0, 0xfed9_1000, &[scope(3, 2, 0xf0, &[(0x1f, 0)])]),
                rmrr(0, 0xe_0000, 0xe_ffff, &scopes),
                atsr(1, 0, &[]),
            ]);
            for (i, b) in edits {
                let at = i.index(t.len());
                t[at] = b;
            }
            if let Some(c) = cut {
                t.truncate(c.index(t.len() + 1));
            }
            if fix {
                fix_checksum(&mut t);
            }
            exercise(&t);
        }
    }
}
