//! The built-in per-queue schedulers (policies). They see the executor
//! through the [`Scheduler`] trait and [`ReadyTask`] only.

mod edf;
mod fifo;
mod group_fair;
mod grouped;
mod keyed;
mod las;
mod sharing;

pub use edf::Edf;
pub use fifo::{ArrivalFifo, RunnableFifo};
pub use group_fair::GroupFair;
pub use las::LAS;

use crate::runtime::scheduler::{ReadyTask, Reports, Scheduler};

/// `scheduler` as a queue is made with it: boxed, or `None` for the
/// default [`RunnableFifo`], which the run queue keeps natively (no dynamic
/// call, no [`ReadyTask`] around each task). Callers unsize the box.
pub(crate) fn custom<S: Scheduler>(scheduler: S) -> Option<Box<S>> {
    let default = std::any::TypeId::of::<S>() == std::any::TypeId::of::<RunnableFifo>();
    (!default).then(|| Box::new(scheduler))
}
