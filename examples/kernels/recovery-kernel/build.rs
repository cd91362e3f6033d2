//! Links the recovery kernel at 64 MiB, inside the region the crashed kernel
//! reserved for it.

fn main() {
    println!("cargo:rustc-link-arg-bins=-Tparanoid-boot.ld");
    println!("cargo:rustc-link-arg-bins=--defsym=PARANOID_KERNEL_BASE=0x4000000");
    println!("cargo:rerun-if-changed=build.rs");
}
