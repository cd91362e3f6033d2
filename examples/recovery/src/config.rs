//! The recovery kernel's settings, read from its command line (`key=value`
//! words), with documented defaults.

use core::time::Duration;

use paranoid_dump::Policy;

/// Which heartbeats run between dump chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatKinds {
    /// Pet the hardware watchdog (i6300esb) armed by the crashed kernel.
    pub watchdog: bool,
    /// Send a small UDP frame to the configured peer through the NIC.
    pub udp: bool,
}

/// Errors in the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// A value that does not parse or is out of range, with the key.
    BadValue(&'static str),
}

/// Settings, with the defaults of [`Config::default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// IOMMU takeover policy (`iommu=adopt|fence|drain`, default `fence`).
    pub policy: Policy,
    /// First block of the dump extent (`dump_lba=`, default 2048: 1 MiB in).
    pub dump_lba: u64,
    /// Blocks in the dump extent (`dump_blocks=`, default 262144: 128 MiB of 512 B).
    pub dump_blocks: u64,
    /// Bytes of memory per dump chunk (`chunk_kib=`, default 256).
    pub chunk_bytes: u32,
    /// Bring the NIC up (`nic=on|off`, default on): UDP heartbeats need it.
    pub nic: bool,
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
}

impl Default for Config {
    fn default() -> Self {
        Self {
            policy: Policy::Fence,
            dump_lba: 2048,
            dump_blocks: 262_144,
            chunk_bytes: 256 * 1024,
            nic: true,
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
        write!(
            f,
            "iommu={} dump_lba={} dump_blocks={} chunk_kib={} nic={} stream={} heartbeat={hb} heartbeat_ms={} \
             drain_nic_ms={} drain_storage_ms={} drain_other_ms={} quarantine_after={} halt_on_own_fault={} init_budget_ms={}",
            self.policy.name(),
            self.dump_lba,
            self.dump_blocks,
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
                "dump_lba" => c.dump_lba = number("dump_lba", v, u64::MAX >> 12)?,
                "dump_blocks" => c.dump_blocks = number("dump_blocks", v, u64::MAX >> 12)?,
                "chunk_kib" => {
                    let kib = number("chunk_kib", v, 4096)?;
                    if kib == 0 || kib % 4 != 0 {
                        return Err(ConfigError::BadValue("chunk_kib"));
                    }
                    c.chunk_bytes = (kib * 1024) as u32;
                }
                "nic" => c.nic = switch("nic", v)?,
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
                _ => {}
            }
        }
        Ok(c)
    }

    /// The dump extent as a byte range of the namespace, given its block size.
    pub fn extent_bytes(&self, block_size: u32) -> Option<(u64, u64)> {
        let bs = u64::from(block_size);
        Some((
            self.dump_lba.checked_mul(bs)?,
            self.dump_blocks.checked_mul(bs)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(c.dump_lba, 2048);
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn display_round_trips_through_parse() {
        let c = Config::parse(
            "iommu=drain heartbeat=udp heartbeat_ms=40 chunk_kib=64 nic=off drain_nic_ms=7",
        )
        .unwrap();
        assert_eq!(Config::parse(&c.to_string()).unwrap(), c);
        assert_eq!(
            Config::parse(&Config::default().to_string()).unwrap(),
            Config::default()
        );
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
    }
}
