//! The recovery kernel's settings, read from its command line (`key=value`
//! words), with documented defaults.

use core::time::Duration;

use paranoid_dump::Policy;

use crate::target::{parse_bytes, parse_pci, Extent, SeenAt, Serial, TargetSpec};

/// Which heartbeats run between dump chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatKinds {
    /// Pet the hardware watchdog (i6300esb) armed by the crashed kernel.
    pub watchdog: bool,
    /// Send a small UDP frame to the configured peer through the NIC.
    pub udp: bool,
}

/// After a planned handoff, which bring-up of the NVMe controller is measured
/// first (`handoff_order=`): the bench alternates them so neither path always
/// runs on the colder caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoffOrder {
    /// The any-state path first, from the state the dump left the controller
    /// in, then the fast path after an orderly shutdown (`any-state-first`,
    /// the default).
    AnyStateFirst,
    /// An orderly shutdown and the fast path first, then the any-state path
    /// from the state the fast bring-up left it in (`fast-first`).
    FastFirst,
}

impl HandoffOrder {
    /// The command-line value.
    pub const fn name(self) -> &'static str {
        match self {
            Self::AnyStateFirst => "any-state-first",
            Self::FastFirst => "fast-first",
        }
    }
}

/// Errors in the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// A value that does not parse or is out of range, with the key.
    BadValue(&'static str),
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadValue(key) => {
                write!(
                    f,
                    "`{key}=` has a value that does not parse or is out of range"
                )
            }
        }
    }
}

/// Settings, with the defaults of [`Config::default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// IOMMU takeover policy (`iommu=adopt|fence|drain`, default `fence`).
    pub policy: Policy,
    /// The namespace the dump may be written to (`dump_serial=`, `dump_nsid=`,
    /// `dump_pci=`; see [`crate::target`]). Default: none named, so nothing is
    /// written.
    pub target: TargetSpec,
    /// The dump extent: `dump_offset=`/`dump_size=` in bytes (default 1 MiB
    /// in, 128 MiB), or `dump_lba=`/`dump_blocks=` in the target's own blocks.
    pub extent: Extent,
    /// Bytes of memory per dump chunk (`chunk_kib=`, default 256).
    pub chunk_bytes: u32,
    /// Bring the NIC up (`nic=on|off`, default on): UDP heartbeats need it.
    pub nic: bool,
    /// The NIC to bring up, named by its station address (`nic_mac=`, six
    /// hexadecimal bytes separated by `:`; default: none named, the first
    /// supported NIC in walk order). On a machine with several NICs only the
    /// cluster's carries the heartbeats.
    pub nic_mac: Option<[u8; 6]>,
    /// Also stream the dump over the NIC, UDP port 7375 (`stream=on|off`,
    /// default off; `paranoid dump verify-stream` checks a capture).
    pub stream: bool,
    /// Heartbeats (`heartbeat=none|watchdog|udp|both`, default none).
    pub heartbeat: HeartbeatKinds,
    /// Heartbeat period (`heartbeat_ms=`, default 100 ms); beats are sent at half
    /// this period so a late chunk cannot miss one.
    pub heartbeat_period: Duration,
    /// Drain window for NICs' in-flight TX before fencing (`drain_nic_ms=`, default 20).
    pub drain_nic: Duration,
    /// Drain window for storage controllers (`drain_storage_ms=`, default 200).
    pub drain_storage: Duration,
    /// Drain window for other devices (`drain_other_ms=`, default 150).
    pub drain_other: Duration,
    /// Faults from one source before it is quarantined (`quarantine_after=`, default 4).
    pub quarantine_after: u32,
    /// Halt on a fault inside the recovery window (`halt_on_own_fault=on|off`, default off).
    pub halt_on_own_fault: bool,
    /// Total init budget per device (`init_budget_ms=`, default 2000).
    pub init_budget: Duration,
    /// After a planned handoff, which bring-up path is measured first
    /// (`handoff_order=any-state-first|fast-first`, default any-state-first).
    pub handoff_order: HandoffOrder,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            policy: Policy::Fence,
            target: TargetSpec::default(),
            extent: Extent::Bytes {
                offset: 1 << 20,
                len: 128 << 20,
            },
            chunk_bytes: 256 * 1024,
            nic: true,
            nic_mac: None,
            stream: false,
            heartbeat: HeartbeatKinds {
                watchdog: false,
                udp: false,
            },
            heartbeat_period: Duration::from_millis(100),
            drain_nic: Duration::from_millis(20),
            drain_storage: Duration::from_millis(200),
            drain_other: Duration::from_millis(150),
            quarantine_after: 4,
            halt_on_own_fault: false,
            init_budget: Duration::from_millis(2000),
            handoff_order: HandoffOrder::AnyStateFirst,
        }
    }
}

fn number(key: &'static str, v: &str, max: u64) -> Result<u64, ConfigError> {
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    match parsed {
        Ok(n) if n <= max => Ok(n),
        _ => Err(ConfigError::BadValue(key)),
    }
}

fn switch(key: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v {
        "on" | "1" | "yes" | "true" => Ok(true),
        "off" | "0" | "no" | "false" => Ok(false),
        _ => Err(ConfigError::BadValue(key)),
    }
}

/// `aa:bb:cc:dd:ee:ff` (either case).
fn parse_mac(v: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = v.split(':');
    for byte in &mut mac {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

fn millis(key: &'static str, v: &str) -> Result<Duration, ConfigError> {
    number(key, v, 600_000).map(Duration::from_millis)
}

impl core::fmt::Display for Config {
    /// The settings as `key=value` words, the way the command line takes them.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let hb = match (self.heartbeat.watchdog, self.heartbeat.udp) {
            (false, false) => "none",
            (true, false) => "watchdog",
            (false, true) => "udp",
            (true, true) => "both",
        };
        let on = |b: bool| if b { "on" } else { "off" };
        write!(f, "iommu={} ", self.policy.name())?;
        match self.target.serial {
            Some(s) => write!(f, "dump_serial={s} ")?,
            None => write!(f, "dump_serial=none ")?,
        }
        write!(f, "dump_nsid={} ", self.target.nsid)?;
        if let Some(a) = self.target.pci {
            write!(f, "dump_pci={a} ")?;
        }
        match self.target.seen_at {
            SeenAt::Unknown => {}
            SeenAt::Nowhere => write!(f, "dump_seen_at=none ")?,
            SeenAt::At(a) => write!(f, "dump_seen_at={a} ")?,
        }
        match self.extent {
            Extent::Bytes { offset, len } => write!(f, "dump_offset={offset} dump_size={len} ")?,
            Extent::Blocks { lba, count } => write!(f, "dump_lba={lba} dump_blocks={count} ")?,
        }
        if let Some(m) = self.nic_mac {
            write!(
                f,
                "nic_mac={:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} ",
                m[0], m[1], m[2], m[3], m[4], m[5]
            )?;
        }
        write!(
            f,
            "chunk_kib={} nic={} stream={} heartbeat={hb} heartbeat_ms={} \
             drain_nic_ms={} drain_storage_ms={} drain_other_ms={} quarantine_after={} halt_on_own_fault={} init_budget_ms={} handoff_order={}",
            self.chunk_bytes / 1024,
            on(self.nic),
            on(self.stream),
            self.heartbeat_period.as_millis(),
            self.drain_nic.as_millis(),
            self.drain_storage.as_millis(),
            self.drain_other.as_millis(),
            self.quarantine_after,
            on(self.halt_on_own_fault),
            self.init_budget.as_millis(),
            self.handoff_order.name(),
        )
    }
}

impl Config {
    /// Parses a command line. Words that are not `key=value`, and keys that are
    /// not the recovery kernel's (the crashed kernel's `crash=`, `seed=`, ...),
    /// are ignored; a recovery key with a bad value is an error.
    ///
    /// # Errors
    ///
    /// [`ConfigError::BadValue`] with the key whose value is bad.
    pub fn parse(cmdline: &str) -> Result<Self, ConfigError> {
        let mut c = Self::default();
        for word in cmdline.split_ascii_whitespace() {
            let Some((k, v)) = word.split_once('=') else {
                continue;
            };
            match k {
                "iommu" => {
                    c.policy = match v {
                        "adopt" => Policy::Adopt,
                        "fence" => Policy::Fence,
                        "drain" | "drain-then-fence" => Policy::DrainThenFence,
                        "none" => Policy::None,
                        _ => return Err(ConfigError::BadValue("iommu")),
                    }
                }
                "dump_serial" => {
                    c.target.serial = match v {
                        "none" => None,
                        _ => Some(
                            Serial::new(v.as_bytes())
                                .ok_or(ConfigError::BadValue("dump_serial"))?,
                        ),
                    }
                }
                "dump_nsid" => {
                    c.target.nsid = number("dump_nsid", v, u64::from(u32::MAX - 1))? as u32;
                    if c.target.nsid == 0 {
                        return Err(ConfigError::BadValue("dump_nsid"));
                    }
                }
                "dump_pci" => {
                    c.target.pci = Some(parse_pci(v).ok_or(ConfigError::BadValue("dump_pci"))?)
                }
                "dump_seen_at" => {
                    c.target.seen_at = match v {
                        "none" => SeenAt::Nowhere,
                        _ => SeenAt::At(parse_pci(v).ok_or(ConfigError::BadValue("dump_seen_at"))?),
                    }
                }
                "dump_offset" | "dump_size" => {
                    let n = parse_bytes(v).ok_or(ConfigError::BadValue(if k == "dump_offset" {
                        "dump_offset"
                    } else {
                        "dump_size"
                    }))?;
                    let (mut offset, mut len) = match c.extent {
                        Extent::Bytes { offset, len } => (offset, len),
                        Extent::Blocks { .. } => (1 << 20, 128 << 20),
                    };
                    if k == "dump_offset" {
                        offset = n;
                    } else {
                        len = n;
                    }
                    c.extent = Extent::Bytes { offset, len };
                }
                "dump_lba" | "dump_blocks" => {
                    let key = if k == "dump_lba" {
                        "dump_lba"
                    } else {
                        "dump_blocks"
                    };
                    let n = number(key, v, u64::MAX >> 12)?;
                    let (mut lba, mut count) = match c.extent {
                        Extent::Blocks { lba, count } => (lba, count),
                        Extent::Bytes { .. } => (2048, 262_144),
                    };
                    if k == "dump_lba" {
                        lba = n;
                    } else {
                        count = n;
                    }
                    c.extent = Extent::Blocks { lba, count };
                }
                "chunk_kib" => {
                    let kib = number("chunk_kib", v, 4096)?;
                    if kib == 0 || kib % 4 != 0 {
                        return Err(ConfigError::BadValue("chunk_kib"));
                    }
                    c.chunk_bytes = (kib * 1024) as u32;
                }
                "nic" => c.nic = switch("nic", v)?,
                "nic_mac" => {
                    c.nic_mac = Some(parse_mac(v).ok_or(ConfigError::BadValue("nic_mac"))?)
                }
                "stream" => c.stream = switch("stream", v)?,
                "heartbeat" => {
                    c.heartbeat = match v {
                        "none" => HeartbeatKinds {
                            watchdog: false,
                            udp: false,
                        },
                        "watchdog" => HeartbeatKinds {
                            watchdog: true,
                            udp: false,
                        },
                        "udp" => HeartbeatKinds {
                            watchdog: false,
                            udp: true,
                        },
                        "both" => HeartbeatKinds {
                            watchdog: true,
                            udp: true,
                        },
                        _ => return Err(ConfigError::BadValue("heartbeat")),
                    }
                }
                "heartbeat_ms" => {
                    c.heartbeat_period = millis("heartbeat_ms", v)?;
                    if c.heartbeat_period.is_zero() {
                        return Err(ConfigError::BadValue("heartbeat_ms"));
                    }
                }
                "drain_nic_ms" => c.drain_nic = millis("drain_nic_ms", v)?,
                "drain_storage_ms" => c.drain_storage = millis("drain_storage_ms", v)?,
                "drain_other_ms" => c.drain_other = millis("drain_other_ms", v)?,
                "quarantine_after" => {
                    c.quarantine_after = number("quarantine_after", v, 1 << 20)? as u32
                }
                "halt_on_own_fault" => c.halt_on_own_fault = switch("halt_on_own_fault", v)?,
                "init_budget_ms" => c.init_budget = millis("init_budget_ms", v)?,
                "handoff_order" => {
                    c.handoff_order = match v {
                        "any-state-first" => HandoffOrder::AnyStateFirst,
                        "fast-first" => HandoffOrder::FastFirst,
                        _ => return Err(ConfigError::BadValue("handoff_order")),
                    }
                }
                _ => {}
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_value_names_its_key() {
        let e = Config::parse("iommu=sometimes").unwrap_err();
        assert_eq!(
            e.to_string(),
            "`iommu=` has a value that does not parse or is out of range"
        );
    }

    #[test]
    fn defaults_and_overrides() {
        let c = Config::parse(
            "crash=during-io seed=7 iommu=adopt heartbeat=both heartbeat_ms=50 chunk_kib=64",
        )
        .unwrap();
        assert_eq!(c.policy, Policy::Adopt);
        assert_eq!(
            c.heartbeat,
            HeartbeatKinds {
                watchdog: true,
                udp: true
            }
        );
        assert_eq!(c.heartbeat_period, Duration::from_millis(50));
        assert_eq!(c.chunk_bytes, 64 * 1024);
        assert_eq!(
            c.extent,
            Extent::Bytes {
                offset: 1 << 20,
                len: 128 << 20
            }
        );
        assert_eq!(c.target.serial, None, "no target unless named");
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn display_round_trips_through_parse() {
        let c = Config::parse(
            "iommu=drain heartbeat=udp heartbeat_ms=40 chunk_kib=64 nic=off drain_nic_ms=7 \
             dump_serial=paranoid0 dump_nsid=2 dump_pci=0000:01:00.0 dump_seen_at=none dump_size=400M handoff_order=fast-first \
             nic_mac=52:54:00:AB:cd:0f",
        )
        .unwrap();
        assert_eq!(c.nic_mac, Some([0x52, 0x54, 0, 0xab, 0xcd, 0x0f]));
        assert_eq!(c.handoff_order, HandoffOrder::FastFirst);
        assert_eq!(Config::parse(&c.to_string()).unwrap(), c);
        assert_eq!(
            Config::parse(&Config::default().to_string()).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn a_nic_mac_is_six_bytes_of_two_hex_digits() {
        for bad in [
            "52:54:00:12:34",
            "52:54:00:12:34:56:78",
            "5254:00:12:34:56",
            "52:54:00:12:34:5g",
            "",
            "52-54-00-12-34-56",
        ] {
            assert_eq!(
                Config::parse(&format!("nic_mac={bad}")).unwrap_err(),
                ConfigError::BadValue("nic_mac"),
                "{bad}"
            );
        }
        assert_eq!(Config::default().nic_mac, None);
    }

    #[test]
    fn bad_values_are_named() {
        assert_eq!(
            Config::parse("iommu=maybe"),
            Err(ConfigError::BadValue("iommu"))
        );
        assert_eq!(
            Config::parse("chunk_kib=3"),
            Err(ConfigError::BadValue("chunk_kib"))
        );
        assert_eq!(
            Config::parse("handoff_order=random"),
            Err(ConfigError::BadValue("handoff_order"))
        );
        assert_eq!(
            Config::parse("heartbeat_ms=0"),
            Err(ConfigError::BadValue("heartbeat_ms"))
        );
        assert_eq!(
            Config::parse("dump_lba=0x"),
            Err(ConfigError::BadValue("dump_lba"))
        );
        assert_eq!(
            Config::parse("nic=perhaps"),
            Err(ConfigError::BadValue("nic"))
        );
        for bad in [
            "dump_serial=",
            "dump_nsid=0",
            "dump_pci=1:2:3:4",
            "dump_seen_at=x",
            "dump_size=12Q",
        ] {
            let key = bad.split('=').next().unwrap();
            assert_eq!(Config::parse(bad), Err(ConfigError::BadValue(key)), "{bad}");
        }
    }

    #[test]
    fn extent_in_bytes_or_in_target_blocks() {
        let c = Config::parse("dump_offset=2M dump_size=400MiB").unwrap();
        assert_eq!(
            c.extent,
            Extent::Bytes {
                offset: 2 << 20,
                len: 400 << 20
            }
        );
        let c = Config::parse("dump_lba=256 dump_blocks=1000").unwrap();
        assert_eq!(
            c.extent,
            Extent::Blocks {
                lba: 256,
                count: 1000
            }
        );
        let c = Config::parse("dump_serial=S1 dump_seen_at=0000:00:05.0").unwrap();
        assert_eq!(c.target.serial.unwrap().as_str(), "S1");
        assert!(matches!(c.target.seen_at, SeenAt::At(_)));
    }
}
