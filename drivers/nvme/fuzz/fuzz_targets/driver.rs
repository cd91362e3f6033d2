//! cargo-fuzz target: raw completions posted by the model during init and I/O;
//! the driver is held to the campaign oracle.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(why) = paranoid_nvme::model::fuzz::driver(data) {
        panic!("{why}");
    }
});
