//! Transmit descriptor write-backs (status bytes) with arbitrary content, fed
//! to a ready driver; the oracle is `paranoid_e1000::model::fuzz::tx_writeback`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    paranoid_e1000::model::fuzz::tx_writeback(data);
});
