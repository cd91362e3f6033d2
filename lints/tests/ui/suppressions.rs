// Fixture for suppressions: every spelling, plus unused and reason-less ones.

#[paranoid::allow(raw_mmio, reason = "the one audited mmio shim")]
fn shim(base: *mut u32) -> u32 {
    unsafe { core::ptr::read_volatile(base) }
}

fn cfg_attr_form(base: *mut u32) -> u32 {
    #[cfg_attr(any(), paranoid::allow(raw_mmio, reason = "boot console before the hal is up"))]
    let v = unsafe { core::ptr::read_volatile(base) };
    v
}

fn comment_form(base: *mut u32) {
    // paranoid:allow(raw_mmio): debug exit device, test kernels only
    unsafe { core::ptr::write_volatile(base, 1) };
}

fn no_reason(base: *mut u32) {
    // paranoid:allow(raw_mmio) //~ suppression_without_reason
    unsafe { core::ptr::write_volatile(base, 1) };
}

// paranoid:allow(unbounded_poll): nothing polls here //~ unused_suppression
fn unused() {}

#[cfg_attr(any(), paranoid::allow(not_a_lint, reason = "typo"))] //~ unused_suppression
fn unknown() {}
