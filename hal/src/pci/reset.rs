//! Function-level reset and secondary bus reset, with the waits the spec demands.
//!
//! After either reset a function may answer configuration reads with
//! Configuration Retry Status (CRS): with CRS software visibility the vendor id
//! reads 0x0001 until it is ready (PCIe 5.0, 2.3.2). We wait the mandatory 100 ms,
//! then poll the vendor id until it is neither 0x0001 nor all-ones, up to a
//! caller-chosen deadline (1 s is typical; the spec allows devices 60 s).

use core::time::Duration;

use super::caps::{self, id};
use super::command::{self, Command};
use super::{offset, ConfigAccess, PciAddress, PciError};
use crate::poll::poll;
use crate::time::{Clock, Deadline};

/// Wait after initiating FLR or releasing secondary bus reset (PCIe 6.6.2).
pub const RESET_RECOVERY: Duration = Duration::from_millis(100);
/// Default limit for Configuration Retry Status after reset recovery.
pub const CRS_DEFAULT_LIMIT: Duration = Duration::from_secs(1);
/// The longest a device may stay in CRS (PCIe 6.6.1).
pub const CRS_MAX_LIMIT: Duration = Duration::from_secs(60);
/// How long we wait for Transactions Pending to clear before FLR anyway.
pub const PENDING_LIMIT: Duration = Duration::from_millis(100);
/// Secondary bus reset is held this long (Trst is 1 ms; give it 2).
pub const SBR_HOLD: Duration = Duration::from_millis(2);

/// Vendor id a function returns while it answers with CRS.
const CRS_VENDOR: u16 = 0x0001;
/// PCIe Device Capabilities (cap + 4) bit 28: FLR capable.
const DEVCAP_FLR: u32 = 1 << 28;
/// PCIe Device Control (cap + 8) bit 15: initiate FLR.
const DEVCTL_FLR: u16 = 1 << 15;
/// PCIe Device Status (cap + 0xa) bit 5: transactions pending.
const DEVSTA_TRANSACTIONS_PENDING: u32 = 5;
/// Bridge control bit 6: secondary bus reset.
const BRIDGE_SBR: u16 = 1 << 6;

/// Whether `a` advertises function-level reset, and where its PCIe capability is.
///
/// # Errors
///
/// Capability-walk errors, [`PciError::FlrUnsupported`] without FLR support.
pub fn flr_capability<C: ConfigAccess + ?Sized>(
    cfg: &mut C,
    a: PciAddress,
) -> Result<u16, PciError> {
    let Some(cap) = caps::find(cfg, a, id::PCI_EXPRESS)? else {
        return Err(PciError::FlrUnsupported(a));
    };
    let devcap = cfg.read32(a, cap + 4).not_all_ones()?;
    if devcap.bit(DEVCAP_FLR.trailing_zeros()) {
        Ok(cap)
    } else {
        Err(PciError::FlrUnsupported(a))
    }
}

/// Resets function `a` with FLR and waits until it answers again.
///
/// Bus mastering is turned off first and transactions allowed to drain (bounded),
/// as the spec recommends. On success the function is in its power-on state:
/// command register zero, BARs to be reprogrammed by the caller. The same as
/// [`function_level_reset_by`] with no deadline of the caller's: only the spec's
/// limits and `crs_limit` bound it.
///
/// # Errors
///
/// [`PciError::FlrUnsupported`], [`PciError::NotPresent`], or
/// [`PciError::ResetTimeout`] when the function still answers CRS (or all-ones)
/// at `crs_limit` (clamped to 60 s) after the 100 ms recovery time.
pub fn function_level_reset<C: ConfigAccess + ?Sized, K: Clock + ?Sized>(
    cfg: &mut C,
    a: PciAddress,
    clock: &K,
    crs_limit: Duration,
) -> Result<(), PciError> {
    function_level_reset_by(cfg, a, clock, crs_limit, Deadline::at_ns(u64::MAX))
}

/// Resets function `a` with FLR and waits until it answers again, never past
/// `deadline`.
///
/// Every wait of [`function_level_reset`] — transactions pending, the 100 ms
/// recovery time, Configuration Retry Status up to `crs_limit` — is cut at
/// `deadline`: a step handed a deadline returns by it.
///
/// # Errors
///
/// As [`function_level_reset`], and [`PciError::ResetDeadline`] when `deadline`
/// passes during the 100 ms recovery time (the function is not read again: the
/// spec forbids configuration requests before it is over). A CRS wait cut by
/// `deadline` is a [`PciError::ResetTimeout`] with the last vendor id read.
pub fn function_level_reset_by<C: ConfigAccess + ?Sized, K: Clock + ?Sized>(
    cfg: &mut C,
    a: PciAddress,
    clock: &K,
    crs_limit: Duration,
    deadline: Deadline,
) -> Result<(), PciError> {
    let cap = flr_capability(cfg, a)?;
    command::update(cfg, a, Command::INTX_DISABLE, Command::BUS_MASTER)?;
    let start = clock.now_ns();
    #[cfg(not(paranoid_mutant = "flr_ignores_deadline"))]
    let pending = deadline.within(clock, PENDING_LIMIT);
    #[cfg(paranoid_mutant = "flr_ignores_deadline")]
    let pending = Deadline::after(clock, PENDING_LIMIT);
    // Not draining in time is not fatal: the FLR discards the transactions.
    let _drained = poll(
        clock,
        pending,
        || cfg.read16(a, cap + 0xa),
        |s| !s.bit(DEVSTA_TRANSACTIONS_PENDING),
    );
    let devctl = cfg.read16(a, cap + 8).not_all_ones()?.into_raw_for_report();
    cfg.write16(a, cap + 8, devctl | DEVCTL_FLR);
    wait_after_reset(cfg, a, clock, crs_limit, deadline, start)
}

/// Pulses secondary bus reset on `bridge` (a type-1 function), then waits for
/// `child` below it to answer again.
///
/// # Errors
///
/// [`PciError::NotPresent`] when the bridge reads all-ones,
/// [`PciError::ResetTimeout`] as for [`function_level_reset`].
pub fn secondary_bus_reset<C: ConfigAccess + ?Sized, K: Clock + ?Sized>(
    cfg: &mut C,
    bridge: PciAddress,
    child: PciAddress,
    clock: &K,
    crs_limit: Duration,
) -> Result<(), PciError> {
    let ctl = cfg
        .read16(bridge, offset::BRIDGE_CONTROL)
        .not_all_ones()?
        .into_raw_for_report();
    cfg.write16(bridge, offset::BRIDGE_CONTROL, ctl | BRIDGE_SBR);
    clock.delay(SBR_HOLD);
    cfg.write16(bridge, offset::BRIDGE_CONTROL, ctl & !BRIDGE_SBR);
    let start = clock.now_ns();
    wait_after_reset(
        cfg,
        child,
        clock,
        crs_limit,
        Deadline::at_ns(u64::MAX),
        start,
    )
}

/// The 100 ms recovery wait, then a bounded wait out of CRS, both cut at
/// `deadline`; `start` is when the reset began (for the time reported).
fn wait_after_reset<C: ConfigAccess + ?Sized, K: Clock + ?Sized>(
    cfg: &mut C,
    a: PciAddress,
    clock: &K,
    crs_limit: Duration,
    deadline: Deadline,
    start: u64,
) -> Result<(), PciError> {
    let waited = |clock: &K| Duration::from_nanos(clock.now_ns().saturating_sub(start));
    let left = deadline.remaining(clock);
    #[cfg(paranoid_mutant = "flr_ignores_deadline")]
    let left = RESET_RECOVERY.max(left);
    if left < RESET_RECOVERY {
        clock.delay(left);
        return Err(PciError::ResetDeadline {
            address: a,
            waited: waited(clock),
            deadline_ns: deadline.as_ns(),
        });
    }
    clock.delay(RESET_RECOVERY);
    let limit = if crs_limit > CRS_MAX_LIMIT {
        CRS_MAX_LIMIT
    } else {
        crs_limit
    };
    #[cfg(not(paranoid_mutant = "flr_ignores_deadline"))]
    let crs = deadline.within(clock, limit);
    #[cfg(paranoid_mutant = "flr_ignores_deadline")]
    let crs = Deadline::after(clock, limit);
    let answered = poll(
        clock,
        crs,
        || cfg.read16(a, offset::VENDOR_ID),
        |v| !v.is(CRS_VENDOR) && !v.is_all_ones(),
    );
    match answered {
        Ok(_) => Ok(()),
        Err(t) => Err(PciError::ResetTimeout {
            address: a,
            waited: waited(clock),
            last_vendor: t.last.into_raw_for_report(),
        }),
    }
}
