//! The recovery report: a timeline of steps with their times, what each device
//! was found doing, the faults seen and what was fenced.
//!
//! Rendered two ways at once: readable lines for a person, and `PARANOID-RESULT`
//! `key=value` lines the harness parses.

use core::fmt::{self, Write};
use core::time::Duration;

use paranoid::init::Note;

/// Steps a report keeps.
pub const MAX_STEPS: usize = 40;
/// Devices a report keeps.
pub const MAX_DEVICES: usize = 8;

/// One step of the recovery timeline.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// What.
    pub name: &'static str,
    /// When it started (since recovery entry).
    pub start: Duration,
    /// How long it took.
    pub took: Duration,
    /// Outcome in a few words.
    pub outcome: Note,
}

/// What happened to one device.
#[derive(Debug, Clone, Copy)]
pub struct DeviceFinding {
    /// Name and address (`nvme 00:04.0`).
    pub name: Note,
    /// The state it was found in.
    pub found: Note,
    /// What we did (ready after N escalations, fenced, drained...).
    pub result: Note,
}

/// IOMMU faults seen during recovery.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Faults from stale DMA (outside the recovery window).
    pub stale: u64,
    /// Faults inside the recovery window (our own bugs).
    pub own: u64,
    /// Faults from unknown sources.
    pub unknown: u64,
    /// Fault records lost to overflow.
    pub lost: u64,
    /// Sources quarantined.
    pub quarantined: u64,
}

/// The whole report.
pub struct Report {
    steps: [Option<Step>; MAX_STEPS],
    n_steps: usize,
    devices: [Option<DeviceFinding>; MAX_DEVICES],
    n_devices: usize,
    /// IOMMU faults.
    pub faults: FaultCounts,
}

impl Default for Report {
    fn default() -> Self {
        Self::new()
    }
}

impl Report {
    /// An empty report.
    pub const fn new() -> Self {
        Self {
            steps: [None; MAX_STEPS],
            n_steps: 0,
            devices: [None; MAX_DEVICES],
            n_devices: 0,
            faults: FaultCounts {
                stale: 0,
                own: 0,
                unknown: 0,
                lost: 0,
                quarantined: 0,
            },
        }
    }

    /// Records a step (dropped silently past [`MAX_STEPS`]).
    pub fn step(
        &mut self,
        name: &'static str,
        start_ns: u64,
        end_ns: u64,
        outcome: fmt::Arguments<'_>,
    ) {
        if let Some(slot) = self.steps.get_mut(self.n_steps) {
            *slot = Some(Step {
                name,
                start: Duration::from_nanos(start_ns),
                took: Duration::from_nanos(end_ns.saturating_sub(start_ns)),
                outcome: Note::format(outcome),
            });
            self.n_steps += 1;
        }
    }

    /// Records a device finding.
    pub fn device(
        &mut self,
        name: fmt::Arguments<'_>,
        found: fmt::Arguments<'_>,
        result: fmt::Arguments<'_>,
    ) {
        if let Some(slot) = self.devices.get_mut(self.n_devices) {
            *slot = Some(DeviceFinding {
                name: Note::format(name),
                found: Note::format(found),
                result: Note::format(result),
            });
            self.n_devices += 1;
        }
    }

    /// The steps so far.
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().flatten()
    }

    /// The devices so far.
    pub fn devices(&self) -> impl Iterator<Item = &DeviceFinding> {
        self.devices.iter().flatten()
    }

    /// Renders the readable report.
    ///
    /// # Errors
    ///
    /// Errors of `w`.
    pub fn render(&self, w: &mut dyn Write) -> fmt::Result {
        writeln!(w, "== paranoid recovery report ==")?;
        writeln!(w, "timeline:")?;
        for s in self.steps() {
            writeln!(
                w,
                "  {:>9.3} ms  {:<28} {:>9.3} ms  {}",
                ms(s.start),
                s.name,
                ms(s.took),
                s.outcome.as_str()
            )?;
        }
        writeln!(w, "devices:")?;
        for d in self.devices() {
            writeln!(w, "  {:<22} found: {}", d.name.as_str(), d.found.as_str())?;
            writeln!(w, "  {:<22} result: {}", "", d.result.as_str())?;
        }
        let f = &self.faults;
        writeln!(
            w,
            "iommu faults: {} stale (outside the window), {} own (inside), {} unknown source, {} lost to overflow; {} source(s) quarantined",
            f.stale, f.own, f.unknown, f.lost, f.quarantined
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_steps_devices_and_faults() {
        let mut r = Report::new();
        r.step(
            "iommu takeover",
            1_000_000,
            3_500_000,
            format_args!("fence: 2 devices blocked"),
        );
        r.device(
            format_args!("nvme 00:04.0"),
            format_args!("enabled, 3 commands outstanding"),
            format_args!("ready, 0 escalations"),
        );
        r.faults.stale = 3;
        let mut s = String::new();
        r.render(&mut s).unwrap();
        assert!(s.contains("iommu takeover"), "{s}");
        assert!(s.contains("2.500 ms"), "{s}");
        assert!(s.contains("enabled, 3 commands outstanding"));
        assert!(s.contains("3 stale"));
        for _ in 0..100 {
            r.step("x", 0, 0, format_args!(""));
        }
        assert_eq!(r.steps().count(), MAX_STEPS);
    }
}
