//! A register-level model of the watchdog's memory-mapped side, following
//! QEMU's `hw/watchdog/wdt_i6300esb.c`: the unlock state machine, the two
//! stages, reset on the second expiry.

use paranoid::sim::{MmioModel, SimClock, Width};
use paranoid::time::Clock;

use crate::regs;

/// The model.
#[derive(Debug)]
pub struct Esb {
    clock: SimClock,
    unlock: u8,
    timer1: u32,
    timer2: u32,
    /// When the current stage-2 expiry (the reset) happens, if counting.
    reset_at: Option<u64>,
    fired_at: Option<u64>,
    reloads: u64,
}

impl Esb {
    /// A watchdog with nothing programmed.
    pub fn new(clock: SimClock) -> Self {
        Self {
            clock,
            unlock: 0,
            timer1: 0,
            timer2: 0,
            reset_at: None,
            fired_at: None,
            reloads: 0,
        }
    }

    fn stage_ns(preload: u32) -> u64 {
        u64::from(preload) * 1_000_000_000 / regs::UNITS_PER_SECOND
    }

    /// True once the watchdog reset the (simulated) machine.
    pub fn fired(&self) -> bool {
        let now = self.clock.now_ns();
        self.fired_at.is_some() || self.reset_at.is_some_and(|t| now >= t)
    }

    /// Reloads seen (heartbeats).
    pub fn reloads(&self) -> u64 {
        self.reloads
    }
}

impl MmioModel for Esb {
    fn size(&self) -> usize {
        16
    }

    fn read(&mut self, offset: usize, _width: Width) -> u64 {
        match offset {
            regs::TIMER1 => self.timer1.into(),
            regs::TIMER2 => self.timer2.into(),
            _ => 0,
        }
    }

    fn write(&mut self, offset: usize, width: Width, value: u64) {
        if self.fired() {
            if self.fired_at.is_none() {
                self.fired_at = self.reset_at;
            }
            return;
        }
        match (offset, width) {
            (regs::RELOAD, Width::W16) => {
                let v = value as u16;
                if v == regs::UNLOCK1 {
                    self.unlock = 1;
                } else if v == regs::UNLOCK2 && self.unlock == 1 {
                    self.unlock = 2;
                } else if self.unlock == 2 {
                    if v & regs::RELOAD_BIT != 0 {
                        self.reloads += 1;
                        self.reset_at = Some(
                            self.clock.now_ns()
                                + Self::stage_ns(self.timer1)
                                + Self::stage_ns(self.timer2),
                        );
                    }
                    self.unlock = 0;
                } else {
                    self.unlock = 0;
                }
            }
            (regs::TIMER1 | regs::TIMER2, Width::W32) if self.unlock == 2 => {
                let v = (value as u32) & regs::PRELOAD_MAX;
                if offset == regs::TIMER1 {
                    self.timer1 = v;
                } else {
                    self.timer2 = v;
                }
                self.unlock = 0;
            }
            _ => self.unlock = 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Watchdog;
    use paranoid::mmio::RegisterIo;
    use paranoid::sim::SimMmio;
    use std::time::Duration;

    #[test]
    fn writes_without_unlock_are_ignored() {
        let clock = SimClock::new();
        let mut regs = SimMmio::new(Esb::new(clock.clone()), clock.clone());
        regs.write32(regs::TIMER1, 100);
        assert_eq!(regs.read32(regs::TIMER1).into_raw_for_report(), 0);
        regs.write16(regs::RELOAD, regs::RELOAD_BIT);
        assert_eq!(regs.model().borrow().reloads(), 0);
    }

    #[test]
    fn heartbeat_keeps_it_quiet_and_silence_fires_it() {
        let clock = SimClock::new();
        let regs = SimMmio::new(Esb::new(clock.clone()), clock.clone());
        let model = regs.model().clone();
        let mut w = Watchdog::new(regs);
        w.set_period(Duration::from_millis(200)).unwrap();
        for _ in 0..50 {
            clock.advance(Duration::from_millis(150));
            w.pet();
        }
        assert!(!model.borrow().fired());
        assert_eq!(model.borrow().reloads(), 51);
        clock.advance(Duration::from_millis(210));
        assert!(model.borrow().fired());
        w.pet();
        assert!(
            model.borrow().fired(),
            "a reset is not undone by a late pet"
        );
    }
}
