// Fixture for `unchecked_device_value`: taint from device reads to sinks.
const RDH: usize = 0x2810;

fn index(regs: &Regs, ring: &[Desc; 256]) -> Desc {
    let head = regs.read32(RDH) as usize;
    ring[head] //~ unchecked_device_value
}

fn through_struct(regs: &Regs, ring: &[u8]) -> &[u8] {
    let mut st = State::default();
    st.len = regs.read32(0x10);
    &ring[..st.len as usize] //~ unchecked_device_value
}

fn through_arith_shift(regs: &Regs) -> u64 {
    let cap = regs.read64(0x00);
    let mpsmin = (cap >> 48) as u32;
    let shift = 12 + mpsmin;
    1u64 << shift //~ unchecked_device_value
}

fn allocation(regs: &Regs) -> Vec<u8> {
    let n = regs.read32(0x20) as usize;
    Vec::with_capacity(n) //~ unchecked_device_value
}

fn pointer_offset(regs: &Regs, base: *mut u32) -> *mut u32 {
    let off = regs.read32(0x24) as usize;
    unsafe { base.add(off) } //~ unchecked_device_value
}

fn loop_bound(regs: &Regs) -> u32 {
    let count = regs.read32(0x28);
    let mut sum = 0;
    for i in 0..count { //~ unchecked_device_value
        sum += i;
    }
    sum
}

fn closure_capture(regs: &Regs, table: &[u32]) -> u32 {
    let i = regs.read32(0x2c) as usize;
    let get = || table[i]; //~ unchecked_device_value
    get()
}

fn port_value(table: &[u8]) -> u8 {
    let v: u8;
    unsafe { core::arch::asm!("in al, dx", out("al") v, in("dx") 0x60u16) };
    table[v as usize] //~ unchecked_device_value
}

fn all_ones_is_not_a_bound(regs: &Regs, ring: &[u8]) -> u8 {
    let i = regs.read32(0x30);
    if i == u32::MAX {
        return 0;
    }
    ring[i as usize] //~ unchecked_device_value
}

// Negatives: validated before use.
fn compared(regs: &Regs, ring: &[u8; 64]) -> u8 {
    let i = regs.read32(0x30) as usize;
    if i >= ring.len() {
        return 0;
    }
    ring[i]
}

fn clamped(regs: &Regs, ring: &[u8; 64]) -> u8 {
    let i = (regs.read32(0x30) as usize).min(63);
    ring[i]
}

fn clamped_by_the_hal(regs: &Regs) -> u64 {
    let cap = regs.read64(0x00);
    4u64 << cap.field(32, 4).clamp_max(15)
}

fn checked(regs: &Regs, ring: &[u8]) -> Option<u8> {
    let i = regs.read32(0x30) as usize;
    ring.get(i).copied()
}

fn untrusted(regs: &Regs, ring: &[u8; 64]) -> Result<u8, Error> {
    let i = regs.read32(0x30).check_range(0..64)? as usize;
    Ok(ring[i])
}

fn matched(regs: &Regs, ring: &[u8; 8]) -> u8 {
    let i = regs.read32(0x30) as usize;
    match i {
        0..=7 => ring[i],
        _ => 0,
    }
}

// Look-alike: not a device value.
fn local(ring: &[u8], i: usize) -> u8 {
    ring[i]
}

// Real forms: a divisor, a BAR address, a struct field that becomes a slice length.
fn divisor(regs: &Regs, bytes: u64) -> u64 {
    let block = regs.read32(BLOCK_SIZE) as u64;
    bytes / block //~ unchecked_device_value
}

fn bar_address(cfg: &Cfg) -> *mut u32 {
    let bar = cfg.read32(BAR0) & 0xFFFF_FFF0;
    bar as usize as *mut u32 //~ unchecked_device_value
}

fn bar_mapped(cfg: &Cfg) -> Mapping {
    let bar = cfg.read32(BAR0) & !0xf;
    ioremap(bar as u64, 0x1000) //~ unchecked_device_value
}

struct Rx {
    len: usize,
}

fn field_length(regs: &Regs, buf: &[u8]) -> usize {
    let rx = Rx {
        len: regs.read32(RX_LEN) as usize,
    };
    buf[..rx.len].len() //~ unchecked_device_value
}

// A comparison from the wrong side is not a bound.
fn lower_bound_only(regs: &Regs, ring: &[u8]) -> u8 {
    let i = regs.read32(HEAD) as usize;
    if i > 0 {
        return ring[i]; //~ unchecked_device_value
    }
    0
}

// Look-alikes: a checked divisor, an upper bound.
fn nonzero_divisor(regs: &Regs, bytes: u64) -> u64 {
    let block = regs.read32(BLOCK_SIZE) as u64;
    if block != 0 {
        return bytes / block;
    }
    0
}

fn upper_bound(regs: &Regs, ring: &[u8]) -> u8 {
    let i = regs.read32(HEAD) as usize;
    if i < ring.len() {
        return ring[i];
    }
    0
}

// A port handle parameter: the value read indexes a table unchecked; the same read through
// a lock guard is not device data.
fn scancode(data: &mut Port<u8>, keymap: &[char; 128]) -> char {
    let code = unsafe { data.read() };
    keymap[code as usize] //~ unchecked_device_value
}

fn from_lock(table: &RwLock<[u8; 4]>, ring: &[u8]) -> u8 {
    let i = table.read()[0];
    ring[i as usize]
}

// A reference to a register block is no read of it: its address arithmetic is not tainted.
// A reference to one integer register still carries the register's value.
fn register_block_reference(base: usize) -> usize {
    let regs = unsafe { &mut *(base as *mut Regs) };
    let _ = &regs.cmd as *const _ as usize - base;
    let one = unsafe { &*(base as *const u32) };
    let table = [0u8; 4];
    table[*one as usize] as usize //~ unchecked_device_value
}

// The position of a set bit of a value compared with zero is below its width: a safe shift
// amount, not a bounded index. Without the zero test it can be the width itself.
fn set_bits(regs: &Regs, handlers: &[Handler; 12]) {
    let mut pending = regs.read32(0x40);
    while pending != 0 {
        let bit = pending.trailing_zeros();
        regs.write32(0x40, 1 << bit);
        pending &= !(1 << bit);
        handlers[bit as usize].run(); //~ unchecked_device_value
    }
    let other = regs.read32(0x44);
    let first = other.trailing_zeros();
    regs.write32(0x44, 1 << first); //~ unchecked_device_value
}
