// Fixture for `raw_mmio`: raw device access outside a hal.
use core::arch::asm;
use core::ptr;

fn function_form(base: *mut u8) -> u32 {
    unsafe { core::ptr::read_volatile(base.add(0x08) as *const u32) } //~ raw_mmio
}

fn std_form(mmio: *mut u32) {
    unsafe { std::ptr::write_volatile(mmio, 1) } //~ raw_mmio
}

fn method_form(regs: *mut u32) -> u32 {
    unsafe { regs.add(3).read_volatile() } //~ raw_mmio
}

fn literal_deref() -> u32 {
    unsafe { *(0xFEE0_0030 as *const u32) } //~ raw_mmio
}

fn literal_store() {
    unsafe { *(0xB8000 as *mut u16) = 0x0741 }; //~ raw_mmio
}

fn port_in(port: u16) -> u8 {
    let v: u8;
    unsafe { asm!("in al, dx", out("al") v, in("dx") port) }; //~ raw_mmio
    v
}

fn port_out(port: u16, v: u8) {
    unsafe { asm!("out dx, al", in("dx") port, in("al") v) }; //~ raw_mmio
}

// Look-alikes: volatile on ordinary memory (zeroing a secret), references cast to pointers.
fn zeroize(secret: &mut [u8]) {
    for b in secret.iter_mut() {
        unsafe { ptr::write_volatile(b, 0) };
    }
}

fn not_device(x: &u32) -> u32 {
    unsafe { *(x as *const u32) }
}

// Safe wrappers are not raw.
fn through_hal(regs: &Regs) -> u32 {
    regs.read32(0x08)
}
