//! Links kernel A at 1 MiB, where QEMU's PVH loader puts `-kernel`.

fn main() {
    println!("cargo:rustc-link-arg-bins=-Tparanoid-boot.ld");
    println!("cargo:rustc-link-arg-bins=--defsym=PARANOID_KERNEL_BASE=0x100000");
    println!("cargo:rerun-if-changed=build.rs");
}
