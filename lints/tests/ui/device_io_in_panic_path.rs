// Fixture for `device_io_in_panic_path`.

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    serial_write(b"panic\n");
    report(info);
    drain_log();
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

// A chain through a method whose receiver type is known prints every step.
struct Console {
    uart: Uart,
}

fn report(info: &PanicInfo) {
    let c = Console::new();
    c.emit();
}

impl Console {
    fn new() -> Self {
        Console { uart: Uart }
    }
    fn emit(&self) {
        self.uart.put(b'!');
    }
}

impl Uart {
    fn put(&self, b: u8) {
        unsafe { core::ptr::write_volatile(0x1000_0000 as *mut u8, b) }; //~ device_io_in_panic_path
    }
}

// Namesakes on other types are not joined: `Nic::has_packet` and `Disk::flush` are not on
// the panic path although the panic path calls a `has_packet` and a `flush` of its own.
struct Ring;

impl Ring {
    fn has_packet(&self) -> bool {
        false
    }
    fn flush(&self) {}
}

fn drain_log() {
    let r = Ring;
    r.has_packet();
    r.flush();
}

impl Nic {
    fn has_packet(&self) -> bool {
        self.regs.read32(RDH) != self.regs.read32(RDT)
    }
}

impl Disk {
    fn flush(&mut self) {
        self.regs.write32(DOORBELL, 1);
    }
}
