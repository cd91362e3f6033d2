//! Statics without `unsafe` at the use site, and without waiting: a
//! write-once cell and a lock that is tried, never waited on.
//!
//! Bare-metal kernels keep state in statics (the boot information, what a
//! panic path needs). Both types here are sound on any number of CPUs, yet
//! neither ever spins: a second writer, or a user that finds the value in use
//! (a panic inside a closure that held it, an interrupt handler), is told so
//! and goes on. A recovery path must never wait for a lock a dead context
//! holds.

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// No value yet.
const EMPTY: u8 = 0;
/// A `set` is writing the value.
const WRITING: u8 = 1;
/// The value is written and never changes again.
const READY: u8 = 2;

/// A value written once and read by shared reference from then on.
///
/// # Examples
///
/// ```
/// use paranoid::sync::OnceCell;
///
/// static CELL: OnceCell<u32> = OnceCell::new();
/// assert_eq!(CELL.get(), None);
/// assert_eq!(CELL.set(7), Ok(&7));
/// assert_eq!(CELL.set(8), Err(8), "written once");
/// assert_eq!(CELL.get(), Some(&7));
/// ```
pub struct OnceCell<T> {
    state: AtomicU8,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: the value is written by exactly one `set` (the one that moved the
// state from EMPTY to WRITING) before the state becomes READY with Release
// ordering, and read only through shared references after an Acquire load
// sees READY: a `T: Sync` may be shared that way, and `T: Send` because the
// value set on one CPU may be dropped (or used) on another.
unsafe impl<T: Sync + Send> Sync for OnceCell<T> {}

impl<T> OnceCell<T> {
    /// An empty cell.
    pub const fn new() -> Self {
        Self {
            state: AtomicU8::new(EMPTY),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// Stores `value` and returns a reference to it, if the cell was empty;
    /// otherwise gives `value` back (the cell is set, or being set).
    ///
    /// # Errors
    ///
    /// `Err(value)` when the cell already holds a value or another `set` is
    /// writing one.
    pub fn set(&self, value: T) -> Result<&T, T> {
        if self
            .state
            .compare_exchange(EMPTY, WRITING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(value);
        }
        // SAFETY: winning the EMPTY -> WRITING exchange makes this the only
        // writer ever, and no reader looks at the value before READY.
        let stored: *const T = unsafe { (*self.value.get()).write(value) };
        self.state.store(READY, Ordering::Release);
        // SAFETY: the value is initialized and is never written again.
        Ok(unsafe { &*stored })
    }

    /// The value, once set.
    pub fn get(&self) -> Option<&T> {
        if self.state.load(Ordering::Acquire) != READY {
            return None;
        }
        // SAFETY: READY (seen with Acquire, after the writer's Release) means
        // the value is initialized and never written again.
        Some(unsafe { (*self.value.get()).assume_init_ref() })
    }
}

impl<T> Default for OnceCell<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Drop for OnceCell<T> {
    fn drop(&mut self) {
        if *self.state.get_mut() == READY {
            // SAFETY: READY: the value is initialized; `&mut self` means no
            // reference to it is live, and it is dropped once.
            unsafe { self.value.get_mut().assume_init_drop() };
        }
    }
}

impl<T: core::fmt::Debug> core::fmt::Debug for OnceCell<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("OnceCell").field(&self.get()).finish()
    }
}

/// A value one user at a time may change, taken with [`TryLock::with`],
/// which never waits: when the value is in use, it says so.
///
/// # Examples
///
/// ```
/// use paranoid::sync::TryLock;
///
/// static COUNT: TryLock<u32> = TryLock::new(0);
/// assert_eq!(COUNT.with(|n| { *n += 1; *n }), Some(1));
/// // Taken again while in use (a panic inside the closure, a re-entrant
/// // call): refused, not waited for.
/// assert_eq!(COUNT.with(|_| COUNT.with(|n| *n)), Some(None));
/// ```
pub struct TryLock<T> {
    taken: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only inside `with`, by the one caller that
// moved `taken` from false to true (Acquire) until it stores false again
// (Release): accesses never overlap, so a `T: Send` may be used from any CPU.
unsafe impl<T: Send> Sync for TryLock<T> {}

impl<T> TryLock<T> {
    /// A lock holding `value`.
    pub const fn new(value: T) -> Self {
        Self {
            taken: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// Runs `f` on the value; `None` (without running `f`) when the value is
    /// in use already (another CPU, or a caller further up this one's stack).
    ///
    /// A panic inside `f` leaves the lock taken: the panic path that follows
    /// finds the value in use rather than half-changed.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        if self
            .taken
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        // SAFETY: winning the false -> true exchange makes this the only
        // user until the store below; the reference does not outlive `f`.
        let r = f(unsafe { &mut *self.value.get() });
        self.taken.store(false, Ordering::Release);
        Some(r)
    }

    /// Where the value lives (to name its address, say to another kernel
    /// that will read it); using the pointer is the caller's business.
    pub const fn as_ptr(&self) -> *mut T {
        self.value.get()
    }
}

impl<T> core::fmt::Debug for TryLock<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TryLock")
            .field("taken", &self.taken.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn once_cell_is_set_once_across_threads() {
        let cell = Arc::new(OnceCell::<usize>::new());
        let winners: usize = (0..8)
            .map(|i| {
                let cell = Arc::clone(&cell);
                std::thread::spawn(move || usize::from(cell.set(i).is_ok()))
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(winners, 1);
        assert!(cell.get().is_some_and(|v| *v < 8));
    }

    #[test]
    fn once_cell_drops_its_value() {
        let v = Arc::new(());
        let cell = OnceCell::new();
        assert!(cell.set(Arc::clone(&v)).is_ok());
        assert_eq!(Arc::strong_count(&v), 2);
        drop(cell);
        assert_eq!(Arc::strong_count(&v), 1);
        let empty = OnceCell::<Arc<()>>::new();
        drop(empty);
    }

    #[test]
    fn try_lock_counts_every_update_once_and_never_waits() {
        let lock = Arc::new(TryLock::new(0u64));
        let done: u64 = (0..4)
            .map(|_| {
                let lock = Arc::clone(&lock);
                std::thread::spawn(move || {
                    (0..1000)
                        .filter(|_| lock.with(|n| *n += 1).is_some())
                        .count() as u64
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(lock.with(|n| *n), Some(done));
    }

    #[test]
    fn try_lock_stays_taken_after_a_panic_inside() {
        let lock = TryLock::new(1u8);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            lock.with(|_| panic!("inside"));
        }));
        assert!(r.is_err());
        assert_eq!(lock.with(|n| *n), None);
    }
}
