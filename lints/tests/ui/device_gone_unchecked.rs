// Fixture for `device_gone_unchecked`: register values used without an all-ones check.

fn is_ready(regs: &Regs) -> bool {
    let csts = regs.read32(0x1c); //~ device_gone_unchecked
    csts & 1 != 0
}

fn tock_ready(regs: &Registers) -> bool {
    regs.status.is_set(STATUS::RDY) && regs.ctrl.get() != 0 //~ device_gone_unchecked
}

fn port_status() -> u8 {
    let mut p = Port::<u8>::new(0x64);
    let s = unsafe { p.read() }; //~ device_gone_unchecked
    s & 0x1
}

// Negatives.
fn checked_literal(regs: &Regs) -> Result<bool, Error> {
    let csts = regs.read32(0x1c);
    if csts == 0xFFFF_FFFF {
        return Err(Error::DeviceGone);
    }
    Ok(csts & 1 != 0)
}

fn checked_not(regs: &Regs) -> Option<u32> {
    let v = regs.read32(0x08);
    (v != !0).then_some(v)
}

fn checked_hal(regs: &Regs) -> Result<u32, Error> {
    let v = regs.csts().read().check_not_all_ones()?;
    Ok(v)
}

// Reader wrappers pass the value on: their callers are checked.
fn read_reg(regs: &Regs, off: usize) -> u32 {
    regs.read32(off)
}

// Discarded reads (e.g. to flush posted writes) are fine.
fn flush(regs: &Regs) {
    regs.write32(0x00, 1);
    regs.read32(0x08);
}

// A named all-ones constant counts as the check.
const INVALID_READ: u32 = 0xffff_ffff;

fn named_constant(regs: &Regs) -> Option<u32> {
    let v = regs.read32(0x00);
    (v != INVALID_READ).then_some(v)
}

// Validating calls of an `Untrusted` value reject all-ones as well.
fn exact_version(regs: &Regs) -> bool {
    let vs = regs.read32(NVME_VS);
    vs.is(0x0001_0400)
}

fn ranged(regs: &Regs) -> Result<u32, Error> {
    let mqes = regs.read32(CAP).field(0, 16);
    mqes.in_range(1..=4095)
}

fn no_errors(regs: &Regs) -> bool {
    let status = regs.read32(STATUS);
    status.field(8, 4).is(0)
}

fn field_at_its_maximum(regs: &Regs) -> bool {
    let status = regs.read32(STATUS); //~ device_gone_unchecked
    status.field(1, 2).is(3)
}

fn masked(regs: &Regs) -> bool {
    let csts = regs.read32(CSTS); //~ device_gone_unchecked
    csts.bit(0)
}
