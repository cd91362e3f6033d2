//! The scenarios: machine set-up, the dead kernel's mess, init, traffic.
// A failure carries its result line in a fixed buffer (no allocator).
#![expect(
    clippy::result_large_err,
    reason = "InitFailure carries the fixed-size init trace and the driver back (paranoid::init has no heap)"
)]

use core::time::Duration;

use paranoid::dma::DmaArena;
use paranoid::mmio::{Mmio, RegisterIo};
use paranoid::pci::command::{self, Command};
use paranoid::pci::{Cf8, ConfigAccess, PciAddress};
use paranoid::phys::RamRegion;
use paranoid::time::{Clock, Deadline};
use paranoid_boot::platform;
use paranoid_boot::{println, BootInfo, TscClock};
use paranoid_e1000::init::init;
use paranoid_e1000::regs::{self, E1000Regs};
use paranoid_e1000::{Config, E1000Error, LinkPolicy, Part, E1000};
use paranoid_test_kernel::identity::{self, map_bar0, IdentityDma};
use paranoid_test_kernel::report::{fail, Failure, Fields, Outcome};
use paranoid_test_kernel::{check, ensure};

paranoid::dma_windows! {
    address_width = 39;
    /// The driver's DMA window: identity-mapped RAM at 32 MiB (no IOMMU
    /// translation on this machine until a kernel turns it on).
    pub IdentityWindow = 0x0200_0000;
}

type Nic = E1000<Mmio, Cf8, TscClock, IdentityWindow>;

/// Ethertypes that tell frames apart on the hub.
const TEST: [u8; 2] = [0x88, 0xb5];
/// A's transmit descriptors posted by the dead kernel: must never be sent.
const STALE_TX: [u8; 2] = [0x88, 0xb6];
/// B's traffic before the crash, and frames sent to a stopped NIC.
const BACKGROUND: [u8; 2] = [0x88, 0xb7];

/// Bytes of "old kernel" memory for the dirty rings.
const OLD_SIZE: u64 = 64 << 10;
/// Layout of the old memory.
const OLD_A_RX_RING: u64 = 0x0000;
const OLD_A_RX_BUFS: u64 = 0x1000;
const OLD_A_TX_RING: u64 = 0x5000;
const OLD_A_TX_BUFS: u64 = 0x6000;
const OLD_B_TX_RING: u64 = 0x8000;
const OLD_B_TX_BUFS: u64 = 0x9000;
/// What the old receive area is filled with after init, to see any DMA there.
const CANARY: u8 = 0xc5;

struct Machine {
    clock: TscClock,
    arena: DmaArena<IdentityWindow>,
    old: RamRegion,
    nics: [Option<PciAddress>; 4],
    count: usize,
}

impl Machine {
    /// The NICs on the hub: the last two (the harness's own e1000 comes first).
    fn hub_pair(&self) -> Option<(PciAddress, PciAddress)> {
        let a = self
            .nics
            .get(self.count.checked_sub(2)?)
            .copied()
            .flatten()?;
        let b = self
            .nics
            .get(self.count.checked_sub(1)?)
            .copied()
            .flatten()?;
        Some((a, b))
    }
}

fn machine(boot: &'static BootInfo, f: &mut Fields) -> Result<Machine, Failure> {
    let IdentityDma { arena, old } = identity::reserve::<IdentityWindow>(boot, OLD_SIZE, f)?;
    let mut nics = [None; 4];
    let mut count = 0;
    for found in platform::find_class(&mut platform::cf8(), 0x02, 0x00).iter() {
        // Any supported 8254x part (the driver refuses the rest by id).
        if Part::is_supported(found.info.vendor, found.info.device) {
            if let Some(slot) = nics.get_mut(count) {
                *slot = Some(found.address());
                count += 1;
            }
        }
    }
    f.add("nics", count);
    Ok(Machine {
        clock: boot.clock(),
        arena,
        old,
        nics,
        count,
    })
}

fn driver(m: &mut Machine, a: PciAddress, f: &mut Fields) -> Result<Nic, Failure> {
    let mmio = map_bar0(a, f)?;
    let config = Config {
        link_policy: LinkPolicy::RequireUp,
        ..Config::default()
    };
    Ok(check!(
        core::mem::take(f),
        E1000::new(mmio, platform::cf8(), a, m.clock, &mut m.arena, config),
        "driver"
    ))
}

/// Runs the paranoid init and prints its trace.
fn bring_up(nic: Nic, clock: &TscClock, who: &str, f: &mut Fields) -> Result<Nic, Failure> {
    println!(
        "{who}: part {} ({:04x})",
        nic.part(),
        nic.part().device_id()
    );
    match init(nic, clock) {
        Ok(ok) => {
            println!("{who}: {}", ok.trace);
            f.add(
                match who {
                    "A" => "init_a_us",
                    "B" => "init_b_us",
                    _ => "init_us",
                },
                ok.trace.total().as_micros(),
            );
            Ok(ok.device.into_inner())
        }
        Err(e) => {
            println!("{who}: {e}");
            Err(fail(
                core::mem::take(f),
                format_args!("init {who}: {:?}", e.cause),
            ))
        }
    }
}

/// A frame of `len` bytes to `dst` from `src` with `ethertype`, payload from `seq`.
fn build(
    buf: &mut [u8; 1514],
    dst: [u8; 6],
    src: [u8; 6],
    ethertype: [u8; 2],
    seq: u32,
    len: usize,
) -> usize {
    let len = len.clamp(60, buf.len());
    buf[..6].copy_from_slice(&dst);
    buf[6..12].copy_from_slice(&src);
    buf[12..14].copy_from_slice(&ethertype);
    buf[14..18].copy_from_slice(&seq.to_le_bytes());
    for (i, b) in buf.iter_mut().enumerate().take(len).skip(18) {
        *b = (i as u32).wrapping_mul(31).wrapping_add(seq) as u8;
    }
    len
}

/// What a receiver saw besides the frame it waited for.
#[derive(Default)]
struct Seen {
    stale_tx: u32,
    background: u32,
    other: u32,
}

/// Receives until the test frame `want` arrives (other frames are counted).
fn expect(
    rx: &mut Nic,
    clock: &TscClock,
    want: &[u8],
    seen: &mut Seen,
    f: &mut Fields,
) -> Result<(), Failure> {
    let mut buf = [0u8; 2048];
    // The first frames after an RCTL write wait for QEMU's 1 s receive-queue
    // flush timer.
    let deadline = Deadline::after(clock, Duration::from_secs(3));
    loop {
        let n = check!(
            core::mem::take(f),
            rx.receive_wait(&mut buf, deadline),
            "receive"
        );
        let got = buf.get(..n).unwrap_or(&[]);
        match got.get(12..14) {
            Some(t) if t == TEST => {
                ensure!(
                    core::mem::take(f),
                    got == want,
                    "frame of {} bytes came back as {} bytes, first difference at {:?}",
                    want.len(),
                    n,
                    got.iter().zip(want).position(|(a, b)| a != b)
                );
                return Ok(());
            }
            Some(t) if t == STALE_TX => seen.stale_tx += 1,
            Some(t) if t == BACKGROUND => seen.background += 1,
            _ => seen.other += 1,
        }
    }
}

/// `n` frames from `tx` to `rx`, every size, contents verified.
fn exchange(
    tx: &mut Nic,
    rx: &mut Nic,
    clock: &TscClock,
    n: u32,
    seen: &mut Seen,
    f: &mut Fields,
) -> Result<(), Failure> {
    let mut frame = [0u8; 1514];
    for i in 0..n {
        let len = [60, 61, 128, 512, 1000, 1514][(i % 6) as usize];
        let len = build(&mut frame, rx.mac().0, tx.mac().0, TEST, i, len);
        let sent = frame.get(..len).unwrap_or(&[]);
        let deadline = Deadline::after(clock, Duration::from_secs(1));
        check!(core::mem::take(f), tx.send(sent, deadline), "send");
        expect(rx, clock, sent, seen, f)?;
    }
    Ok(())
}

/// `e1000-init`.
pub fn init_only(boot: &'static BootInfo) -> Outcome {
    let mut f = Fields::new();
    let mut m = machine(boot, &mut f)?;
    let Some(a) = m.nics.first().copied().flatten() else {
        return Err(fail(f, "no e1000"));
    };
    let nic = driver(&mut m, a, &mut f)?;
    let mut nic = bring_up(nic, &m.clock, "nic", &mut f)?;
    f.add("mac", nic.mac());
    let link = check!(f, nic.link(), "link");
    f.add("link_mbps", link.speed_mbps);
    let mut frame = [0u8; 1514];
    let len = build(&mut frame, [0xff; 6], nic.mac().0, TEST, 0, 60);
    for _ in 0..40 {
        let deadline = Deadline::after(&m.clock, Duration::from_secs(1));
        check!(
            f,
            nic.send(frame.get(..len).unwrap_or(&[]), deadline),
            "send"
        );
    }
    f.add("sent", nic.stats().tx_frames);
    Ok(f)
}

/// Writes a legacy descriptor at offset `at` of the old memory (the dead
/// kernel's ring; 16-byte aligned: callers pass offsets of the layout above).
fn put_desc(ram: &mut RamRegion, at: u64, addr: u64, lower: u32) {
    ram.write_u64(at, addr);
    ram.write_u32(at + 8, lower);
    ram.write_u32(at + 12, 0);
}

fn put_frame(ram: &mut RamRegion, at: u64, frame: &[u8]) {
    ram.write(at, frame);
}

/// Frames the dead kernel queues: the arguments of [`build`] but the sequence.
struct Frames {
    dst: [u8; 6],
    src: [u8; 6],
    ethertype: [u8; 2],
    len: usize,
}

/// Fills `count` transmit descriptors of a ring at offset `ring` of the old
/// memory, one frame each (sequence numbers from 0) in buffers `stride` bytes
/// apart from offset `bufs`, with EOP, IFCS and RS set.
fn post_tx(ram: &mut RamRegion, ring: u64, bufs: u64, stride: u64, count: u64, frames: &Frames) {
    let mut frame = [0u8; 1514];
    for i in 0..count {
        let len = build(
            &mut frame,
            frames.dst,
            frames.src,
            frames.ethertype,
            i as u32,
            frames.len,
        );
        put_frame(ram, bufs + stride * i, frame.get(..len).unwrap_or(&[]));
        let addr = ram.start() + bufs + stride * i;
        put_desc(ram, ring + 16 * i, addr, len as u32 | 0b1011 << 24);
    }
}

/// The dead kernel: A receiving into an old ring (B sends to it), A's transmit
/// descriptors posted, interrupts unmasked and pending, garbage in A's tables.
fn dirty(m: &mut Machine, a: PciAddress, b: PciAddress, f: &mut Fields) -> Result<(), Failure> {
    // The dead kernel's driver: raw register writes through the declared block.
    let mut ra = E1000Regs::new(map_bar0(a, f)?);
    let mut rb = E1000Regs::new(map_bar0(b, f)?);
    for x in [a, b] {
        check!(
            core::mem::take(f),
            command::update(
                &mut platform::cf8(),
                x,
                Command::BUS_MASTER | Command::MEMORY_SPACE,
                Command::empty()
            ),
            "bus master"
        );
    }
    let old = m.old.start();
    let mac_a = read_ra0(&mut ra);
    let mac_b = read_ra0(&mut rb);
    // A receives into 8 descriptors in old memory.
    for i in 0..8u64 {
        put_desc(
            &mut m.old,
            OLD_A_RX_RING + 16 * i,
            old + OLD_A_RX_BUFS + 2048 * i,
            0,
        );
    }
    ra.rctl().write(0);
    ra.rdbal().write((old + OLD_A_RX_RING) as u32);
    ra.rdbah().write(0);
    ra.rdlen().write(128);
    ra.rdh().write(0);
    ra.rdt().write(7);
    ra.rctl()
        .write(regs::rctl::EN | regs::rctl::BAM | regs::rctl::UPE | regs::rctl::SECRC);
    // Garbage in the tables, every interrupt unmasked.
    for n in 0..regs::MTA_ENTRIES {
        if let Some(o) = regs::mta_offset(n) {
            ra.io().write32(o, 0xdead_beef ^ n as u32);
        }
    }
    if let Some((ral, rah)) = regs::ra_offsets(1) {
        ra.io().write32(ral, 0x4433_2211);
        ra.io().write32(rah, 0x6655 | regs::RAH_AV);
    }
    ra.ims().write(0xffff_ffff);
    // A's transmit descriptors posted while its transmitter was stopped.
    let stale = Frames {
        dst: [0xff; 6],
        src: mac_a,
        ethertype: STALE_TX,
        len: 100,
    };
    post_tx(&mut m.old, OLD_A_TX_RING, OLD_A_TX_BUFS, 2048, 4, &stale);
    ra.tctl().write(regs::tctl::PSP);
    ra.tdbal().write((old + OLD_A_TX_RING) as u32);
    ra.tdbah().write(0);
    ra.tdlen().write(128);
    ra.tdh().write(0);
    ra.tdt().write(4);
    // QEMU holds receive for 1 s after an RCTL write.
    m.clock.delay(Duration::from_millis(1100));
    // B (also driven raw, ring in old memory) sends 12 frames: A's 7 free
    // descriptors fill, the rest wait in QEMU's queue.
    let background = Frames {
        dst: mac_a,
        src: mac_b,
        ethertype: BACKGROUND,
        len: 80,
    };
    post_tx(
        &mut m.old,
        OLD_B_TX_RING,
        OLD_B_TX_BUFS,
        256,
        12,
        &background,
    );
    rb.tdbal().write((old + OLD_B_TX_RING) as u32);
    rb.tdbah().write(0);
    rb.tdlen().write(256);
    rb.tdh().write(0);
    rb.tdt().write(0);
    rb.tctl().write(regs::tctl::EN | regs::tctl::PSP);
    rb.tdt().write(12);
    let deadline = Deadline::after(&m.clock, Duration::from_secs(2));
    let filled = paranoid::poll::poll(
        &m.clock,
        deadline,
        || ra.rdh().read().untrusted(),
        |h| h.is(7),
    );
    let rdh = match filled {
        Ok(v) | Err(paranoid::poll::Timeout { last: v, .. }) => v.into_raw_for_report(),
    };
    f.add("old_ring_filled", rdh);
    ensure!(
        core::mem::take(f),
        rdh == 7,
        "A did not receive into the old ring (RDH {rdh})"
    );
    Ok(())
}

fn read_ra0(r: &mut E1000Regs<Mmio>) -> [u8; 6] {
    let lo = r
        .ral0()
        .read()
        .untrusted()
        .into_raw_for_report()
        .to_le_bytes();
    let hi = r
        .rah0()
        .read()
        .untrusted()
        .into_raw_for_report()
        .to_le_bytes();
    [lo[0], lo[1], lo[2], lo[3], hi[0], hi[1]]
}

/// `e1000-pair` and `e1000-dirty`.
pub fn pair(boot: &'static BootInfo, dirty_first: bool) -> Outcome {
    let mut f = Fields::new();
    let mut m = machine(boot, &mut f)?;
    let Some((a, b)) = m.hub_pair().filter(|_| m.count >= 3) else {
        return Err(fail(f, "expected the harness e1000 plus two on the hub"));
    };
    if dirty_first {
        dirty(&mut m, a, b, &mut f)?;
    }
    let na = driver(&mut m, a, &mut f)?;
    let nb = driver(&mut m, b, &mut f)?;
    let mut na = bring_up(na, &m.clock, "A", &mut f)?;
    let mut nb = bring_up(nb, &m.clock, "B", &mut f)?;
    if dirty_first {
        // Any DMA into the old receive area from now on would show.
        m.old.fill(OLD_A_RX_RING, OLD_A_TX_RING, CANARY);
    }
    let mut seen_a = Seen::default();
    let mut seen_b = Seen::default();
    exchange(&mut nb, &mut na, &m.clock, 24, &mut seen_a, &mut f)?;
    exchange(&mut na, &mut nb, &m.clock, 24, &mut seen_b, &mut f)?;
    // A broadcast from B reaches A.
    let mut frame = [0u8; 1514];
    let len = build(&mut frame, [0xff; 6], nb.mac().0, TEST, 999, 300);
    let bc = frame.get(..len).unwrap_or(&[]);
    check!(
        f,
        nb.send(bc, Deadline::after(&m.clock, Duration::from_secs(1))),
        "broadcast"
    );
    expect(&mut na, &m.clock, bc, &mut seen_a, &mut f)?;
    f.add("frames", 49)
        .add("mac_a", na.mac())
        .add("mac_b", nb.mac())
        .add("background_at_a", seen_a.background)
        .add("stale_tx_at_b", seen_b.stale_tx);
    ensure!(
        f,
        seen_b.stale_tx == 0,
        "A sent the dead kernel's descriptors"
    );
    ensure!(
        f,
        seen_a.other + seen_b.other == 0,
        "unknown frames on the hub"
    );
    if dirty_first {
        let touched = m.old.count_not(OLD_A_RX_RING, OLD_A_TX_RING, CANARY);
        f.add("old_bytes_touched", touched);
        ensure!(f, touched == 0, "DMA into the old receive ring after init");
        // The dead kernel's interrupt mask and tables are gone too.
        let ims = read32(&mut na, regs::e1000_regs::ims::OFFSET);
        let mta_set = (0..regs::MTA_ENTRIES)
            .filter_map(regs::mta_offset)
            .filter(|&o| read32(&mut na, o) != 0)
            .count();
        let ra1_valid =
            regs::ra_offsets(1).is_some_and(|(_, rah)| read32(&mut na, rah) & regs::RAH_AV != 0);
        f.add("ims_after", format_args!("{ims:#x}"))
            .add("mta_entries_set", mta_set)
            .add("ra1_valid", ra1_valid);
        ensure!(
            f,
            ims == 0 && mta_set == 0 && !ra1_valid,
            "the dead kernel's mask or filter tables survived init"
        );
    }
    Ok(f)
}

/// A register of a driver's NIC, raw, for the test's own checks.
fn read32(nic: &mut Nic, offset: usize) -> u32 {
    paranoid::mmio::RegisterIo::read32(nic.registers(), offset).into_raw_for_report()
}

/// `e1000-handoff`.
pub fn handoff(boot: &'static BootInfo) -> Outcome {
    let mut f = Fields::new();
    let mut m = machine(boot, &mut f)?;
    let Some((a, b)) = m.hub_pair().filter(|_| m.count >= 3) else {
        return Err(fail(f, "expected the harness e1000 plus two on the hub"));
    };
    let na = driver(&mut m, a, &mut f)?;
    let nb = driver(&mut m, b, &mut f)?;
    let mut na = bring_up(na, &m.clock, "A", &mut f)?;
    let mut nb = bring_up(nb, &m.clock, "B", &mut f)?;
    let mut seen = Seen::default();
    exchange(&mut nb, &mut na, &m.clock, 4, &mut seen, &mut f)?;
    check!(
        f,
        na.shutdown(Deadline::after(&m.clock, Duration::from_secs(1))),
        "shutdown"
    );
    let cmd = platform::cf8().read16(a, 0x04).into_raw_for_report();
    f.add("command_after_shutdown", format_args!("{cmd:#x}"));
    ensure!(f, cmd & 0x4 == 0, "bus mastering still on after shutdown");
    ensure!(
        f,
        na.transmit(&[0; 60]) == Err(E1000Error::NotRunning),
        "a stopped NIC accepted a frame"
    );
    let rdh_before = read32(&mut na, regs::e1000_regs::rdh::OFFSET);
    let mut frame = [0u8; 1514];
    for i in 0..4 {
        let len = build(&mut frame, na.mac().0, nb.mac().0, BACKGROUND, i, 120);
        check!(
            f,
            nb.send(
                frame.get(..len).unwrap_or(&[]),
                Deadline::after(&m.clock, Duration::from_secs(1))
            ),
            "send to stopped NIC"
        );
    }
    m.clock.delay(Duration::from_millis(1200));
    let rdh_after = read32(&mut na, regs::e1000_regs::rdh::OFFSET);
    let rctl = read32(&mut na, regs::e1000_regs::rctl::OFFSET);
    f.add(
        "rdh_while_stopped",
        format_args!("{rdh_before}->{rdh_after}"),
    );
    ensure!(
        f,
        rdh_after == rdh_before && rctl & regs::rctl::EN == 0,
        "the stopped NIC received"
    );
    // The next kernel (here: a second init) takes the NIC over from that state;
    // its figures go under `reinit_` keys (a key appears once).
    f.set_prefix("reinit_");
    let mut na = bring_up(na, &m.clock, "A", &mut f)?;
    f.set_prefix("");
    exchange(&mut nb, &mut na, &m.clock, 12, &mut seen, &mut f)?;
    exchange(&mut na, &mut nb, &m.clock, 12, &mut seen, &mut f)?;
    f.add("frames_after_reinit", 24)
        .add("background_after_reinit", seen.background);
    Ok(f)
}
