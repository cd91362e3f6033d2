// Fixture for `unbounded_poll`: loops waiting on the device with and without bounds.
use core::ptr;

const CSTS: usize = 0x1c;
const RDY: u32 = 1;

fn wait_ready_while(regs: &Regs) {
    while regs.read32(CSTS) & RDY == 0 {} //~ unbounded_poll
}

fn wait_ready_loop(bar0: *mut u8) {
    loop { //~ unbounded_poll
        let v = unsafe { ptr::read_volatile(bar0.add(CSTS) as *const u32) };
        if v & RDY != 0 {
            break;
        }
    }
}

fn wait_tock(regs: &Registers) {
    while !regs.status.is_set(STATUS::READY) { //~ unbounded_poll
        core::hint::spin_loop();
    }
}

fn wait_port() {
    let mut status = Port::<u8>::new(0x64);
    while unsafe { status.read() } & 2 != 0 {} //~ unbounded_poll
}

// Negatives: each of these waits is bounded.
fn bounded_deadline(regs: &Regs, deadline: Deadline) -> Result<(), Error> {
    while regs.read32(CSTS) & RDY == 0 {
        if deadline.expired() {
            return Err(Error::Timeout);
        }
    }
    Ok(())
}

fn bounded_counter(regs: &Regs) -> bool {
    let mut spins = 0;
    loop {
        if regs.read32(CSTS) & RDY != 0 {
            return true;
        }
        spins += 1;
        if spins > 1000 {
            return false;
        }
    }
}

fn bounded_for(regs: &Regs) -> bool {
    for _ in 0..1000 {
        if regs.read32(CSTS) & RDY != 0 {
            return true;
        }
    }
    false
}

fn bounded_by_a_clock() -> Result<u64, Error> {
    let start = rdtsc();
    let mut end = start;
    while inb(0x61) & 0x20 == 0 {
        end = rdtsc();
        if end.wrapping_sub(start) > MAX_TICKS {
            return Err(Error::Silent);
        }
    }
    Ok(end - start)
}

// Look-alikes: no device read, or no way out (an event loop, not a wait).
fn not_device(lock: &RwLock<u32>) {
    while *lock.read() == 0 {}
}

fn event_loop(regs: &Regs) -> ! {
    loop {
        let cause = regs.read32(0x10);
        handle(cause);
    }
}

// Real forms of the same wait.
fn for_open_range(regs: &Regs) -> u32 {
    for i in 0.. { //~ unbounded_poll
        if regs.read32(CSTS) & RDY != 0 {
            return i;
        }
    }
    0
}

fn cycling(regs: &Regs, queues: &[u16]) -> u16 {
    for q in queues.iter().cycle() { //~ unbounded_poll
        if regs.read32(0x1000 + *q as usize) != 0 {
            return *q;
        }
    }
    0
}

fn searching(regs: &Regs) -> Option<u32> {
    (0..).find(|_| regs.read32(CSTS) & RDY != 0) //~ unbounded_poll
}

struct Ctrl {
    regs: Regs,
}

impl Ctrl {
    fn ready(&self) -> bool {
        self.regs.read32(CSTS) & RDY != 0
    }

    fn wait_helper(&self) {
        while !self.ready() { //~ unbounded_poll
            core::hint::spin_loop();
        }
    }

    // A bound word in an unrelated identifier bounds nothing.
    fn logged_iterations(&self) {
        let mut iterations_logged = 0;
        while self.regs.read32(CSTS) & RDY == 0 { //~ unbounded_poll
            iterations_logged += 1;
            log::trace!("still waiting ({iterations_logged})");
        }
    }

    // Look-alikes: bounded forms.
    fn helper_bounded(&self, deadline: Deadline) -> Result<(), Error> {
        while !self.ready() {
            if deadline.expired() {
                return Err(Error::Timeout);
            }
        }
        Ok(())
    }

    fn search_taken(&self) -> Option<u32> {
        (0..).take(1000).find(|_| self.ready())
    }

    fn open_range_counted(&self) -> bool {
        for i in 0.. {
            if self.regs.read32(CSTS) & RDY != 0 {
                return true;
            }
            if i > MAX_SPINS {
                return false;
            }
        }
        false
    }
}

// svd2rust/PAC register chains.
fn pac_wait(rcc: &RegisterBlock) {
    while rcc.cr().read().hserdy().bit_is_clear() {} //~ unbounded_poll
}

fn pac_wait_field(spi: &Spi) {
    while spi.sr.read().bits() & 1 == 0 {} //~ unbounded_poll
}

// Look-alike: a lock guard's `read()` is not a register.
fn lock_wait(state: &RwLock<Flags>) {
    while state.read().bits() == 0 {}
}

// An array of port handles is device memory too: a wait on one element is a poll.
struct Tx {
    tx_cmd: [Port<u32>; 4],
}

impl Tx {
    fn wait_sent(&mut self, cursor: usize) {
        loop { //~ unbounded_poll
            if (unsafe { self.tx_cmd[cursor].read() } & 0x8000) != 0 {
                break;
            }
        }
    }
}
