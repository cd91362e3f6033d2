// Fixture for `device_io_in_panic_path`.

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    serial_write(b"panic\n");
    report(info);
    drain_log();
    port_forms(&mut unsafe { Port::new(0x2f8) }, &mut PICS);
    look_alikes(&CONFIG, &mut CONN, &mut std::io::stdout());
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

// Port handles however they are bound: x86_64's `Port*` (a parameter, a constructor call, a
// static behind a lock), `paranoid::port::Port` (renamed, bound by `if let` and `let … else`)
// and a struct field of type `Port<u8>` used in an `impl`.
use paranoid::port::Port as HalPort;
use x86_64::instructions::port::{Port, PortWriteOnly};

static COM1: spin::Mutex<Port<u8>> = spin::Mutex::new(Port::new(0x3f8));

fn port_forms(port: &mut Port<u8>, pics: &mut ChainedPics) {
    unsafe { port.write(b'!') }; //~ device_io_in_panic_path
    unsafe { PortWriteOnly::<u8>::new(0x80).write(0) }; //~ device_io_in_panic_path
    unsafe { COM1.lock().write(b'\n') }; //~ device_io_in_panic_path
    if let Some(mut exit) = HalPort::<u32>::inert(0xf4) {
        exit.write(0x11); //~ device_io_in_panic_path
    }
    let Some(mut lsr) = HalPort::<u8>::inert(0x3fd) else {
        return;
    };
    let _ = lsr.read(); //~ device_io_in_panic_path
    pics.mask_all();
    com1().emit_byte(b'?');
}

// A generic field initialised by a port constructor in a struct literal.
struct Uart16550<P> {
    thr: P,
}

fn com1() -> Uart16550<Port<u8>> {
    Uart16550 { thr: Port::new(0x3f8) }
}

impl<P> Uart16550<P> {
    fn emit_byte(&mut self, b: u8) {
        unsafe { self.thr.write(b) }; //~ device_io_in_panic_path
    }
}

struct ChainedPics {
    data: Port<u8>,
}

impl ChainedPics {
    fn mask_all(&mut self) {
        unsafe { self.data.write(0xff) }; //~ device_io_in_panic_path
    }
}

// Look-alikes on the panic path: a lock's `read`, `std::io::Write::write`, a network
// `port: u16` next to a socket, a lock that guards no port.
struct Conn {
    port: u16,
    socket: Socket,
}

fn look_alikes(cfg: &std::sync::RwLock<Config>, conn: &mut Conn, out: &mut std::io::Stdout) {
    let port = cfg.read().unwrap().port;
    conn.port = port;
    let _ = conn.socket.write(&port.to_le_bytes());
    let _ = out.write(b"panic\n");
    let mut log = LOG.lock();
    log.write(conn.port);
}
