//! Helpers shared by the e1000 integration tests.
#![allow(
    dead_code,
    reason = "shared by several test binaries, each using part of it (an expect would be unfulfilled in those that use it all)"
)]

use std::time::Duration;

use paranoid::init::InitTrace;
use paranoid::time::{Clock, Deadline};
use paranoid_e1000::model::{Harness, SimE1000};
use paranoid_e1000::E1000Error;

/// A test frame to `dst` from `src` with an experimental ethertype and a payload
/// derived from `seed`, `len` bytes long.
pub fn frame(dst: [u8; 6], src: [u8; 6], seed: u64, len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x88, 0xb5]);
    let mut x = seed | 1;
    while f.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        f.push(x as u8);
    }
    f.truncate(len);
    f
}

/// The absolute simulated time the first quiesce step ended, given the clock
/// reading at the start of init.
pub fn quiesce_end(trace: &InitTrace, origin_ns: u64) -> Option<u64> {
    trace
        .entries()
        .find(|e| e.step == "quiesce")
        .map(|e| origin_ns + (e.start + e.duration).as_nanos() as u64)
}

/// Sends `frame` through the driver, lets it loop back, and receives it.
pub fn round_trip(nic: &mut SimE1000, h: &Harness, frame: &[u8]) -> Result<Vec<u8>, E1000Error> {
    let deadline = Deadline::after(&h.clock, Duration::from_millis(50));
    nic.send(frame, deadline)?;
    let mut buf = vec![0u8; 2048];
    let deadline = Deadline::after(&h.clock, Duration::from_millis(50));
    let n = nic.receive_wait(&mut buf, deadline)?;
    buf.truncate(n);
    Ok(buf)
}

/// Drains whatever the receive ring holds (bounded).
pub fn drain(nic: &mut SimE1000) -> usize {
    let mut buf = vec![0u8; 2048];
    let mut n = 0;
    for _ in 0..256 {
        match nic.receive(&mut buf) {
            Ok(Some(_)) | Err(_) => n += 1,
            Ok(None) => break,
        }
    }
    n
}

/// Now on the harness clock.
pub fn now(h: &Harness) -> u64 {
    h.clock.now_ns()
}
