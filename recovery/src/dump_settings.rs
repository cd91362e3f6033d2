//! The dump's own settings, read from the same command line as
//! [`crate::config::Config`] (unknown keys are ignored by both):
//!
//! - `exclude_free=on|off` (default off): leave out memory the crashed kernel's
//!   descriptor marks free;
//! - `codec=lz4|raw` (default lz4): how chunks' non-zero pages are stored.
//!
//! The throughput baseline is not a setting: it is a kernel of its own
//! (`examples/kernels/raw-writer`), booted in the recovery kernel's place.

use paranoid_dump::Encoding;

use crate::config::ConfigError;

/// Dump settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DumpSettings {
    /// Leave out regions the descriptor marks free.
    pub exclude_free: bool,
    /// Chunk encoding.
    pub codec: Encoding,
}

impl Default for DumpSettings {
    fn default() -> Self {
        Self {
            exclude_free: false,
            codec: Encoding::Lz4,
        }
    }
}

impl DumpSettings {
    /// Parses `key=value` words; the last of a key wins.
    ///
    /// # Errors
    ///
    /// [`ConfigError::BadValue`] naming the key.
    pub fn parse(line: &str) -> Result<Self, ConfigError> {
        let mut s = Self::default();
        for (k, v) in line
            .split_ascii_whitespace()
            .filter_map(|w| w.split_once('='))
        {
            match k {
                "exclude_free" => {
                    s.exclude_free = match v {
                        "on" => true,
                        "off" => false,
                        _ => return Err(ConfigError::BadValue("exclude_free")),
                    }
                }
                "codec" => {
                    s.codec = match v {
                        "lz4" => Encoding::Lz4,
                        "raw" => Encoding::Raw,
                        _ => return Err(ConfigError::BadValue("codec")),
                    }
                }
                _ => {}
            }
        }
        Ok(s)
    }
}

impl core::fmt::Display for DumpSettings {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "exclude_free={} codec={}",
            if self.exclude_free { "on" } else { "off" },
            self.codec.name()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_overrides_and_errors() {
        assert_eq!(
            DumpSettings::parse("iommu=fence").unwrap(),
            DumpSettings::default()
        );
        let s = DumpSettings::parse("exclude_free=on codec=raw").unwrap();
        assert!(s.exclude_free);
        assert_eq!(s.codec, Encoding::Raw);
        assert_eq!(DumpSettings::parse(&s.to_string()).unwrap(), s);
        assert_eq!(
            DumpSettings::parse("codec=zip"),
            Err(ConfigError::BadValue("codec"))
        );
    }
}
