//! The crash → recovery scenarios: kernel A crashes with DMA live, the recovery
//! kernel takes over and writes a dump; the host then checks the dump and the
//! disk.
//!
//! Every run is checked three ways beyond its result line:
//!
//! 1. `paranoid dump verify` (the `paranoid` command in `cli/`, run as a program:
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
use std::os::unix::process::ExitStatusExt;
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
    scenario_in(name, point, policy, seed, Memory::standard())
}

/// The guest's memory for a dump scenario.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// Bytes of RAM (`-m`; a machine profile's memory wins).
    pub bytes: u64,
    /// Keep the guest's RAM in a host file (`memory-backend-file`) and compare
    /// the dump with it byte for byte.
    pub truth: bool,
    /// Require every RAM byte of the layout dumped, missing or excluded (off
    /// for a run that asks for a small dump on purpose).
    pub layout: bool,
    /// QEMU's `max-ram-below-4g` (the machine's; `None`: QEMU's own split).
    pub max_below_4g: Option<u64>,
}

impl Memory {
    /// The demo machine: 256 MiB, ground truth on.
    pub const fn standard() -> Self {
        Self {
            bytes: 256 << 20,
            truth: true,
            layout: true,
            max_below_4g: None,
        }
    }

    /// The RAM the run really had: the machine profile's when it sets one.
    fn of_run(self, out: &RunOutput) -> Self {
        let parsed = out
            .machine
            .memory
            .as_deref()
            .and_then(crate::machine::memory_bytes);
        Self {
            bytes: parsed.unwrap_or(self.bytes),
            max_below_4g: out.machine.max_ram_below_4g().ok().flatten(),
            ..self
        }
    }
}

/// The guest RAM file of a run with [`Memory::truth`].
pub const RAM_FILE: &str = "ram.bin";

/// [`scenario`] on a machine with `memory`.
pub fn scenario_in(name: &str, point: &str, policy: &str, seed: u64, memory: Memory) -> Scenario {
    let (to_qemu, from_qemu) = traffic_ports(name);
    let truth_args = if memory.truth {
        vec![
            "-machine".to_string(),
            "memory-backend=mem0".into(),
            "-object".into(),
            format!(
                "memory-backend-file,id=mem0,size={},mem-path={RUN_DIR}/{RAM_FILE},share=on",
                crate::scenario::GUEST_MEMORY
            ),
        ]
    } else {
        vec![]
    };
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
            format!("edu,bus={}", crate::machine::ROOT_BUS),
            "-netdev".into(),
            "hubport,id=h0,hubid=0".into(),
            "-object".into(),
            format!("filter-dump,id=cap1,netdev=h0,file={}/hub.pcap", RUN_DIR),
            "-netdev".into(),
            format!("socket,id=ext,udp=127.0.0.1:{from_qemu},localaddr=127.0.0.1:{to_qemu}"),
            "-netdev".into(),
            "hubport,id=h2,hubid=0,netdev=ext".into(),
        ])
        .qemu_args(truth_args)
        .memory(&format!("{}M", memory.bytes >> 20))
        .disk_size(DISK_SIZE)
        // Big machines (a profile can give 6 GiB) take longer to dump.
        .timeout(Duration::from_secs(240))
        .prepare(move |dir| {
            prepare_disk(dir)?;
            let _ = std::fs::remove_file(dir.file(RAM_FILE));
            start_traffic(to_qemu, from_qemu, traffic_interval(seed))
        })
        .check(move |out| check_run_in(out, memory))
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
/// A player still running on the same port (the earlier run of a scenario
/// that is run again) is stopped first, so its socket is free.
fn start_traffic(to_qemu: u16, from_qemu: u16, interval: Duration) -> Result<(), String> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    static PLAYERS: Mutex<Vec<(u16, Arc<AtomicBool>)>> = Mutex::new(Vec::new());
    let stop = Arc::new(AtomicBool::new(false));
    if let Ok(mut players) = PLAYERS.lock() {
        for (_, old) in players.iter().filter(|(port, _)| *port == from_qemu) {
            old.store(true, Ordering::Relaxed);
        }
        players.retain(|(port, _)| *port != from_qemu);
        players.push((from_qemu, Arc::clone(&stop)));
    }
    // The stopped player notices within one interval (at most 20 ms).
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    let socket = loop {
        match std::net::UdpSocket::bind(("127.0.0.1", from_qemu)) {
            Ok(s) => break s,
            Err(e) if std::time::Instant::now() >= deadline => {
                return Err(format!("traffic socket: {e}"))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    std::thread::spawn(move || {
        let mut frame = [0u8; 64];
        frame[..6].copy_from_slice(&[0xff; 6]);
        frame[6..12].copy_from_slice(&[0x02, 0x00, 0x00, 0x0e, 0x0e, 0x0e]);
        frame[12..14].copy_from_slice(&[0x88, 0xb5]);
        frame[14..30].copy_from_slice(b"PARANOID-TRAFFIC");
        let frames = (20_000 / interval.as_millis().max(1)) as u32;
        for seq in 0..frames {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            frame[30..34].copy_from_slice(&seq.to_be_bytes());
            let _ = socket.send_to(&frame, ("127.0.0.1", to_qemu));
            std::thread::sleep(interval);
        }
    });
    Ok(())
}

/// The UDP port the recovery kernel sends heartbeats to.
const HEARTBEAT_PORT: u16 = 7374;

/// Heartbeat frames from the recovery kernel in a pcap capture: UDP
/// payloads to the heartbeat port (7374) that start with `PARANOID-HEARTBEAT`, read
/// by the dump reader's pcap walker (the one the streamed dump uses).
pub fn heartbeats_in_pcap(pcap: &[u8]) -> Result<u64, String> {
    let payloads = paranoid_dump::reader::udp_payloads(pcap, HEARTBEAT_PORT)?;
    Ok(payloads
        .iter()
        .filter(|p| p.starts_with(b"PARANOID-HEARTBEAT"))
        .count() as u64)
}

/// What QEMU prints on stderr when the i6300esb expires under
/// `-action watchdog=debug` (QEMU `hw/watchdog/watchdog.c`); the machine keeps
/// running, so a watchdog expiry is told apart from a crash or a reset.
pub const WATCHDOG_FIRED: &str = "watchdog: timer fired";

/// The watchdog period kernel A arms in the heartbeat pair.
const HEARTBEAT_WATCHDOG_MS: u64 = 500;

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
        .qemu_args([
            "-device".to_string(),
            format!("i6300esb,bus={}", crate::machine::ROOT_BUS),
            "-action".into(),
            "watchdog=debug".into(),
        ])
        .append(&format!(
            "watchdog_ms={HEARTBEAT_WATCHDOG_MS} {beat} heartbeat_ms=100"
        ))
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
            let pcap =
                std::fs::read(out.dir.file("hub.pcap")).map_err(|e| format!("hub.pcap: {e}"))?;
            let wire = heartbeats_in_pcap(&pcap)?;
            if let Some(stall) = Fed::from_line(out).judge(fired, wire)? {
                // The guest's own clock saw the silence: the host did not run
                // it for longer than the watchdog's period. Not a pass; the
                // runner runs the scenario again (and fails it after three).
                std::fs::write(out.dir.file(crate::runner::INCONCLUSIVE_FILE), stall)
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        })
}

/// What the recovery says about how it fed the watchdog (`heartbeat-on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fed {
    /// Heartbeat rounds sent (`heartbeats=`).
    beats: Option<u64>,
    /// The longest gap between two of its rounds (`max_heartbeat_gap_ms=`).
    max_gap_ms: Option<u64>,
    /// From the crashed kernel's last pet to its first beat
    /// (`watchdog_handover_ms=`).
    handover_ms: Option<u64>,
}

impl Fed {
    /// What the result line says.
    fn from_line(out: &RunOutput) -> Self {
        let number = |key| out.field(key).and_then(|v| v.parse().ok());
        Self {
            beats: number("heartbeats"),
            max_gap_ms: number("max_heartbeat_gap_ms"),
            handover_ms: number("watchdog_handover_ms"),
        }
    }

    /// The verdict given whether the watchdog `fired` and how many heartbeat
    /// frames the wire carried: `Ok(None)` for a pass, `Ok(Some(why))` for a
    /// run that tested nothing (the guest's own clock saw a silence of the
    /// watchdog's period: the host stalled it), `Err` for a failure.
    fn judge(&self, fired: bool, wire: u64) -> Result<Option<String>, String> {
        let (Some(beats), Some(gap), Some(handover)) =
            (self.beats, self.max_gap_ms, self.handover_ms)
        else {
            return Err(format!(
                "the result line does not say how the watchdog was fed: {self:?}"
            ));
        };
        if fired {
            return self.fired(HEARTBEAT_WATCHDOG_MS).map(Some);
        }
        let silence = gap.max(handover);
        if wire < 3 {
            return Err(format!("the NIC's wire carried {wire} heartbeat frames"));
        }
        if beats < 3 || silence >= HEARTBEAT_WATCHDOG_MS {
            return Err(format!(
                "heartbeats={beats} max_heartbeat_gap_ms={gap} watchdog_handover_ms={handover}: \
                 the watchdog was not kept fed, yet it never fired"
            ));
        }
        Ok(None)
    }

    /// The watchdog (period `period_ms`) fired: `Ok(why)` when the guest's own
    /// clock saw a silence of the period (in a step or across the handover:
    /// the host did not run it; the run tested nothing and is run again),
    /// `Err` when the guest fed it all along by its own account.
    fn fired(&self, period_ms: u64) -> Result<String, String> {
        let gap = self.max_gap_ms.unwrap_or(0);
        let handover = self.handover_ms.unwrap_or(0);
        let silence = gap.max(handover);
        if self.max_gap_ms.is_some() && silence >= period_ms {
            Ok(format!(
                "the watchdog fired after a {silence} ms silence the recovery itself measured \
                 (longest gap {gap} ms, handover {handover} ms) against its \
                 {period_ms} ms period: the host did not run the guest"
            ))
        } else {
            Err(format!(
                "the watchdog fired although the recovery fed it (longest gap {gap} ms, \
                 handover {handover} ms, period {period_ms} ms)"
            ))
        }
    }
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
            // The fence came after the edu transfer (a slow host): `check_run`
            // marked the run inconclusive and the runner runs it again; the
            // fence was not tested, so this is neither a pass nor a failure.
            (false, Some("off"), Some("landed"))
                if out.dir.file(crate::runner::INCONCLUSIVE_FILE).exists() =>
            {
                Ok(())
            }
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
    handoff_in("handoff", "any-state-first")
}

/// [`handoff`] measuring the fast path first (`handoff_order=fast-first`).
pub fn handoff_fast_first() -> Scenario {
    handoff_in("handoff-fast-first", "fast-first")
}

fn handoff_in(name: &str, order: &str) -> Scenario {
    let expect = format!("handoff_order={order}");
    scenario(name, "handoff", "fence", 1)
        .append(&expect)
        .check(move |out| {
            if !out.serial.contains(&expect) {
                return Err(format!("the recovery kernel's settings lack {expect}"));
            }
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
                    std::fs::write(out.dir.file("handoff-ratio.txt"), text)
                        .map_err(|e| e.to_string())
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
            // A small dump on purpose (the pattern only): no layout check.
            check_run_in(
                out,
                Memory {
                    layout: false,
                    truth: false,
                    ..Memory::standard()
                },
            )?;
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

/// The canaries' negative control: on a machine without an IOMMU, kernel A
/// aims its armed edu DMA at the recovery kernel's canary region
/// (`negative_control=stale-dma`), and the recovery kernel, told the same,
/// leaves a hole in its bus-mastering fence for the edu. The transfer lands
/// in recovery memory after the canaries are laid, so the run must fail at
/// the canary check with the 256 words the edu wrote, and nowhere else.
pub fn canary_stale_dma(no_iommu: &crate::machine::Machine) -> Scenario {
    scenario(CANARY_CONTROL, "during-io", "fence", 1)
        .on(no_iommu)
        .append("negative_control=stale-dma")
        .expect_failure()
        .check(|out| {
            if out.machine.has_iommu() {
                return Err("the canaries' negative control needs a machine without an IOMMU".into());
            }
            let reason = out.field("reason").unwrap_or("");
            let changed = reason
                .split("changed: ")
                .nth(1)
                .and_then(|r| r.split([',', ' ']).next())
                .and_then(|n| n.parse::<u64>().ok());
            match (out.field("step"), changed) {
                // 2 KiB of edu data: 256 words, each unlike its canary.
                (Some("canary check"), Some(n)) if n == EDU_WORDS => Ok(()),
                (step, n) => Err(format!(
                    "stale DMA aimed at the canaries: the run failed at {step:?} with {n:?} words changed (reason {reason:?}), expected the canary check with {EDU_WORDS}"
                )),
            }
        })
}

/// The canaries' negative-control scenario (renamed `@no-iommu` by its machine).
pub const CANARY_CONTROL: &str = "canary-stale-dma";
/// Words of one edu transfer (2 KiB).
const EDU_WORDS: u64 = 2048 / 8;

/// The watchdog period the main job's kernel A arms.
const MAIN_JOB_WATCHDOG_MS: u64 = 1000;

/// The main job, as `cargo xtask demo` runs it: a crash during I/O with the
/// NIC receiving, commands in flight and an edu DMA armed; the drain-then-fence
/// policy (the report lists each device's drain outcome); UDP and watchdog
/// heartbeats on. The watchdog runs with `-action watchdog=debug`, so an
/// expiry (the recovery left it unfed for 1 s) is its own failure, told apart
/// from a crash.
pub fn main_job() -> Scenario {
    scenario(MAIN_JOB, "during-io", "drain", 1)
        .qemu_args([
            "-device".to_string(),
            format!("i6300esb,bus={}", crate::machine::ROOT_BUS),
            "-action".into(),
            "watchdog=debug".into(),
        ])
        .append(&format!(
            "watchdog_ms={MAIN_JOB_WATCHDOG_MS} heartbeat=both"
        ))
        .check(|out| {
            let stderr = crate::qemu::read_lossy(&out.dir.stderr());
            let stalled = if stderr.contains(WATCHDOG_FIRED) {
                Some(Fed::from_line(out).fired(MAIN_JOB_WATCHDOG_MS)?)
            } else {
                None
            };
            check_run(out)?;
            if let Some(why) = stalled {
                // Every other check still runs; the runner runs it again.
                std::fs::write(out.dir.file(crate::runner::INCONCLUSIVE_FILE), why)
                    .map_err(|e| e.to_string())?;
            }
            if out.machine.expect.refusal.is_some() {
                return Ok(());
            }
            truth_negative_control(out)?;
            let _ = std::fs::remove_file(out.dir.file(RAM_FILE));
            host_check_negative_controls(out)?;
            gdb_check(out, 1)?;
            if out.machine.expected_nic() != "up" {
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

/// The ground-truth comparison must catch one altered byte of a dumped page in
/// the host copy of the guest's RAM (in the pattern region), at its address.
fn truth_negative_control(out: &RunOutput) -> Result<(), String> {
    let ram = out.dir.file(RAM_FILE);
    let at: u64 = 0x0200_1000 + 0x123;
    let mut f = File::options()
        .read(true)
        .write(true)
        .open(&ram)
        .map_err(|e| format!("{}: {e}", ram.display()))?;
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(at)).map_err(|e| e.to_string())?;
    f.read_exact(&mut b).map_err(|e| e.to_string())?;
    let flip = |f: &mut File, v: u8| -> Result<(), String> {
        f.seek(SeekFrom::Start(at)).map_err(|e| e.to_string())?;
        f.write_all(&[v]).map_err(|e| e.to_string())
    };
    flip(&mut f, b[0] ^ 0x5a)?;
    let result = run_verify(
        &out.disk(),
        &layout_args(out, Memory::standard().of_run(out)),
    );
    flip(&mut f, b[0])?;
    let (text, code) = result?;
    let caught = code == Some(1) && text.contains(&format!("differs at {at:#x}"));
    std::fs::write(out.dir.file("truth-negative-control.txt"), &text).map_err(|e| e.to_string())?;
    if caught {
        Ok(())
    } else {
        Err(format!(
            "an altered byte at {at:#x} of the RAM file went unnoticed:\n{text}"
        ))
    }
}

/// Negative controls of the host checks, on this run's own files: each check
/// must fail, with its own message, when the run directory is doctored the way
/// a broken recovery kernel would leave it, and pass again once the file is
/// restored. On the disk image: one byte changed outside the extent (at the
/// end of the disk, where a stray write of a wrong LBA would go), one of
/// kernel A's completed scratch blocks zeroed, one byte of the extent past the
/// dump's end; on the result line: a changed canary; on the serial log: the
/// result line missing, and a second one. What each control saw is kept in
/// `negative-controls.txt`.
fn host_check_negative_controls(out: &RunOutput) -> Result<(), String> {
    let mut seen = String::new();
    let written = scratch_written(&out.serial);
    let dump_end: u64 = out
        .field("dump_end")
        .and_then(|v| v.parse().ok())
        .ok_or("no dump_end= on the result line")?;
    let mut disk_controls = vec![(
        "a byte changed outside the extent",
        DISK_SIZE - 4096 + 77,
        Some(0x5a),
        "changed outside the dump extent",
    )];
    let past_dump = DUMP_LBA * 512 + dump_end + 4096 + 5;
    if past_dump < (DUMP_LBA + DUMP_BLOCKS) * 512 {
        disk_controls.push((
            "a byte changed in the extent past the dump",
            past_dump,
            Some(0xa5),
            "in the dump extent past the dump",
        ));
    }
    if written >= 4096 {
        // Zeros over one of kernel A's completed (and waited-for) writes:
        // untouched-looking, yet not what kernel A left.
        disk_controls.push((
            "a zeroed scratch block",
            SCRATCH_LBA * 512 + 2048,
            None,
            "scratch blocks hold data kernel A never wrote",
        ));
    } else if out.machine.is_standard() {
        return Err("kernel A wrote no scratch blocks: the zeroed-block control cannot run".into());
    }
    for (what, at, value, expect) in disk_controls {
        let len = if value.is_some() { 1 } else { 512 };
        let original = read_at(&out.disk(), at, len)?;
        let doctored = match value {
            Some(v) => vec![original[0] ^ v],
            None => vec![0; 512],
        };
        write_at(&out.disk(), at, &doctored)?;
        let result = check_disk_and_dma(out);
        write_at(&out.disk(), at, &original)?;
        seen.push_str(&format!("{what} (at byte {at:#x}): {result:?}\n"));
        match result {
            Err(e) if e.contains(expect) => {}
            other => {
                return Err(format!(
                    "negative control `{what}` at byte {at:#x}: the host check gave {other:?}, expected an error about `{expect}`"
                ))
            }
        }
    }
    // The result line says stale DMA hit the canaries.
    let result = check_disk_and_dma(&with_fields(out, &[("canary_changed", "3")]));
    seen.push_str(&format!(
        "canary_changed=3 on the result line: {result:?}\n"
    ));
    if !matches!(&result, Err(e) if e.contains("stale DMA in recovery memory")) {
        return Err(format!(
            "negative control `canary changed`: the host check gave {result:?}"
        ));
    }
    // The armed DMA landed under a fence policy: wrong when the fence came in
    // time, inconclusive (the run passes its checks and is marked for a rerun)
    // when it came after the transfer.
    let landed = |fenced_ms: &str| {
        with_fields(
            out,
            &[
                ("policy", "fence"),
                ("armed_dma", "landed"),
                ("armed_source_stale", "1"),
                ("armed_fenced_ms", fenced_ms),
            ],
        )
    };
    let in_time = check_disk_and_dma(&landed("20"));
    seen.push_str(&format!(
        "armed DMA landed, fenced 20 ms after arming: {in_time:?}\n"
    ));
    if !matches!(&in_time, Err(e) if e.contains("armed DMA")) {
        return Err(format!(
            "negative control `armed DMA landed through a fence`: the host check gave {in_time:?}"
        ));
    }
    let marker = out.dir.file(crate::runner::INCONCLUSIVE_FILE);
    let late = check_disk_and_dma(&landed("150"));
    let marked = std::fs::read_to_string(&marker).unwrap_or_default();
    let _ = std::fs::remove_file(&marker);
    seen.push_str(&format!(
        "armed DMA landed, fenced 150 ms after arming: {late:?}, marked {marked:?}\n"
    ));
    if late.is_err() || !marked.contains("150 ms") {
        return Err(format!(
            "negative control `fence after the transfer`: the host check gave {late:?}, marked {marked:?}"
        ));
    }
    // The serial log without its result line, and with a second one.
    let scenario = main_job().on(&out.machine);
    let exit =
        std::process::ExitStatus::from_raw(out.exit.ok_or("the main job has no exit status")? << 8);
    let ended = crate::qemu::Ended::Exited(exit);
    let line = out
        .serial
        .lines()
        .find(|l| crate::result_line::parse(l).is_some())
        .ok_or("no result line in the serial log")?
        .to_string();
    let mut missing = out.clone();
    missing.serial = out.serial.replace(&line, "");
    missing.result = crate::result_line::find(&missing.serial, &scenario.result_test);
    let mut twice = out.clone();
    twice.serial = out.serial.replace(
        &line,
        &format!(
            "{}\n{line}",
            line.replace("verdict=pass", "verdict=fail reason=doctored")
        ),
    );
    twice.result = crate::result_line::find(&twice.serial, &scenario.result_test);
    // A pass line with a key twice (as a kernel bug writing one would).
    let mut doubled = out.clone();
    doubled.serial = out.serial.replace(&line, &format!("{line} verdict=pass"));
    doubled.result = crate::result_line::find(&doubled.serial, &scenario.result_test);
    for (what, doctored, expect) in [
        ("the result line missing", &missing, "no result line"),
        ("two result lines", &twice, "2 result lines"),
        (
            "a key twice in the result line",
            &doubled,
            "`verdict` appears twice",
        ),
    ] {
        let verdict = crate::runner::judge(&scenario, &ended, doctored);
        seen.push_str(&format!("{what}: {verdict:?}\n"));
        match verdict {
            crate::runner::Verdict::Fail(m) if m.contains(expect) => {}
            other => {
                return Err(format!(
                    "negative control `{what}`: the harness judged {other:?}, expected a failure about `{expect}`"
                ))
            }
        }
    }
    std::fs::write(out.dir.file("negative-controls.txt"), &seen).map_err(|e| e.to_string())?;
    // Every file restored: the checks pass again.
    check_disk_and_dma(out).map_err(|e| format!("after the negative controls: {e}"))
}

/// `out` with result-line fields set (added when missing).
fn with_fields(out: &RunOutput, set: &[(&str, &str)]) -> RunOutput {
    let mut doctored = out.clone();
    if let Some(r) = doctored.result.as_mut() {
        for &(key, value) in set {
            match r.fields.iter_mut().find(|(k, _)| k == key) {
                Some((_, v)) => *v = value.to_string(),
                None => r.fields.push((key.to_string(), value.to_string())),
            }
        }
    }
    doctored
}

fn read_at(path: &Path, at: u64, len: usize) -> Result<Vec<u8>, String> {
    let mut f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    f.seek(SeekFrom::Start(at)).map_err(|e| e.to_string())?;
    let mut b = vec![0; len];
    f.read_exact(&mut b).map_err(|e| e.to_string())?;
    Ok(b)
}

fn write_at(path: &Path, at: u64, bytes: &[u8]) -> Result<(), String> {
    let mut f = File::options()
        .write(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.seek(SeekFrom::Start(at)).map_err(|e| e.to_string())?;
    f.write_all(bytes).map_err(|e| e.to_string())
}

/// Extracts the dump as an ELF core and opens it in gdb with kernel A's
/// binary: `bt` must reach the function that panicked (`kernel_a::run`) and
/// `KERNEL_A_MARKER` must read back what kernel A wrote (`0x6b65726e656c4100 ^
/// seed`). The session is kept in `gdb.txt`.
fn gdb_check(out: &RunOutput, seed: u64) -> Result<(), String> {
    let reader = dump_reader()?;
    let core = out.dir.file("kernel-a.core");
    let run = Command::new(&reader)
        .args(["dump", "extract"])
        .arg(out.disk())
        .args(["--lba", &DUMP_LBA.to_string(), "--out"])
        .arg(&core)
        .output()
        .map_err(|e| format!("{}: {e}", reader.display()))?;
    if !run.status.success() {
        return Err(format!(
            "extract failed: {}",
            String::from_utf8_lossy(&run.stdout)
        ));
    }
    if Command::new("gdb").arg("--version").output().is_err() {
        let _ = Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "gdb"])
            .status();
    }
    let kernel = crate::kernels::binary("kernel-a");
    let session = Command::new("gdb")
        .args(GDB_ARGS)
        .arg(&kernel)
        .arg(&core)
        .output()
        .map_err(|e| format!("gdb: {e}"))?;
    let text = format!(
        "$ gdb {} {} {}\n{}{}",
        GDB_ARGS.join(" "),
        kernel.display(),
        core.display(),
        String::from_utf8_lossy(&session.stdout),
        String::from_utf8_lossy(&session.stderr)
    );
    std::fs::write(out.dir.file("gdb.txt"), &text).map_err(|e| e.to_string())?;
    let marker = format!("{:#x}", 0x6b65_726e_656c_4100u64 ^ seed);
    let bt_ok = text
        .lines()
        .any(|l| l.starts_with('#') && l.contains(" kernel_a::run "));
    let marker_ok = text
        .lines()
        .any(|l| l.contains("<KERNEL_A_MARKER>:") && l.contains(&marker));
    match (bt_ok, marker_ok) {
        (true, true) => Ok(()),
        _ => Err(format!(
            "gdb: backtrace reaches kernel_a::run: {bt_ok}, KERNEL_A_MARKER reads {marker}: {marker_ok}\n{text}"
        )),
    }
}

/// The gdb session of the check (and of the README).
pub const GDB_ARGS: [&str; 9] = [
    "-batch",
    "-ex",
    "bt",
    "-ex",
    "info registers rip rsp rbp eflags",
    "-ex",
    "set language c",
    "-ex",
    "x/gx &KERNEL_A_MARKER",
];

/// The dump scenarios: big machines (RAM above the 4 GiB hole) into the same
/// 400 MiB extent, and an extent too small even after compression.
pub fn dump_scenarios() -> Vec<Scenario> {
    let big = |name: &str, bytes: u64, truth: bool| {
        // Adopt: the armed DMA lands whenever the takeover comes (fence's
        // expectation races the takeover on a loaded host).
        scenario_in(
            name,
            "during-io",
            "adopt",
            3,
            Memory {
                bytes,
                truth,
                layout: true,
                max_below_4g: None,
            },
        )
    };
    vec![
        big("crash-recovery-2g", 2 << 30, true),
        big("crash-recovery-6g", 6 << 30, false),
        // 24 MiB of extent: the stacks, the image and part of the pattern fit.
        scenario("crash-recovery-partial", "during-io", "adopt", 4)
            .append(&format!("dump_size={}", 24 << 20))
            .check(|out| {
                let text = check_dump(out, Memory::standard(), Expect::Partial)?;
                if !text.contains("missing     :") {
                    return Err(format!("a partial dump without its missing list:\n{text}"));
                }
                check_disk_and_dma(out)
            }),
    ]
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
/// Bytes of a run's disk outside the dump extent and kernel A's scratch
/// blocks that differ from what was prepared (0 for a writer that kept to
/// its extent).
///
/// # Errors
///
/// The disk image could not be read.
pub fn changed_outside_extent(out: &RunOutput) -> Result<u64, String> {
    changed_outside(&out.disk())
}

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
                    "paranoid-cli",
                    "--bin",
                    "paranoid",
                ])
                .status()
                .map_err(|e| format!("cargo build paranoid-cli: {e}"))?;
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
    verify_dump_with(disk, &[], Expect::Verified)
}

/// The verdict a run's dump must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Complete and every check passed (exit 0).
    Verified,
    /// A valid partial dump (exit 3).
    Partial,
}

/// Runs `paranoid dump verify` with `extra` arguments (the RAM layout, the
/// ground truth); returns its output when the verdict is `expect`.
pub fn verify_dump_with(disk: &Path, extra: &[String], expect: Expect) -> Result<String, String> {
    let (text, code) = run_verify(disk, extra)?;
    let ok = match expect {
        Expect::Verified => code == Some(0) && text.contains("verdict: VERIFIED"),
        Expect::Partial => code == Some(3) && text.contains("verdict: PARTIAL"),
    };
    if ok {
        Ok(text)
    } else {
        Err(format!("dump not {expect:?} (exit {code:?}):\n{text}"))
    }
}

fn run_verify(disk: &Path, extra: &[String]) -> Result<(String, Option<i32>), String> {
    let reader = dump_reader()?;
    let out = Command::new(&reader)
        .args(["dump", "verify"])
        .arg(disk)
        .args(["--lba", &DUMP_LBA.to_string()])
        .args(extra)
        .output()
        .map_err(|e| format!("{}: {e}", reader.display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((text, out.status.code()))
}

/// Non-RAM entries of kernel A's memory map (printed while healthy) as
/// `--hole` arguments: firmware ranges inside the RAM QEMU configured.
fn holes_from_serial(serial: &str) -> Vec<String> {
    serial
        .lines()
        .filter_map(|l| l.strip_prefix("kernel-a: memory map "))
        .filter_map(|l| l.strip_suffix(" other"))
        .flat_map(|r| ["--hole".to_string(), r.to_string()])
        .collect()
}

/// The layout and ground-truth arguments of a run.
fn layout_args(out: &RunOutput, memory: Memory) -> Vec<String> {
    if !memory.layout {
        return Vec::new();
    }
    let mut args = vec!["--ram-q35".to_string(), memory.bytes.to_string()];
    if let Some(limit) = memory.max_below_4g {
        args.push("--q35-max-below-4g".into());
        args.push(limit.to_string());
    }
    args.extend(holes_from_serial(&out.serial));
    // The PC's legacy VGA and option-ROM window: never RAM on x86, and left
    // out of the firmware's map altogether.
    args.push("--hole".into());
    args.push("0xa0000+0x60000".into());
    if memory.truth {
        args.push("--truth".into());
        args.push(out.dir.file(RAM_FILE).display().to_string());
    }
    args
}

fn check_run(out: &RunOutput) -> Result<(), String> {
    check_run_in(out, Memory::standard())
}

/// Verifies a run's dump against the RAM layout of `memory` (and its ground
/// truth), then the disk, canaries and armed DMA.
fn check_run_in(out: &RunOutput, memory: Memory) -> Result<(), String> {
    if let Some(reason) = &out.machine.expect.refusal {
        return check_refusal(out, reason);
    }
    check_dump(out, memory, Expect::Verified)?;
    check_disk_and_dma(out)?;
    // The guest's RAM file (about 70 MiB of blocks each) is not kept, but for
    // the main job's negative control, which drops it itself.
    let main_job = out
        .dir
        .dir
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == MAIN_JOB || n.starts_with(&format!("{MAIN_JOB}@")));
    if !main_job {
        let _ = std::fs::remove_file(out.dir.file(RAM_FILE));
    }
    Ok(())
}

/// Verifies a run's dump against the RAM layout of `memory` (and its ground
/// truth when `memory.truth`); returns `paranoid dump verify`'s output (also
/// kept in the run's `dump-verify.txt`).
///
/// # Errors
///
/// Not the verdict `expect`, or the ground truth not compared.
pub fn check_dump_of(out: &RunOutput, memory: Memory, expect: Expect) -> Result<String, String> {
    check_dump(out, memory, expect)
}

fn check_dump(out: &RunOutput, memory: Memory, expect: Expect) -> Result<String, String> {
    let memory = memory.of_run(out);
    let summary = verify_dump_with(&out.disk(), &layout_args(out, memory), expect);
    let text = match &summary {
        Ok(t) | Err(t) => t.clone(),
    };
    std::fs::write(out.dir.file("dump-verify.txt"), &text).map_err(|e| e.to_string())?;
    let summary = summary?;
    if memory.truth && !summary.contains(" 0 differ") {
        return Err(format!("ground truth not compared:\n{summary}"));
    }
    Ok(summary)
}

fn check_disk_and_dma(out: &RunOutput) -> Result<(), String> {
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
    let armed = ArmedDma {
        point: out.field("point"),
        policy: out.field("policy"),
        outcome: out.field("armed_dma"),
        stale: out.field("armed_source_stale"),
        fenced_ms: out.field("armed_fenced_ms"),
    };
    if let Some(race) = armed.check()? {
        // Everything else passed; the fence was not tested. The runner turns
        // this pass into an inconclusive run and runs the scenario again.
        std::fs::write(out.dir.file(crate::runner::INCONCLUSIVE_FILE), race)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// What the machine profile says the run must show: the NIC outcome, the
/// IOMMU, the target's block size and (when the profile pins it) address.
fn check_machine(out: &RunOutput) -> Result<(), String> {
    let m = &out.machine;
    let want_iommu = m.expected_iommu();
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
/// How long after it is armed QEMU's edu lands its transfer (`hw/misc/edu.c`:
/// a virtual-clock timer, which runs with the host's time under TCG).
const EDU_DMA_DELAY_MS: u64 = 100;
/// A fence this long after arming, or later, may come after the transfer: the
/// edu timer fires late, never early, and the guest reads the time-stamp
/// counter just after arming and just after fencing, so 5 ms covers the skew.
const FENCE_RACE_MS: u64 = EDU_DMA_DELAY_MS - 5;

/// What the result line says of the DMA kernel A armed before crashing.
#[derive(Debug, Clone, Copy)]
struct ArmedDma<'a> {
    /// Crash point.
    point: Option<&'a str>,
    /// IOMMU policy as the recovery kernel applied it (`none`: no IOMMU).
    policy: Option<&'a str>,
    /// `none` (not armed), `landed` or `blocked`.
    outcome: Option<&'a str>,
    /// Faults the IOMMU recorded from the edu's own source id.
    stale: Option<&'a str>,
    /// Milliseconds from arming to the recovery kernel's fence (`none`).
    fenced_ms: Option<&'a str>,
}

impl ArmedDma<'_> {
    /// `Ok(None)`: as the policy requires. `Ok(Some(why))`: a fence policy,
    /// the transfer landed, and the fence came too late to stop it (the host
    /// was slow): the run did not test the fence. `Err`: wrong.
    fn check(&self) -> Result<Option<String>, String> {
        let stale: u64 = self.stale.and_then(|s| s.parse().ok()).unwrap_or(0);
        let fenced_ms: Option<u64> = self.fenced_ms.and_then(|s| s.parse().ok());
        let fencing = matches!(self.policy, Some("fence" | "none"));
        match (self.point, self.policy, self.outcome) {
            (Some("early" | "handoff"), _, Some("none")) => Ok(None),
            (Some(p), Some("adopt" | "drain-then-fence"), Some("landed")) if p != "early" => {
                Ok(None)
            }
            (Some(p), Some("fence"), Some("blocked")) if p != "early" && stale >= 1 => Ok(None),
            // No IOMMU: bus mastering off fences it; nothing records a fault.
            (Some(p), Some("none"), Some("blocked")) if p != "early" => Ok(None),
            (Some(p), _, Some("landed")) if fencing && p != "early" => match fenced_ms {
                Some(ms) if ms >= FENCE_RACE_MS => Ok(Some(format!(
                    "the fence came {ms} ms after the DMA was armed, and edu lands it after \
                     {EDU_DMA_DELAY_MS} ms: the host was too slow for the fence to be tested"
                ))),
                _ => Err(self.wrong(stale)),
            },
            _ => Err(self.wrong(stale)),
        }
    }

    fn wrong(&self, stale: u64) -> String {
        format!(
            "armed DMA: point={:?} policy={:?} armed_dma={:?} stale_faults={stale} armed_fenced_ms={:?}",
            self.point, self.policy, self.outcome, self.fenced_ms
        )
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

    /// An Ethernet/IPv4/UDP frame to `port` carrying `payload`, padded to 60.
    fn udp_frame(port: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17]);
        f.extend_from_slice(&[0; 10]);
        f.extend_from_slice(&1234u16.to_be_bytes());
        f.extend_from_slice(&port.to_be_bytes());
        f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(payload);
        f.resize(f.len().max(60), 0);
        f
    }

    #[test]
    fn the_heartbeat_check_tells_a_fed_watchdog_from_a_starved_one_and_a_stalled_host() {
        let fed = Fed {
            beats: Some(28),
            max_gap_ms: Some(176),
            handover_ms: Some(40),
        };
        assert_eq!(fed.judge(false, 28), Ok(None));
        // Fired although every silence the guest saw was short: a failure.
        assert!(fed.judge(true, 28).unwrap_err().contains("fired although"));
        // Fired after a silence the guest saw too (in a step or across the
        // handover): inconclusive, run again.
        for stalled in [
            Fed {
                max_gap_ms: Some(620),
                ..fed
            },
            Fed {
                handover_ms: Some(505),
                ..fed
            },
        ] {
            assert!(stalled
                .judge(true, 28)
                .unwrap()
                .unwrap()
                .contains("measured"));
        }
        // Not fired, but the guest says it starved it: the measurement is wrong.
        assert!(Fed {
            max_gap_ms: Some(600),
            ..fed
        }
        .judge(false, 28)
        .is_err());
        // Too few beats, too few frames, or fields missing.
        assert!(Fed {
            beats: Some(2),
            ..fed
        }
        .judge(false, 28)
        .is_err());
        assert!(fed.judge(false, 2).unwrap_err().contains("wire"));
        assert!(Fed {
            handover_ms: None,
            ..fed
        }
        .judge(false, 28)
        .is_err());
        assert!(Fed {
            handover_ms: None,
            ..fed
        }
        .judge(true, 28)
        .is_err());
        // The main job's 1 s watchdog: the same split, at its own period.
        assert!(fed.fired(1000).unwrap_err().contains("fed it"));
        let slow = Fed {
            max_gap_ms: Some(1533),
            ..fed
        };
        assert!(slow.fired(1000).unwrap().contains("1533 ms silence"));
        assert!(Fed {
            max_gap_ms: None,
            ..slow
        }
        .fired(1000)
        .is_err());
    }

    #[test]
    fn heartbeats_are_counted_by_port_and_prefix() {
        let frames = [
            udp_frame(HEARTBEAT_PORT, b"PARANOID-HEARTBEAT step=1"),
            udp_frame(HEARTBEAT_PORT + 1, b"PARANOID-HEARTBEAT step=2"),
            udp_frame(HEARTBEAT_PORT, b"something else"),
            udp_frame(HEARTBEAT_PORT, b"PARANOID-HEARTBEAT step=3"),
        ];
        let mut pcap = vec![
            0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0,
            0,
        ];
        for f in &frames {
            pcap.extend_from_slice(&[0; 8]);
            pcap.extend_from_slice(&(f.len() as u32).to_le_bytes());
            pcap.extend_from_slice(&(f.len() as u32).to_le_bytes());
            pcap.extend_from_slice(f);
        }
        assert_eq!(heartbeats_in_pcap(&pcap), Ok(2));
        assert!(heartbeats_in_pcap(b"not a pcap").is_err());
        pcap.truncate(pcap.len() - 1);
        assert!(heartbeats_in_pcap(&pcap).is_err(), "truncated record");
    }

    #[test]
    fn scratch_written_is_read_from_kernel_a() {
        let log = "kernel-a: DMA live: nvme: 512 KiB of scratch written, 4 commands outstanding\n";
        assert_eq!(scratch_written(log), 512 << 10);
        assert_eq!(scratch_written("kernel-a: DMA live: no disk of its own"), 0);
    }

    fn armed<'a>(
        point: &'a str,
        policy: &'a str,
        outcome: &'a str,
        stale: &'a str,
        fenced_ms: &'a str,
    ) -> Result<Option<String>, String> {
        ArmedDma {
            point: Some(point),
            policy: Some(policy),
            outcome: Some(outcome),
            stale: Some(stale),
            fenced_ms: Some(fenced_ms),
        }
        .check()
    }

    #[test]
    fn armed_dma_expectations() {
        assert_eq!(armed("during-io", "adopt", "landed", "0", "none"), Ok(None));
        assert_eq!(armed("during-io", "fence", "blocked", "1", "20"), Ok(None));
        assert_eq!(armed("during-io", "none", "blocked", "0", "20"), Ok(None));
        // A fence in time that did not stop the transfer: wrong, however slow.
        assert!(armed("during-io", "fence", "landed", "1", "20").is_err());
        assert!(armed("during-io", "none", "landed", "0", "94").is_err());
        assert!(armed("during-io", "fence", "landed", "0", "none").is_err());
        // Blocked, but not by a fault from the edu's own source id.
        assert!(armed("during-io", "fence", "blocked", "0", "20").is_err());
        assert!(armed("critical", "adopt", "blocked", "0", "none").is_err());
        assert_eq!(armed("early", "fence", "none", "0", "none"), Ok(None));
        assert!(armed("early", "fence", "landed", "0", "200").is_err());
    }

    #[test]
    fn a_fence_after_the_transfer_is_inconclusive_not_a_pass_or_a_failure() {
        let race = armed("during-io", "fence", "landed", "0", "134").unwrap();
        assert!(race.is_some_and(|why| why.contains("134 ms")));
        assert!(armed("index-oob", "none", "landed", "0", "95")
            .unwrap()
            .is_some());
        // Adopt has no fence to race.
        assert_eq!(armed("during-io", "adopt", "landed", "0", "134"), Ok(None));
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
