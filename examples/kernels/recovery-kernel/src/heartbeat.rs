//! Heartbeats the recovery kernel sends while it works: petting the node's
//! hardware watchdog (armed by the crashed kernel).

use paranoid::mmio::Mmio;
use paranoid::pci::Function;
use paranoid_boot::platform;
use paranoid_i6300esb::Watchdog;
use paranoid_recovery::heartbeat::Heartbeat;

use crate::{fail, Failed};

/// The i6300esb watchdog as a heartbeat.
pub struct WatchdogBeat {
    wdt: Watchdog<Mmio>,
}

impl WatchdogBeat {
    /// Finds the watchdog; it must have been enabled by the crashed kernel.
    pub fn find() -> Result<Self, Failed> {
        let mut cf8 = platform::cf8();
        let esb = platform::find(&mut cf8, paranoid_i6300esb::IDS)
            .map_err(|e| fail("heartbeat=watchdog: no i6300esb", e))?;
        let enabled = paranoid_i6300esb::is_enabled(&mut Function::new(&mut cf8, esb.address()))
            .map_err(|e| fail("i6300esb", e))?;
        if !enabled {
            return Err(fail("heartbeat=watchdog", "the i6300esb is not armed"));
        }
        let (regs, _) =
            platform::map_bar0(&mut cf8, esb.address()).map_err(|e| fail("i6300esb bar", e))?;
        Ok(Self {
            wdt: Watchdog::new(regs),
        })
    }
}

impl Heartbeat for WatchdogBeat {
    fn name(&self) -> &'static str {
        "i6300esb watchdog"
    }

    fn beat(&mut self) -> Result<(), &'static str> {
        self.wdt.pet();
        Ok(())
    }
}
