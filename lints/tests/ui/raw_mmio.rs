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

// Real forms: an imported alias, field addresses through a raw pointer, pointers made from
// integer addresses kept in a local or a `static mut`, an address variable cast to a pointer.
use core::ptr::read_volatile as rd;
use core::ptr::{addr_of, addr_of_mut};

fn aliased(base: *const u32) -> u32 {
    unsafe { rd(base) } //~ raw_mmio
}

fn descriptor_status(desc: *const Desc) -> u8 {
    unsafe { ptr::read_volatile(addr_of!((*desc).status)) } //~ raw_mmio
}

fn descriptor_len(d: *mut Desc, len: u16) {
    unsafe { ptr::write_volatile(addr_of_mut!((*d).len), len) } //~ raw_mmio
}

fn descriptor_raw(d: *mut Desc) -> u16 {
    unsafe { ptr::read_volatile(&raw const (*d).len) } //~ raw_mmio
}

fn local_from_integer() {
    let eoi = 0xfee0_00b0 as *mut u32;
    unsafe { *eoi = 0 }; //~ raw_mmio
}

static mut LAPIC: *mut u32 = 0xfee0_0000 as *mut u32;

fn through_static() -> u32 {
    unsafe { *LAPIC.add(0x20 / 4) } //~ raw_mmio
}

fn address_variable(phys_addr: usize) -> u32 {
    unsafe { *(phys_addr as *const u32) } //~ raw_mmio
}

// Look-alikes: field addresses of a reference, a pointer local that is not from an integer.
fn field_of_reference(d: &Desc) -> u16 {
    unsafe { ptr::read_volatile(addr_of!(d.len)) }
}

fn ordinary_pointer(buf: &mut [u32]) {
    let p = buf.as_mut_ptr();
    unsafe { *p = 0 };
}

// Volatile through a pointer the driver keeps (`NonNull` field), and through `*addr` of a
// match binding; the method of a typed handle field is not raw.
struct IoApic {
    ioregsel: NonNull<u32>,
    ctrl: ReadWrite<u32>,
}

impl IoApic {
    fn select(&mut self, sel: u32) {
        unsafe { ptr::write_volatile(self.ioregsel.as_ptr(), sel) } //~ raw_mmio
    }
    fn ctrl(&self) -> u32 {
        self.ctrl.read_volatile()
    }
}

fn xapic(reg: &Reg) -> u32 {
    match reg {
        Reg::Offset(addr) => unsafe { core::ptr::read_volatile(*addr as *const u32) }, //~ raw_mmio
    }
}
