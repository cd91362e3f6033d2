//! Links each kernel binary with paranoid-boot's script at its own base.

fn main() {
    println!("cargo:rustc-link-arg-bins=-Tparanoid-boot.ld");
    println!("cargo:rustc-link-arg-bin=test-kernel=--defsym=PARANOID_KERNEL_BASE=0x100000");
    println!("cargo:rustc-link-arg-bin=test-kernel-high=--defsym=PARANOID_KERNEL_BASE=0x4000000");
    println!("cargo:rerun-if-changed=build.rs");
}
