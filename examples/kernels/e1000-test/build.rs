//! Links the kernel with paranoid-boot's script at 1 MiB.

fn main() {
    println!("cargo:rustc-link-arg-bins=-Tparanoid-boot.ld");
    println!("cargo:rustc-link-arg-bins=--defsym=PARANOID_KERNEL_BASE=0x100000");
    println!("cargo:rerun-if-changed=build.rs");
}
