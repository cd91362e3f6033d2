//! ACPI: the DMAR table, found through the HAL's one table walker.
//!
//! Finding the RSDP and walking the RSDT/XSDT is [`paranoid::acpi`]'s job (the
//! same walker the kernels use for MCFG and the FADT); this module re-exports it
//! and adds the DMAR parser, which builds on its [`SdtHeader`], checksum and
//! little-endian readers. Firmware tables are as untrusted as device registers
//! once a kernel has died on top of them, so every length, offset and checksum
//! is checked and a bad table is an [`AcpiError`], never a panic or a read past
//! the bytes we fetched. Physical memory is read through [`PhysRead`], so host
//! tests and the fuzzer feed arbitrary bytes.

pub mod dmar;

pub use dmar::{
    Atsr, DeviceScope, DeviceScopeKind, Dmar, DmarFlags, Drhd, RemappingStructure, Rmrr,
};
pub(crate) use paranoid::acpi::{checksum, le};
pub use paranoid::acpi::{
    find_rsdp, find_table, rsdp, sdt, AcpiError, Rsdp, RsdpSource, SdtHeader, SDT_HEADER_LEN,
};
pub use paranoid::phys::{PhysError, PhysRead, SliceMemory};

/// Fuzzing helpers (feature `model`): run the whole RSDP → XSDT → DMAR path
/// over arbitrary bytes.
#[cfg(feature = "model")]
pub mod fuzzing {
    use super::{find_rsdp, find_table, Dmar, SliceMemory};

    /// Lays `table` out as physical memory behind a valid RSDP and XSDT (and
    /// also treats the raw bytes as memory to scan), then runs the walk and the
    /// parser. Never panics on any input; that is the property fuzzed.
    pub fn walk_image(table: &[u8]) {
        // The bytes themselves as low memory: a scan for an RSDP in them.
        let raw = SliceMemory {
            base: 0xe_0000,
            bytes: table,
        };
        if let Ok(r) = find_rsdp(&raw, None) {
            let mut buf = [0u8; 4096];
            let _ = find_table(&raw, &r, *b"DMAR", &mut buf);
        }
        // A well-formed RSDP and XSDT pointing at the table.
        let mut image = std::vec![0u8; 0x100];
        image[..36].copy_from_slice(&paranoid::acpi::build::build_v2(0, 0x40));
        let xsdt = paranoid::acpi::build::build_table(*b"XSDT", 1, &0x100u64.to_le_bytes());
        image[0x40..0x40 + xsdt.len()].copy_from_slice(&xsdt);
        image.extend_from_slice(table);
        let mem = SliceMemory {
            base: 0,
            bytes: &image,
        };
        if let Ok(r) = find_rsdp(&mem, Some(0)) {
            let mut buf = [0u8; 2048];
            if let Ok(t) = find_table(&mem, &r, *b"DMAR", &mut buf) {
                if let Ok(d) = Dmar::parse(t) {
                    let _ = d.structures().count();
                }
            }
        }
    }
}
