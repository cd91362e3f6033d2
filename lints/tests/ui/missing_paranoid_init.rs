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

// Port handles: `paranoid::port::Port` bound by `if let`, a `Port<u8>` parameter, a
// `PortWriteOnly` field behind a lock.
use paranoid::port::Port as HalPort;

pub fn init_console() { //~ missing_paranoid_init
    if let Some(mut lcr) = HalPort::<u8>::inert(0x3fb) {
        lcr.write(0x03);
    }
}

pub fn probe_pit(mode: &mut PortWriteOnly<u8>) { //~ missing_paranoid_init
    unsafe { mode.write(0x34) };
}

struct Keyboard {
    command: spin::Mutex<PortWriteOnly<u8>>,
}

impl Keyboard {
    pub fn init(&self) { //~ missing_paranoid_init
        unsafe { self.command.lock().write(0xad) };
    }
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

// A crate's own `Port` that holds no port number (a wire's port) is not a port handle.
struct Port {
    inbox: Vec<Vec<u8>>,
}

pub fn attach_wire(ports: &mut [Port; 2], frame: Vec<u8>) {
    ports[0].write(frame);
}

pub fn init_listener(port: u16, socket: &mut Socket) -> std::io::Result<()> {
    socket.bind(port)?;
    socket.write(b"hello")?;
    Ok(())
}
