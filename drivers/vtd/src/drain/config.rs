//! What a drain is asked to do: the devices, their classes and windows, the
//! idle probes and the timing configuration.

use core::fmt;
use core::time::Duration;

use paranoid::time::duration_ns;

/// Devices one call drains and reports on individually; further devices are
/// fenced at once, without a drain (counted in [`DrainReport::excess`](super::DrainReport::excess)).
pub const MAX_DRAIN_DEVICES: usize = 32;
/// The longest drain window honoured; longer windows are clamped.
pub const MAX_DRAIN_WINDOW: Duration = Duration::from_secs(5);
/// The shortest poll interval honoured (bounds the probe calls).
pub const MIN_POLL_INTERVAL: Duration = Duration::from_micros(10);

/// What kind of device is draining: it sets the default window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceClass {
    /// PCI base class 0x02: TX drains fast, RX only fills.
    Network,
    /// PCI base class 0x01: outstanding writes may still be landing.
    Storage,
    /// Anything else (QEMU's `edu`, accelerators...).
    Other,
}

impl DeviceClass {
    /// The class of a device from its PCI base class code (config space 0x0B,
    /// PCI 3.0 appendix D). Every value maps to a class: a garbage code only
    /// picks another default window.
    pub const fn from_base_class(base_class: u8) -> Self {
        match base_class {
            0x02 => Self::Network,
            0x01 => Self::Storage,
            _ => Self::Other,
        }
    }

    /// A short name for reports.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Network => "network",
            Self::Storage => "storage",
            Self::Other => "other",
        }
    }
}

/// What a device's probe reads from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// It still has DMA outstanding (TX head != tail, edu's DMA-busy bit set).
    Busy,
    /// Nothing outstanding.
    Idle,
    /// The probe cannot tell (the device reads all-ones, a register is
    /// nonsense).
    Unknown,
}

/// Tells whether a device still has DMA in flight, from its registers.
///
/// Implemented by the caller, who knows the device: a NIC compares its TX
/// descriptor head and tail, QEMU's `edu` reads its DMA command register's
/// busy bit. An implementation must be bounded: a few register reads, no
/// waiting, every value checked as untrusted. It must not change the
/// device's state. Closures `FnMut() -> Activity` implement it.
pub trait IdleProbe {
    /// The device's activity now.
    fn activity(&mut self) -> Activity;
}

impl<F: FnMut() -> Activity> IdleProbe for F {
    fn activity(&mut self) -> Activity {
        self()
    }
}

/// Drain windows and pacing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainConfig {
    /// Window of [`DeviceClass::Network`] devices (default 20 ms).
    pub network: Duration,
    /// Window of [`DeviceClass::Storage`] devices (default 200 ms).
    pub storage: Duration,
    /// Window of [`DeviceClass::Other`] devices (default 150 ms; QEMU's `edu`
    /// lands its DMA 100 ms after it is armed).
    pub other: Duration,
    /// Time between passes (fault service and probes); default 100 µs, at
    /// least [`MIN_POLL_INTERVAL`].
    pub poll_interval: Duration,
    /// Bound of the final fence (and of quarantines during the drain);
    /// default 100 ms.
    pub fence_timeout: Duration,
}

impl DrainConfig {
    /// The defaults.
    pub const DEFAULT: Self = Self {
        network: Duration::from_millis(20),
        storage: Duration::from_millis(200),
        other: Duration::from_millis(150),
        poll_interval: Duration::from_micros(100),
        fence_timeout: Duration::from_millis(100),
    };

    /// The configured window of `class` (before clamping).
    pub const fn window(&self, class: DeviceClass) -> Duration {
        match class {
            DeviceClass::Network => self.network,
            DeviceClass::Storage => self.storage,
            DeviceClass::Other => self.other,
        }
    }

    pub(crate) fn interval_ns(&self) -> u64 {
        duration_ns(self.poll_interval.max(MIN_POLL_INTERVAL))
    }
}

impl Default for DrainConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One device to drain.
pub struct DrainDevice<'p> {
    /// Its requester id (`PciAddress::source_id()`).
    pub source_id: u16,
    /// Its class (sets the default window).
    pub class: DeviceClass,
    /// A window declared by its driver or the configuration, instead of the
    /// class default.
    pub window: Option<Duration>,
    /// How to tell it is idle, if the device can tell.
    pub probe: Option<&'p mut dyn IdleProbe>,
}

impl<'p> DrainDevice<'p> {
    /// A device with its class's window and no probe.
    pub fn new(source_id: u16, class: DeviceClass) -> Self {
        Self {
            source_id,
            class,
            window: None,
            probe: None,
        }
    }

    /// Overrides the class window.
    #[must_use]
    pub fn with_window(self, window: Duration) -> Self {
        Self {
            window: Some(window),
            ..self
        }
    }

    /// Watches the device through `probe`.
    #[must_use]
    pub fn with_probe(self, probe: &'p mut dyn IdleProbe) -> Self {
        Self {
            probe: Some(probe),
            ..self
        }
    }
}

impl fmt::Debug for DrainDevice<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DrainDevice")
            .field("source_id", &self.source_id)
            .field("class", &self.class)
            .field("window", &self.window)
            .field("probe", &self.probe.is_some())
            .finish()
    }
}
