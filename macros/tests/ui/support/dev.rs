//! A minimal driver for the `#[paranoid_init]` UI cases.

use paranoid::lifecycle::{Lifecycle, ResetKind, ResetKinds};
use paranoid::time::Deadline;

/// A device that does nothing.
pub struct Dev;

impl Lifecycle for Dev {
    type Error = ();
    fn name(&self) -> &'static str {
        "dev"
    }
    fn supported_resets(&self) -> ResetKinds {
        ResetKinds::empty()
    }
    fn quiesce(&mut self, _: Deadline) -> Result<(), ()> {
        Ok(())
    }
    fn reset(&mut self, _: ResetKind, _: Deadline) -> Result<(), ()> {
        Ok(())
    }
    fn verify(&mut self, _: Deadline) -> Result<(), ()> {
        Ok(())
    }
    fn enable(&mut self, _: Deadline) -> Result<(), ()> {
        Ok(())
    }
    fn fence(&mut self) {}
}
