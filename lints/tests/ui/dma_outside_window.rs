// Fixture for `dma_outside_window`: raw dma addresses.

fn admin_queue(regs: &Regs, sq: &[SqEntry; 64]) {
    regs.write64(ASQ, sq.as_ptr() as u64); //~ dma_outside_window
}

fn rx_ring(regs: &Regs) {
    regs.write32(RDBAL, 0x0010_0000); //~ dma_outside_window
}

fn descriptor(desc: &mut RxDesc, buf: &[u8]) {
    desc.addr = buf.as_ptr() as u64; //~ dma_outside_window
}

fn literal_desc() -> TxDescriptor {
    TxDescriptor {
        buffer_addr: 0x8000_0000, //~ dma_outside_window
        length: 64,
        cmd: 0,
    }
}

fn phys(regs: &Regs, buf: &Buffer) {
    regs.rdba().write(virt_to_phys(buf)); //~ dma_outside_window
}

// Negatives: addresses from the window allocator, zero to clear, non-address registers.
fn from_window(regs: &Regs, window: &Window) -> Result<(), Error> {
    let sq = window.alloc::<[SqEntry; 64]>(Direction::ToDevice)?;
    regs.write64(ASQ, sq.iova().as_u64());
    Ok(())
}

fn clear(regs: &Regs) {
    regs.write64(ASQ, 0);
}

fn control(regs: &Regs) {
    regs.write32(CTRL, 0x0400_0000);
}

fn io_uring_like(sqe: &mut Sqe, buf: &[u8]) {
    sqe.len = buf.len() as u32;
}

fn config_write(cfg: &mut Cfg, dev_addr: PciAddress) {
    // The device address names the function, not the register (PCI status, W1C).
    cfg.write16(dev_addr, 0x06, 0x8000);
}

fn config_base_register(cfg: &mut Cfg, dev: PciAddress) {
    cfg.write32(dev, BAR0_BASE, 0xfebf_0000); //~ dma_outside_window
}

// A CPU-physical translation is a DMA address whatever the register is called, also through
// a local; a length written beside it is not.
struct Nic {
    rbstart: Port<u32>,
    rbsize: Port<u32>,
}

fn rx_buffer_start(nic: &mut Nic, buf: VirtAddr) {
    let start = virt_to_phys(buf).as_u64() as u32;
    nic.rbstart.write(start); //~ dma_outside_window
    nic.rbsize.write(8192);
}
