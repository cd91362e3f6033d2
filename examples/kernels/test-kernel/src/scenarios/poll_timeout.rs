//! `poll-timeout`: a bounded poll on a register that never changes returns a
//! timeout with the last value instead of hanging, after the deadline and not
//! much later, measured on the TSC and cross-checked against the ACPI PM timer
//! (an independent clock); a condition that holds returns at once.

use core::time::Duration;

use paranoid::mmio::RegisterIo;
use paranoid::poll::poll;
use paranoid::time::{Clock, Deadline};
use paranoid_boot::acpi::{self, PmTimer, PM_TIMER_HZ};
use paranoid_boot::BootInfo;

use crate::platform;
use crate::report::{fail, Fields, Outcome};
use crate::scenarios::pci_discovery::first_nvme;
use crate::{check, ensure};

/// NVMe VS (NVMe 1.4, 3.1.2): read-only, QEMU 7.2 reports 1.4.0.
const NVME_VS: usize = 0x08;
/// The deadline of the poll that must time out.
const BUDGET: Duration = Duration::from_millis(50);
/// How late the timeout may come back (TCG is slow and the host is shared).
const SLACK: Duration = Duration::from_millis(250);

/// Runs the checks.
pub fn run(boot: &'static BootInfo) -> Outcome {
    let mut f = Fields::new();
    let clock = boot.clock();
    let mut ecam = check!(f, platform::ecam(boot), "ECAM");
    let nvme = check!(f, first_nvme(&mut ecam), "NVMe");
    let (mut regs, _) = check!(
        f,
        platform::map_bar0(&mut ecam, nvme.address()),
        "NVMe BAR0"
    );

    let vs = regs.read32(NVME_VS);
    f.add("vs", format_args!("{:#x}", vs.into_raw_for_report()));
    ensure!(
        f,
        vs.is(0x0001_0400),
        "NVMe VS {:#x}, expected 1.4.0",
        vs.into_raw_for_report()
    );

    let rsdp = boot.rsdp().unwrap_or(0);
    let root = check!(f, acpi::root(boot, rsdp), "ACPI");
    let pm = check!(f, PmTimer::from_root(&root), "FADT");
    let Some(pm) = pm else {
        return Err(fail(f, "no ACPI PM timer"));
    };

    // Wait for VS to become something it never becomes.
    let pm_start = pm.read();
    let started = clock.now_ns();
    let deadline = Deadline::after(&clock, BUDGET);
    let seen = poll(
        &clock,
        deadline,
        || regs.read32(NVME_VS),
        |v| v.is(0xdead_beef),
    );
    let elapsed = Duration::from_nanos(clock.now_ns() - started);
    let pm_end = pm.read();
    let pm_us = pm.elapsed(pm_start, pm_end) * 1_000_000 / PM_TIMER_HZ;
    let timeout = match seen {
        Ok(v) => {
            return Err(fail(
                f,
                format_args!("poll returned Ok({:#x})", v.into_raw_for_report()),
            ))
        }
        Err(t) => t,
    };
    f.add("waited_us", timeout.waited.as_micros());
    f.add("elapsed_us", elapsed.as_micros());
    f.add("pm_timer_us", pm_us);
    f.add("reads", timeout.reads);
    f.add(
        "last",
        format_args!("{:#x}", timeout.last.into_raw_for_report()),
    );
    ensure!(
        f,
        timeout.last.is(0x0001_0400),
        "timeout carries the wrong last value"
    );
    // `waited` counts from the poll's first read, a little after the
    // deadline was set (on a loaded host the vCPU may be off the CPU in
    // between: 47 ms of a 50 ms budget seen), so the deadline is checked on
    // `elapsed`, which counts from before it was set.
    ensure!(f, elapsed >= BUDGET, "gave up before the deadline");
    ensure!(
        f,
        timeout.waited <= elapsed,
        "the poll says it waited {:?}, longer than the {elapsed:?} it took",
        timeout.waited
    );
    ensure!(
        f,
        elapsed <= BUDGET + SLACK,
        "overshot the deadline by more than {SLACK:?}"
    );
    ensure!(f, timeout.reads >= 2, "read only {} times", timeout.reads);
    // The TSC calibration is right if an independent clock agrees within 10%.
    let tsc_us = elapsed.as_micros() as u64;
    ensure!(
        f,
        pm_us * 10 >= tsc_us * 9 && pm_us * 10 <= tsc_us * 11,
        "TSC says {tsc_us} us, the PM timer {pm_us} us"
    );

    // A condition that already holds returns after one read.
    let t0 = clock.now_ns();
    let ok = poll(
        &clock,
        Deadline::after(&clock, Duration::from_secs(5)),
        || regs.read32(NVME_VS),
        |v| v.field(16, 16).is(1),
    );
    let quick = Duration::from_nanos(clock.now_ns() - t0);
    ensure!(f, ok.is_ok(), "poll on a true condition failed");
    ensure!(
        f,
        quick < Duration::from_millis(10),
        "poll on a true condition took {quick:?}"
    );
    f.add("ok_poll_us", quick.as_micros());
    Ok(f)
}
