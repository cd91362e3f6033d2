// Fixture for `device_gone_unchecked`: register values that drive a decision in recovery code
// without an all-ones check. The crate does not use the toolkit, so `probe` (a bring-up name
// that touches the device) and everything it calls is recovery code.

fn probe(regs: &Regs) -> Result<(), Error> {
    is_ready(regs);
    tock_ready(regs);
    port_status();
    checked_literal(regs)?;
    checked_not(regs);
    checked_hal(regs)?;
    flush(regs);
    named_constant(regs);
    exact_version(regs);
    ranged(regs)?;
    no_errors(regs);
    field_at_its_maximum(regs);
    masked(regs);
    count_from_device(regs);
    other_value_checked(regs);
    byte_mask(regs)?;
    waits_for_ready(regs)?;
    bounded_busy_poll(regs)?;
    busy_while(regs);
    read_modify_write(regs);
    error_bit(regs)?;
    logged(regs);
    checked_by_helper(regs)?;
    helper_checks_nothing(regs);
    eeprom_present(regs)?;
    Ok(())
}

fn is_ready(regs: &Regs) -> bool {
    let csts = regs.read32(0x1c); //~ device_gone_unchecked
    csts & 1 != 0
}

fn tock_ready(regs: &Registers) -> bool {
    regs.status.is_set(STATUS::RDY) && regs.ctrl.get() != 0 //~ device_gone_unchecked
}

// A reader wrapper: it only returns (a bit of) the value; its callers are judged.
fn port_status() -> u8 {
    let mut p = Port::<u8>::new(0x64);
    let s = unsafe { p.read() };
    s & 0x1
}

// The whole value matched against an id: all-ones never matches, the device is skipped.
fn is_ours(regs: &Regs) -> Result<(), Error> {
    let id = regs.read32(ID);
    if id == 0x100e_8086 {
        return Ok(());
    }
    Err(Error::Unsupported)
}

// An unbounded wait does not fail safe: all-ones keeps `RST` looking set for ever.
fn wait_reset_clear(regs: &Regs) {
    loop {
        let ctrl = regs.read32(CTRL); //~ device_gone_unchecked
        if ctrl & RST == 0 {
            break;
        }
    }
}

// The value sizes a loop: all-ones is four billion iterations.
fn count_from_device(regs: &Regs) {
    let n = regs.read32(NQUEUES) as usize; //~ device_gone_unchecked
    for q in 0..n {
        setup_queue(q);
    }
}

// An all-ones check of another register does not cover this one.
fn other_value_checked(regs: &Regs) -> Result<bool, Error> {
    let vs = regs.read32(VS);
    let csts = regs.read32(CSTS); //~ device_gone_unchecked
    if vs == 0xFFFF_FFFF {
        return Err(Error::DeviceGone);
    }
    Ok(csts & 1 != 0)
}

// A byte mask is not an all-ones check.
fn byte_mask(regs: &Regs) -> Result<(), Error> {
    let id = regs.read8(ID) & 0xff; //~ device_gone_unchecked
    if id == 0x12 {
        return Ok(());
    }
    Err(Error::Unsupported)
}

// Waiting for a bit to be set: all-ones reports "ready" at once.
fn waits_for_ready(regs: &Regs) -> Result<(), Error> {
    for _ in 0..1000 {
        if regs.read32(CSTS) & RDY != 0 { //~ device_gone_unchecked
            return Ok(());
        }
    }
    Err(Error::Timeout)
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

// A bounded poll that stops when a busy bit clears fails safe: all-ones keeps it waiting
// until its bound.
fn bounded_busy_poll(regs: &Regs) -> Result<(), Error> {
    for _ in 0..1000 {
        if regs.read32(STATUS) & BUSY == 0 {
            return Ok(());
        }
    }
    Err(Error::Timeout)
}

fn busy_while(regs: &Regs) {
    let mut tries = 0;
    while regs.read32(STATUS) & BUSY != 0 && tries < 1000 {
        tries += 1;
    }
}

// Read-modify-write: the value only goes back to the device.
fn read_modify_write(regs: &Regs) {
    let ctrl = regs.read32(CTRL);
    regs.write32(CTRL, ctrl | CTRL_EN);
}

// A set error bit becomes an error: all-ones does too.
fn error_bit(regs: &Regs) -> Result<(), Error> {
    if regs.read32(STATUS) & STATUS_ERR != 0 {
        return Err(Error::Fatal);
    }
    Ok(())
}

// Only logged: nothing is decided.
fn logged(regs: &Regs) {
    let v = regs.read32(VERSION);
    log::info!("version {v:#x}");
}

// A predicate of the file that tests its argument for all-ones checks the read passed to it.
fn gone(value: u32) -> bool {
    value == u32::MAX
}

fn checked_by_helper(regs: &Regs) -> Result<(), Error> {
    let ctrl = regs.read32(CTRL);
    if gone(ctrl) {
        return Err(Error::Gone);
    }
    if ctrl & CTRL_EN != 0 {
        return Ok(());
    }
    Err(Error::Fatal)
}

// A helper that does not test for all-ones checks nothing.
fn enabled(value: u32) -> bool {
    value & CTRL_EN != 0
}

fn helper_checks_nothing(regs: &Regs) -> bool {
    let ctrl = regs.read32(CTRL); //~ device_gone_unchecked
    if enabled(ctrl) {
        return true;
    }
    false
}

// A register value checked for all-ones through its own type's predicate: the check is no
// PAC field read of its own.
fn eeprom_present(regs: &Regs) -> Result<bool, Error> {
    let value = regs.eecd().read();
    if value.untrusted().is_all_ones() {
        return Err(Error::Gone);
    }
    Ok(value.pres())
}

// Not recovery code: nothing that brings a device up calls it.
fn statistics(regs: &Regs) -> bool {
    regs.read32(STATS) & 1 != 0
}
