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

// The other svd2rust field readers: `.bit()`, `.is_<variant>()`, directly and through a
// helper predicate.
struct Iwdg {
    iwdg: IWDG,
    tim: TIM2,
}

impl Iwdg {
    fn is_pr_updating(&self) -> bool {
        self.iwdg.sr().read().pvu().bit()
    }

    fn interval(&self) -> u32 {
        while self.is_pr_updating() {} //~ unbounded_poll
        self.iwdg.pr().read().pr().bits()
    }

    fn stop(&self) {
        while self.tim.cr1().read().cen().is_enabled() {} //~ unbounded_poll
    }

    // Look-alike: `is_empty` of a collection behind a lock's `read()` is no register field.
    fn drain(&self) {
        while !self.iwdg.queue.read().items().is_empty() {}
    }

    // Look-alike: a value read once before the loop and tested with its own type's
    // predicate (`untrusted().is_all_ones()` is no field reader on a PAC `.read()` chain):
    // the loop drains a queue and polls nothing.
    fn forward(&self, queue: &mut Frames) {
        let value = self.iwdg.sr().read();
        while let Some(frame) = queue.take_frame() {
            if value.untrusted().is_all_ones() {
                break;
            }
            transmit(frame);
        }
    }
}

// A read value kept in a local whose fields are tested (`sr1.tx_e().bit_is_clear()`), a
// helper that fails on error flags with `?` (an error flag is the device answering, not a
// bound), and state re-read from the device in the body.
struct I2c {
    i2c: I2C1,
}

impl I2c {
    fn check_and_clear_error_flags(&self) -> Result<Sr1, Error> {
        let sr1 = self.i2c.sr1().read();
        if sr1.af().bit_is_set() {
            return Err(Error::Nack);
        }
        Ok(sr1)
    }

    fn send_byte(&self) -> Result<(), Error> {
        while self.check_and_clear_error_flags()?.tx_e().bit_is_clear() {} //~ unbounded_poll
        loop { //~ unbounded_poll
            let sr1 = self.check_and_clear_error_flags()?;
            if sr1.addr().bit_is_set() {
                break;
            }
        }
        Ok(())
    }

    fn link_speed(&self) -> u16 {
        if self.i2c.sr2().read().busy().bit_is_set() {
            0
        } else {
            100
        }
    }

    fn wait_for_link(&self) {
        let mut speed = self.link_speed();
        while speed == 0 { //~ unbounded_poll
            sleep_ms(100);
            speed = self.link_speed();
        }
    }

    // Look-alike: a scan whose `while` condition reads nothing from the device; what the
    // body reads only returns early (`if let Ok(..) = found`), the loop ends by the count.
    fn scan(&mut self, last: u16) -> Option<Sr1> {
        while self.slot <= last {
            let found = self.check_and_clear_error_flags();
            self.next_slot();
            if let Ok(sr1) = found {
                return Some(sr1);
            }
        }
        None
    }

    // Look-alike: the same wait with an iteration bound.
    fn wait_for_link_bounded(&self) {
        let mut speed = self.link_speed();
        let mut tries = 0;
        while speed == 0 && tries < 100 {
            tries += 1;
            speed = self.link_speed();
        }
    }
}

// The register block behind the PAC's `ptr()`, and a predicate that answers through
// another function of the crate (`is_done` -> `in_progress` -> `isr`, which reads).
struct Channel;

impl Channel {
    fn isr(&self) -> dma1::isr::R {
        unsafe { (*DMA1::ptr()).isr().read() }
    }

    fn in_progress(&self) -> bool {
        self.isr().tcif1().bit_is_clear()
    }
}

struct Transfer {
    channel: Channel,
}

impl Transfer {
    fn is_done(&self) -> bool {
        !self.channel.in_progress()
    }

    fn wait(self) {
        while !self.is_done() {} //~ unbounded_poll
    }

    fn wait_for_capture(&self) {
        while unsafe { (*<TIM3>::ptr()).sr().read().cc1if().bit_is_clear() } {} //~ unbounded_poll
    }

    // Look-alike: `is_done` of another value (a heap), not this crate's helper on `self`.
    fn send_all(&self, queue: &mut BinaryHeap<u32>) {
        while let Some(_frame) = queue.is_done() {
            queue.pop();
        }
    }
}

// Waits written in `macro_rules!` bodies: HALs implement each peripheral instance in one.
macro_rules! capture {
    ($($TIM:ty,)+) => {
        $(
            impl Capture<$TIM> {
                fn wait_for_capture(&self) {
                    while unsafe { (*<$TIM>::ptr()).sr().read().cc1if().bit_is_clear() } {} //~ unbounded_poll
                }

                // Look-alike: the same wait with a deadline.
                fn wait_for_capture_within(&self, deadline: Deadline) -> Result<(), Error> {
                    while unsafe { (*<$TIM>::ptr()).sr().read().cc1if().bit_is_clear() } {
                        if deadline.expired() {
                            return Err(Error::Timeout);
                        }
                    }
                    Ok(())
                }
            }
        )+
    };
}

macro_rules! wait_ready {
    ($regs:expr) => {
        while $regs.status().read().ready().bit_is_clear() {} //~ unbounded_poll
    };
}

// A reader defined in a `macro_rules!` body is a reader all the same.
macro_rules! timer_regs {
    ($TIM:ty) => {
        impl Instance for $TIM {
            fn is_counter_enabled(&self) -> bool {
                self.cr1().read().cen().is_enabled()
            }
        }
    };
}

struct Delay<TIM> {
    tim: TIM,
}

impl<TIM: Instance> Delay<TIM> {
    fn one_pulse(&mut self) {
        self.tim.start_one_pulse();
        while self.tim.is_counter_enabled() {} //~ unbounded_poll
    }
}

// Port handles: a wait on a `Port::inert` bound by `if let` is a device wait; the same wait
// bounded by a count is not, and neither is a loop on a lock's `read`.
fn wait_thre() {
    if let Some(mut lsr) = Port::<u8>::inert(0x3fd) {
        while lsr.read() & 0x20 == 0 {} //~ unbounded_poll
    }
}

fn wait_thre_bounded() {
    if let Some(mut lsr) = Port::<u8>::inert(0x3fd) {
        for _ in 0..100_000 {
            if lsr.read() & 0x20 != 0 {
                break;
            }
        }
    }
}

fn wait_config(cfg: &RwLock<Config>) {
    while !cfg.read().ready {}
}

// `safe-mmio` projections are register handles, bound to a local or called on directly; a
// `field!` of another shape (one argument) is some other macro.
fn unset_queue(header: &mut UniqueMmioPointer<'_, Header>) {
    let queue_ready = field_shared!(header, queue_ready);
    while queue_ready.read() != 0 {} //~ unbounded_poll
    while field!(header, status).read() & 1 == 0 {} //~ unbounded_poll
    let other = field!(header);
    while other.read() != 0 {}
}
