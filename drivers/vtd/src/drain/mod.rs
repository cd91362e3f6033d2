//! Drain, then fence: let inherited DMA finish where the dead kernel pointed
//! it, for a bounded window per device, then block the devices.
//!
//! Stale DMA is not all alike. A NIC's TX ring drains in microseconds to
//! milliseconds; its RX ring fills slowly and is harmless while nobody services
//! it; a storage controller's outstanding writes may still be landing. Under
//! [`Policy::Adopt`](crate::takeover::Policy::Adopt) the old translation is
//! kept, so those transfers land in the dead kernel's buffers, where they do no
//! harm. [`drain_then_fence`] gives each listed device a window (by
//! [`DeviceClass`], or its own override) to finish, watches for it to go idle,
//! then fences every listed device: its context entry is made not-present and
//! the caches invalidated in one batch, so whatever it still does from then on
//! faults instead of landing.
//!
//! # How idleness is decided
//!
//! Each pass of the wait services the fault log once through the caller's
//! [`FaultPolicy`](crate::policy::FaultPolicy) (so faults are classified, counted and quarantined as
//! usual) while attributing every record to its source, then asks each
//! unsettled device:
//!
//! - **Faulted**: a fault record from the device arrived during the drain
//!   (records pending when the call starts count too): its DMA hits addresses
//!   the old tables do not map, so waiting longer cannot make it land. It is
//!   settled at once and fenced with the others (the policy may quarantine it
//!   earlier, after its threshold).
//! - **With an [`IdleProbe`]**: the probe saying [`Activity::Idle`] settles
//!   the device as drained. [`Activity::Busy`] and [`Activity::Unknown`] keep
//!   it waiting. When its deadline passes the probe is asked once more; a
//!   device still not idle is busy at the deadline and fenced anyway, unless
//!   the probe never once said busy (it could not tell), in which case it is
//!   judged like a device without a probe.
//! - **Without a probe**: the device counts as drained when its whole window
//!   passes with no fault record from it ([`Evidence::NoFaults`]: a device
//!   whose DMA still lands in mapped memory is not seen by the IOMMU, so this
//!   is a presumption, and the report says so). If the overall deadline ends
//!   the wait before its window, it is reported busy at the deadline.
//!
//! Devices attached to the recovery domain are left alone
//! ([`DrainOutcome::Driven`]); devices whose entry is already not-present
//! (fenced at takeover, or quarantined) are reported as such and not waited for.
//!
//! # Bounds
//!
//! All devices drain at once: the wait ends when every device is settled, at
//! the latest at its window's end or the overall deadline, so it lasts at most
//! the largest window (windows are clamped to [`MAX_DRAIN_WINDOW`]). A device's
//! probe is called at most once per [`DrainConfig::poll_interval`] plus once at
//! its deadline, and the number of passes is capped from the windows and the
//! interval, so a clock that stops advancing cannot hold the loop. The fence
//! afterwards has its own bound ([`DrainConfig::fence_timeout`]). Nothing
//! panics; hardware errors end up in the [`DrainReport`].
//!
//! # Order in the recovery kernel
//!
//! Take over with `Policy::Adopt`, then drain every inherited device,
//! including those the recovery kernel will drive (fencing ends their stale
//! DMA; [`Vtd::attach`](crate::Vtd::attach) then gives them the recovery
//! domain), then attach and reset the devices it drives.
//!
//! # Examples
//!
//! A NIC whose TX ring empties after 3 ms and an `edu` device without a probe,
//! on the simulated unit:
//!
//! ```
//! # #[cfg(feature = "model")] {
//! use core::time::Duration;
//! use paranoid::dma::WindowSpec;
//! use paranoid::time::{Clock, Deadline};
//! use paranoid_vtd::drain::{drain_then_fence, Activity, DeviceClass, DrainConfig, DrainDevice, DrainOutcome};
//! use paranoid_vtd::policy::{FaultPolicy, PolicyConfig};
//! use paranoid_vtd::takeover::{Policy, TakeoverConfig};
//! use paranoid_vtd::{model::Harness, Vtd};
//!
//! const NIC: u16 = 0x0010; // 00:02.0
//! const EDU: u16 = 0x0020; // 00:04.0
//! let h = Harness::qemu_like();
//! let old = h.old_kernel_tables(&[(NIC, 1), (EDU, 2)]);
//! let window = WindowSpec { name: "recovery", base: 0x7ff0_0000, size: 1 << 20, page_size: 4096 };
//! let deadline = Deadline::after(&h.clock, Duration::from_secs(1));
//! let (mut vtd, _) = Vtd::take_over(h.registers(), h.clock.clone(), h.memory(), h.pool(),
//!     h.memory_map(), &TakeoverConfig::new(Policy::Adopt, window), deadline).unwrap();
//!
//! // The NIC's probe: TX head == tail (here: idle 3 ms from now).
//! let clock = h.clock.clone();
//! let tx_empty_at = clock.now_ns() + 3_000_000;
//! let mut tx_idle = move || if clock.now_ns() >= tx_empty_at { Activity::Idle } else { Activity::Busy };
//! let mut devices = [
//!     DrainDevice::new(NIC, DeviceClass::from_base_class(0x02)).with_probe(&mut tx_idle),
//!     DrainDevice::new(EDU, DeviceClass::Other).with_window(Duration::from_millis(50)),
//! ];
//! let mut policy = FaultPolicy::new(PolicyConfig::default());
//! let overall = Deadline::after(&h.clock, Duration::from_secs(1));
//! let report = drain_then_fence(&mut vtd, &mut devices, &DrainConfig::default(), &mut policy,
//!     &mut |_line| {}, overall);
//! println!("{report}");
//! assert!(matches!(report.device(NIC).unwrap().outcome, DrainOutcome::Drained { .. }));
//! assert!(report.all_fenced());
//! assert!(report.total <= Duration::from_millis(51));
//! // From now on the dead kernel's DMA faults instead of landing.
//! assert!(h.dma().write(EDU, old.mappings[1].iova, b"late").is_err());
//! # }
//! ```

mod config;
mod report;
#[cfg(test)]
mod tests;
mod wait;

pub use config::{
    Activity, DeviceClass, DrainConfig, DrainDevice, IdleProbe, MAX_DRAIN_DEVICES,
    MAX_DRAIN_WINDOW, MIN_POLL_INTERVAL,
};
pub use report::{DeviceReport, DrainOutcome, DrainReport, Evidence, Fence, Limit};
pub use wait::drain_then_fence;
