//! Namespaces, LBA formats, MDTS, queue limits and pipelined writes against
//! the model: 4 KiB blocks round-trip, several namespaces stay apart, formats
//! the driver cannot write are refused by type, transfers split at MDTS, and
//! writes in flight own their buffers through out-of-order and lying
//! completions.
#![expect(
    clippy::result_large_err,
    reason = "InitFailure carries the fixed-size init trace and the driver back (paranoid::init has no heap)"
)]

use paranoid::dma::{DmaBuffer, FromDevice, ToDevice};
use paranoid::init::InitFailure;
use paranoid::lifecycle::Cause;
use paranoid_nvme::model::geometry::{any_geometry, Geometry};
use paranoid_nvme::model::{Bench, CompletionFault, NamespaceParams, SimNvme, SimWindow};
use paranoid_nvme::{
    BlockSize, CompletionProblem, Config, FormatProblem, NvmeError, WritePipeline,
    DEFAULT_INIT_BUDGET,
};
use proptest::prelude::*;

fn init_with(b: &mut Bench, config: Config) -> Result<SimNvme, InitFailure<SimNvme>> {
    let nvme = b.driver(config).unwrap();
    nvme.init(DEFAULT_INIT_BUDGET)
        .map(|ok| ok.device.into_inner())
}

fn init(b: &mut Bench) -> SimNvme {
    init_with(b, Config::default())
        .map_err(|f| f.to_string())
        .unwrap()
}

fn class(f: &InitFailure<SimNvme>) -> &'static str {
    match &f.cause {
        Cause::Device(e) => e.class(),
        Cause::Budget { .. } => "budget",
    }
}

fn clean(b: &Bench) {
    assert_eq!(
        b.escapes(),
        0,
        "DMA outside the window: {:?}",
        b.dma.refused()
    );
    let m = b.model.borrow();
    assert!(
        m.violations().is_empty(),
        "model flags: {:?}",
        m.violations()
    );
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(37) ^ (i >> 9) as u8 ^ seed)
        .collect()
}

fn filled(b: &mut Bench, data: &[u8], offset: usize) -> DmaBuffer<SimWindow, ToDevice> {
    let mut out = b
        .arena
        .alloc::<ToDevice>(data.len() + offset, 4096)
        .unwrap();
    out.write_bytes(offset, data).unwrap();
    out
}

/// Writes `data` at `lba`, reads it back, compares; checks the model holds it.
fn round_trip(b: &mut Bench, nvme: &mut SimNvme, lba: u64, data: &[u8], offset: usize) {
    let ns = nvme.namespace_info().unwrap();
    let bs = usize::from(ns.block_size);
    let blocks = (data.len() / bs) as u64;
    let out = filled(b, data, offset);
    nvme.write_blocks(lba, blocks, &out, offset).unwrap();
    let mut back = b
        .arena
        .alloc::<FromDevice>(data.len() + offset, 4096)
        .unwrap();
    nvme.read_blocks(lba, blocks, &mut back, offset).unwrap();
    let mut got = vec![0u8; data.len()];
    back.read_bytes(offset, &mut got).unwrap();
    assert_eq!(got, data);
    for i in 0..blocks as usize {
        assert_eq!(
            b.model.borrow().block_in(ns.nsid, lba + i as u64),
            data[i * bs..(i + 1) * bs],
            "block {} of namespace {}",
            lba + i as u64,
            ns.nsid
        );
    }
    b.arena.free(out).unwrap();
    b.arena.free(back).unwrap();
}

#[test]
fn four_kib_blocks_round_trip_with_data_checked() {
    let mut b = Bench::with_namespaces(&[NamespaceParams::lba4096(1, 1024)]);
    b.model.borrow_mut().params.mdts = 5;
    let mut nvme = init(&mut b);
    let ns = nvme.namespace_info().unwrap();
    assert_eq!(ns.block_size, BlockSize::B4096);
    assert_eq!((ns.blocks, ns.bytes()), (1024, 1024 * 4096));
    round_trip(&mut b, &mut nvme, 0, &pattern(4096, 1), 0);
    // Five blocks from the middle of a page: PRP1 offset plus a PRP list.
    round_trip(&mut b, &mut nvme, 10, &pattern(5 * 4096, 2), 512);
    // Larger than MDTS 5 (128 KiB): split.
    assert_eq!(ns.max_transfer_blocks, 32);
    round_trip(&mut b, &mut nvme, 200, &pattern(40 * 4096, 3), 0);
    // Byte extents: aligned ones convert, others are refused by type.
    assert_eq!(ns.byte_extent_to_blocks(8192, 12288), Ok((2, 3)));
    let buf = filled(&mut b, &pattern(8192, 4), 0);
    nvme.write_at(20 * 4096, 8192, &buf, 0).unwrap();
    assert_eq!(b.model.borrow().block(21), pattern(8192, 4)[4096..]);
    let mut back = b.arena.alloc::<FromDevice>(8192 + 512, 4096).unwrap();
    nvme.read_at(20 * 4096, 8192, &mut back, 512).unwrap();
    let mut got = vec![0u8; 8192];
    back.read_bytes(512, &mut got).unwrap();
    assert_eq!(
        got,
        pattern(8192, 4),
        "read_at gives back what write_at wrote"
    );
    assert!(matches!(
        nvme.read_at(20 * 4096 + 512, 4096, &mut back, 0),
        Err(NvmeError::Misaligned { .. })
    ));
    b.arena.free(back).unwrap();
    assert!(matches!(
        nvme.write_at(512, 4096, &buf, 0),
        Err(NvmeError::Misaligned {
            block_size: 4096,
            ..
        })
    ));
    assert!(matches!(
        nvme.write_at(0, 512, &buf, 0),
        Err(NvmeError::Misaligned { .. })
    ));
    assert!(matches!(
        nvme.write_at(1023 * 4096, 8192, &buf, 0),
        Err(NvmeError::LbaOutOfRange { .. })
    ));
    // A 512-byte count is not a 4096-byte count: one block past the end.
    assert!(matches!(
        nvme.write_blocks(1024, 1, &buf, 0),
        Err(NvmeError::LbaOutOfRange { .. })
    ));
    clean(&b);
}

#[test]
fn writing_one_namespace_leaves_the_others_byte_for_byte_unchanged() {
    let mut b = Bench::with_namespaces(&[
        NamespaceParams::lba512(1, 2048),
        NamespaceParams::lba4096(2, 512),
        NamespaceParams::lba512(3, 64).detached(),
        NamespaceParams::lba4096(4, 64).with_metadata(8, true),
    ]);
    let mut nvme = init(&mut b);
    assert_eq!(nvme.serial_number(), Ok("t0"));
    let active = nvme.active_namespaces().unwrap();
    assert_eq!(active.ids(), &[1, 2, 4]);
    round_trip(&mut b, &mut nvme, 5, &pattern(16 * 512, 9), 0);
    let ns1_before = b.model.borrow().written_blocks(1);
    let ns2 = nvme.select_namespace(2).unwrap();
    assert_eq!(
        (ns2.nsid, ns2.block_size, ns2.blocks),
        (2, BlockSize::B4096, 512)
    );
    // The same block numbers in namespace 2 are other bytes on other media.
    round_trip(&mut b, &mut nvme, 5, &pattern(16 * 4096, 10), 0);
    assert_eq!(b.model.borrow().written_blocks(1), ns1_before);
    assert!(b.model.borrow().written_blocks(3).is_empty());
    assert!(b.model.borrow().written_blocks(4).is_empty());
    // Refusals keep namespace 2 in use.
    assert!(matches!(
        nvme.select_namespace(3),
        Err(NvmeError::NamespaceInactive { nsid: 3 })
    ));
    assert!(matches!(
        nvme.select_namespace(4),
        Err(NvmeError::UnsupportedFormat {
            nsid: 4,
            problem: FormatProblem::MetadataInterleaved,
            ..
        })
    ));
    assert!(matches!(
        nvme.select_namespace(0),
        Err(NvmeError::NamespaceAbsent { nsid: 0, .. })
    ));
    assert_eq!(nvme.namespace_info().unwrap().nsid, 2);
    clean(&b);
}

#[test]
fn formats_the_driver_cannot_write_are_refused_with_a_typed_error() {
    let cases = [
        (
            NamespaceParams::lba512(1, 64).with_metadata(8, true),
            FormatProblem::MetadataInterleaved,
        ),
        (
            NamespaceParams::lba4096(1, 64).with_metadata(64, false),
            FormatProblem::MetadataSeparate,
        ),
        (
            NamespaceParams::lba512(1, 64).with_pi(1),
            FormatProblem::ProtectionInformation { pit: 1 },
        ),
        (
            NamespaceParams::lba4096(1, 64)
                .with_metadata(16, true)
                .with_pi(3),
            FormatProblem::ProtectionInformation { pit: 3 },
        ),
    ];
    for (ns, problem) in cases {
        let mut b = Bench::with_namespaces(&[ns]);
        let f = init_with(&mut b, Config::default()).err().unwrap();
        match f.cause {
            Cause::Device(NvmeError::UnsupportedFormat { problem: p, .. }) => {
                assert_eq!(p, problem, "{ns:?}")
            }
            ref other => panic!("{ns:?}: {other:?}"),
        }
        assert!(!b.bus_master(), "fenced");
        clean(&b);
    }
}

#[test]
fn io_to_a_metadata_format_is_what_the_model_flags() {
    // The negative control of the refusal: the model flags I/O to a namespace
    // whose format needs metadata. Namespace 1 reports a plain format at init
    // and is reformatted (as a lying device would have it) afterwards.
    let mut b = Bench::with_namespaces(&[NamespaceParams::lba512(1, 64)]);
    let mut nvme = init(&mut b);
    b.set_namespaces(&[NamespaceParams::lba512(1, 64).with_metadata(8, true)]);
    let buf = filled(&mut b, &pattern(512, 1), 0);
    assert!(nvme.write_blocks(0, 1, &buf, 0).is_err());
    let flags = b.model.borrow().violations().to_vec();
    assert!(
        flags.iter().any(|f| f.contains("needs metadata")),
        "{flags:?}"
    );
}

#[test]
fn inactive_and_absent_namespaces_are_refused() {
    let geometry = |target| Geometry {
        namespaces: vec![
            NamespaceParams::lba512(1, 64),
            NamespaceParams::lba512(2, 64).detached(),
        ],
        target,
        ..Geometry::qemu_default()
    };
    for (target, want) in [
        (2, "namespace inactive"),
        (3, "namespace inactive"),
        (300, "namespace absent"),
        (0, "namespace absent"),
    ] {
        let g = geometry(target);
        assert_eq!(g.expected_refusal(), Some(want));
        let mut b = g.bench();
        let f = init_with(&mut b, g.config()).err().unwrap();
        assert_eq!(class(&f), want, "target {target}: {f}");
        assert!(!b.bus_master());
        clean(&b);
    }
}

#[test]
fn transfers_larger_than_mdts_become_several_commands_each_within_it() {
    for (format, mdts) in [(4u8, 1u8), (0, 4), (0, 2), (4, 3)] {
        let ns = NamespaceParams {
            format,
            ..NamespaceParams::lba512(1, 4096)
        };
        let mut b = Geometry {
            namespaces: vec![ns],
            mdts,
            ..Geometry::qemu_default()
        }
        .bench();
        let mut nvme = init(&mut b);
        let info = nvme.namespace_info().unwrap();
        let limit: u32 = 4096 << mdts;
        assert_eq!(info.max_transfer_bytes(), u64::from(limit));
        let bytes = 3 * limit as usize + usize::from(info.block_size);
        let before = b.model.borrow().commands;
        let out = filled(&mut b, &pattern(bytes, mdts), 0);
        let blocks = (bytes / usize::from(info.block_size)) as u64;
        nvme.write_blocks(7, blocks, &out, 0).unwrap();
        let commands = b.model.borrow().commands - before;
        assert_eq!(commands, 4, "format {format} MDTS {mdts}: four writes");
        b.arena.free(out).unwrap();
        round_trip(&mut b, &mut nvme, 7, &pattern(bytes, mdts), 0);
        clean(&b);
    }
}

#[test]
fn a_transfer_past_mdts_is_caught_by_the_model() {
    // Negative control: the driver split for MDTS 3 (32 KiB); the controller
    // now enforces MDTS 1 (8 KiB), as if splitting were off. The model flags
    // each command past its limit and fails it.
    let mut b = Geometry {
        mdts: 3,
        ..Geometry::qemu_default()
    }
    .bench();
    let mut nvme = init(&mut b);
    b.model.borrow_mut().params.mdts = 1;
    let out = filled(&mut b, &pattern(32768, 1), 0);
    assert!(matches!(
        nvme.write_blocks(0, 64, &out, 0),
        Err(NvmeError::CommandFailed { .. })
    ));
    let flags = b.model.borrow().violations().to_vec();
    assert!(flags.iter().any(|f| f.contains("past MDTS")), "{flags:?}");
}

fn submit_round(b: &mut Bench, nvme: &mut SimNvme, round: u8, n: u8) -> Vec<u16> {
    let mut cids = Vec::new();
    for i in 0..n {
        let lba = u64::from(round) * 64 + 8 * u64::from(i);
        let buf = filled(b, &[round << 4 | i; 4096], 0);
        cids.push(nvme.submit_write(lba, 8, buf, 0).unwrap());
    }
    cids
}

#[test]
fn eight_writes_in_flight_complete_out_of_order_and_give_their_buffers_back() {
    let mut b = Bench::qemu_like();
    b.model.borrow_mut().params.reorder_io = 8;
    let mut nvme = init(&mut b);
    assert_eq!(nvme.pipeline_depth(), 8);
    for round in 0..3u8 {
        let cids = submit_round(&mut b, &mut nvme, round, 8);
        assert_eq!(nvme.in_flight(), 8);
        let mut unique = cids.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), cids.len(), "command ids in flight: {cids:?}");
        // The pipeline is full: a ninth is refused and handed back.
        let extra = filled(&mut b, &[0; 4096], 0);
        let refused = nvme.submit_write(1000, 8, extra, 0).unwrap_err();
        assert_eq!(refused.error, NvmeError::QueueFull { queue: 1 });
        b.arena.free(refused.buffer).unwrap();
        let mut order = Vec::new();
        while nvme.in_flight() > 0 {
            let w = nvme.wait_write().unwrap();
            w.result.unwrap();
            order.push(w.cid);
            b.arena.free(w.buffer).unwrap();
        }
        let reversed: Vec<u16> = cids.iter().rev().copied().collect();
        assert_eq!(order, reversed, "newest first");
        for i in 0..8u8 {
            let lba = u64::from(round) * 64 + 8 * u64::from(i);
            for k in 0..8 {
                assert!(b
                    .model
                    .borrow()
                    .block(lba + k)
                    .iter()
                    .all(|&x| x == round << 4 | i));
            }
        }
    }
    // The arena got every buffer back.
    assert_eq!(b.arena.live(), live_driver_buffers(&nvme));
    clean(&b);
}

/// Buffers the driver itself holds: two queue pairs, the identify page, the
/// PRP list pages.
fn live_driver_buffers(_nvme: &SimNvme) -> usize {
    6
}

#[test]
fn a_lying_completion_for_an_unknown_cid_is_refused_and_buffers_come_back() {
    let mut b = Bench::qemu_like();
    let mut nvme = init(&mut b);
    let posted = b.model.borrow().completions_posted();
    b.model
        .borrow_mut()
        .faults
        .completions
        .push((posted + 3, CompletionFault::UnknownCid));
    submit_round(&mut b, &mut nvme, 0, 8);
    let mut ok = 0;
    let mut abandoned = 0;
    let mut refused = None;
    for _ in 0..32 {
        match nvme.reap_write() {
            Ok(Some(w)) => {
                match w.result {
                    Ok(()) => ok += 1,
                    Err(NvmeError::Abandoned) => abandoned += 1,
                    Err(e) => panic!("{e}"),
                }
                b.arena.free(w.buffer).unwrap();
            }
            Ok(None) => {}
            Err(e) => refused = Some(e),
        }
        if nvme.in_flight() == 0 {
            break;
        }
    }
    assert!(matches!(
        refused,
        Some(NvmeError::BadCompletion {
            problem: CompletionProblem::UnknownCid,
            ..
        })
    ));
    assert_eq!(
        (ok, abandoned),
        (3, 5),
        "three reaped, the rest given up at the reset"
    );
    assert!(nvme.is_ready(), "recovered");
    assert_eq!(nvme.stats().bad_completions, 1);
    round_trip(&mut b, &mut nvme, 300, &pattern(4096, 7), 0);
    clean(&b);
}

#[test]
fn the_write_pipeline_streams_through_a_small_pool_on_4k_blocks() {
    let mut b = Bench::with_namespaces(&[NamespaceParams::lba4096(1, 4096)]);
    b.model.borrow_mut().params.reorder_io = 3;
    let mut nvme = init(&mut b);
    let bufs: [DmaBuffer<SimWindow, ToDevice>; 8] =
        std::array::from_fn(|_| b.arena.alloc::<ToDevice>(16384, 4096).unwrap());
    let mut pipe = WritePipeline::new(bufs);
    assert_eq!(pipe.max_write(), 16384);
    for i in 0..30u64 {
        pipe.write(&mut nvme, i * 4, &pattern(16384, i as u8))
            .unwrap();
        assert!(nvme.in_flight() <= 8);
    }
    // 30 writes in batches of 3: the last three wait for the drain.
    pipe.drain(&mut nvme).unwrap();
    for i in 0..30u64 {
        for k in 0..4 {
            let want = &pattern(16384, i as u8)[k as usize * 4096..(k as usize + 1) * 4096];
            assert_eq!(b.model.borrow().block(i * 4 + k), want, "chunk {i}");
        }
    }
    assert!(matches!(
        pipe.write(&mut nvme, 0, &[0; 1000]),
        Err(NvmeError::Misaligned { .. })
    ));
    for buf in pipe.into_buffers().into_iter().flatten() {
        b.arena.free(buf).unwrap();
    }
    // (A Flush alone would wait for two more completions to be reordered with.)
    b.model.borrow_mut().params.reorder_io = 0;
    nvme.flush().unwrap();
    clean(&b);
}

#[test]
fn queue_grants_and_mqes_bound_what_the_driver_asks_for() {
    // Fewer queues granted than asked: the driver still has its one pair.
    let mut b = Geometry {
        max_ioqpairs: 2,
        mqes: 3,
        ..Geometry::qemu_default()
    }
    .bench();
    let config = Config {
        io_queues_requested: 8,
        ..Config::default()
    };
    let mut nvme = init_with(&mut b, config)
        .map_err(|f| f.to_string())
        .unwrap();
    assert_eq!(nvme.granted_io_queues(), Some((2, 2)));
    // MQES 3: four entries, so three commands in flight at most.
    assert_eq!(nvme.pipeline_depth(), 3);
    submit_round(&mut b, &mut nvme, 0, 3);
    let extra = filled(&mut b, &[0; 4096], 0);
    assert!(nvme.submit_write(900, 8, extra, 0).is_err());
    while nvme.in_flight() > 0 {
        nvme.wait_write().unwrap().result.unwrap();
    }
    clean(&b);
    // A nonsense grant (65536 queues) is a typed error at init.
    let mut b = Bench::qemu_like();
    b.model.borrow_mut().params.queues_granted = Some(0xffff_ffff);
    let f = init_with(&mut b, Config::default()).err().unwrap();
    assert_eq!(class(&f), "bad feature");
    assert!(!b.bus_master());
}

#[test]
fn a_serial_number_that_is_not_printable_ascii_is_refused() {
    use paranoid_nvme::identify::serial_text;
    assert_eq!(
        serial_text(b"  S123 4             "[..20].try_into().unwrap()),
        Ok("S123 4")
    );
    let mut bad = *b"S1                  ";
    bad[1] = 0x07;
    assert!(matches!(
        serial_text(&bad),
        Err(NvmeError::BadIdentify {
            field: "SN",
            value: 7
        })
    ));
    assert!(serial_text(&[b' '; 20]).is_err());
    let mut nul = *b"ABC                 ";
    nul[3..].fill(0);
    assert_eq!(serial_text(&nul), Ok("ABC"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any geometry: init refuses exactly what it must (typed), otherwise a
    /// round trip works on the target and no other namespace is written.
    #[test]
    fn any_geometry_is_handled(g in any_geometry()) {
        let mut b = g.bench();
        match (init_with(&mut b, g.config()), g.expected_refusal()) {
            (Err(f), Some(want)) => {
                prop_assert_eq!(class(&f), want);
                prop_assert!(!b.bus_master());
            }
            (Ok(mut nvme), None) => {
                let ns = nvme.namespace_info().unwrap();
                let blocks = ns.blocks.min(5);
                let bytes = blocks as usize * usize::from(ns.block_size);
                round_trip(&mut b, &mut nvme, ns.blocks - blocks, &pattern(bytes, 3), 0);
                for other in g.untouched() {
                    prop_assert!(b.model.borrow().written_blocks(other).is_empty());
                }
            }
            (Err(f), None) => prop_assert!(false, "refused {:?}: {}", g, f),
            (Ok(_), Some(want)) => prop_assert!(false, "accepted {:?}, want {}", g, want),
        }
        clean(&b);
    }
}

/// A namespace past 2^32 blocks (4 TiB of 512-byte blocks, sparse in the
/// model): a block above the 32-bit boundary is addressed by both halves of
/// the starting LBA (CDW10 and CDW11), not folded onto a low one.
#[test]
fn lbas_above_two_to_the_32_use_both_lba_dwords() {
    let mut b = Bench::with_namespaces(&[NamespaceParams::lba512(1, 1 << 33)]);
    let mut nvme = init(&mut b);
    let high = (1u64 << 32) + 5;
    round_trip(&mut b, &mut nvme, high, &pattern(512, 7), 0);
    assert_eq!(b.model.borrow().block(high), pattern(512, 7));
    assert!(
        b.model.borrow().block(5).iter().all(|&x| x == 0),
        "folded onto LBA 5"
    );
    clean(&b);
}

/// The Active Namespace ID list: ascending ids within 1..=NN, ended by a zero
/// or the page's end; a repeated id, one out of order or above NN is refused.
#[test]
fn active_namespace_lists_are_strictly_ascending_within_nn() {
    use paranoid_nvme::model::fuzz::active_namespace_list;
    let list = |ids: &[u32]| -> Vec<u8> { ids.iter().flat_map(|i| i.to_le_bytes()).collect() };
    assert_eq!(
        active_namespace_list(&list(&[1, 2, 4]), 4),
        Ok(vec![1, 2, 4])
    );
    assert_eq!(active_namespace_list(&list(&[4, 0, 5]), 4), Ok(vec![4]));
    assert_eq!(active_namespace_list(&[], 4), Ok(vec![]));
    let full: Vec<u32> = (1..=1024).collect();
    assert_eq!(active_namespace_list(&list(&full), 1024), Ok(full));
    for bad in [&[1, 1][..], &[2, 1], &[1, 5]] {
        let r = active_namespace_list(&list(bad), 4);
        assert!(
            r.as_ref().is_err_and(|e| e.contains("NSID list")),
            "{bad:?}: {r:?}"
        );
    }
}

/// FLBAS selects one of up to 64 formats: bits 3:0 and, above them, bits 6:5
/// (NVMe 2.0); bit 4 (extended LBA) is not part of the index.
#[test]
fn flbas_high_bits_select_formats_above_15() {
    use paranoid_nvme::model::fuzz::namespace_page;
    let mut page = vec![0u8; 4096];
    page[..8].copy_from_slice(&1000u64.to_le_bytes()); // NSZE
    page[8..16].copy_from_slice(&1000u64.to_le_bytes()); // NCAP
    page[25] = 33; // NLBAF: 34 formats
    for i in 0..34 {
        // Format i: 512-byte blocks, but 4096 for formats 17 and 33.
        let lbads = if i == 17 || i == 33 { 12u32 } else { 9 };
        page[128 + 4 * i..132 + 4 * i].copy_from_slice(&(lbads << 16).to_le_bytes());
    }
    for (format, flbas) in [(1u8, 0x01u8), (17, 0x21), (33, 0x41), (1, 0x11)] {
        page[26] = flbas;
        let ns = namespace_page(&page, 1 << 20).unwrap_or_else(|e| panic!("{flbas:#x}: {e}"));
        let want = if format == 1 { 512 } else { 4096 };
        assert_eq!(
            (ns.format, ns.block_size.bytes()),
            (format, want),
            "FLBAS {flbas:#x}"
        );
    }
    // Format 49 (bits 6:5 = 3) is past NLBAF.
    page[26] = 0x61;
    assert!(namespace_page(&page, 1 << 20).is_err());
}
