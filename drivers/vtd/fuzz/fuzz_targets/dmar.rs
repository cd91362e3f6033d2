//! Fuzzes the ACPI walk and the DMAR parser.
//!
//! `cd drivers/vtd/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run dmar -- -max_total_time=600`
#![no_main]

use libfuzzer_sys::fuzz_target;
use paranoid_vtd::acpi::dmar::build;
use paranoid_vtd::acpi::fuzzing;

fuzz_target!(|data: &[u8]| {
    // As found, and with the checksum repaired so the structure parser runs.
    build::exercise(data);
    let mut fixed = data.to_vec();
    build::fix_checksum(&mut fixed);
    build::exercise(&fixed);
    // As physical memory holding an RSDP, an XSDT and the table.
    fuzzing::walk_image(data);
});
