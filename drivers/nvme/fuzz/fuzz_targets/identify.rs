//! cargo-fuzz target: `paranoid_nvme::model::fuzz::identify` must hold for any input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(why) = paranoid_nvme::model::fuzz::identify(data) {
        panic!("{why}");
    }
});
