//! Finding functions on the bus, and telling a missing device from a present one.

use super::{offset, ConfigAccess, PciAddress, PciError};

/// What identifies a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionInfo {
    /// Where it is.
    pub address: PciAddress,
    /// Vendor id.
    pub vendor: u16,
    /// Device id.
    pub device: u16,
    /// Class, subclass, programming interface.
    pub class: [u8; 3],
    /// Header type without the multi-function bit (0: endpoint, 1: bridge).
    pub header_type: u8,
    /// Whether function 0 of this device is multi-function.
    pub multifunction: bool,
}

/// Reads the identity of the function at `a`.
///
/// # Errors
///
/// [`PciError::NotPresent`] when the vendor id reads 0xffff (empty slot, or the
/// device is gone) or 0x0000 (not a valid vendor).
#[cfg_attr(
    any(),
    paranoid::allow(
        missing_paranoid_init,
        reason = "reads a function's identity (vendor, class, header type); brings nothing up, all-ones is NotPresent"
    )
)]
pub fn probe<C: ConfigAccess + ?Sized>(
    cfg: &mut C,
    a: PciAddress,
) -> Result<FunctionInfo, PciError> {
    let id = cfg.read32(a, offset::VENDOR_ID);
    let vendor = id.field(0, 16).into_raw_for_report() as u16;
    if id.is_all_ones() || vendor == 0xffff || vendor == 0 {
        return Err(PciError::NotPresent(a));
    }
    let class = cfg.read32(a, 0x08).into_raw_for_report();
    let header = cfg.read8(a, offset::HEADER_TYPE).into_raw_for_report();
    Ok(FunctionInfo {
        address: a,
        vendor,
        device: (id.into_raw_for_report() >> 16) as u16,
        class: [(class >> 24) as u8, (class >> 16) as u8, (class >> 8) as u8],
        header_type: header & 0x7f,
        multifunction: header & 0x80 != 0,
    })
}

/// Iterates over present functions on buses `first..=last` of `segment`.
///
/// Function 1..7 of a device are only probed when function 0 says it is
/// multi-function. The scan is bounded: at most 256 × 32 × 8 probes.
pub struct Scan<'c, C: ConfigAccess + ?Sized> {
    cfg: &'c mut C,
    segment: u16,
    bus: u16,
    last: u16,
    device: u8,
    function: u8,
    multifunction: bool,
}

/// Scans buses `first..=last` of `segment`.
pub fn scan<C: ConfigAccess + ?Sized>(
    cfg: &mut C,
    segment: u16,
    first: u8,
    last: u8,
) -> Scan<'_, C> {
    Scan {
        cfg,
        segment,
        bus: first.into(),
        last: last.into(),
        device: 0,
        function: 0,
        multifunction: false,
    }
}

impl<C: ConfigAccess + ?Sized> Scan<'_, C> {
    fn advance(&mut self) {
        if self.function < 7 && self.multifunction {
            self.function += 1;
            return;
        }
        self.function = 0;
        self.multifunction = false;
        if self.device < 31 {
            self.device += 1;
        } else {
            self.device = 0;
            self.bus += 1;
        }
    }
}

impl<C: ConfigAccess + ?Sized> Iterator for Scan<'_, C> {
    type Item = FunctionInfo;

    fn next(&mut self) -> Option<FunctionInfo> {
        while self.bus <= self.last {
            let bus = u8::try_from(self.bus).ok()?;
            let a = PciAddress::new(self.segment, bus, self.device, self.function).ok()?;
            let found = probe(self.cfg, a);
            if self.function == 0 {
                self.multifunction = matches!(found, Ok(info) if info.multifunction);
            }
            self.advance();
            if let Ok(info) = found {
                return Some(info);
            }
        }
        None
    }
}
