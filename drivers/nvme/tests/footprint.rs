//! The driver object is moved by value through init (the lifecycle typestate,
//! the escalation ladder's `Stalled`, `InitFailure`): its size is stack in a
//! bare-metal kernel. Kernel A overflowed its 256 KiB boot stack when the
//! pipelined-write state first made `Nvme` 6 KB; keep it small.

#[test]
fn the_driver_object_stays_small() {
    let nvme = std::mem::size_of::<paranoid_nvme::model::SimNvme>();
    let failure = std::mem::size_of::<paranoid::init::InitFailure<paranoid_nvme::model::SimNvme>>();
    println!("Nvme: {nvme} bytes, InitFailure<Nvme>: {failure} bytes");
    assert!(nvme <= 2048, "Nvme is {nvme} bytes");
    assert!(failure <= 8704, "InitFailure<Nvme> is {failure} bytes");
}
