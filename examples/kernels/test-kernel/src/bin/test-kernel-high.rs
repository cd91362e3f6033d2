//! The test kernel linked at 64 MiB (`build.rs`): the target of the
//! `pvh-handoff` scenario, loaded and entered by `test-kernel`.
#![no_std]
#![no_main]

paranoid_boot::entry!(paranoid_test_kernel::main);
