//! Choosing the one namespace the recovery kernel may write, and leaving every
//! other controller and namespace alone.
//!
//! The dump target is named in the settings by what identifies it across
//! boots: the controller's serial number (Identify Controller SN) and the
//! namespace id (`dump_serial=`, `dump_nsid=`). A PCI address changes between
//! boots, so it is only an extra constraint (`dump_pci=`), or a hint from the
//! crashed kernel, which saw the controller with that serial at an address in
//! the boot that crashed (`dump_seen_at=`, or `none` when it looked and found
//! none).
//!
//! Learning a controller's serial number takes an Identify, so a controller
//! must be reset and enabled to be identified: the recovery kernel brings up
//! only a controller that the constraint or the hint singles out, or the only
//! NVMe controller of the machine, and checks its serial number before any
//! write. Anything else is a [`TargetError`] and no write at all: no target
//! named, the named one absent, several candidates and nothing to tell them
//! apart without touching the others.
//!
//! The extent is given in bytes (`dump_offset=`, `dump_size=`, with `K`/`M`/`G`
//! suffixes for KiB/MiB/GiB) or in the target's own blocks, said explicitly
//! (`dump_lba=`, `dump_blocks=`: blocks of the namespace's format, whatever
//! its size), and checked against the namespace.

use core::fmt;

use paranoid::pci::PciAddress;

/// Bytes of an NVMe serial number (Identify Controller SN, bytes 4..23).
pub const SERIAL_LEN: usize = 20;

/// A controller serial number: printable ASCII, at most 20 bytes, without
/// the trailing spaces of the Identify data.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Serial {
    bytes: [u8; SERIAL_LEN],
    len: u8,
}

impl Serial {
    /// A serial number from text (trailing spaces and NULs dropped).
    ///
    /// # Errors
    ///
    /// `None` when empty, longer than 20 bytes, or not printable ASCII.
    pub fn new(text: &[u8]) -> Option<Self> {
        let end = text
            .iter()
            .rposition(|&b| b != b' ' && b != 0)
            .map_or(0, |i| i + 1);
        let text = text.get(..end)?;
        if text.is_empty()
            || text.len() > SERIAL_LEN
            || !text.iter().all(|b| (0x20..0x7f).contains(b))
        {
            return None;
        }
        let mut bytes = [0; SERIAL_LEN];
        bytes.get_mut(..text.len())?.copy_from_slice(text);
        Some(Self {
            bytes,
            len: text.len() as u8,
        })
    }

    /// The serial number as text.
    pub fn as_str(&self) -> &str {
        let b = self.bytes.get(..usize::from(self.len)).unwrap_or(&[]);
        core::str::from_utf8(b).unwrap_or("")
    }
}

impl fmt::Debug for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the crashed kernel said about the target in the boot that crashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeenAt {
    /// Nothing (it crashed before looking, or is not a paranoid kernel).
    Unknown,
    /// It looked at every NVMe controller and none had the serial number.
    Nowhere,
    /// The controller with the serial number was at this address.
    At(PciAddress),
}

/// The dump target as the settings name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetSpec {
    /// Controller serial number (`dump_serial=`); `None`: no target named.
    pub serial: Option<Serial>,
    /// Namespace id (`dump_nsid=`, default 1).
    pub nsid: u32,
    /// Extra constraint: the controller's PCI address (`dump_pci=`).
    pub pci: Option<PciAddress>,
    /// The crashed kernel's hint (`dump_seen_at=`).
    pub seen_at: SeenAt,
}

impl Default for TargetSpec {
    fn default() -> Self {
        Self {
            serial: None,
            nsid: 1,
            pci: None,
            seen_at: SeenAt::Unknown,
        }
    }
}

/// The dump extent as the settings give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extent {
    /// Byte offset and length in the namespace (`dump_offset=`, `dump_size=`);
    /// both must be multiples of the namespace's block size.
    Bytes {
        /// First byte.
        offset: u64,
        /// Length in bytes.
        len: u64,
    },
    /// In the target namespace's own blocks (`dump_lba=`, `dump_blocks=`).
    Blocks {
        /// First block.
        lba: u64,
        /// Number of blocks.
        count: u64,
    },
}

/// The extent resolved against the target's format: in its blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedExtent {
    /// First block.
    pub lba: u64,
    /// Number of blocks.
    pub blocks: u64,
    /// The namespace's block size these count in.
    pub block_size: u32,
}

impl ResolvedExtent {
    /// First byte.
    pub fn offset_bytes(&self) -> u64 {
        self.lba.saturating_mul(u64::from(self.block_size))
    }
    /// Length in bytes.
    pub fn len_bytes(&self) -> u64 {
        self.blocks.saturating_mul(u64::from(self.block_size))
    }
}

/// Why the recovery kernel will not write: the report names it, and the
/// result line carries [`TargetError::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetError {
    /// The settings name no dump target.
    NotNamed,
    /// No NVMe controller can be the named one (none on the machine, none at
    /// the constrained address, or the crashed kernel found none with the
    /// serial number).
    Absent {
        /// The serial number looked for.
        serial: Serial,
        /// NVMe controllers on the machine.
        controllers: usize,
    },
    /// Several controllers could be the target and nothing tells them apart
    /// without resetting the others.
    Ambiguous {
        /// How many.
        candidates: usize,
    },
    /// The controller brought up has another serial number.
    SerialMismatch {
        /// Named.
        want: Serial,
        /// Found (`None`: not printable ASCII).
        found: Option<Serial>,
        /// Where.
        address: PciAddress,
    },
    /// The namespace id is not an active namespace of the target.
    NamespaceAbsent {
        /// The namespace id.
        nsid: u32,
    },
    /// The namespace's format cannot be written by the driver (metadata,
    /// protection information, block size).
    Format {
        /// The namespace id.
        nsid: u32,
    },
    /// The extent in bytes is not a multiple of the block size.
    ExtentMisaligned {
        /// Offset given.
        offset: u64,
        /// Length given.
        len: u64,
        /// The namespace's block size.
        block_size: u32,
    },
    /// The extent is empty or runs past the end of the namespace.
    ExtentOutside {
        /// First block past the extent (in the namespace's blocks).
        end: u64,
        /// Blocks in the namespace.
        namespace_blocks: u64,
    },
}

impl TargetError {
    /// A stable kebab-case name for result lines and scripts.
    pub fn name(&self) -> &'static str {
        match self {
            Self::NotNamed => "not-named",
            Self::Absent { .. } => "absent",
            Self::Ambiguous { .. } => "ambiguous",
            Self::SerialMismatch { .. } => "serial-mismatch",
            Self::NamespaceAbsent { .. } => "namespace-absent",
            Self::Format { .. } => "format",
            Self::ExtentMisaligned { .. } => "extent-misaligned",
            Self::ExtentOutside { .. } => "extent-outside",
        }
    }
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotNamed => write!(
                f,
                "no dump target named: set dump_serial= (and dump_nsid=) to the namespace that may be written"
            ),
            Self::Absent { serial, controllers } => write!(
                f,
                "no NVMe controller with serial {serial} ({controllers} controller(s) on the machine)"
            ),
            Self::Ambiguous { candidates } => write!(
                f,
                "{candidates} NVMe controllers could be the target and none is singled out: \
                 add dump_pci= to name its address (identifying them would reset the others)"
            ),
            Self::SerialMismatch {
                want,
                found,
                address,
            } => match found {
                Some(s) => write!(f, "the controller at {address} has serial {s}, not {want}"),
                None => write!(f, "the controller at {address} reports no valid serial (want {want})"),
            },
            Self::NamespaceAbsent { nsid } => {
                write!(f, "namespace {nsid} is not an active namespace of the target")
            }
            Self::Format { nsid } => write!(f, "namespace {nsid} has a format the driver cannot write"),
            Self::ExtentMisaligned {
                offset,
                len,
                block_size,
            } => write!(
                f,
                "dump extent {offset}+{len} bytes is not a multiple of the {block_size}-byte block size"
            ),
            Self::ExtentOutside {
                end,
                namespace_blocks,
            } => write!(
                f,
                "dump extent ends at block {end}, the namespace has {namespace_blocks} blocks"
            ),
        }
    }
}

/// Picks the one controller that may be brought up to serve as the target,
/// from the NVMe controllers on the machine (in topology order).
///
/// # Errors
///
/// [`TargetError::NotNamed`], [`TargetError::Absent`] or
/// [`TargetError::Ambiguous`]; nothing is touched then.
pub fn choose(spec: &TargetSpec, controllers: &[PciAddress]) -> Result<PciAddress, TargetError> {
    let serial = spec.serial.ok_or(TargetError::NotNamed)?;
    let absent = TargetError::Absent {
        serial,
        controllers: controllers.len(),
    };
    let allowed = |a: &&PciAddress| spec.pci.is_none_or(|p| p == **a);
    let mut candidates = controllers.iter().filter(allowed);
    let first = *candidates.next().ok_or(absent)?;
    let more = candidates.count();
    match spec.seen_at {
        SeenAt::Nowhere => Err(absent),
        SeenAt::At(hint) => {
            if controllers.iter().filter(allowed).any(|a| *a == hint) {
                Ok(hint)
            } else if more == 0 {
                // The address moved (or the hint is wrong): the one candidate
                // is still checked by its serial number before any write.
                Ok(first)
            } else {
                Err(TargetError::Ambiguous {
                    candidates: more + 1,
                })
            }
        }
        SeenAt::Unknown if more == 0 => Ok(first),
        SeenAt::Unknown => Err(TargetError::Ambiguous {
            candidates: more + 1,
        }),
    }
}

/// Checks the serial number Identify reported (raw SN bytes) against the
/// named one.
///
/// # Errors
///
/// [`TargetError::SerialMismatch`].
pub fn check_serial(
    spec: &TargetSpec,
    address: PciAddress,
    identify_sn: &[u8],
) -> Result<(), TargetError> {
    let want = spec.serial.ok_or(TargetError::NotNamed)?;
    let found = Serial::new(identify_sn);
    if found == Some(want) {
        Ok(())
    } else {
        Err(TargetError::SerialMismatch {
            want,
            found,
            address,
        })
    }
}

/// Resolves the extent against the target namespace: its block size and size
/// in blocks.
///
/// # Errors
///
/// [`TargetError::ExtentMisaligned`] or [`TargetError::ExtentOutside`].
pub fn resolve_extent(
    extent: Extent,
    block_size: u32,
    namespace_blocks: u64,
) -> Result<ResolvedExtent, TargetError> {
    let bs = u64::from(block_size.max(1));
    let (lba, blocks) = match extent {
        Extent::Blocks { lba, count } => (lba, count),
        Extent::Bytes { offset, len } => {
            if offset % bs != 0 || len % bs != 0 {
                return Err(TargetError::ExtentMisaligned {
                    offset,
                    len,
                    block_size,
                });
            }
            (offset / bs, len / bs)
        }
    };
    let outside = TargetError::ExtentOutside {
        end: lba.saturating_add(blocks),
        namespace_blocks,
    };
    match lba.checked_add(blocks) {
        Some(end) if blocks > 0 && end <= namespace_blocks => Ok(ResolvedExtent {
            lba,
            blocks,
            block_size,
        }),
        _ => Err(outside),
    }
}

/// Parses a PCI address `SSSS:BB:DD.F` or `BB:DD.F` (hex).
pub fn parse_pci(text: &str) -> Option<PciAddress> {
    let (seg, rest) = match text.matches(':').count() {
        2 => {
            let (s, r) = text.split_once(':')?;
            (u16::from_str_radix(s, 16).ok()?, r)
        }
        1 => (0, text),
        _ => return None,
    };
    let (bus, rest) = rest.split_once(':')?;
    let (dev, func) = rest.split_once('.')?;
    PciAddress::new(
        seg,
        u8::from_str_radix(bus, 16).ok()?,
        u8::from_str_radix(dev, 16).ok()?,
        u8::from_str_radix(func, 16).ok()?,
    )
    .ok()
}

/// Parses a byte count with an optional `K`, `M`, `G` (or `KiB`, `MiB`,
/// `GiB`) suffix, or `0x` hex.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let (digits, shift) = [
        ("KiB", 10),
        ("MiB", 20),
        ("GiB", 30),
        ("K", 10),
        ("M", 20),
        ("G", 30),
    ]
    .iter()
    .find_map(|(s, sh)| text.strip_suffix(s).map(|d| (d, *sh)))
    .unwrap_or((text, 0));
    let n = match digits.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None => digits.parse().ok()?,
    };
    n.checked_mul(1u64 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(bus: u8, dev: u8) -> PciAddress {
        PciAddress::new(0, bus, dev, 0).unwrap()
    }

    fn spec(serial: &str) -> TargetSpec {
        TargetSpec {
            serial: Serial::new(serial.as_bytes()),
            ..TargetSpec::default()
        }
    }

    #[test]
    fn serial_numbers_are_trimmed_and_checked() {
        assert_eq!(
            Serial::new(b"paranoid0           ").unwrap().as_str(),
            "paranoid0"
        );
        assert!(Serial::new(b"").is_none());
        assert!(Serial::new(b"                    ").is_none());
        assert!(Serial::new(&[0xff; 20]).is_none());
        assert!(Serial::new(b"123456789012345678901").is_none());
    }

    #[test]
    fn nothing_named_nothing_chosen() {
        assert_eq!(
            choose(&TargetSpec::default(), &[a(0, 4)]),
            Err(TargetError::NotNamed)
        );
    }

    #[test]
    fn the_only_controller_is_chosen_to_be_checked() {
        assert_eq!(choose(&spec("x"), &[a(1, 0)]), Ok(a(1, 0)));
        assert!(matches!(
            choose(&spec("x"), &[]),
            Err(TargetError::Absent { controllers: 0, .. })
        ));
    }

    #[test]
    fn several_controllers_need_a_hint_or_a_constraint() {
        let two = [a(0, 4), a(0, 5)];
        assert_eq!(
            choose(&spec("x"), &two),
            Err(TargetError::Ambiguous { candidates: 2 })
        );
        let hinted = TargetSpec {
            seen_at: SeenAt::At(a(0, 5)),
            ..spec("x")
        };
        assert_eq!(
            choose(&hinted, &two),
            Ok(a(0, 5)),
            "not the first in bus order"
        );
        let pinned = TargetSpec {
            pci: Some(a(0, 4)),
            ..spec("x")
        };
        assert_eq!(choose(&pinned, &two), Ok(a(0, 4)));
        // A hint that contradicts the constraint does not pick a third device.
        let both = TargetSpec {
            pci: Some(a(0, 4)),
            seen_at: SeenAt::At(a(0, 5)),
            ..spec("x")
        };
        assert_eq!(choose(&both, &two), Ok(a(0, 4)));
        let stale_hint = TargetSpec {
            seen_at: SeenAt::At(a(7, 0)),
            ..spec("x")
        };
        assert_eq!(
            choose(&stale_hint, &two),
            Err(TargetError::Ambiguous { candidates: 2 })
        );
    }

    #[test]
    fn the_crashed_kernel_saying_nowhere_touches_nothing() {
        let s = TargetSpec {
            seen_at: SeenAt::Nowhere,
            ..spec("x")
        };
        assert!(matches!(
            choose(&s, &[a(0, 4)]),
            Err(TargetError::Absent { .. })
        ));
        let pinned_elsewhere = TargetSpec {
            pci: Some(a(3, 0)),
            ..spec("x")
        };
        assert!(matches!(
            choose(&pinned_elsewhere, &[a(0, 4)]),
            Err(TargetError::Absent { .. })
        ));
    }

    #[test]
    fn serial_checked_before_any_write() {
        let s = spec("paranoid0");
        assert_eq!(check_serial(&s, a(0, 4), b"paranoid0           "), Ok(()));
        assert!(matches!(
            check_serial(&s, a(0, 4), b"shared0             "),
            Err(TargetError::SerialMismatch { found: Some(_), .. })
        ));
        assert!(matches!(
            check_serial(&s, a(0, 4), &[0xff; 20]),
            Err(TargetError::SerialMismatch { found: None, .. })
        ));
    }

    #[test]
    fn extents_resolve_in_the_namespace_blocks() {
        let bytes = Extent::Bytes {
            offset: 1 << 20,
            len: 400 << 20,
        };
        assert_eq!(
            resolve_extent(bytes, 512, 1 << 20),
            Ok(ResolvedExtent {
                lba: 2048,
                blocks: 819_200,
                block_size: 512
            })
        );
        let r = resolve_extent(bytes, 4096, 1 << 17).unwrap();
        assert_eq!((r.lba, r.blocks, r.offset_bytes()), (256, 102_400, 1 << 20));
        assert!(matches!(
            resolve_extent(
                Extent::Bytes {
                    offset: 512,
                    len: 4096
                },
                4096,
                1 << 20
            ),
            Err(TargetError::ExtentMisaligned { .. })
        ));
        assert!(matches!(
            resolve_extent(bytes, 4096, 1000),
            Err(TargetError::ExtentOutside { .. })
        ));
        assert!(matches!(
            resolve_extent(
                Extent::Blocks {
                    lba: u64::MAX,
                    count: 2
                },
                512,
                u64::MAX
            ),
            Err(TargetError::ExtentOutside { .. })
        ));
        assert!(matches!(
            resolve_extent(Extent::Blocks { lba: 0, count: 0 }, 512, 10),
            Err(TargetError::ExtentOutside { .. })
        ));
    }

    #[test]
    fn addresses_and_sizes_parse() {
        assert_eq!(parse_pci("0000:01:00.0"), Some(a(1, 0)));
        assert_eq!(parse_pci("03:1f.7"), PciAddress::new(0, 3, 0x1f, 7).ok());
        assert_eq!(parse_pci("00:20.0"), None);
        assert_eq!(parse_pci("junk"), None);
        assert_eq!(parse_bytes("1M"), Some(1 << 20));
        assert_eq!(parse_bytes("400MiB"), Some(400 << 20));
        assert_eq!(parse_bytes("0x1000"), Some(4096));
        assert_eq!(parse_bytes("17179869184G"), None);
        assert_eq!(parse_bytes("M"), None);
    }
}
