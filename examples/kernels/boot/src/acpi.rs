//! Finding ACPI tables: RSDP → XSDT (or RSDT) → a table by signature.
//!
//! Firmware tables are input like any other: signatures, lengths and checksums
//! are checked, every pointer must lie inside the identity map, and the number of
//! entries walked is bounded by the (bounded) root table length. ACPI 6.5,
//! 5.2.5 (RSDP), 5.2.6 (header), 5.2.7/5.2.8 (RSDT/XSDT); MCFG is from the PCI
//! Firmware Specification 3.2, 4.1.2.

use core::fmt;

use crate::start_info::ADDRESSABLE_LIMIT;

/// Longest table accepted (the DMAR and MCFG of a VM are a few hundred bytes).
pub const MAX_TABLE_LEN: u32 = 64 * 1024;
/// Size of the common table header.
pub const HEADER_LEN: u32 = 36;

/// Why a table could not be found or read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcpiError {
    /// The RSDP signature is not "RSD PTR ".
    BadRsdpSignature {
        /// Where we looked.
        at: u64,
    },
    /// A checksum does not add up to zero.
    BadChecksum {
        /// The table signature (or "RSDP").
        signature: [u8; 4],
        /// Its address.
        at: u64,
    },
    /// A table's signature is not the one its pointer promised.
    UnexpectedSignature {
        /// Expected signature.
        expected: [u8; 4],
        /// Found signature.
        found: [u8; 4],
        /// Address.
        at: u64,
    },
    /// A length shorter than the header or longer than [`MAX_TABLE_LEN`].
    BadLength {
        /// The table signature.
        signature: [u8; 4],
        /// The length field.
        len: u32,
    },
    /// A table pointer outside the identity map.
    OutOfRange {
        /// The pointer.
        at: u64,
    },
}

impl fmt::Display for AcpiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sig = |s: &[u8; 4]| Sig(*s);
        match self {
            Self::BadRsdpSignature { at } => write!(f, "no RSDP signature at {at:#x}"),
            Self::BadChecksum { signature, at } => {
                write!(f, "{} at {at:#x}: bad checksum", sig(signature))
            }
            Self::UnexpectedSignature {
                expected,
                found,
                at,
            } => write!(
                f,
                "expected {} at {at:#x}, found {}",
                sig(expected),
                sig(found)
            ),
            Self::BadLength { signature, len } => {
                write!(f, "{}: length {len} out of bounds", sig(signature))
            }
            Self::OutOfRange { at } => write!(f, "table pointer {at:#x} outside the identity map"),
        }
    }
}

/// A printable signature.
struct Sig([u8; 4]);
impl fmt::Display for Sig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(core::str::from_utf8(&self.0).unwrap_or("????"))
    }
}

/// A checked table in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    /// Physical address of the header.
    pub address: u64,
    /// Length including the header.
    pub len: u32,
    /// Signature.
    pub signature: [u8; 4],
}

impl Table {
    /// The whole table as bytes.
    pub fn bytes(&self) -> &'static [u8] {
        // SAFETY:
        // - `Table` values are only built by `checked_table`, which verified the
        //   range lies inside the identity map and is firmware memory;
        // - firmware tables are never written after boot.
        unsafe { core::slice::from_raw_parts(self.address as *const u8, self.len as usize) }
    }

    /// The bytes after the 36-byte header.
    pub fn body(&self) -> &'static [u8] {
        self.bytes().get(HEADER_LEN as usize..).unwrap_or(&[])
    }
}

fn in_map(at: u64, len: u64) -> Result<(), AcpiError> {
    match at.checked_add(len) {
        Some(end) if at != 0 && end <= ADDRESSABLE_LIMIT => Ok(()),
        _ => Err(AcpiError::OutOfRange { at }),
    }
}

fn checksum_ok(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b)) == 0
}

fn read_bytes<const N: usize>(at: u64) -> Result<[u8; N], AcpiError> {
    in_map(at, N as u64)?;
    // SAFETY: inside the identity map (checked), firmware memory, any bytes valid.
    Ok(unsafe { core::ptr::read_unaligned(at as *const [u8; N]) })
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        v.copy_from_slice(s);
    }
    u32::from_le_bytes(v)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        v.copy_from_slice(s);
    }
    u64::from_le_bytes(v)
}

fn checked_table(at: u64, expected: Option<[u8; 4]>) -> Result<Table, AcpiError> {
    let header: [u8; HEADER_LEN as usize] = read_bytes(at)?;
    let mut signature = [0u8; 4];
    signature.copy_from_slice(header.get(..4).unwrap_or(&[0; 4]));
    if let Some(expected) = expected {
        if signature != expected {
            return Err(AcpiError::UnexpectedSignature {
                expected,
                found: signature,
                at,
            });
        }
    }
    let len = le_u32(&header, 4);
    if !(HEADER_LEN..=MAX_TABLE_LEN).contains(&len) {
        return Err(AcpiError::BadLength { signature, len });
    }
    in_map(at, len.into())?;
    let table = Table {
        address: at,
        len,
        signature,
    };
    if !checksum_ok(table.bytes()) {
        return Err(AcpiError::BadChecksum { signature, at });
    }
    Ok(table)
}

/// The root table (XSDT when the RSDP has one, else the RSDT).
#[derive(Debug, Clone, Copy)]
pub struct Root {
    table: Table,
    entry_size: usize,
}

impl Root {
    /// Reads the RSDP at `rsdp` and checks the root table it points at.
    ///
    /// # Errors
    ///
    /// An [`AcpiError`] for a bad signature, checksum, length or pointer.
    pub fn from_rsdp(rsdp: u64) -> Result<Self, AcpiError> {
        let v1: [u8; 20] = read_bytes(rsdp)?;
        if v1.get(..8) != Some(b"RSD PTR ".as_slice()) {
            return Err(AcpiError::BadRsdpSignature { at: rsdp });
        }
        if !checksum_ok(&v1) {
            return Err(AcpiError::BadChecksum {
                signature: *b"RSDP",
                at: rsdp,
            });
        }
        let revision = v1.get(15).copied().unwrap_or(0);
        if revision >= 2 {
            let v2: [u8; 36] = read_bytes(rsdp)?;
            if !checksum_ok(&v2) {
                return Err(AcpiError::BadChecksum {
                    signature: *b"RSDP",
                    at: rsdp,
                });
            }
            let xsdt = le_u64(&v2, 24);
            if xsdt != 0 {
                return Ok(Root {
                    table: checked_table(xsdt, Some(*b"XSDT"))?,
                    entry_size: 8,
                });
            }
        }
        let rsdt = u64::from(le_u32(&v1, 16));
        Ok(Root {
            table: checked_table(rsdt, Some(*b"RSDT"))?,
            entry_size: 4,
        })
    }

    /// The root table itself.
    pub fn table(&self) -> Table {
        self.table
    }

    /// Physical addresses of the tables the root lists (bounded by its length).
    pub fn entries(&self) -> impl Iterator<Item = u64> + '_ {
        let body = self.table.body();
        let size = self.entry_size;
        body.chunks_exact(size).map(move |c| {
            if size == 8 {
                le_u64(c, 0)
            } else {
                u64::from(le_u32(c, 0))
            }
        })
    }

    /// The first table with `signature`, checked; `Ok(None)` when absent.
    ///
    /// Listed tables that are themselves broken are skipped unless they carry
    /// the signature looked for, in which case their error is returned.
    ///
    /// # Errors
    ///
    /// The [`AcpiError`] of the table with that signature.
    pub fn find(&self, signature: [u8; 4]) -> Result<Option<Table>, AcpiError> {
        for at in self.entries() {
            let Ok(sig) = read_bytes::<4>(at) else {
                continue;
            };
            if sig == signature {
                return checked_table(at, Some(signature)).map(Some);
            }
        }
        Ok(None)
    }
}

/// One MCFG allocation: ECAM for a segment and bus range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EcamRegion {
    /// Physical base address (the address of bus 0's space in this segment,
    /// even when `start_bus` is not 0).
    pub base: u64,
    /// PCI segment group.
    pub segment: u16,
    /// First bus decoded.
    pub start_bus: u8,
    /// Last bus decoded.
    pub end_bus: u8,
}

impl EcamRegion {
    /// Physical address of `start_bus`'s configuration space.
    pub fn start_bus_address(&self) -> u64 {
        self.base + (u64::from(self.start_bus) << 20)
    }

    /// Bytes of ECAM from `start_bus` to `end_bus`.
    pub fn len(&self) -> u64 {
        (u64::from(self.end_bus.saturating_sub(self.start_bus)) + 1) << 20
    }

    /// Always false: a region decodes at least one bus.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// The allocations of an MCFG table (8 reserved bytes after the header, then
/// 16-byte entries).
pub fn mcfg_regions(mcfg: &Table) -> impl Iterator<Item = EcamRegion> {
    mcfg.body()
        .get(8..)
        .unwrap_or(&[])
        .chunks_exact(16)
        .filter_map(|e| {
            let start_bus = *e.get(10)?;
            let end_bus = *e.get(11)?;
            (start_bus <= end_bus).then(|| EcamRegion {
                base: le_u64(e, 0),
                segment: u16::from_le_bytes([*e.get(8).unwrap_or(&0), *e.get(9).unwrap_or(&0)]),
                start_bus,
                end_bus,
            })
        })
}

/// The ACPI power-management timer: a free-running 3.579545 MHz counter in an
/// I/O port (ACPI 6.5, 4.8.3.3), a clock independent of the TSC and the PIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PmTimer {
    /// The I/O port (FADT PM_TMR_BLK).
    pub port: u16,
    /// The counter is 32 bits wide (FADT flag TMR_VAL_EXT), else 24.
    pub extended: bool,
}

/// PM timer frequency, Hz.
pub const PM_TIMER_HZ: u64 = 3_579_545;

impl PmTimer {
    /// Finds the timer in the FADT (`FACP`); `Ok(None)` when the FADT has none.
    ///
    /// # Errors
    ///
    /// The FADT's [`AcpiError`].
    pub fn from_root(root: &Root) -> Result<Option<Self>, AcpiError> {
        let Some(fadt) = root.find(*b"FACP")? else {
            return Ok(None);
        };
        let b = fadt.bytes();
        // PM_TMR_BLK at 76 (4 bytes), PM_TMR_LEN at 91, Flags at 112 (ACPI 6.5, Table 5.9).
        let port = le_u32(b, 76);
        let len = b.get(91).copied().unwrap_or(0);
        let flags = le_u32(b, 112);
        let Ok(port) = u16::try_from(port) else {
            return Ok(None);
        };
        if port == 0 || len != 4 {
            return Ok(None);
        }
        Ok(Some(PmTimer {
            port,
            extended: flags & (1 << 8) != 0,
        }))
    }

    /// Reads the counter.
    ///
    /// # Safety
    ///
    /// The port must be the PM timer the FADT describes (reading it has no side
    /// effect).
    pub unsafe fn read(&self) -> u32 {
        // SAFETY: the caller guarantees the port is the PM timer's.
        let v = unsafe { paranoid::port::inl(self.port) };
        if self.extended {
            v
        } else {
            v & 0x00ff_ffff
        }
    }

    /// Ticks from `earlier` to `later`, across one wrap of the counter.
    pub fn elapsed(&self, earlier: u32, later: u32) -> u64 {
        let mask: u32 = if self.extended { u32::MAX } else { 0x00ff_ffff };
        u64::from(later.wrapping_sub(earlier) & mask)
    }
}
