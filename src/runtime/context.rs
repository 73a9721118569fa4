//! The executor that is running a turn on this thread, if any.
//!
//! Wakers use it to find the fast path (a wake from inside a turn goes
//! straight into its queue), and `yield_maybe` uses it to find the running
//! slice. It is a scoped thread-local: [`enter`] installs an executor for the
//! duration of a closure and restores the previous one afterwards (executors
//! may nest: one executor's `run_until` awaited inside another's task).
//!
//! This is what the `scoped-tls` crate does, with a `const`-initialised
//! thread-local and a single access per lookup. Wakes on the executor's own
//! thread do this lookup every time; in the self-waking-task benchmark,
//! `scoped-tls`'s lazily initialised key and its two lookups per wake
//! (`is_set`, then `with`) cost about 50 instructions per poll, this about 5.

use std::cell::Cell;
use std::ptr;

use crate::runtime::Core;

thread_local! {
    static CURRENT: Cell<*const Core> = const { Cell::new(ptr::null()) };
}

/// Runs `f` with `core` installed as this thread's current executor.
pub(crate) fn enter<R>(core: &Core, f: impl FnOnce() -> R) -> R {
    /// Restores the previous executor, also when `f` unwinds.
    struct Restore(*const Core);

    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|current| current.set(self.0));
        }
    }

    let _restore = Restore(CURRENT.with(|current| current.replace(core)));
    f()
}

/// Calls `f` with the executor running a turn on this thread, if any.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(&Core) -> R) -> Option<R> {
    let core = CURRENT.with(Cell::get);
    if core.is_null() {
        return None;
    }
    // SAFETY: a non-null pointer was installed by `enter` from a `&Core` that
    // outlives the `enter` call, and `enter` puts the previous value back
    // before it returns or unwinds. So while it is visible here, the `Core`
    // is alive. Only shared references are made, and `Core` is `!Sync`, so
    // the pointer is only ever read on the thread that installed it.
    Some(f(unsafe { &*core }))
}
