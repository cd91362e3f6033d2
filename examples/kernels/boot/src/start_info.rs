//! The PVH start info (`struct hvm_start_info`), parsed defensively.
//!
//! Layout from Xen's `xen/include/public/arch-x86/hvm/start_info.h`. The loader
//! (QEMU's PVH option ROM, or a kernel handing over with
//! [`crate::handoff`]) writes it; the parser reads it by copy through a
//! [`PhysRead`] (the boot identity map), bounds every count and length, and copies what it
//! keeps into fixed-size arrays, so nothing the loader wrote is trusted to be
//! well formed and nothing points back into it afterwards.

use core::fmt;

use paranoid::phys::PhysRead;

/// `hvm_start_info.magic`.
pub const START_INFO_MAGIC: u32 = 0x336e_c578;
/// At most this many modules are kept (more is an error).
pub const MAX_MODULES: usize = 8;
/// At most this many memory-map entries are kept (more is an error).
pub const MAX_MEMORY_REGIONS: usize = 64;
/// Longest command line accepted, in bytes (without the NUL).
pub const MAX_CMDLINE: usize = 1024;
/// Everything the start info points at must lie below this: `ebx` and the PVH
/// fields a loader fills are 32-bit in practice, and the other kernels'
/// handoff code keeps its blocks there.
pub const ADDRESSABLE_LIMIT: u64 = 1 << 32;
/// The boot page tables identity-map every address below this: RAM in the
/// memory map above the 4 GiB hole is readable up to here (`entry.S`, 64 page
/// directories of 2 MiB pages; write-back, but 2..4 GiB uncached except the
/// RAM the memory map lists there, [`crate::paging`]).
pub const IDENTITY_LIMIT: u64 = 64 << 30;
/// The boot code reads the start info, its command line, module list and
/// memory map below this (2 GiB): before the memory map is read, the part of
/// the identity map that holds RAM and firmware data on every PC is known,
/// the rest of 2..4 GiB may be device memory. QEMU's PVH loader puts them
/// below 1 MiB, [`crate::handoff::write_start_info`] refuses a block that is
/// not below this. The modules themselves may lie anywhere in low RAM.
pub const START_INFO_LIMIT: u64 = crate::paging::UNCACHED_FROM;

/// `struct hvm_start_info` (version 1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct HvmStartInfo {
    /// [`START_INFO_MAGIC`].
    pub magic: u32,
    /// Structure version; 1 adds the memory map.
    pub version: u32,
    /// SIF_* flags.
    pub flags: u32,
    /// Number of entries at `modlist_paddr`.
    pub nr_modules: u32,
    /// Physical address of an array of [`HvmModlistEntry`].
    pub modlist_paddr: u64,
    /// Physical address of the NUL-terminated command line (0: none).
    pub cmdline_paddr: u64,
    /// Physical address of the ACPI RSDP (0: none).
    pub rsdp_paddr: u64,
    /// Physical address of an array of [`HvmMemmapEntry`] (version 1).
    pub memmap_paddr: u64,
    /// Number of entries at `memmap_paddr` (version 1).
    pub memmap_entries: u32,
    /// Must be zero.
    pub reserved: u32,
}

/// `struct hvm_modlist_entry`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct HvmModlistEntry {
    /// Physical address of the module.
    pub paddr: u64,
    /// Size in bytes.
    pub size: u64,
    /// Physical address of the module's command line (0: none).
    pub cmdline_paddr: u64,
    /// Must be zero.
    pub reserved: u64,
}

/// `struct hvm_memmap_table_entry` (E820 semantics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct HvmMemmapEntry {
    /// Start of the range.
    pub addr: u64,
    /// Length of the range.
    pub size: u64,
    /// E820 type, see [`MemoryKind`].
    pub kind: u32,
    /// Must be zero.
    pub reserved: u32,
}

/// Little-endian fields of a loader structure, in declaration order: the
/// one layout the parser reads and [`crate::handoff`] writes.
struct Fields<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Fields<'_> {
    fn u32(&mut self) -> u32 {
        let v = self
            .bytes
            .get(self.at..self.at + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_le_bytes);
        self.at += 4;
        v
    }

    fn u64(&mut self) -> u64 {
        let v = self
            .bytes
            .get(self.at..self.at + 8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_le_bytes);
        self.at += 8;
        v
    }
}

/// Writes little-endian fields in declaration order.
struct Out<const N: usize> {
    bytes: [u8; N],
    at: usize,
}

impl<const N: usize> Out<N> {
    const fn new() -> Self {
        Self {
            bytes: [0; N],
            at: 0,
        }
    }

    fn put(mut self, le: &[u8]) -> Self {
        if let Some(slot) = self.bytes.get_mut(self.at..self.at + le.len()) {
            slot.copy_from_slice(le);
        }
        self.at += le.len();
        self
    }
}

impl HvmStartInfo {
    /// Bytes of the structure (`repr(C)`, no padding).
    pub const LEN: usize = 56;

    /// The structure from its little-endian bytes.
    pub fn from_le_bytes(b: &[u8; Self::LEN]) -> Self {
        let mut f = Fields { bytes: b, at: 0 };
        Self {
            magic: f.u32(),
            version: f.u32(),
            flags: f.u32(),
            nr_modules: f.u32(),
            modlist_paddr: f.u64(),
            cmdline_paddr: f.u64(),
            rsdp_paddr: f.u64(),
            memmap_paddr: f.u64(),
            memmap_entries: f.u32(),
            reserved: f.u32(),
        }
    }

    /// The structure's little-endian bytes.
    pub fn to_le_bytes(&self) -> [u8; Self::LEN] {
        Out::<{ Self::LEN }>::new()
            .put(&self.magic.to_le_bytes())
            .put(&self.version.to_le_bytes())
            .put(&self.flags.to_le_bytes())
            .put(&self.nr_modules.to_le_bytes())
            .put(&self.modlist_paddr.to_le_bytes())
            .put(&self.cmdline_paddr.to_le_bytes())
            .put(&self.rsdp_paddr.to_le_bytes())
            .put(&self.memmap_paddr.to_le_bytes())
            .put(&self.memmap_entries.to_le_bytes())
            .put(&self.reserved.to_le_bytes())
            .bytes
    }
}

impl HvmModlistEntry {
    /// Bytes of the structure.
    pub const LEN: usize = 32;

    /// The structure from its little-endian bytes.
    pub fn from_le_bytes(b: &[u8; Self::LEN]) -> Self {
        let mut f = Fields { bytes: b, at: 0 };
        Self {
            paddr: f.u64(),
            size: f.u64(),
            cmdline_paddr: f.u64(),
            reserved: f.u64(),
        }
    }

    /// The structure's little-endian bytes.
    pub fn to_le_bytes(&self) -> [u8; Self::LEN] {
        Out::<{ Self::LEN }>::new()
            .put(&self.paddr.to_le_bytes())
            .put(&self.size.to_le_bytes())
            .put(&self.cmdline_paddr.to_le_bytes())
            .put(&self.reserved.to_le_bytes())
            .bytes
    }
}

impl HvmMemmapEntry {
    /// Bytes of the structure.
    pub const LEN: usize = 24;

    /// The structure from its little-endian bytes.
    pub fn from_le_bytes(b: &[u8; Self::LEN]) -> Self {
        let mut f = Fields { bytes: b, at: 0 };
        Self {
            addr: f.u64(),
            size: f.u64(),
            kind: f.u32(),
            reserved: f.u32(),
        }
    }

    /// The structure's little-endian bytes.
    pub fn to_le_bytes(&self) -> [u8; Self::LEN] {
        Out::<{ Self::LEN }>::new()
            .put(&self.addr.to_le_bytes())
            .put(&self.size.to_le_bytes())
            .put(&self.kind.to_le_bytes())
            .put(&self.reserved.to_le_bytes())
            .bytes
    }
}

const _: () = assert!(HvmStartInfo::LEN == size_of::<HvmStartInfo>());
const _: () = assert!(HvmModlistEntry::LEN == size_of::<HvmModlistEntry>());
const _: () = assert!(HvmMemmapEntry::LEN == size_of::<HvmMemmapEntry>());

/// Why the start info was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartInfoError {
    /// `ebx` was zero.
    Null,
    /// The magic field did not read [`START_INFO_MAGIC`].
    BadMagic {
        /// The value found.
        found: u32,
    },
    /// More modules than [`MAX_MODULES`].
    TooManyModules {
        /// Count claimed by the start info.
        count: u32,
    },
    /// More memory-map entries than [`MAX_MEMORY_REGIONS`].
    TooManyRegions {
        /// Count claimed by the start info.
        count: u32,
    },
    /// A structure the start info points at is not inside addressable memory.
    OutOfRange {
        /// Which field.
        what: &'static str,
        /// Its physical address.
        addr: u64,
        /// Its length in bytes.
        len: u64,
    },
    /// The command line has no NUL within [`MAX_CMDLINE`] bytes.
    CmdlineTooLong,
    /// The command line is not UTF-8.
    CmdlineNotUtf8 {
        /// Offset of the first bad byte.
        at: usize,
    },
    /// A memory-map entry wraps around the address space.
    RegionOverflow {
        /// Start of the entry.
        addr: u64,
        /// Its size.
        size: u64,
    },
}

impl fmt::Display for StartInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Null => write!(f, "no start info (ebx = 0)"),
            Self::BadMagic { found } => {
                write!(
                    f,
                    "start info magic {found:#x}, expected {START_INFO_MAGIC:#x}"
                )
            }
            Self::TooManyModules { count } => {
                write!(f, "{count} modules, at most {MAX_MODULES} supported")
            }
            Self::TooManyRegions { count } => {
                write!(
                    f,
                    "{count} memory-map entries, at most {MAX_MEMORY_REGIONS} supported"
                )
            }
            Self::OutOfRange { what, addr, len } => {
                write!(
                    f,
                    "{what} at {addr:#x}+{len:#x} is outside the identity map"
                )
            }
            Self::CmdlineTooLong => write!(f, "command line longer than {MAX_CMDLINE} bytes"),
            Self::CmdlineNotUtf8 { at } => write!(f, "command line not UTF-8 at byte {at}"),
            Self::RegionOverflow { addr, size } => {
                write!(f, "memory-map entry {addr:#x}+{size:#x} wraps")
            }
        }
    }
}

/// E820 memory types (ACPI 6.5, 15.1 "Address Range Types").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryKind {
    /// 1: usable RAM.
    Ram,
    /// 2: reserved.
    Reserved,
    /// 3: ACPI tables, reclaimable.
    AcpiReclaimable,
    /// 4: ACPI non-volatile storage.
    AcpiNvs,
    /// 5: unusable (errors detected).
    Unusable,
    /// 6: disabled.
    Disabled,
    /// 7: persistent memory.
    Persistent,
    /// Any other value.
    Other(u32),
}

impl MemoryKind {
    /// Decodes an E820 type.
    pub const fn from_raw(raw: u32) -> Self {
        match raw {
            1 => Self::Ram,
            2 => Self::Reserved,
            3 => Self::AcpiReclaimable,
            4 => Self::AcpiNvs,
            5 => Self::Unusable,
            6 => Self::Disabled,
            7 => Self::Persistent,
            other => Self::Other(other),
        }
    }

    /// The E820 type value.
    pub const fn raw(self) -> u32 {
        match self {
            Self::Ram => 1,
            Self::Reserved => 2,
            Self::AcpiReclaimable => 3,
            Self::AcpiNvs => 4,
            Self::Unusable => 5,
            Self::Disabled => 6,
            Self::Persistent => 7,
            Self::Other(other) => other,
        }
    }
}

impl fmt::Display for MemoryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ram => write!(f, "ram"),
            Self::Reserved => write!(f, "reserved"),
            Self::AcpiReclaimable => write!(f, "acpi"),
            Self::AcpiNvs => write!(f, "acpi-nvs"),
            Self::Unusable => write!(f, "unusable"),
            Self::Disabled => write!(f, "disabled"),
            Self::Persistent => write!(f, "pmem"),
            Self::Other(v) => write!(f, "type-{v}"),
        }
    }
}

/// One memory-map entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryRegion {
    /// First byte.
    pub start: u64,
    /// Length in bytes (start + size does not overflow).
    pub size: u64,
    /// Type.
    pub kind: MemoryKind,
}

impl MemoryRegion {
    /// One past the last byte.
    pub const fn end(&self) -> u64 {
        self.start + self.size
    }
}

/// A module the loader placed in memory (`-initrd` under QEMU).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Module {
    /// Physical address.
    pub start: u64,
    /// Size in bytes.
    pub size: u64,
}

impl Module {
    /// One past the last byte.
    pub const fn end(&self) -> u64 {
        self.start + self.size
    }
}

/// The kernel command line: whitespace-separated words, `key=value` or `flag`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cmdline<'a>(&'a str);

impl<'a> Cmdline<'a> {
    /// Wraps a command line.
    pub const fn new(s: &'a str) -> Self {
        Self(s)
    }

    /// The whole line.
    pub const fn as_str(&self) -> &'a str {
        self.0
    }

    /// The value of the first `key=value` word with this key.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.0.split_ascii_whitespace().find_map(|word| {
            let (k, v) = word.split_once('=')?;
            (k == key).then_some(v)
        })
    }

    /// True when `key` appears as a bare word or with a value.
    pub fn has(&self, key: &str) -> bool {
        self.0
            .split_ascii_whitespace()
            .any(|word| word == key || word.split_once('=').is_some_and(|(k, _)| k == key))
    }

    /// The `key=value` pairs (a bare word has an empty value).
    pub fn pairs(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.0
            .split_ascii_whitespace()
            .map(|word| word.split_once('=').unwrap_or((word, "")))
    }
}

/// What the start info told us, copied out of loader memory.
#[derive(Clone)]
pub struct StartInfo {
    address: u64,
    version: u32,
    flags: u32,
    cmdline: [u8; MAX_CMDLINE],
    cmdline_len: usize,
    modules: [Module; MAX_MODULES],
    module_count: usize,
    rsdp: Option<u64>,
    regions: [MemoryRegion; MAX_MEMORY_REGIONS],
    region_count: usize,
}

/// Checks that `addr..addr + len` is inside the identity map.
fn addressable(what: &'static str, addr: u64, len: u64) -> Result<(), StartInfoError> {
    match addr.checked_add(len) {
        Some(end) if addr != 0 && end <= ADDRESSABLE_LIMIT => Ok(()),
        _ => Err(StartInfoError::OutOfRange { what, addr, len }),
    }
}

/// Reads `N` bytes at `addr` through `mem`, after checking they lie in
/// addressable memory; a range `mem` cannot read is the same
/// [`StartInfoError::OutOfRange`].
fn read_bytes<const N: usize>(
    mem: &impl PhysRead,
    what: &'static str,
    addr: u64,
) -> Result<[u8; N], StartInfoError> {
    let len = N as u64;
    addressable(what, addr, len)?;
    let mut b = [0u8; N];
    mem.read(addr, &mut b)
        .map_err(|_| StartInfoError::OutOfRange { what, addr, len })?;
    Ok(b)
}

impl StartInfo {
    /// Parses the start info at physical address `address`.
    ///
    /// Everything is read through `mem` (the boot identity map below
    /// [`START_INFO_LIMIT`]; a byte buffer in tests), and must also lie below
    /// [`ADDRESSABLE_LIMIT`]. The *contents* may be anything: they are
    /// validated.
    ///
    /// # Errors
    ///
    /// A [`StartInfoError`] naming the first field that is out of bounds (or
    /// that `mem` cannot read).
    pub fn parse(mem: &impl PhysRead, address: u64) -> Result<Self, StartInfoError> {
        if address == 0 {
            return Err(StartInfoError::Null);
        }
        let raw = HvmStartInfo::from_le_bytes(&read_bytes(mem, "start info", address)?);
        if raw.magic != START_INFO_MAGIC {
            return Err(StartInfoError::BadMagic { found: raw.magic });
        }
        let mut info = StartInfo {
            address,
            version: raw.version,
            flags: raw.flags,
            cmdline: [0; MAX_CMDLINE],
            cmdline_len: 0,
            modules: [Module::default(); MAX_MODULES],
            module_count: 0,
            rsdp: (raw.rsdp_paddr != 0).then_some(raw.rsdp_paddr),
            regions: [MemoryRegion {
                start: 0,
                size: 0,
                kind: MemoryKind::Reserved,
            }; MAX_MEMORY_REGIONS],
            region_count: 0,
        };
        info.copy_cmdline(mem, raw.cmdline_paddr)?;
        info.copy_modules(mem, raw.modlist_paddr, raw.nr_modules)?;
        if raw.version >= 1 {
            info.copy_memmap(mem, raw.memmap_paddr, raw.memmap_entries)?;
        }
        Ok(info)
    }

    /// The command line at `paddr`, copied.
    fn copy_cmdline(&mut self, mem: &impl PhysRead, paddr: u64) -> Result<(), StartInfoError> {
        if paddr == 0 {
            return Ok(());
        }
        // The line may end near the top of the identity map: read at most what
        // is below it.
        let limit = ADDRESSABLE_LIMIT
            .saturating_sub(paddr)
            .min(MAX_CMDLINE as u64 + 1);
        addressable("command line", paddr, limit.max(1))?;
        let mut len = None;
        for i in 0..limit {
            let [b] = read_bytes::<1>(mem, "command line", paddr + i)?;
            if b == 0 {
                len = Some(i as usize);
                break;
            }
            if let Some(slot) = self.cmdline.get_mut(i as usize) {
                *slot = b;
            }
        }
        let len = len.ok_or(StartInfoError::CmdlineTooLong)?;
        if len > MAX_CMDLINE {
            return Err(StartInfoError::CmdlineTooLong);
        }
        let bytes = self.cmdline.get(..len).unwrap_or(&[]);
        if let Err(e) = core::str::from_utf8(bytes) {
            return Err(StartInfoError::CmdlineNotUtf8 {
                at: e.valid_up_to(),
            });
        }
        self.cmdline_len = len;
        Ok(())
    }

    /// The module list at `paddr`, copied.
    fn copy_modules(
        &mut self,
        mem: &impl PhysRead,
        paddr: u64,
        count: u32,
    ) -> Result<(), StartInfoError> {
        if count == 0 {
            return Ok(());
        }
        if count as usize > MAX_MODULES {
            return Err(StartInfoError::TooManyModules { count });
        }
        let entry = size_of::<HvmModlistEntry>() as u64;
        addressable("module list", paddr, entry * u64::from(count))?;
        for (i, slot) in self.modules.iter_mut().take(count as usize).enumerate() {
            let m = HvmModlistEntry::from_le_bytes(&read_bytes(
                mem,
                "module list",
                paddr + entry * i as u64,
            )?);
            addressable("module", m.paddr, m.size)?;
            *slot = Module {
                start: m.paddr,
                size: m.size,
            };
        }
        self.module_count = count as usize;
        Ok(())
    }

    /// The memory map at `paddr`, copied.
    fn copy_memmap(
        &mut self,
        mem: &impl PhysRead,
        paddr: u64,
        count: u32,
    ) -> Result<(), StartInfoError> {
        if count == 0 {
            return Ok(());
        }
        if count as usize > MAX_MEMORY_REGIONS {
            return Err(StartInfoError::TooManyRegions { count });
        }
        let entry = size_of::<HvmMemmapEntry>() as u64;
        addressable("memory map", paddr, entry * u64::from(count))?;
        for (i, slot) in self.regions.iter_mut().take(count as usize).enumerate() {
            let e = HvmMemmapEntry::from_le_bytes(&read_bytes(
                mem,
                "memory map",
                paddr + entry * i as u64,
            )?);
            if e.addr.checked_add(e.size).is_none() {
                return Err(StartInfoError::RegionOverflow {
                    addr: e.addr,
                    size: e.size,
                });
            }
            *slot = MemoryRegion {
                start: e.addr,
                size: e.size,
                kind: MemoryKind::from_raw(e.kind),
            };
        }
        self.region_count = count as usize;
        Ok(())
    }

    /// Physical address the start info was read from.
    pub fn address(&self) -> u64 {
        self.address
    }

    /// Structure version (1 carries the memory map).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// SIF_* flags.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// The command line (empty when none was given).
    pub fn cmdline(&self) -> Cmdline<'_> {
        let bytes = self.cmdline.get(..self.cmdline_len).unwrap_or(&[]);
        // Validated as UTF-8 while parsing; an empty line is the fallback.
        Cmdline::new(core::str::from_utf8(bytes).unwrap_or(""))
    }

    /// Modules, in loader order.
    pub fn modules(&self) -> &[Module] {
        self.modules.get(..self.module_count).unwrap_or(&[])
    }

    /// Physical address of the ACPI RSDP, if the loader gave one.
    pub fn rsdp(&self) -> Option<u64> {
        self.rsdp
    }

    /// The memory map, in loader order.
    pub fn memory_map(&self) -> &[MemoryRegion] {
        self.regions.get(..self.region_count).unwrap_or(&[])
    }

    /// Total bytes of [`MemoryKind::Ram`].
    pub fn ram_bytes(&self) -> u64 {
        self.memory_map()
            .iter()
            .filter(|r| r.kind == MemoryKind::Ram)
            .fold(0u64, |acc, r| acc.saturating_add(r.size))
    }
}

impl fmt::Debug for StartInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartInfo")
            .field("address", &self.address)
            .field("version", &self.version)
            .field("cmdline", &self.cmdline().as_str())
            .field("modules", &self.modules())
            .field("rsdp", &self.rsdp)
            .field("memory_map", &self.memory_map())
            .finish()
    }
}
