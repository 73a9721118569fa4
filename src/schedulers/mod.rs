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

use crate::runtime::scheduler::{ReadyTask, Scheduler};
