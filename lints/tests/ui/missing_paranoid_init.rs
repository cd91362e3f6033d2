// Fixture for `missing_paranoid_init`.

pub fn init(regs: &Regs) -> Result<(), Error> { //~ missing_paranoid_init
    regs.write32(CC, 0);
    Ok(())
}

impl Nic {
    pub fn probe(&mut self) -> Result<(), Error> { //~ missing_paranoid_init
        let status = self.regs.status.get();
        self.status = status;
        Ok(())
    }
}

pub fn nvme_attach(bar: *mut u32) { //~ missing_paranoid_init
    unsafe { core::ptr::write_volatile(bar, 0) };
}

// Negatives.
#[paranoid_init(budget_ms = 1000)]
pub fn init_annotated(regs: &Regs) -> Result<(), Error> {
    regs.write32(CC, 0);
    Ok(())
}

fn init_private(regs: &Regs) {
    regs.write32(CC, 0);
}

pub fn init_logger(level: Level) {
    set_max_level(level);
}

pub fn initialize_table(t: &mut [u8]) {
    t.fill(0);
}
