//! Links the codec bench at 64 MiB, where the recovery kernel goes: kernel A
//! loads it into the region it reserved for the recovery kernel.

fn main() {
    println!("cargo:rustc-link-arg-bins=-Tparanoid-boot.ld");
    println!("cargo:rustc-link-arg-bins=--defsym=PARANOID_KERNEL_BASE=0x4000000");
    println!("cargo:rerun-if-changed=build.rs");
}
