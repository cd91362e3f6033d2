// Fixture for `assumed_reset_value`.

fn rmw_after_reset(regs: &Regs) {
    regs.write32(CTRL, CTRL_RST);
    let ctrl = regs.read32(CTRL);
    regs.write32(CTRL, ctrl | CTRL_SLU); //~ assumed_reset_value
}

fn compare_after_reset(nic: &mut Nic) -> bool {
    nic.reset();
    nic.regs.read32(STATUS) == 0x0000_0080 //~ assumed_reset_value
}

fn modify_after_reset(regs: &Registers) {
    regs.ctrl.write(CTRL::RST::SET);
    regs.ctrl.modify(CTRL::SLU::SET); //~ assumed_reset_value
}

fn assert_after_reset(dev: &mut Dev) {
    dev.function_level_reset();
    assert_eq!(dev.regs.read32(VID), 0x8086); //~ assumed_reset_value
}

// Negatives: a wait between the reset and the use.
fn waited(regs: &Regs, deadline: Deadline) -> Result<(), Error> {
    regs.write32(CTRL, CTRL_RST);
    poll(deadline, || regs.read32(CTRL) & CTRL_RST == 0)?;
    let ctrl = regs.read32(CTRL);
    regs.write32(CTRL, ctrl | CTRL_SLU);
    Ok(())
}

fn loop_waited(regs: &Regs) {
    regs.write32(CTRL, CTRL_RST);
    for _ in 0..100 {
        if regs.read32(CTRL) & CTRL_RST == 0 {
            break;
        }
    }
    regs.write32(CTRL, regs.read32(CTRL) | CTRL_SLU);
}

// No reset: read-modify-write is ordinary.
fn no_reset(regs: &Regs) {
    let ctrl = regs.read32(CTRL);
    regs.write32(CTRL, ctrl | CTRL_SLU);
}
