//! The recovery kernel's result: what the harness and a person read at the end
//! of a run, as typed values, rendered as the pairs of its `PARANOID-RESULT`
//! line through `paranoid-result-line`.
//!
//! Every key the recovery kernel reports is a field here; [`RecoveryResult::write`]
//! is the one place that names the keys and their order, so the kernel never
//! formats the line by hand.

use core::fmt;
use core::time::Duration;

use paranoid::pci::PciAddress;
use paranoid_result_line::Fields;

use crate::canary::CanaryCheck;
use crate::dump::DumpStats;
use crate::report::FaultCounts;

/// What translated DMA during the recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Iommu {
    /// VT-d, under this policy (`adopt`, `fence`, `drain`).
    Vtd(&'static str),
    /// No DMAR table (`iommu=absent`).
    Absent,
    /// A VT-d unit that translates no DMA (CAP.SAGAW = 0: interrupt
    /// remapping only), left alone; the devices fenced instead
    /// (`iommu=no-translation`).
    NoTranslation,
    /// Translation left off (`iommu=none`).
    Off,
}

impl Iommu {
    /// The `iommu=` value.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Vtd(_) => "vtd",
            Self::Absent => "absent",
            Self::NoTranslation => "no-translation",
            Self::Off => "off",
        }
    }

    /// The `policy=` value: the VT-d policy, `none` without VT-d.
    pub const fn policy(self) -> &'static str {
        match self {
            Self::Vtd(p) => p,
            Self::Absent | Self::NoTranslation | Self::Off => "none",
        }
    }
}

/// The dump target as found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The controller's address.
    pub address: PciAddress,
    /// The namespace's block size.
    pub block_size: u32,
    /// The extent's first byte on the namespace.
    pub offset: u64,
}

/// How the drain went: devices drained, busy at the deadline, faulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Drain {
    /// Went idle (or stayed quiet) in their window.
    pub drained: u32,
    /// Still busy at the deadline: fenced anyway.
    pub busy: u32,
    /// Faulted during the drain.
    pub faulted: u32,
}

/// The armed DMA's source (the edu, as the bus identifies it) and the stale
/// faults the IOMMU recorded from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArmedSource {
    /// Its source id.
    pub source_id: u16,
    /// Stale faults from it.
    pub stale_faults: u32,
}

/// What became of the NIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nic {
    /// Brought up.
    Up,
    /// Not a supported part: left alone.
    Refused,
    /// Its bring-up failed: fenced.
    Fenced,
    /// None on the bus.
    Absent,
    /// Not used (`nic=off`).
    Off,
}

impl Nic {
    /// The `nic=` value.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Refused => "refused",
            Self::Fenced => "fenced",
            Self::Absent => "absent",
            Self::Off => "off",
        }
    }
}

/// What the recovery steps found and did, as they go (the parts of the
/// result that are not the dump, the canaries or the fault counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Findings {
    /// What translates DMA.
    pub iommu: Iommu,
    /// What became of the NIC.
    pub nic: Nic,
    /// The dump target (`None` before it is found).
    pub target: Option<Target>,
    /// The armed DMA's source, when found.
    pub armed_source: Option<ArmedSource>,
    /// The drain (`iommu=drain` only).
    pub drain: Option<Drain>,
    /// NVMe bring-up: time and escalations (the fast path after a clean
    /// handoff shows none).
    pub nvme_init: Option<(Duration, usize)>,
    /// After a planned handoff: the any-state and the fast bring-up times of
    /// the same controller, both warm.
    pub nvme_paths: Option<(Duration, Duration)>,
    /// Datagrams of the dump stream sent and failed (`stream=on`).
    pub streamed: Option<(u64, u64)>,
    /// Milliseconds from the crashed kernel's last watchdog pet (its crash
    /// note says when) to this kernel's first beat: the silence the watchdog
    /// saw across the handover (`None`: no watchdog kept, or no time noted).
    pub watchdog_handover_ms: Option<u64>,
}

impl Findings {
    /// Before any step: translation by `iommu`, no NIC, nothing found.
    pub const fn new(iommu: Iommu) -> Self {
        Self {
            iommu,
            nic: Nic::Absent,
            target: None,
            armed_source: None,
            drain: None,
            nvme_init: None,
            nvme_paths: None,
            streamed: None,
            watchdog_handover_ms: None,
        }
    }
}

/// A successful recovery, as typed values.
#[derive(Debug, Clone, Copy)]
pub struct RecoveryResult<'a> {
    /// The crash point the crashed kernel named.
    pub point: &'a str,
    /// What the steps found.
    pub found: Findings,
    /// The dump.
    pub dump: DumpStats,
    /// Crash to dump complete (both read the same TSC).
    pub crash_to_dump_ms: u64,
    /// The canary check.
    pub canary: CanaryCheck,
    /// Whether the armed DMA landed: `none`, `landed`, `blocked`,
    /// `outside-ram`.
    pub armed_dma: &'static str,
    /// Fault counts.
    pub faults: FaultCounts,
    /// Heartbeat rounds sent.
    pub heartbeats: u64,
    /// The longest gap between two heartbeat rounds, ns.
    pub max_heartbeat_gap_ns: u64,
    /// Milliseconds from the crashed kernel arming its DMA to this kernel's
    /// fence (`None`: nothing armed, or no fence: adopt, drain).
    pub armed_fenced_ms: Option<u64>,
}

impl RecoveryResult<'_> {
    /// How long the dump took, ms.
    pub const fn dump_ms(&self) -> u64 {
        self.dump.end_ns.saturating_sub(self.dump.start_ns) / 1_000_000
    }

    /// The dump's rate, MiB/s (0 for a dump under a millisecond).
    pub fn mib_s(&self) -> u64 {
        ((self.dump.bytes >> 20) * 1000)
            .checked_div(self.dump_ms())
            .unwrap_or(0)
    }

    /// Appends the result line's pairs, in the order the harness has always
    /// seen them.
    pub fn write<const N: usize>(&self, f: &mut Fields<N>) {
        let found = &self.found;
        let fc = &self.faults;
        f.add("point", self.point)
            .add("policy", found.iommu.policy())
            .add("iommu", found.iommu.name())
            .add("nic", found.nic.name())
            .add("target", OrNone(found.target.map(|t| t.address)))
            .add("block_size", found.target.map_or(0, |t| t.block_size))
            .add("dump_offset", found.target.map_or(0, |t| t.offset))
            .add("dump_bytes", self.dump.bytes)
            .add("dump_end", self.dump.extent_end)
            .add("chunks", self.dump.chunks)
            .add("crash_to_dump_ms", self.crash_to_dump_ms)
            .add("dump_ms", self.dump_ms())
            .add("mib_s", self.mib_s())
            .add("canary_changed", self.canary.changed)
            .add("armed_dma", self.armed_dma)
            .add("stale_faults", fc.stale)
            .add("own_faults", fc.own)
            .add("lost_faults", fc.lost)
            .add("quarantined", fc.quarantined)
            .add(
                "armed_source",
                OrNone(found.armed_source.map(|s| SourceId(s.source_id))),
            )
            .add(
                "armed_source_stale",
                found.armed_source.map_or(0, |s| s.stale_faults),
            )
            .add("heartbeats", self.heartbeats)
            .add(
                "max_heartbeat_gap_ms",
                self.max_heartbeat_gap_ns / 1_000_000,
            )
            .add("drain", DrainField(found.drain))
            .add(
                "nvme_init_us",
                found.nvme_init.map_or(0, |(d, _)| d.as_micros()),
            )
            .add("nvme_escalations", found.nvme_init.map_or(0, |(_, e)| e))
            .add(
                "nvme_any_state_us",
                found.nvme_paths.map_or(0, |(any, _)| any.as_micros()),
            )
            .add(
                "nvme_fast_us",
                found.nvme_paths.map_or(0, |(_, fast)| fast.as_micros()),
            )
            .add("stream_sent", found.streamed.map_or(0, |(sent, _)| sent))
            .add(
                "stream_failed",
                found.streamed.map_or(0, |(_, failed)| failed),
            )
            .add("armed_fenced_ms", OrNone(self.armed_fenced_ms))
            .add("watchdog_handover_ms", OrNone(found.watchdog_handover_ms));
    }
}

/// A failed recovery: the step, why, and (when the dump was refused by
/// design) the refusal's name.
#[derive(Debug, Clone, Copy)]
pub struct RecoveryFailure<'a> {
    /// The step that failed.
    pub step: &'a str,
    /// Why.
    pub reason: &'a str,
    /// The refusal's name (`dump_refused=`), when the dump was refused.
    pub refused: Option<&'a str>,
}

impl RecoveryFailure<'_> {
    /// Appends the result line's pairs.
    pub fn write<const N: usize>(&self, f: &mut Fields<N>) {
        if let Some(name) = self.refused {
            f.add("dump_refused", name);
        }
        f.quoted("step", self.step).quoted("reason", self.reason);
    }
}

/// A value or `none`.
struct OrNone<T>(Option<T>);

impl<T: fmt::Display> fmt::Display for OrNone<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("none"),
            Some(v) => v.fmt(f),
        }
    }
}

/// A source id as `0x0020`.
struct SourceId(u16);

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#06x}", self.0)
    }
}

/// The drain on the result line: `off`, or `D/B/F`.
struct DrainField(Option<Drain>);

impl fmt::Display for DrainField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("off"),
            Some(c) => write!(f, "{}/{}/{}", c.drained, c.busy, c.faulted),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heartbeat::Schedule;
    use paranoid::sim::SimClock;
    use std::format;
    use std::string::String;

    fn stats() -> DumpStats {
        DumpStats {
            chunks: 12,
            bytes: 191 << 20,
            missing: 0,
            stored: 100 << 20,
            zero_pages: 10,
            written: 101 << 20,
            extent_end: 1 << 28,
            encode_ns: 1,
            start_ns: 5_000_000,
            end_ns: 2_005_000_000,
            heartbeat: Schedule::new(&SimClock::new(), Duration::from_millis(100)),
        }
    }

    fn sample() -> RecoveryResult<'static> {
        RecoveryResult {
            point: "during-io",
            found: Findings {
                nic: Nic::Up,
                target: Some(Target {
                    address: PciAddress::new(0, 0, 4, 0).unwrap(),
                    block_size: 512,
                    offset: 1 << 20,
                }),
                armed_source: Some(ArmedSource {
                    source_id: 0x20,
                    stale_faults: 3,
                }),
                drain: Some(Drain {
                    drained: 2,
                    busy: 0,
                    faulted: 1,
                }),
                nvme_init: Some((Duration::from_micros(1890), 2)),
                ..Findings::new(Iommu::Vtd("adopt"))
            },
            dump: stats(),
            crash_to_dump_ms: 2100,
            canary: CanaryCheck {
                words: 4,
                changed: 0,
                first_changed: None,
            },
            armed_dma: "landed",
            faults: FaultCounts {
                stale: 3,
                own: 0,
                unknown: 0,
                lost: 1,
                quarantined: 1,
            },
            heartbeats: 7,
            max_heartbeat_gap_ns: 12_000_000,
            armed_fenced_ms: None,
        }
    }

    /// The line as the recovery kernel wrote it by hand before this type (its
    /// `write!` format string, with the same values).
    fn by_hand(r: &RecoveryResult<'_>) -> String {
        let f = &r.faults;
        format!(
            "point={} policy={} iommu={} nic={} target={} block_size={} dump_offset={} dump_bytes={} dump_end={} chunks={} crash_to_dump_ms={} dump_ms={} \
             mib_s={} canary_changed={} armed_dma={} stale_faults={} own_faults={} lost_faults={} quarantined={} \
             armed_source={} armed_source_stale={} heartbeats={} max_heartbeat_gap_ms={} drain={} nvme_init_us={} nvme_escalations={} nvme_any_state_us={} nvme_fast_us={} stream_sent={} stream_failed={} armed_fenced_ms={} watchdog_handover_ms={}",
            r.point,
            r.found.iommu.policy(),
            r.found.iommu.name(),
            r.found.nic.name(),
            OrNone(r.found.target.map(|t| t.address)),
            r.found.target.map_or(0, |t| t.block_size),
            r.found.target.map_or(0, |t| t.offset),
            r.dump.bytes,
            r.dump.extent_end,
            r.dump.chunks,
            r.crash_to_dump_ms,
            r.dump_ms(),
            r.mib_s(),
            r.canary.changed,
            r.armed_dma,
            f.stale,
            f.own,
            f.lost,
            f.quarantined,
            OrNone(r.found.armed_source.map(|s| SourceId(s.source_id))),
            r.found.armed_source.map_or(0, |s| s.stale_faults),
            r.heartbeats,
            r.max_heartbeat_gap_ns / 1_000_000,
            DrainField(r.found.drain),
            r.found.nvme_init.map_or(0, |(d, _)| d.as_micros()),
            r.found.nvme_init.map_or(0, |(_, e)| e),
            r.found.nvme_paths.map_or(0, |(a, _)| a.as_micros()),
            r.found.nvme_paths.map_or(0, |(_, b)| b.as_micros()),
            r.found.streamed.map_or(0, |(s, _)| s),
            r.found.streamed.map_or(0, |(_, b)| b),
            OrNone(r.armed_fenced_ms),
            OrNone(r.found.watchdog_handover_ms),
        )
    }

    #[test]
    fn the_typed_result_writes_the_line_the_kernel_wrote_by_hand() {
        for r in [
            sample(),
            RecoveryResult {
                found: Findings {
                    nic: Nic::Off,
                    nvme_paths: Some((Duration::from_micros(1890), Duration::from_micros(1360))),
                    streamed: Some((24_065, 0)),
                    ..Findings::new(Iommu::Off)
                },
                armed_fenced_ms: Some(12),
                ..sample()
            },
        ] {
            let mut f = Fields::<1024>::new();
            r.write(&mut f);
            assert!(!f.is_truncated());
            assert_eq!(f.as_str(), by_hand(&r));
        }
        let mut f = Fields::<1024>::new();
        sample().write(&mut f);
        let line = format!("PARANOID-RESULT test=recovery verdict=pass {f}");
        let parsed = paranoid_result_line::parse(&line).unwrap();
        assert_eq!(parsed.value::<u64>("dump_ms"), Ok(2000));
        assert_eq!(parsed.value::<u64>("mib_s"), Ok(95));
        assert_eq!(parsed.get("policy"), Some("adopt"));
        assert_eq!(parsed.get("target"), Some("0000:00:04.0"));
        assert_eq!(parsed.get("armed_source"), Some("0x0020"));
        assert_eq!(parsed.get("drain"), Some("2/0/1"));
        assert_eq!(parsed.pairs().count(), 34);
        assert_eq!(parsed.get("armed_fenced_ms"), Some("none"));
        assert_eq!(parsed.get("watchdog_handover_ms"), Some("none"));
    }

    #[test]
    fn a_failure_quotes_its_step_and_reason() {
        let mut f = Fields::<256>::new();
        RecoveryFailure {
            step: "dump target",
            reason: "no controller has serial \"X\"",
            refused: Some("absent"),
        }
        .write(&mut f);
        assert_eq!(
            f.as_str(),
            "dump_refused=absent step=\"dump target\" reason=\"no controller has serial 'X'\""
        );
        let mut f = Fields::<256>::new();
        RecoveryFailure {
            step: "config",
            reason: "bad",
            refused: None,
        }
        .write(&mut f);
        assert_eq!(f.as_str(), "step=\"config\" reason=\"bad\"");
    }
}
