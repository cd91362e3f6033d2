// Fixture for `enable_before_reset`: bus mastering before the device is reset.

pub fn probe(pci: &mut PciDevice, nvme: &mut Nvme) -> Result<(), Error> {
    pci.set_bus_master(true); //~ enable_before_reset
    nvme.reset()?;
    Ok(())
}

fn init_nic(regs: &Regs) {
    regs.write16(PCI_COMMAND, CMD_MEM | CMD_BUS_MASTER); //~ enable_before_reset
    regs.write32(CTRL, CTRL_RST);
}

fn bring_up_nvme(regs: &Regs) {
    regs.cc().write(CC_EN); //~ enable_before_reset
}

fn start(dev: Device<Verified>, window: &Window) {
    dev.enable_dma(window); //~ enable_before_reset
}

// Negatives: reset first, or not a bring-up function at all.
fn init_ordered(pci: &mut PciDevice, nvme: &mut Nvme) -> Result<(), Error> {
    pci.set_bus_master(false);
    nvme.reset()?;
    pci.set_bus_master(true);
    Ok(())
}

fn resume_dma(pci: &mut PciDevice) {
    pci.set_bus_master(true);
}

fn setup_disabled(pci: &mut PciDevice) {
    pci.set_bus_master(false);
}
