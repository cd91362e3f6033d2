// Fixture for `device_io_in_panic_path`.

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    serial_write(b"panic\n");
    unsafe { core::arch::asm!("out dx, al", in("dx") 0xf4u16, in("al") 1u8) }; //~ device_io_in_panic_path
    halt()
}

fn serial_write(bytes: &[u8]) {
    let mut port = Port::<u8>::new(0x3f8);
    for b in bytes {
        unsafe { port.write(*b) }; //~ device_io_in_panic_path
    }
}

fn halt() -> ! {
    loop {}
}

fn install() {
    std::panic::set_hook(Box::new(|_| {
        nic_regs().ctrl().write(CTRL_RST); //~ device_io_in_panic_path
    }));
}

// Negatives: device access outside the panic path.
fn normal_path(regs: &Regs) {
    regs.write32(0x00, 1);
}
