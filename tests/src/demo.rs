//! The crash → recovery scenarios: kernel A crashes with DMA live, the recovery
//! kernel takes over and writes a dump; the host then checks the dump and the
//! disk.
//!
//! Every run is checked three ways beyond its result line:
//!
//! 1. `paranoid dump verify` (the reader in `examples/dump`, run as a program:
//!    the harness links no example) verifies the dump in the extent: every
//!    record and CRC, coverage of the crashed kernel's memory, and each word of
//!    its memory pattern;
//! 2. cluster safety: outside the dump extent and kernel A's own scratch blocks
//!    the disk must be exactly as prepared (zeros, with a marker block every
//!    MiB so an overwrite with zeros is caught too); the scratch blocks may only
//!    hold what kernel A wrote there;
//! 3. the recovery kernel's canaries: no stale DMA landed in its memory.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::scenario::{RunDir, RunOutput, Scenario, RUN_DIR};

/// Size of the demo's NVMe disk.
pub const DISK_SIZE: u64 = 512 << 20;
/// First 512-byte block of the dump extent in the image file: 1 MiB in
/// (`dump_offset=1M`, in bytes, so it is the same on any block size).
pub const DUMP_LBA: u64 = 2048;
/// 512-byte blocks of the dump extent: 400 MiB (`dump_size=400M`).
pub const DUMP_BLOCKS: u64 = 400 * 2048;
/// Kernel A's scratch blocks (its own in-flight writes): 16 MiB at 448 MiB.
pub const SCRATCH_LBA: u64 = 448 * 2048;
/// Blocks of the scratch area.
pub const SCRATCH_BLOCKS: u64 = 16 * 2048;
/// The byte kernel A fills its scratch writes with.
pub const SCRATCH_FILL: u8 = 0x4b;
/// Crash points kernel A offers.
pub const CRASH_POINTS: [&str; 4] = ["early", "during-io", "critical", "index-oob"];
/// IOMMU policies the recovery kernel offers.
pub const POLICIES: [&str; 2] = ["adopt", "fence"];

/// The demo scenario: one crash and recovery.
///
/// The machine's NIC (NIC0, the one kernel A and the recovery kernel drive)
/// sits on hub 0 with a UDP socket through which the harness plays an outside
/// network: a frame every 5–20 ms (by seed), so NIC0 keeps receiving into
/// kernel A's ring after the crash. QEMU captures NIC0's wire to `hub.pcap`
/// (what the cluster sees). The NIC and the dump target come from the
/// scenario's machine; the recovery settings name the target by serial
/// number and namespace id, and give the extent in bytes.
pub fn scenario(name: &str, point: &str, policy: &str, seed: u64) -> Scenario {
    let (to_qemu, from_qemu) = traffic_ports(name);
    Scenario::new(name)
        .kernel("kernel-a")
        .initrd("recovery-kernel")
        .cmdline(&format!(
            "crash={point} seed={seed} iommu={policy} dump_offset={} dump_size={}",
            DUMP_LBA * 512,
            DUMP_BLOCKS * 512
        ))
        .names_target()
        .result_test("recovery")
        .nic_netdev("h0")
        .qemu_args([
            // QEMU's edu device: kernel A arms a DMA that lands 100 ms after the crash.
            "-device".to_string(),
            "edu".into(),
            "-netdev".into(),
            "hubport,id=h0,hubid=0".into(),
            "-object".into(),
            format!("filter-dump,id=cap1,netdev=h0,file={}/hub.pcap", RUN_DIR),
            "-netdev".into(),
            format!("socket,id=ext,udp=127.0.0.1:{from_qemu},localaddr=127.0.0.1:{to_qemu}"),
            "-netdev".into(),
            "hubport,id=h2,hubid=0,netdev=ext".into(),
        ])
        .disk_size(DISK_SIZE)
        .timeout(Duration::from_secs(90))
        .prepare(move |dir| {
            prepare_disk(dir)?;
            start_traffic(to_qemu, from_qemu, traffic_interval(seed))
        })
        .check(check_run)
}

/// UDP ports of a scenario's outside network (QEMU listens on the first):
/// a fresh pair per scenario built, offset by the process id so two harnesses
/// on one machine stay apart. The name is not used: one scenario renamed for
/// several machine profiles runs several times at once.
fn traffic_ports(_name: &str) -> (u16, u16) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let k = NEXT.fetch_add(1, Ordering::Relaxed);
    let start = std::process::id().wrapping_mul(2_654_435_761) % 10_000;
    let base = 20_000 + ((start + k) % 20_000) as u16 * 2;
    (base, base + 1)
}

/// The outside network's frame interval for a seed: 5..=20 ms, so seeds also
/// vary how full the dead kernel's RX ring is when the recovery starts.
fn traffic_interval(seed: u64) -> Duration {
    Duration::from_millis(5 + seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) % 16)
}

/// Plays the outside network for 20 s: a broadcast frame every `interval`.
fn start_traffic(to_qemu: u16, from_qemu: u16, interval: Duration) -> Result<(), String> {
    let socket = std::net::UdpSocket::bind(("127.0.0.1", from_qemu))
        .map_err(|e| format!("traffic socket: {e}"))?;
    std::thread::spawn(move || {
        let mut frame = [0u8; 64];
        frame[..6].copy_from_slice(&[0xff; 6]);
        frame[6..12].copy_from_slice(&[0x02, 0x00, 0x00, 0x0e, 0x0e, 0x0e]);
        frame[12..14].copy_from_slice(&[0x88, 0xb5]);
        frame[14..30].copy_from_slice(b"PARANOID-TRAFFIC");
        let frames = (20_000 / interval.as_millis().max(1)) as u32;
        for seq in 0..frames {
            frame[30..34].copy_from_slice(&seq.to_be_bytes());
            let _ = socket.send_to(&frame, ("127.0.0.1", to_qemu));
            std::thread::sleep(interval);
        }
    });
    Ok(())
}

/// Heartbeat frames from the recovery kernel in a pcap capture.
pub fn heartbeats_in_pcap(pcap: &[u8]) -> Result<u64, String> {
    let magic = pcap.get(..4).ok_or("pcap too short")?;
    let little = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] => false,
        _ => return Err("not a pcap file".into()),
    };
    let word = |b: &[u8]| {
        let a: [u8; 4] = b.try_into().unwrap_or([0; 4]);
        if little {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let mut at = 24;
    let mut beats = 0;
    while let Some(rec) = pcap.get(at..at + 16) {
        let len = word(&rec[8..12]) as usize;
        let frame = pcap
            .get(at + 16..at + 16 + len)
            .ok_or("truncated pcap record")?;
        let is_udp_beat = frame.len() >= 60
            && frame[12..14] == [0x08, 0x00]
            && frame[23] == 17
            && frame[36..38] == 7374u16.to_be_bytes()
            && frame[42..].starts_with(b"PARANOID-HEARTBEAT");
        beats += u64::from(is_udp_beat);
        at += 16 + len;
    }
    Ok(beats)
}

/// What QEMU prints on stderr when the i6300esb expires under
/// `-action watchdog=debug` (QEMU `hw/watchdog/watchdog.c`); the machine keeps
/// running, so a watchdog expiry is told apart from a crash or a reset.
pub const WATCHDOG_FIRED: &str = "watchdog: timer fired";

/// The heartbeat pair: kernel A arms the node's watchdog (500 ms) just before
/// crashing; the recovery takes longer than that. QEMU runs the watchdog with
/// `-action watchdog=debug`: an expiry is printed on QEMU's stderr and the
/// machine goes on, so the host sees whether it fired. With `heartbeat=both`
/// the recovery pets it and sends UDP heartbeats (seen on the NIC's wire)
/// between steps and chunks, and the watchdog must never fire; without, it
/// must fire mid-recovery.
pub fn heartbeat(with: bool) -> Scenario {
    let name = if with {
        "heartbeat-on"
    } else {
        "heartbeat-off"
    };
    let beat = if with {
        "heartbeat=both"
    } else {
        "heartbeat=none"
    };
    scenario(name, "during-io", "fence", 1)
        .qemu_args(["-device", "i6300esb", "-action", "watchdog=debug"])
        .append(&format!("watchdog_ms=500 {beat} heartbeat_ms=100"))
        .check(move |out| {
            check_run(out)?;
            let stderr = crate::qemu::read_lossy(&out.dir.stderr());
            let fired = stderr.contains(WATCHDOG_FIRED);
            if !with {
                return if fired {
                    Ok(())
                } else {
                    Err("no heartbeats, yet the watchdog never fired".into())
                };
            }
            if fired {
                return Err("the watchdog fired although the recovery sent heartbeats".into());
            }
            let pcap =
                std::fs::read(out.dir.file("hub.pcap")).map_err(|e| format!("hub.pcap: {e}"))?;
            let seen = heartbeats_in_pcap(&pcap)?;
            if seen < 3 {
                return Err(format!("the NIC's wire carried {seen} heartbeat frames"));
            }
            let beats: u64 = out
                .field("heartbeats")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let gap: u64 = out
                .field("max_heartbeat_gap_ms")
                .and_then(|v| v.parse().ok())
                .unwrap_or(u64::MAX);
            if beats < 3 || gap > 500 {
                return Err(format!(
                    "heartbeats={beats} max_heartbeat_gap_ms={gap}: the watchdog was not kept fed"
                ));
            }
            Ok(())
        })
}

/// The drain pair: kernel A crashes with a TX burst posted, NVMe writes done
/// and an edu DMA armed to land 100 ms later. With `iommu=drain` the old
/// translation is kept for each device class's window, so the edu transfer
/// completes into kernel A's memory before everything is fenced; with
/// `iommu=fence` it faults. Either way nothing lands in recovery memory.
pub fn drain(with: bool) -> Scenario {
    let (name, policy) = if with {
        ("drain-on", "drain")
    } else {
        ("drain-off", "fence")
    };
    scenario(name, "during-io", policy, 1).check(move |out| {
        check_run(out)?;
        match (with, out.field("drain"), out.field("armed_dma")) {
            (true, Some(d), Some("landed")) if d.split('/').next().is_some_and(|n| n != "0") => {
                Ok(())
            }
            (false, Some("off"), Some("blocked")) => Ok(()),
            (_, d, a) => Err(format!("drain={d:?} armed_dma={a:?}")),
        }
    })
}

/// The clean-shutdown handoff: kernel A shuts its devices down in order (NVMe
/// CC.SHN, e1000 stop and reset, bus mastering off), leaves the IOMMU off and
/// passes control; the next kernel must find every device quiet: no escalation,
/// no stale DMA. It then brings the NVMe controller up a second time from the
/// state it left it in (enabled, queues live), so the fast path and the
/// any-state path are compared in the same run.
pub fn handoff() -> Scenario {
    scenario("handoff", "handoff", "fence", 1).check(|out| {
        check_run(out)?;
        let num = |k: &str| out.field(k).and_then(|v| v.parse::<u64>().ok());
        match (
            num("nvme_escalations"),
            num("stale_faults"),
            num("nvme_any_state_us"),
            num("nvme_fast_us"),
        ) {
            (Some(0), Some(0), Some(any), Some(fast)) if fast > 0 && any > 0 => {
                let ratio = any as f64 / fast as f64;
                let text = format!(
                    "any-state {any} us, after clean shutdown {fast} us, ratio {ratio:.2}\n"
                );
                std::fs::write(out.dir.file("handoff-ratio.txt"), text).map_err(|e| e.to_string())
            }
            other => Err(format!(
                "handoff not quiet: (escalations, stale, any-state us, fast us) = {other:?}"
            )),
        }
    })
}

/// The dump streamed over the NIC as well: kernel A asks for a small dump (its
/// pattern region), the recovery kernel sends every chunk as UDP datagrams, and
/// QEMU captures NIC0's traffic; `paranoid dump verify-stream` reassembles and
/// verifies it from the capture, besides the dump on disk.
pub fn stream() -> Scenario {
    scenario("stream", "during-io", "fence", 2)
        .append("dump=pattern stream=on")
        .qemu_args([
            "-object".to_string(),
            format!("filter-dump,id=cap0,netdev=h0,file={RUN_DIR}/stream.pcap"),
        ])
        .check(|out| {
            check_run(out)?;
            let reader = dump_reader()?;
            let run = Command::new(&reader)
                .args(["dump", "verify-stream"])
                .arg(out.dir.file("stream.pcap"))
                .output()
                .map_err(|e| format!("{}: {e}", reader.display()))?;
            let text = String::from_utf8_lossy(&run.stdout).into_owned();
            std::fs::write(out.dir.file("stream-verify.txt"), &text).map_err(|e| e.to_string())?;
            if run.status.success() && text.contains("verdict: VERIFIED") {
                Ok(())
            } else {
                Err(format!("stream not verified: {text}"))
            }
        })
}

/// The main job, as `cargo xtask demo` runs it: a crash during I/O with the
/// NIC receiving, commands in flight and an edu DMA armed; the drain-then-fence
/// policy (the report lists each device's drain outcome); UDP and watchdog
/// heartbeats on.
pub fn main_job() -> Scenario {
    scenario(MAIN_JOB, "during-io", "drain", 1)
        .qemu_args(["-device", "i6300esb"])
        .append("watchdog_ms=1000 heartbeat=both")
        .check(|out| {
            check_run(out)?;
            if out.machine.expect.refusal.is_some() || out.machine.expected_nic() != "up" {
                return Ok(());
            }
            // The NIC the recovery brought up must really reach the wire: its
            // DMA goes through the IOMMU under the id the IOMMU sees.
            let pcap =
                std::fs::read(out.dir.file("hub.pcap")).map_err(|e| format!("hub.pcap: {e}"))?;
            match heartbeats_in_pcap(&pcap)? {
                0 => Err("nic=up, but no UDP heartbeat reached the wire".into()),
                _ => Ok(()),
            }
        })
}

/// The main job's scenario name (its files are in `tests/out/crash-recovery/`).
pub const MAIN_JOB: &str = "crash-recovery";

/// The chaos campaign: every crash point × policy, with `seeds` seeds each.
pub fn campaign(seeds: u64) -> Vec<Scenario> {
    let mut out = Vec::new();
    for seed in 1..=seeds {
        for point in CRASH_POINTS {
            for policy in POLICIES {
                out.push(scenario(
                    &format!("chaos-{point}-{policy}-{seed}"),
                    point,
                    policy,
                    seed,
                ));
            }
        }
    }
    out
}

/// The marker written at the start of every MiB outside the extent and scratch.
fn marker(mib: u64) -> [u8; 512] {
    let mut b = [0u8; 512];
    for (i, chunk) in b.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&(0x6775_6172_6400_0000 ^ (mib << 16) ^ i as u64).to_le_bytes());
    }
    b
}

/// Bytes of the disk the recovery kernel must not touch, as `[start, end)`.
fn guarded() -> [(u64, u64); 3] {
    let extent = (DUMP_LBA * 512, (DUMP_LBA + DUMP_BLOCKS) * 512);
    let scratch = (SCRATCH_LBA * 512, (SCRATCH_LBA + SCRATCH_BLOCKS) * 512);
    [(0, extent.0), (extent.1, scratch.0), (scratch.1, DISK_SIZE)]
}

fn prepare_disk(dir: &RunDir) -> Result<(), String> {
    if !dir.disk().exists() {
        // The machine has no target namespace (a refusal profile): every disk
        // it has is guarded by the machine's own untouched-disk check.
        return Ok(());
    }
    let mut f = File::options()
        .write(true)
        .open(dir.disk())
        .map_err(|e| e.to_string())?;
    f.set_len(DISK_SIZE).map_err(|e| e.to_string())?;
    for (start, end) in guarded() {
        for at in (start..end).step_by(1 << 20) {
            f.seek(SeekFrom::Start(at)).map_err(|e| e.to_string())?;
            f.write_all(&marker(at >> 20)).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Compares the guarded regions with what `prepare_disk` wrote; returns the
/// number of bytes that differ.
fn changed_outside(disk: &Path) -> Result<u64, String> {
    let mut f = File::open(disk).map_err(|e| e.to_string())?;
    let mut changed = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    for (start, end) in guarded() {
        let mut at = start;
        while at < end {
            let n = ((end - at) as usize).min(buf.len());
            f.seek(SeekFrom::Start(at)).map_err(|e| e.to_string())?;
            f.read_exact(&mut buf[..n]).map_err(|e| e.to_string())?;
            for (i, &b) in buf[..n].iter().enumerate() {
                let pos = at + i as u64;
                let expected = if pos % (1 << 20) < 512 {
                    marker(pos >> 20)[(pos % 512) as usize]
                } else {
                    0
                };
                changed += u64::from(b != expected);
            }
            at += n as u64;
        }
    }
    Ok(changed)
}

/// Bytes kernel A says it wrote (and waited for) at the start of its scratch
/// area: its `... KiB of scratch written` line (0 when it had no disk).
pub fn scratch_written(serial: &str) -> u64 {
    serial
        .lines()
        .find_map(|l| {
            let rest = l.split("nvme: ").nth(1)?;
            let kib = rest.split(" KiB of scratch written").next()?;
            kib.trim().parse::<u64>().ok()
        })
        .map_or(0, |k| k << 10)
}

/// Bytes after the completed scratch writes where kernel A's in-flight writes
/// may or may not have landed (up to 8 × 4 KiB).
const SCRATCH_IN_FLIGHT: u64 = 8 * 4096;

/// 512-byte scratch blocks that are not what kernel A left: the first
/// `written` bytes must all hold its fill (a zeroed block there is caught),
/// the in-flight slots its fill or zeros, the rest zeros.
fn foreign_scratch_blocks(disk: &Path, written: u64) -> Result<u64, String> {
    let mut f = File::open(disk).map_err(|e| e.to_string())?;
    f.seek(SeekFrom::Start(SCRATCH_LBA * 512))
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; (SCRATCH_BLOCKS * 512) as usize];
    f.read_exact(&mut buf).map_err(|e| e.to_string())?;
    let zero = |b: &[u8]| b.iter().all(|&x| x == 0);
    let fill = |b: &[u8]| b.iter().all(|&x| x == SCRATCH_FILL);
    Ok(buf
        .chunks(512)
        .enumerate()
        .filter(|(i, b)| {
            let at = *i as u64 * 512;
            if at < written {
                !fill(b)
            } else if at < written + SCRATCH_IN_FLIGHT {
                !(fill(b) || zero(b))
            } else {
                !zero(b)
            }
        })
        .count() as u64)
}

/// The dump extent past the dump's end must still be as prepared (zeros):
/// the recovery kernel wrote `written` bytes from the extent's start.
fn extent_tail_changed(disk: &Path, written: u64) -> Result<u64, String> {
    let mut f = File::open(disk).map_err(|e| e.to_string())?;
    let extent_end = (DUMP_LBA + DUMP_BLOCKS) * 512;
    let mut at = DUMP_LBA * 512 + written;
    let mut changed = 0;
    let mut buf = vec![0u8; 1 << 20];
    f.seek(SeekFrom::Start(at)).map_err(|e| e.to_string())?;
    while at < extent_end {
        let n = ((extent_end - at) as usize).min(buf.len());
        f.read_exact(&mut buf[..n]).map_err(|e| e.to_string())?;
        changed += buf[..n].iter().filter(|&&b| b != 0).count() as u64;
        at += n as u64;
    }
    Ok(changed)
}

/// The dump reader binary, built once per process.
pub fn dump_reader() -> Result<PathBuf, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = crate::repo_root();
            let status = Command::new(crate::kernels::cargo())
                .current_dir(&root)
                .args([
                    "build",
                    "--quiet",
                    "--release",
                    "-p",
                    "paranoid-dump",
                    "--bin",
                    "paranoid",
                ])
                .status()
                .map_err(|e| format!("cargo build paranoid-dump: {e}"))?;
            if !status.success() {
                return Err("building the dump reader failed".into());
            }
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| root.join("target"), PathBuf::from);
            Ok(target.join("release").join("paranoid"))
        })
        .clone()
}

/// Runs `paranoid dump verify` on a run's disk; returns its output.
pub fn verify_dump(disk: &Path) -> Result<String, String> {
    let reader = dump_reader()?;
    let out = Command::new(&reader)
        .args(["dump", "verify"])
        .arg(disk)
        .args(["--lba", &DUMP_LBA.to_string()])
        .output()
        .map_err(|e| format!("{}: {e}", reader.display()))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() && text.contains("verdict: VERIFIED") {
        Ok(text)
    } else {
        Err(format!(
            "dump not verified:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn check_run(out: &RunOutput) -> Result<(), String> {
    let m = &out.machine;
    if let Some(reason) = &m.expect.refusal {
        return check_refusal(out, reason);
    }
    let summary = verify_dump(&out.disk())?;
    std::fs::write(out.dir.file("dump-verify.txt"), &summary).map_err(|e| e.to_string())?;
    let changed = changed_outside(&out.disk())?;
    if changed != 0 {
        return Err(format!(
            "{changed} bytes changed outside the dump extent and scratch area"
        ));
    }
    let foreign = foreign_scratch_blocks(&out.disk(), scratch_written(&out.serial))?;
    if foreign != 0 {
        return Err(format!(
            "{foreign} scratch blocks hold data kernel A never wrote"
        ));
    }
    let written: u64 = out
        .field("dump_end")
        .and_then(|v| v.parse().ok())
        .ok_or("no dump_end= on the result line")?;
    let tail = extent_tail_changed(&out.disk(), written)?;
    if tail != 0 {
        return Err(format!(
            "{tail} bytes changed in the dump extent past the dump's {written} bytes"
        ));
    }
    check_machine(out)?;
    match out.field("canary_changed") {
        Some("0") => {}
        other => {
            return Err(format!(
                "stale DMA in recovery memory: canary_changed={other:?}"
            ))
        }
    }
    check_armed_dma(
        out.field("point"),
        out.field("policy"),
        out.field("armed_dma"),
        out.field("armed_source_stale"),
    )
}

/// What the machine profile says the run must show: the NIC outcome, the
/// IOMMU, the target's block size and (when the profile pins it) address.
fn check_machine(out: &RunOutput) -> Result<(), String> {
    let m = &out.machine;
    let want_iommu = if m.has_iommu() { "vtd" } else { "absent" };
    let block = m.target_block_size().to_string();
    let mut expected: Vec<(&str, &str)> = vec![
        ("nic", m.expected_nic()),
        ("iommu", want_iommu),
        ("block_size", &block),
    ];
    if let Some(pci) = &m.expect.target_pci {
        expected.push(("target", pci));
    }
    for (k, v) in expected {
        if out.field(k) != Some(v) {
            return Err(format!(
                "machine `{}`: {k}={:?}, expected {v}",
                m.name,
                out.field(k)
            ));
        }
    }
    Ok(())
}

/// A refusal by design: the reason reported, and not one byte of the disk
/// written (the extent still all zeros, everything else as prepared).
fn check_refusal(out: &RunOutput, reason: &str) -> Result<(), String> {
    match out.field("dump_refused") {
        Some(r) if r == reason => {}
        other => {
            return Err(format!(
                "machine `{}`: dump_refused={other:?}, expected {reason}",
                out.machine.name
            ))
        }
    }
    if !out.disk().exists() {
        return Ok(()); // no target namespace: the untouched-disk check covers all
    }
    let changed = changed_outside(&out.disk())?;
    let mut f = File::open(out.disk()).map_err(|e| e.to_string())?;
    f.seek(SeekFrom::Start(DUMP_LBA * 512))
        .map_err(|e| e.to_string())?;
    let mut extent = vec![0u8; (DUMP_BLOCKS * 512) as usize];
    f.read_exact(&mut extent).map_err(|e| e.to_string())?;
    let written = extent.iter().filter(|&&b| b != 0).count();
    if changed != 0 || written != 0 {
        return Err(format!(
            "a refused dump wrote: {written} bytes in the extent, {changed} outside"
        ));
    }
    Ok(())
}

/// The DMA kernel A armed before crashing (all points but `early`) must land in
/// its memory under adopt, and fault as stale DMA under fence — from the edu's
/// own source id (`stale` counts the stale faults the IOMMU recorded from the
/// edu, whose id the recovery kernel reads off the bus), so a fault from any
/// other device does not count.
fn check_armed_dma(
    point: Option<&str>,
    policy: Option<&str>,
    armed: Option<&str>,
    stale: Option<&str>,
) -> Result<(), String> {
    let stale: u64 = stale.and_then(|s| s.parse().ok()).unwrap_or(0);
    match (point, policy, armed) {
        (Some("early" | "handoff"), _, Some("none")) => Ok(()),
        (Some(p), Some("adopt" | "drain-then-fence"), Some("landed")) if p != "early" => Ok(()),
        (Some(p), Some("fence"), Some("blocked")) if p != "early" && stale >= 1 => Ok(()),
        // No IOMMU: bus mastering off fences it; nothing records a fault.
        (Some(p), Some("none"), Some("blocked")) if p != "early" => Ok(()),
        _ => Err(format!(
            "armed DMA: point={point:?} policy={policy:?} armed_dma={armed:?} stale_faults={stale}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guarded_regions_exclude_extent_and_scratch() {
        let g = guarded();
        assert_eq!(g[0], (0, 1 << 20));
        assert_eq!(g[1].0, 401 << 20);
        assert_eq!(g[2], (464 << 20, DISK_SIZE));
        assert_ne!(marker(1), marker(2));
    }

    #[test]
    fn scratch_written_is_read_from_kernel_a() {
        let log = "kernel-a: DMA live: nvme: 512 KiB of scratch written, 4 commands outstanding\n";
        assert_eq!(scratch_written(log), 512 << 10);
        assert_eq!(scratch_written("kernel-a: DMA live: no disk of its own"), 0);
    }

    #[test]
    fn armed_dma_expectations() {
        assert!(
            check_armed_dma(Some("during-io"), Some("adopt"), Some("landed"), Some("0")).is_ok()
        );
        assert!(
            check_armed_dma(Some("during-io"), Some("fence"), Some("blocked"), Some("1")).is_ok()
        );
        assert!(
            check_armed_dma(Some("during-io"), Some("fence"), Some("landed"), Some("1")).is_err()
        );
        assert!(
            check_armed_dma(Some("during-io"), Some("fence"), Some("blocked"), Some("0")).is_err()
        );
        assert!(
            check_armed_dma(Some("critical"), Some("adopt"), Some("blocked"), Some("0")).is_err()
        );
        assert!(check_armed_dma(Some("early"), Some("fence"), Some("none"), Some("0")).is_ok());
    }

    #[test]
    fn campaign_covers_points_and_policies() {
        let c = campaign(4);
        assert_eq!(c.len(), 32);
        let names: std::collections::HashSet<_> = c.iter().map(|s| s.name.clone()).collect();
        assert_eq!(names.len(), 32);
    }

    #[test]
    fn disk_checks_catch_a_stray_write() {
        let dir = std::env::temp_dir().join(format!("paranoid-demo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let run = RunDir { dir: dir.clone() };
        File::create(run.disk()).unwrap();
        prepare_disk(&run).unwrap();
        assert_eq!(changed_outside(&run.disk()).unwrap(), 0);
        assert_eq!(foreign_scratch_blocks(&run.disk(), 0).unwrap(), 0);
        assert_eq!(extent_tail_changed(&run.disk(), 0).unwrap(), 0);
        let mut f = File::options().write(true).open(run.disk()).unwrap();
        f.seek(SeekFrom::Start(500 << 20)).unwrap();
        f.write_all(&[0u8; 512]).unwrap(); // zeros over a marker
        f.seek(SeekFrom::Start(SCRATCH_LBA * 512 + (1 << 20)))
            .unwrap();
        f.write_all(&[7u8; 512]).unwrap();
        drop(f);
        assert_eq!(
            changed_outside(&run.disk()).unwrap(),
            marker(500).iter().filter(|&&b| b != 0).count() as u64
        );
        assert_eq!(foreign_scratch_blocks(&run.disk(), 0).unwrap(), 1);
        // Kernel A's completed writes, then a zeroed block among them.
        let mut f = File::options().write(true).open(run.disk()).unwrap();
        f.seek(SeekFrom::Start(SCRATCH_LBA * 512)).unwrap();
        f.write_all(&[SCRATCH_FILL; 8192]).unwrap();
        drop(f);
        assert_eq!(
            foreign_scratch_blocks(&run.disk(), 8192).unwrap(),
            1,
            "the stray block only"
        );
        let mut f = File::options().write(true).open(run.disk()).unwrap();
        f.seek(SeekFrom::Start(SCRATCH_LBA * 512 + 1024)).unwrap();
        f.write_all(&[0u8; 512]).unwrap();
        drop(f);
        assert_eq!(
            foreign_scratch_blocks(&run.disk(), 8192).unwrap(),
            2,
            "a zeroed scratch block"
        );
        // A byte past the dump's end inside the extent.
        let mut f = File::options().write(true).open(run.disk()).unwrap();
        f.seek(SeekFrom::Start(DUMP_LBA * 512 + 4096 + 100))
            .unwrap();
        f.write_all(&[1]).unwrap();
        drop(f);
        assert_eq!(extent_tail_changed(&run.disk(), 4096).unwrap(), 1);
        assert_eq!(extent_tail_changed(&run.disk(), 8192).unwrap(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
