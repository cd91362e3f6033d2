//! The scenarios: machine set-up, the dead kernel's mess, init, verified I/O.
// A failure carries its result line in a fixed buffer (no allocator).
#![expect(
    clippy::result_large_err,
    reason = "InitFailure carries the fixed-size init trace and the driver back (paranoid::init has no heap)"
)]

use core::time::Duration;

use paranoid::dma::{DmaArena, FromDevice, ToDevice, Window};
use paranoid::mmio::{Mmio, RegisterIo};
use paranoid::pci::{Cf8, PciAddress};
use paranoid::phys::RamRegion;
use paranoid::poll::poll;
use paranoid::time::{Clock, Deadline};
use paranoid_boot::platform;
use paranoid_boot::{println, BootInfo, TscClock};
use paranoid_nvme::{Config, Nvme, NvmeError, WritePipeline, DEFAULT_INIT_BUDGET};
use paranoid_test_kernel::identity::{self, map_bar0, IdentityDma};
use paranoid_test_kernel::report::{fail, Failure, Fields, Outcome};
use paranoid_test_kernel::{check, ensure};

/// The driver's DMA window: identity-mapped RAM at 48 MiB (no IOMMU
/// translation on this machine until a kernel turns it on).
pub struct IdentityWindow;

impl Window for IdentityWindow {
    const NAME: &'static str = "nvme-identity";
    const BASE: u64 = 0x0300_0000;
    const SIZE: u64 = 1 << 20;
}

type Driver = Nvme<Mmio, Cf8, TscClock, IdentityWindow>;

/// Bytes of "dead kernel" memory.
const OLD_SIZE: u64 = 64 << 10;
/// Layout of the dead kernel's memory.
const OLD_ASQ: u64 = 0x0000;
const OLD_ACQ: u64 = 0x1000;
const OLD_IOSQ: u64 = 0x2000;
const OLD_IOCQ: u64 = 0x3000;
const OLD_IDENTIFY: u64 = 0x4000;
const OLD_DATA: u64 = 0x6000;
/// What the old memory is refilled with after init, to see any late DMA there.
const CANARY: u8 = 0xc5;
/// The pattern is laid out in 512-byte chunks, whatever the namespace's
/// block size (the host check reads the disk image the same way).
const CHUNK: usize = 512;
/// First 512-byte chunk of the verified pattern (byte 1 MiB).
pub const PATTERN_LBA: u64 = 2048;
/// 512-byte chunks of the verified pattern (64 KiB).
pub const PATTERN_BLOCKS: u64 = 128;
/// Byte offset of the pattern in the namespace.
const PATTERN_AT: u64 = PATTERN_LBA * CHUNK as u64;

struct Machine {
    clock: TscClock,
    arena: DmaArena<IdentityWindow>,
    old: RamRegion,
    address: PciAddress,
    /// The serial number named on the command line.
    named: Option<&'static str>,
    /// The namespace to use (`dump_nsid=`, default 1).
    nsid: u32,
}

fn machine(boot: &'static BootInfo, f: &mut Fields) -> Result<Machine, Failure> {
    let IdentityDma { mut arena, old } = identity::reserve::<IdentityWindow>(boot, OLD_SIZE, f)?;
    let address = target(boot, &mut arena, f)?;
    f.add("nvme", address);
    Ok(Machine {
        clock: boot.clock(),
        arena,
        old,
        address,
        named: named_serial(boot),
        nsid: named_nsid(boot),
    })
}

/// The serial number of the controller the scenario may write
/// (`dump_serial=` on the command line), if named.
fn named_serial(boot: &'static BootInfo) -> Option<&'static str> {
    boot.cmdline().get("dump_serial")
}

/// The namespace the scenario may write (`dump_nsid=`, default 1).
fn named_nsid(boot: &'static BootInfo) -> u32 {
    boot.cmdline()
        .get("dump_nsid")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// The controller the scenario may write: the only one, or the one whose
/// serial number the command line names. With several controllers each is
/// brought up in turn, identified and shut down again (bus mastering off)
/// until the named one answers; nothing is written to any of them.
fn target(
    boot: &'static BootInfo,
    arena: &mut DmaArena<IdentityWindow>,
    f: &mut Fields,
) -> Result<PciAddress, Failure> {
    let list = platform::find_nvme(&mut platform::config(boot));
    f.add("nvme_controllers", list.len());
    let mut candidates = list.iter().map(|n| n.address());
    let Some(first) = candidates.next() else {
        return Err(fail(core::mem::take(f), "find nvme: no NVMe controller"));
    };
    if list.len() == 1 {
        return Ok(first); // its serial is checked before any write
    }
    let Some(wanted) = named_serial(boot) else {
        return Err(fail(
            core::mem::take(f),
            format_args!(
                "{} NVMe controllers and none named (dump_serial=)",
                list.len()
            ),
        ));
    };
    for address in list.iter().map(|n| n.address()) {
        if probe_serial(boot, arena, address, wanted) {
            return Ok(address);
        }
    }
    Err(fail(
        core::mem::take(f),
        format_args!("no NVMe controller has serial {wanted}"),
    ))
}

/// Brings the controller at `address` up just far enough to read its serial
/// number, then shuts it down and turns its bus mastering off; whether the
/// serial is `wanted`. Its queues stay carved from `arena` (a few pages; the
/// controller no longer uses them).
fn probe_serial(
    boot: &'static BootInfo,
    arena: &mut DmaArena<IdentityWindow>,
    address: PciAddress,
    wanted: &str,
) -> bool {
    use paranoid::pci::command::{self, Command};
    let mut cfg = platform::cf8();
    let was_mastering =
        command::read(&mut cfg, address).is_ok_and(|c| c.contains(Command::BUS_MASTER));
    let matches = identify_serial(boot, arena, address, wanted).unwrap_or(false);
    // Another node's controller is left without bus mastering; the named one
    // as the firmware left it, for the scenario's own "dead kernel".
    let (set, clear) = if matches && was_mastering {
        (Command::BUS_MASTER, Command::empty())
    } else {
        (Command::empty(), Command::BUS_MASTER)
    };
    let _ = command::update(&mut cfg, address, set, clear);
    matches
}

fn identify_serial(
    boot: &'static BootInfo,
    arena: &mut DmaArena<IdentityWindow>,
    address: PciAddress,
    wanted: &str,
) -> Option<bool> {
    let mut f = Fields::default();
    let mmio = map_bar0(address, &mut f).ok()?;
    let config = Config {
        max_in_flight: 1,
        io_queue_depth: 2,
        nsid: named_nsid(boot),
        ..Config::default()
    };
    let nvme = Nvme::new(mmio, platform::cf8(), address, boot.clock(), arena, config).ok()?;
    let mut nvme = nvme.init(DEFAULT_INIT_BUDGET).ok()?.device.into_inner();
    let matches = match nvme.serial_number() {
        Ok(serial) => {
            println!("nvme-test: controller {address} has serial {serial:?}");
            serial.trim_end() == wanted
        }
        Err(e) => {
            println!("nvme-test: controller {address}: no serial number ({e})");
            false
        }
    };
    let _ = nvme.shutdown();
    Some(matches)
}

/// CSTS and CC as the driver will find them (read through a separate mapping,
/// for the report only).
fn inherited(m: &Machine, f: &mut Fields) -> Result<(), Failure> {
    let mut regs = map_bar0(m.address, f)?;
    let csts = regs.read32(0x1c).into_raw_for_report();
    let cc = regs.read32(0x14).into_raw_for_report();
    f.add("inherited_csts", format_args!("{csts:#x}"));
    f.add("inherited_cc", format_args!("{cc:#x}"));
    Ok(())
}

fn driver(m: &mut Machine, f: &mut Fields) -> Result<Driver, Failure> {
    let mmio = map_bar0(m.address, f)?;
    Ok(check!(
        core::mem::take(f),
        Nvme::new(
            mmio,
            platform::cf8(),
            m.address,
            m.clock,
            &mut m.arena,
            Config {
                nsid: m.nsid,
                ..Config::default()
            }
        ),
        "driver"
    ))
}

/// Runs the paranoid init and prints its trace.
fn bring_up(nvme: Driver, key: &str, f: &mut Fields) -> Result<Driver, Failure> {
    match nvme.init(DEFAULT_INIT_BUDGET) {
        Ok(ok) => {
            println!("{}", ok.trace);
            f.add(key, ok.trace.total().as_micros());
            f.add("escalations", ok.trace.escalations());
            Ok(ok.device.into_inner())
        }
        Err(e) => {
            println!("{e}");
            Err(fail(
                core::mem::take(f),
                format_args!("{key}: {:?}", e.cause),
            ))
        }
    }
}

/// What the driver inherits (CSTS, CC) into the report, then the paranoid init.
fn take_over(m: &mut Machine, f: &mut Fields) -> Result<Driver, Failure> {
    inherited(m, f)?;
    let nvme = driver(m, f)?;
    bring_up(nvme, "init_us", f)
}

/// Byte `i` of 512-byte chunk `lba` of the test pattern (the host check
/// computes it too).
pub fn pattern(lba: u64, i: usize) -> u8 {
    ((lba as u32).wrapping_mul(7) ^ (i as u32).wrapping_mul(13)) as u8 ^ 0x5a
}

/// Writes `chunks` 512-byte chunks of the pattern starting at chunk `lba`
/// (byte `lba × 512` of the namespace, whatever its block size) from a window
/// buffer (data `offset` bytes in), reads them back into another and compares.
fn round_trip(
    nvme: &mut Driver,
    arena: &mut DmaArena<IdentityWindow>,
    lba: u64,
    chunks: u64,
    offset: usize,
    f: &mut Fields,
) -> Result<(), Failure> {
    let bytes = chunks as usize * CHUNK;
    let at = lba * CHUNK as u64;
    let mut out = check!(
        core::mem::take(f),
        arena.alloc::<ToDevice>(bytes + offset, 4096),
        "alloc"
    );
    let mut chunk = [0u8; CHUNK];
    for b in 0..chunks {
        for (i, byte) in chunk.iter_mut().enumerate() {
            *byte = pattern(lba + b, i);
        }
        check!(
            core::mem::take(f),
            out.write_bytes(offset + b as usize * CHUNK, &chunk),
            "fill"
        );
    }
    check!(
        core::mem::take(f),
        nvme.write_at(at, bytes as u64, &out, offset),
        "write_at"
    );
    let mut back = check!(
        core::mem::take(f),
        arena.alloc::<FromDevice>(bytes + offset, 4096),
        "alloc"
    );
    check!(
        core::mem::take(f),
        nvme.read_at(at, bytes as u64, &mut back, offset),
        "read_at"
    );
    for b in 0..chunks {
        check!(
            core::mem::take(f),
            back.read_bytes(offset + b as usize * CHUNK, &mut chunk),
            "read back"
        );
        let bad = chunk
            .iter()
            .enumerate()
            .position(|(i, &byte)| byte != pattern(lba + b, i));
        ensure!(
            core::mem::take(f),
            bad.is_none(),
            "chunk {} differs at byte {:?}",
            lba + b,
            bad
        );
    }
    check!(core::mem::take(f), arena.free(out), "free");
    check!(core::mem::take(f), arena.free(back), "free");
    Ok(())
}

/// The I/O every scenario checks once the driver is ready.
fn exercise(nvme: &mut Driver, m: &mut Machine, f: &mut Fields) -> Result<(), Failure> {
    let Some(ns) = nvme.namespace_info() else {
        return Err(fail(core::mem::take(f), "no namespace after init"));
    };
    // The one controller found must be the named one before anything is written.
    if let Some(wanted) = m.named {
        let serial = check!(core::mem::take(f), nvme.serial_number(), "serial number");
        ensure!(
            core::mem::take(f),
            serial.trim_end() == wanted,
            "serial {serial:?} is not the named {wanted}"
        );
    }
    f.add("blocks", ns.blocks);
    f.add("block_size", ns.block_size);
    if let Some(c) = nvme.controller_info() {
        f.add("mdts", c.mdts);
    }
    // Any block size the driver accepts (512 B to 4 KiB) divides the 4 KiB
    // aligned extents below; the namespace must hold them.
    ensure!(
        core::mem::take(f),
        ns.bytes() >= PATTERN_AT + (PATTERN_BLOCKS + 64) * CHUNK as u64,
        "unexpected geometry"
    );
    let t = m.clock.now_ns();
    round_trip(nvme, &mut m.arena, PATTERN_LBA, PATTERN_BLOCKS, 0, f)?;
    f.add(
        "write_read_64k_us",
        (m.clock.now_ns().saturating_sub(t)) / 1000,
    );
    // PRP1 in the middle of a page, then a PRP list.
    round_trip(
        nvme,
        &mut m.arena,
        PATTERN_LBA + PATTERN_BLOCKS,
        24,
        1536,
        f,
    )?;
    check!(core::mem::take(f), nvme.flush(), "flush");
    let buf = check!(
        core::mem::take(f),
        m.arena.alloc::<ToDevice>(4096, 4096),
        "alloc"
    );
    let refused = nvme.write_blocks(ns.blocks - 1, 2, &buf, 0);
    ensure!(
        core::mem::take(f),
        matches!(refused, Err(NvmeError::LbaOutOfRange { .. })),
        "write past the namespace not refused: {refused:?}"
    );
    check!(core::mem::take(f), m.arena.free(buf), "free");
    f.add("verified_bytes", (PATTERN_BLOCKS + 24) * CHUNK as u64);
    Ok(())
}

/// Where the throughput runs write (byte 2 MiB, after the pattern), and how
/// much each round writes.
const THROUGHPUT_AT: u64 = 2 << 20;
const THROUGHPUT_BYTES: u64 = 4 << 20;
/// Rounds of each depth, alternating; the fastest round of each is reported.
const THROUGHPUT_ROUNDS: usize = 3;
/// Bytes per write of the throughput runs.
const THROUGHPUT_CHUNK: usize = 64 << 10;
/// What they write (a static: 64 KiB is too much for the boot stack).
static THROUGHPUT_DATA: [u8; THROUGHPUT_CHUNK] = [0x3c; THROUGHPUT_CHUNK];

/// MiB/s of `THROUGHPUT_BYTES` written in 64 KiB writes, one at a time
/// (queue depth 1), then through a pipeline of eight buffers (queue depth 8).
fn throughput(nvme: &mut Driver, m: &mut Machine, f: &mut Fields) -> Result<(), Failure> {
    let Some(ns) = nvme.namespace_info() else {
        return Err(fail(core::mem::take(f), "no namespace"));
    };
    ensure!(
        core::mem::take(f),
        ns.bytes() >= THROUGHPUT_AT + THROUGHPUT_BYTES,
        "namespace too small for the throughput run"
    );
    let mut one = check!(
        core::mem::take(f),
        m.arena.alloc::<ToDevice>(THROUGHPUT_CHUNK, 4096),
        "alloc"
    );
    let writes = THROUGHPUT_BYTES / THROUGHPUT_CHUNK as u64;
    let mut bufs: [Option<paranoid::dma::DmaBuffer<IdentityWindow, ToDevice>>; 8] =
        [None, None, None, None, None, None, None, None];
    for slot in bufs.iter_mut() {
        *slot = Some(check!(
            core::mem::take(f),
            m.arena.alloc::<ToDevice>(THROUGHPUT_CHUNK, 4096),
            "alloc"
        ));
    }
    let [Some(b0), Some(b1), Some(b2), Some(b3), Some(b4), Some(b5), Some(b6), Some(b7)] = bufs
    else {
        return Err(fail(core::mem::take(f), "alloc"));
    };
    let mut pipe = WritePipeline::new([b0, b1, b2, b3, b4, b5, b6, b7]);
    let bs = u64::from(ns.block_size);
    let (mut qd1_ns, mut qd8_ns) = (u64::MAX, u64::MAX);
    for _ in 0..THROUGHPUT_ROUNDS {
        let t = m.clock.now_ns();
        for i in 0..writes {
            let at = THROUGHPUT_AT + i * THROUGHPUT_CHUNK as u64;
            // The same copy into a staging buffer as the pipeline makes.
            check!(
                core::mem::take(f),
                one.write_bytes(0, &THROUGHPUT_DATA),
                "fill"
            );
            check!(
                core::mem::take(f),
                nvme.write_at(at, THROUGHPUT_CHUNK as u64, &one, 0),
                "qd1 write"
            );
        }
        qd1_ns = qd1_ns.min(m.clock.now_ns().saturating_sub(t).max(1));
        let t = m.clock.now_ns();
        for i in 0..writes {
            let lba = (THROUGHPUT_AT + i * THROUGHPUT_CHUNK as u64) / bs;
            check!(
                core::mem::take(f),
                pipe.write(nvme, lba, &THROUGHPUT_DATA),
                "qd8 write"
            );
        }
        check!(core::mem::take(f), pipe.drain(nvme), "qd8 drain");
        qd8_ns = qd8_ns.min(m.clock.now_ns().saturating_sub(t).max(1));
    }
    check!(core::mem::take(f), m.arena.free(one), "free");
    for buf in pipe.into_buffers().into_iter().flatten() {
        check!(core::mem::take(f), m.arena.free(buf), "free");
    }
    let mib_s = |ns: u64| THROUGHPUT_BYTES * 1_000_000_000 / ns / (1 << 20);
    f.add("qd1_mib_s", mib_s(qd1_ns));
    f.add("qd8_mib_s", mib_s(qd8_ns));
    Ok(())
}

/// `nvme-init`: from the firmware state.
pub fn init(boot: &'static BootInfo) -> Outcome {
    let mut f = Fields::new();
    let mut m = machine(boot, &mut f)?;
    let mut nvme = take_over(&mut m, &mut f)?;
    exercise(&mut nvme, &mut m, &mut f)?;
    throughput(&mut nvme, &mut m, &mut f)?;
    Ok(f)
}

/// The dead kernel: raw register access and queue entries in its own memory.
struct DeadKernel {
    regs: Mmio,
    clock: TscClock,
}

impl DeadKernel {
    /// Maps the controller, takes it over from firmware (CC.EN 0, wait for
    /// CSTS.RDY 0) and enables it (AQA 16/16, CC.IOSQES/IOCQES, CC.EN 1) with
    /// the admin completion queue at [`OLD_ACQ`] and the submission queue at
    /// `asq`, both offsets into the old memory.
    fn start(m: &Machine, asq: u64, f: &mut Fields) -> Result<Self, Failure> {
        let regs = map_bar0(m.address, f)?;
        let mut dead = DeadKernel {
            regs,
            clock: m.clock,
        };
        dead.regs.write32(0x14, 0);
        ensure!(
            core::mem::take(f),
            dead.wait_rdy(false),
            "dead kernel: disable"
        );
        dead.regs.write32(0x24, 0x000f_000f);
        dead.write64(0x28, m.old.start() + asq);
        dead.write64(0x30, m.old.start() + OLD_ACQ);
        dead.regs.write32(0x14, 0x0046_0001);
        Ok(dead)
    }

    fn wait_rdy(&mut self, want: bool) -> bool {
        let deadline = Deadline::after(&self.clock, Duration::from_secs(10));
        let regs = &mut self.regs;
        poll(
            &self.clock,
            deadline,
            || regs.read32(0x1c),
            |c| c.bit(0) == want,
        )
        .is_ok()
    }

    fn write64(&mut self, offset: usize, v: u64) {
        self.regs.write32(offset, v as u32);
        self.regs.write32(offset + 4, (v >> 32) as u32);
    }

    /// Writes a submission queue entry at `old + at` (`ram`: the old memory).
    #[expect(
        clippy::too_many_arguments,
        reason = "an SQE is written field by field as the spec lists them (opcode, cid, nsid, PRPs, command dwords)"
    )]
    fn sqe(
        &self,
        ram: &mut RamRegion,
        at: u64,
        opcode: u8,
        cid: u16,
        nsid: u32,
        prp1: u64,
        cdw10: u32,
        cdw11: u32,
        cdw12: u32,
    ) {
        let mut dw = [0u32; 16];
        dw[0] = u32::from(opcode) | u32::from(cid) << 16;
        dw[1] = nsid;
        dw[6] = prp1 as u32;
        dw[7] = (prp1 >> 32) as u32;
        dw[10] = cdw10;
        dw[11] = cdw11;
        dw[12] = cdw12;
        for (i, d) in (0u64..).zip(dw) {
            // Inside the 64 KiB of old memory (callers pass offsets of the
            // layout above); volatile: the controller reads it by DMA.
            ram.write_u32(at + 4 * i, d);
        }
    }

    /// True once the admin completion queue entry `n` carries phase 1.
    fn admin_completed(&self, ram: &RamRegion, n: u64) -> bool {
        // Outside the old memory (it is not): not completed.
        let dw3 = ram.read_u32(OLD_ACQ + n * 16 + 12).unwrap_or(0);
        dw3 & (1 << 16) != 0
    }
}

/// `nvme-dirty`: live queues, outstanding commands and garbage registers first.
pub fn dirty(boot: &'static BootInfo) -> Outcome {
    let mut f = Fields::new();
    let mut m = machine(boot, &mut f)?;
    let old = m.old.start();
    // Take the controller over from firmware, as the dead kernel did at boot.
    let mut dead = DeadKernel::start(&m, OLD_ASQ, &mut f)?;
    ensure!(
        core::mem::take(&mut f),
        dead.wait_rdy(true),
        "dead kernel: enable"
    );
    // Like any kernel, the dead one identifies its disk before writing to it.
    dead.sqe(&mut m.old, OLD_ASQ, 0x06, 1, 0, old + OLD_IDENTIFY, 1, 0, 0);
    dead.regs.write32(0x1000, 1);
    let deadline = Deadline::after(&m.clock, Duration::from_secs(2));
    let identified = poll(
        &m.clock,
        deadline,
        || dead.admin_completed(&m.old, 0),
        |&d| d,
    )
    .is_ok();
    ensure!(core::mem::take(&mut f), identified, "dead kernel: identify");
    if let Some(wanted) = m.named {
        // Bytes 4..24 of the identify page the controller wrote by DMA.
        let mut sn = [0u8; 20];
        for (i, b) in (0u64..).zip(sn.iter_mut()) {
            *b = m.old.read_u8(OLD_IDENTIFY + 4 + i).unwrap_or(0);
        }
        let serial = core::str::from_utf8(&sn).unwrap_or("");
        ensure!(
            core::mem::take(&mut f),
            serial.trim_end() == wanted,
            "dead kernel: serial {serial:?} is not the named {wanted}"
        );
    }
    // Create I/O CQ 1 with 4 entries (never drained), SQ 1 with 32.
    dead.sqe(
        &mut m.old,
        OLD_ASQ + 64,
        0x05,
        1,
        0,
        old + OLD_IOCQ,
        1 | 3 << 16,
        1,
        0,
    );
    dead.sqe(
        &mut m.old,
        OLD_ASQ + 128,
        0x01,
        2,
        0,
        old + OLD_IOSQ,
        1 | 31 << 16,
        1 << 16 | 1,
        0,
    );
    dead.regs.write32(0x1000, 3);
    let deadline = Deadline::after(&m.clock, Duration::from_secs(2));
    let created = poll(
        &m.clock,
        deadline,
        || dead.admin_completed(&m.old, 2),
        |&d| d,
    )
    .is_ok();
    ensure!(
        core::mem::take(&mut f),
        created,
        "dead kernel: create I/O queues"
    );
    // Twelve reads and writes to the dead kernel's buffers: three complete into
    // the 4-entry CQ, the rest stay outstanding inside the controller.
    for i in 0..12u64 {
        let buf = old + OLD_DATA + (i % 10) * 0x1000;
        let (opcode, lba) = if i % 2 == 0 {
            (0x02, i * 8)
        } else {
            (0x01, 8192 + i * 8)
        };
        dead.sqe(
            &mut m.old,
            OLD_IOSQ + i * 64,
            opcode,
            100 + i as u16,
            m.nsid,
            buf,
            lba as u32,
            0,
            7,
        );
    }
    dead.regs.write32(0x1008, 12);
    // Admin commands submitted, doorbell rung, completions never consumed.
    for i in 0..3u64 {
        dead.sqe(
            &mut m.old,
            OLD_ASQ + (3 + i) * 64,
            0x06,
            200 + i as u16,
            0,
            old + OLD_IDENTIFY,
            1,
            0,
            0,
        );
    }
    dead.regs.write32(0x1000, 6);
    // Garbage in the writable registers (QEMU stores them while enabled).
    dead.regs.write32(0x0c, 0xffff_ffff);
    dead.regs.write32(0x24, 0x0abc_0def);
    dead.regs.write32(0x28, 0xdead_b000);
    dead.regs.write32(0x30, 0xbeef_0000);
    // The dead kernel's mapping is not used again.
    let _ = dead;
    let mut nvme = take_over(&mut m, &mut f)?;
    // From here on nothing may touch the dead kernel's memory.
    m.old.fill(0, OLD_SIZE, CANARY);
    exercise(&mut nvme, &mut m, &mut f)?;
    m.clock.delay(Duration::from_millis(50));
    let touched = m.old.first_not(0, OLD_SIZE, CANARY);
    ensure!(
        core::mem::take(&mut f),
        touched.is_none(),
        "old memory written after init at offset {touched:?}"
    );
    f.add("old_memory", "untouched");
    Ok(f)
}

/// `nvme-cfs`: a failed enable leaves CSTS.CFS set.
pub fn cfs(boot: &'static BootInfo) -> Outcome {
    let mut f = Fields::new();
    let mut m = machine(boot, &mut f)?;
    // A misaligned admin submission queue: QEMU refuses to start.
    let mut dead = DeadKernel::start(&m, 0x10, &mut f)?;
    let csts = dead.regs.read32(0x1c);
    ensure!(
        core::mem::take(&mut f),
        !csts.is_all_ones() && csts.bit(1),
        "CSTS.CFS not set by a bad enable (all-ones: controller gone): {csts:?}"
    );
    // The dead kernel's mapping is not used again.
    let _ = dead;
    let mut nvme = take_over(&mut m, &mut f)?;
    exercise(&mut nvme, &mut m, &mut f)?;
    Ok(f)
}

/// `nvme-handoff`: shutdown, then a second init reads the data back.
pub fn handoff(boot: &'static BootInfo) -> Outcome {
    let mut f = Fields::new();
    let mut m = machine(boot, &mut f)?;
    let nvme = driver(&mut m, &mut f)?;
    let mut nvme = bring_up(nvme, "init_us", &mut f)?;
    exercise(&mut nvme, &mut m, &mut f)?;
    check!(core::mem::take(&mut f), nvme.shutdown(), "shutdown");
    let mut regs = map_bar0(m.address, &mut f)?;
    // shutdown() returned Ok: CSTS.SHST reported complete. It then cleared
    // CC.EN, which on QEMU resets CSTS (SHST included) to 0.
    let csts = regs.read32(0x1c);
    let cc = regs.read32(0x14);
    f.add("csts_after_shutdown", format_args!("{csts:x}"));
    ensure!(
        core::mem::take(&mut f),
        !csts.is_all_ones() && !csts.bit(0) && !cc.bit(0),
        "after shutdown: CSTS {csts:?} CC {cc:?}"
    );
    let cmd = paranoid::pci::command::read(&mut platform::cf8(), m.address);
    ensure!(
        core::mem::take(&mut f),
        matches!(cmd, Ok(c) if !c.contains(paranoid::pci::command::Command::BUS_MASTER)),
        "bus mastering still on after shutdown: {cmd:?}"
    );
    // The first driver is done (shut down and fenced); a new one takes over.
    let _ = nvme;
    // The second driver's figures go under `second_` keys (a key appears once).
    f.set_prefix("second_");
    let second = driver(&mut m, &mut f)?;
    let mut second = bring_up(second, "init_us", &mut f)?;
    // The blocks written before the handoff are still there.
    let mut back = check!(
        core::mem::take(&mut f),
        m.arena.alloc::<FromDevice>(4096, 4096),
        "alloc"
    );
    check!(
        core::mem::take(&mut f),
        second.read_at(PATTERN_AT, 4096, &mut back, 0),
        "read after handoff"
    );
    let mut chunk = [0u8; 512];
    for b in 0..8u64 {
        check!(
            core::mem::take(&mut f),
            back.read_bytes(b as usize * 512, &mut chunk),
            "read back"
        );
        let ok = chunk
            .iter()
            .enumerate()
            .all(|(i, &byte)| byte == pattern(PATTERN_LBA + b, i));
        ensure!(
            core::mem::take(&mut f),
            ok,
            "block {} lost across the handoff",
            PATTERN_LBA + b
        );
    }
    exercise(&mut second, &mut m, &mut f)?;
    Ok(f)
}
