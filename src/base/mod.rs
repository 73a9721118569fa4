//! The leaves: self-contained pieces that import nothing else from the
//! crate. Clocks, queue keys, errors, the histogram, task groups, the queue
//! picker and the queue directory.

pub(crate) mod clock;
pub(crate) mod config;
pub(crate) mod directory;
pub(crate) mod error;
pub(crate) mod group;
pub(crate) mod histogram;
pub(crate) mod id;
pub(crate) mod key;
pub(crate) mod picker;
pub(crate) mod shutdown;
