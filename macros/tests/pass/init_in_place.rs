//! Forms `#[paranoid_init]` once rejected although they are valid: the body is
//! rewritten in place (a closure inside the same function), so it sees the
//! `impl` around it, and constant indexes and compile-time assertions pass the
//! body checks.

use paranoid::init::InitContext;
use paranoid::lifecycle::{Device, Lifecycle, Ready, ResetKind, ResetKinds, Stalled, Unknown};
use paranoid::mmio::RegisterIo;
use paranoid::paranoid_init;
use paranoid::sim::{RegisterFile, SimClock, SimMmio};
use paranoid::time::{Clock, Deadline};

/// Queues by role; the discriminant is the queue's slot.
#[derive(Clone, Copy)]
enum Queue {
    Admin = 0,
    Io = 1,
}

/// A driver generic over its register backend, like the e1000's.
struct Nic<R: RegisterIo> {
    regs: R,
    heads: [u32; 2],
}

impl<R: RegisterIo> Lifecycle for Nic<R> {
    type Error = u32;
    fn name(&self) -> &'static str {
        "nic"
    }
    fn supported_resets(&self) -> ResetKinds {
        ResetKinds::empty()
    }
    fn quiesce(&mut self, _: Deadline) -> Result<(), u32> {
        self.regs.write32(0, 0);
        Ok(())
    }
    fn reset(&mut self, _: ResetKind, _: Deadline) -> Result<(), u32> {
        Ok(())
    }
    fn verify(&mut self, _: Deadline) -> Result<(), u32> {
        Ok(())
    }
    fn enable(&mut self, _: Deadline) -> Result<(), u32> {
        Ok(())
    }
    fn fence(&mut self) {}
}

impl<R: RegisterIo> Nic<R> {
    const SLOTS: usize = 2;

    /// An associated init inside a generic `impl`: the device type names the
    /// `impl`'s `R` (E0401 when the body was a nested function), and the body
    /// uses `Self`.
    #[paranoid_init(budget_ms = 100)]
    fn init<C: Clock>(
        dev: Device<Nic<R>, Unknown>,
        ctx: &mut InitContext<'_, C>,
    ) -> Result<Device<Nic<R>, Ready>, Stalled<Nic<R>>> {
        // Compile-time assertions cannot fail at run time.
        const { assert!(Self::SLOTS == 2) };
        let dev = dev.quiesce(ctx)?.reset(ctx)?;
        let dev = dev.step(ctx, "queues", |d, _| {
            // An enum variant cast is a constant index: fixed at compile time,
            // and out of bounds of an array it fails the build.
            d.heads[Queue::Admin as usize] = 1;
            d.heads[Queue::Io as usize] = d.heads[Self::SLOTS - 1].wrapping_add(2);
            Ok(())
        })?;
        dev.verify(ctx)?.enable(ctx)
    }
}

/// A const generic next to an `impl Clock` argument (the turbofish the old
/// nested function needed was dropped, so `N` could not be inferred).
struct Ring<const N: usize>([u8; N]);

impl<const N: usize> Lifecycle for Ring<N> {
    type Error = ();
    fn name(&self) -> &'static str {
        "ring"
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

#[paranoid_init(budget_ms = 10)]
fn ring_init<const N: usize>(
    dev: Device<Ring<N>, Unknown>,
    ctx: &mut InitContext<'_, impl Clock>,
) -> Result<Device<Ring<N>, Ready>, Stalled<Ring<N>>> {
    const { assert!(N > 0, "a ring has at least one slot") };
    let dev = dev.quiesce(ctx)?.reset(ctx)?;
    let dev = dev.step(ctx, "fill", |r, _| {
        for (i, slot) in (0u8..).zip(r.0.iter_mut()) {
            *slot = i;
        }
        Ok(())
    })?;
    dev.verify(ctx)?.enable(ctx)
}

/// `Self` in an associated init of a plain `impl` (rejected while the body was
/// a nested function).
struct Driver;

impl Driver {
    fn check() -> bool {
        true
    }

    #[paranoid_init(budget_ms = 500)]
    fn init<C: Clock>(
        dev: Device<Ring<1>, Unknown>,
        ctx: &mut InitContext<'_, C>,
    ) -> Result<Device<Ring<1>, Ready>, Stalled<Ring<1>>> {
        let dev = dev.quiesce(ctx)?;
        let _ = Self::check();
        dev.reset(ctx)?.verify(ctx)?.enable(ctx)
    }
}

fn main() {
    let clock = SimClock::new();
    let regs = SimMmio::new(RegisterFile::new(0x100), clock.clone());
    let nic = Nic::init(Nic { regs, heads: [0; 2] }, &clock).map(|ok| ok.device.into_inner().heads);
    let ring = ring_init(Ring([9u8; 4]), &clock).map(|ok| ok.device.into_inner().0);
    let driver = Driver::init(Ring([0]), &clock).is_ok();
    if nic.ok() != Some([1, 2]) || ring.ok() != Some([0, 1, 2, 3]) || !driver {
        std::process::exit(1);
    }
}
