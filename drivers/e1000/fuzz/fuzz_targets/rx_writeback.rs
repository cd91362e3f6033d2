//! Receive descriptor write-backs with arbitrary content, fed to a ready
//! driver; the oracle is `paranoid_e1000::model::fuzz::rx_writeback`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    paranoid_e1000::model::fuzz::rx_writeback(data);
});
