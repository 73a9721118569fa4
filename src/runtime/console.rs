//! The executor's side of tokio-console support (feature `console`): which
//! task has a span, and where the span is entered, woken and closed.
//!
//! Spans live here, in a table by slot that only the executor's thread
//! touches, not in the tasks: a task pays nothing for the feature (the
//! table grows only when a subscriber wants spans), and no span is reached
//! from another thread. So every console event is emitted on the
//! executor's thread: a wake from another thread is reported as the
//! executor takes it from its inbox, which is also when it starts to
//! count for the task.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering;

use crate::observe::console::TaskSpan;
use crate::runtime::Core;
use crate::runtime::task::TaskMeta;

/// The spans of the live tasks, by slot, and the queue names they show.
pub(crate) struct ConsoleSpans {
    /// Whether a span was ever made: while none was, each check costs one
    /// `Cell` read.
    any: Cell<bool>,
    by_slot: RefCell<Vec<Option<Rc<TaskSpan>>>>,
    /// Each queue's key as `Debug` prints it.
    queues: RefCell<Vec<String>>,
}

impl ConsoleSpans {
    pub(crate) fn new(queues: Vec<String>) -> Self {
        ConsoleSpans {
            any: Cell::new(false),
            by_slot: RefCell::new(Vec::new()),
            queues: RefCell::new(queues),
        }
    }

    /// Names the queue added at the next index.
    pub(crate) fn add_queue(&self, name: String) {
        self.queues.borrow_mut().push(name);
    }
}

impl Core {
    /// Makes the span of a task just taken in, if a subscriber wants it.
    #[inline]
    pub(crate) fn console_spawned(&self, meta: &TaskMeta) {
        // What the span's macro checks first (one load of a global), before
        // the span's fields are gathered: with no subscriber that wants
        // trace-level spans, a spawn pays nothing more.
        if tracing::level_filters::LevelFilter::current() < tracing::Level::TRACE {
            return;
        }
        self.console_span_for(meta);
    }

    #[cold]
    #[inline(never)]
    fn console_span_for(&self, meta: &TaskMeta) {
        let spans = &self.observe.console;
        // Copied out: the subscriber's code runs in `TaskSpan::new`, and may
        // come back (add a queue, spawn). Subscriber code runs `guarded`: it
        // may run inside async-task's schedule or a task's end, where a
        // panic would lose the task's output.
        let queue = spans.queues.borrow().get(meta.queue()).cloned();
        let name = meta.name().map(|name| name.as_str());
        let group = meta.group().map(|group| group.id);
        let location = meta.site.location();
        let span = self.guarded(|| {
            TaskSpan::new(
                meta.id,
                name,
                queue.as_deref().unwrap_or(""),
                group,
                location,
            )
        });
        let Some(span) = span.flatten() else {
            return;
        };
        let slot = meta.slot(Ordering::Relaxed);
        let old = {
            let mut by_slot = spans.by_slot.borrow_mut();
            if by_slot.len() <= slot {
                by_slot.resize(slot + 1, None);
            }
            by_slot[slot].replace(Rc::new(span))
        };
        spans.any.set(true);
        self.observe.instrumented.set(true);
        self.observe.tells_tasks.set(true);
        // Not reachable (a slot's span is closed as its task ends), but
        // dropped after the borrow: it emits an event.
        self.guarded(|| drop(old));
    }

    /// The span of the task in `slot`, to enter around its run.
    #[inline]
    pub(crate) fn console_span(&self, slot: usize) -> Option<Rc<TaskSpan>> {
        let spans = &self.observe.console;
        if !spans.any.get() {
            return None;
        }
        spans.by_slot.borrow().get(slot)?.clone()
    }

    /// Reports a wake of `meta`'s task: a self-wake if its span is entered.
    #[inline]
    pub(crate) fn console_woke(&self, meta: &TaskMeta) {
        if self.observe.console.any.get() {
            self.console_woke_span(meta);
        }
    }

    #[cold]
    #[inline(never)]
    fn console_woke_span(&self, meta: &TaskMeta) {
        if let Some(span) = self.console_span(meta.slot(Ordering::Relaxed)) {
            self.guarded(|| span.woke());
        }
    }

    /// Closes the span of a task that ended (the console shows it
    /// completed), or does so as its run, which holds it entered, returns.
    #[inline]
    pub(crate) fn console_ended(&self, meta: &TaskMeta) {
        let spans = &self.observe.console;
        if !spans.any.get() {
            return;
        }
        let span = spans
            .by_slot
            .borrow_mut()
            .get_mut(meta.slot(Ordering::Relaxed))
            .and_then(Option::take);
        // Dropped after the borrow: it emits an event, which a subscriber
        // handles (user code).
        self.guarded(|| drop(span));
    }
}
