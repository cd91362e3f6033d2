//! Fuzz targets for malicious device replies: descriptor write-backs with
//! arbitrary content, fed to a ready driver. Shared by the in-suite proptest
//! run (`tests/fuzz.rs`) and the cargo-fuzz targets (`fuzz/`).

use std::time::Duration;

use paranoid::dma::Window;
use paranoid::time::Deadline;

use super::{Behaviour, Harness, RecoveryWindow, SimE1000};
use crate::device::Config;
use crate::error::E1000Error;
use crate::init::init;
use crate::ring::{BUFFER_SIZE, MIN_FRAME, RX_RING_LEN, TX_RING_LEN};

/// What a fuzz input did (for the in-suite run's statistics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FuzzReport {
    /// Frames the driver accepted.
    pub frames: u32,
    /// Typed errors returned.
    pub errors: u32,
}

fn ready() -> Option<(Harness, SimE1000)> {
    let mut b = Behaviour::spec();
    // The transmit unit never runs on its own: the fuzzer writes every reply.
    b.tx_desc_ns = u64::MAX;
    let mut h = Harness::build(
        paranoid::sim::SimClock::new(),
        super::Wire::new(super::WireMode::Open),
        0,
        b,
        false,
    );
    let driver = h.driver(Config::default()).ok()?;
    let nic = init(driver, &h.clock).ok()?.device.into_inner();
    Some((h, nic))
}

fn phys(h: &Harness, iova: u64) -> u64 {
    h.memory.base() + (iova - RecoveryWindow::BASE)
}

/// Receive write-backs: each 10-byte chunk of `data` is a slot offset, an
/// 8-byte write-back (length, checksum, status, errors, special) and a byte to
/// fill the buffer with, written where the driver looks next (or a few slots
/// on); then the driver takes a frame.
///
/// # Panics
///
/// When the driver accepts a frame the write-back did not allow, or returns an
/// error that is not a descriptor error (the fuzzer's oracle).
pub fn rx_writeback(data: &[u8]) -> FuzzReport {
    let Some((h, mut nic)) = ready() else {
        return FuzzReport::default();
    };
    let (rx_ring, rx_bufs, _) = nic.ring_iovas();
    let mut report = FuzzReport::default();
    let mut out = vec![0u8; BUFFER_SIZE];
    let mut fills = [0u8; RX_RING_LEN as usize];
    for chunk in data.chunks_exact(10) {
        let (&sel, rest) = chunk.split_first().unwrap_or((&0, &[]));
        let (wb, fill) = rest.split_at(8);
        let slot = (nic.rx_next_slot() + u16::from(sel % 4)) % RX_RING_LEN;
        let desc = phys(&h, rx_ring) + u64::from(slot) * 16 + 8;
        h.memory.write(desc, wb);
        let fill = fill.first().copied().unwrap_or(0);
        let buffer = phys(&h, rx_bufs) + u64::from(slot) * BUFFER_SIZE as u64;
        h.memory.write(buffer, &[fill; BUFFER_SIZE]);
        if let Some(f) = fills.get_mut(usize::from(slot)) {
            *f = fill;
        }
        match nic.receive(&mut out) {
            Ok(Some(n)) => {
                // The frame came from the slot before the driver's next one;
                // its write-back is still in memory.
                let taken = (nic.rx_next_slot() + RX_RING_LEN - 1) % RX_RING_LEN;
                let mut wb = [0u8; 8];
                h.memory
                    .read(phys(&h, rx_ring) + u64::from(taken) * 16 + 8, &mut wb);
                let length = usize::from(u16::from_le_bytes([wb[0], wb[1]]));
                let (status, errors) = (wb[4], wb[5]);
                assert_eq!(n, length, "length differs from the write-back");
                assert!(
                    (MIN_FRAME..=BUFFER_SIZE).contains(&n),
                    "length {n} accepted"
                );
                assert_eq!(status & 0b1_0011, 0b11, "status {status:#x} accepted");
                assert_eq!(errors, 0, "errors {errors:#x} accepted");
                let fill = fills.get(usize::from(taken)).copied().unwrap_or(0);
                assert!(
                    out.iter().take(n).all(|&b| b == fill),
                    "data not from the buffer"
                );
                report.frames += 1;
            }
            Ok(None) => {}
            Err(E1000Error::RxDescriptor { .. }) => report.errors += 1,
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    report
}

/// Transmit write-backs: the driver posts frames (the model's transmit unit
/// never runs), then each byte of `data` is written as the status of the next
/// descriptor in flight and the driver reclaims.
///
/// # Panics
///
/// When the driver returns an error that is not a descriptor error or a
/// timeout, or its accounting breaks.
pub fn tx_writeback(data: &[u8]) -> FuzzReport {
    let Some((h, mut nic)) = ready() else {
        return FuzzReport::default();
    };
    let (_, _, tx_ring) = nic.ring_iovas();
    let mut report = FuzzReport::default();
    let frame = [0x5au8; 64];
    let mut posted = 0u32;
    let mut oldest = 0u16;
    for &status in data {
        while posted < u32::from(TX_RING_LEN) - 1 {
            match nic.transmit(&frame) {
                Ok(()) => posted += 1,
                Err(E1000Error::TxRingFull) => break,
                Err(E1000Error::TxDescriptor { .. }) => {
                    report.errors += 1;
                    posted = posted.saturating_sub(1);
                    oldest = (oldest + 1) % TX_RING_LEN;
                }
                Err(e) => panic!("unexpected error {e:?}"),
            }
        }
        let desc = phys(&h, tx_ring) + u64::from(oldest) * 16 + 12;
        h.memory.write(desc, &[status]);
        let deadline = Deadline::after(&h.clock, Duration::from_micros(5));
        match nic.flush_tx(deadline) {
            Ok(()) => posted = 0,
            Err(E1000Error::TxTimeout { .. }) => {}
            Err(E1000Error::TxDescriptor { status: s, .. }) => {
                assert_eq!(s, status, "reported status differs");
                assert_ne!(s & 0xf0, 0, "status {s:#x} rejected");
                report.errors += 1;
            }
            Err(e) => panic!("unexpected error {e:?}"),
        }
        if status & 1 == 1 {
            if status & 0xf0 == 0 {
                report.frames += 1;
            }
            posted = posted.saturating_sub(1);
            oldest = (oldest + 1) % TX_RING_LEN;
        }
    }
    report
}
