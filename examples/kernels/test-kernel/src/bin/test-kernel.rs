//! The test kernel binary (see the library crate for the scenarios).
#![no_std]
#![no_main]

paranoid_boot::entry!(paranoid_test_kernel::main);
