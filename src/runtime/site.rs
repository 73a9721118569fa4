//! Where a task was spawned, and what only some tasks have, in one word of
//! the task's metadata.
//!
//! Every task knows its spawn location (for slow-poll and stall reports);
//! few have a name, a deadline or a group. Kept as two fields, the
//! location and an optional box, they cost every task two words; as a
//! [`Site`] they cost one: a task without extras points straight at its
//! `&'static Location`, and a task with extras at a box that holds them and
//! the location. The low bit of the pointer tells which: both pointees are
//! at least 2-aligned, so the bit is free. `benches/memory.rs` measures the
//! word this saves on every task.

use std::fmt;
use std::panic::Location;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::base::group::GroupState;
use crate::base::id::TaskName;

/// The part of a task's metadata that most tasks do not have, with the
/// spawn location.
#[derive(Debug)]
pub(crate) struct TaskExtras {
    pub(crate) location: &'static Location<'static>,
    /// The task's group in its queue, if any.
    pub(crate) group: Option<Arc<GroupState>>,
    /// The name given at spawn, for slow-poll and stall reports.
    pub(crate) name: Option<TaskName>,
    /// Executor-clock nanoseconds by which the task should finish.
    pub(crate) deadline: Option<u64>,
}

/// A task's spawn location, or a box of [`TaskExtras`] (with the location),
/// in one pointer (see the module documentation).
///
/// Invariant: the pointer is either a `&'static Location<'static>` (low bit
/// clear), or, with the low bit set, a pointer from `Box::into_raw` of a
/// `Box<TaskExtras>` that this `Site` owns.
pub(crate) struct Site(NonNull<()>);

/// The low bit, set when the site points at a box of extras.
const BOXED: usize = 1;

// Both pointees leave the low bit free.
const _: () = assert!(align_of::<Location<'static>>() > BOXED);
const _: () = assert!(align_of::<TaskExtras>() > BOXED);

impl Site {
    /// The site of a task with no extras.
    pub(crate) fn at(location: &'static Location<'static>) -> Self {
        Site(NonNull::from(location).cast())
    }

    /// The site of a task with `extras`.
    pub(crate) fn with(extras: TaskExtras) -> Self {
        let raw = NonNull::from(Box::leak(Box::new(extras))).cast::<()>();
        Site(raw.map_addr(|addr| addr | BOXED))
    }

    /// The untagged pointer to the extras, if the site has them.
    #[inline]
    fn boxed(&self) -> Option<*mut TaskExtras> {
        let tagged = self.0.as_ptr();
        (tagged.addr() & BOXED != 0).then(|| tagged.map_addr(|addr| addr & !BOXED).cast())
    }

    /// The task's extras, if it has any.
    #[inline]
    pub(crate) fn extras(&self) -> Option<&TaskExtras> {
        let extras = self.boxed()?;
        // SAFETY: with the low bit set, the untagged pointer came from
        // `Box::into_raw` (`Box::leak`) in `Site::with`, and the box is
        // freed only by `Site`'s drop, which cannot run while `self` is
        // borrowed. The extras are never mutated after the box is made.
        Some(unsafe { &*extras })
    }

    /// Where the task was spawned.
    #[inline]
    pub(crate) fn location(&self) -> &'static Location<'static> {
        match self.extras() {
            Some(extras) => extras.location,
            // SAFETY: with the low bit clear, the pointer is the
            // `&'static Location` given to `Site::at`.
            None => unsafe { self.0.cast::<Location<'static>>().as_ref() },
        }
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Some(extras) = self.boxed() {
            // SAFETY: the box made in `Site::with`, owned by this `Site`,
            // freed once, here.
            drop(unsafe { Box::from_raw(extras) });
        }
    }
}

// SAFETY: a `Site` is a `&'static Location` (which is `Send` and `Sync`) or
// an owned `Box<TaskExtras>`, whose contents (a location, an `Arc` of a
// `Sync` group state, an `Arc<String>`, a number) are `Send` and `Sync`
// and are never mutated through a `Site`.
unsafe impl Send for Site {}
// SAFETY: see `Send`.
unsafe impl Sync for Site {}

impl fmt::Debug for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.extras() {
            Some(extras) => fmt::Debug::fmt(extras, f),
            None => fmt::Debug::fmt(self.location(), f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    /// Both kinds of site give back what they were made with, and a site
    /// with extras frees them (Miri checks the box is freed once).
    #[test]
    fn a_site_keeps_its_location_and_extras() {
        assert_send_sync::<Site>();
        let here = Location::caller();
        let plain = Site::at(here);
        assert!(plain.extras().is_none());
        assert_eq!(plain.location(), here);
        let name: TaskName = Arc::new("named".to_owned());
        let boxed = Site::with(TaskExtras {
            location: here,
            group: None,
            name: Some(Arc::clone(&name)),
            deadline: Some(7),
        });
        assert_eq!(boxed.location(), here);
        let extras = boxed.extras().expect("extras");
        assert_eq!(extras.deadline, Some(7));
        assert_eq!(extras.name.as_deref().map(String::as_str), Some("named"));
        assert_eq!(Arc::strong_count(&name), 2);
        drop(boxed);
        assert_eq!(Arc::strong_count(&name), 1);
        assert_eq!(size_of::<Site>(), size_of::<usize>());
    }
}
