//! Puts the kernel linker script where every kernel's link step finds it.
//!
//! A kernel binary's own build script picks its load address and links with
//! the script (see `paranoid_boot` crate docs, "Building a kernel"):
//!
//! ```text
//! println!("cargo:rustc-link-arg-bins=-Tparanoid-boot.ld");
//! println!("cargo:rustc-link-arg-bins=--defsym=PARANOID_KERNEL_BASE=0x100000");
//! ```
//!
//! `rustc-link-search` from a dependency's build script reaches the final link,
//! and the linker looks for `-T` scripts in the search path.

use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(
        out.join("paranoid-boot.ld"),
        include_str!("paranoid-boot.ld"),
    )
    .expect("OUT_DIR is writable");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=paranoid-boot.ld");
    println!("cargo:rerun-if-changed=build.rs");
}
