//! Ordered completions: ordered parts run one at a time, in the order their tickets were
//! taken, whatever order the run parts finish in (btrfs's `run_ordered_work`).
//!
//! Protocol: take a [`Ticket`] when the item is submitted; when its run part is done, the
//! worker hands the ordered part to [`Sequencer::complete`], which runs every ordered part
//! now due on that worker, unless another worker is already doing so. That worker looks at
//! the head of the line again before it stops, so nothing is left behind.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::sync::Mutex;

pub(crate) type Ordered = Box<dyn FnOnce() + Send>;

/// A place in line. Every ticket must be completed: the ordered parts behind one that never
/// is never run.
#[must_use = "an uncompleted ticket stalls every later ordered part"]
pub(crate) struct Ticket(u64);

#[derive(Default)]
pub(crate) struct Sequencer {
    line: Mutex<Line>,
}

#[derive(Default)]
struct Line {
    /// The ticket of `slots[0]`, the next ordered part to run.
    head: u64,
    /// One slot per ticket from `head` on: `None` until its run part is done, then the
    /// ordered part (itself `None` when there is nothing to run, e.g. the run part panicked).
    slots: VecDeque<Option<Option<Ordered>>>,
    /// A worker is running ordered parts; the others leave theirs to it (the barrier that
    /// WORK_ORDER_DONE_BIT is in btrfs).
    draining: bool,
    panics: u64,
}

impl Sequencer {
    /// The next place in line. Take it in submission order.
    pub(crate) fn ticket(&self) -> Ticket {
        let mut line = self.line.lock().unwrap();
        line.slots.push_back(None);
        Ticket(line.head + line.slots.len() as u64 - 1)
    }

    /// Marks `ticket`'s run part done with `ordered` still to run, then runs every ordered
    /// part now due, in ticket order, on this thread. Returns how many tickets this call
    /// finished (their ordered parts ran or panicked): zero when another thread is draining,
    /// which then finishes this one too.
    pub(crate) fn complete(&self, ticket: Ticket, ordered: Option<Ordered>) -> u64 {
        let mut line = self.line.lock().unwrap();
        let index = (ticket.0 - line.head) as usize;
        line.slots[index] = Some(ordered);
        if line.draining {
            return 0;
        }
        line.draining = true;
        let mut finished = 0;
        while let Some(Some(_)) = line.slots.front() {
            let ordered = line.slots.pop_front().flatten().flatten();
            line.head += 1;
            drop(line);
            // The part owns what it touches; a panic leaves nothing of ours half-updated.
            let panicked = ordered.is_some_and(|f| catch_unwind(AssertUnwindSafe(f)).is_err());
            finished += 1;
            line = self.line.lock().unwrap();
            line.panics += u64::from(panicked);
        }
        line.draining = false;
        finished
    }

    /// Ordered parts that panicked (their tickets still count as finished).
    pub(crate) fn panics(&self) -> u64 {
        self.line.lock().unwrap().panics
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex as StdMutex};

    fn push(log: &Arc<StdMutex<Vec<u32>>>, v: u32) -> Option<Ordered> {
        let log = log.clone();
        Some(Box::new(move || log.lock().unwrap().push(v)))
    }

    #[test]
    fn out_of_order_completions_run_in_ticket_order() {
        let seq = Sequencer::default();
        let log = Arc::new(StdMutex::new(Vec::new()));
        let (t0, t1, t2) = (seq.ticket(), seq.ticket(), seq.ticket());
        assert_eq!(seq.complete(t2, push(&log, 2)), 0, "waits for 0 and 1");
        assert_eq!(
            seq.complete(t1, None),
            0,
            "nothing to run, still waits for 0"
        );
        assert!(log.lock().unwrap().is_empty());
        assert_eq!(seq.complete(t0, push(&log, 0)), 3);
        assert_eq!(*log.lock().unwrap(), [0, 2]);
    }

    #[test]
    fn a_panicking_part_is_counted_and_the_line_moves_on() {
        let seq = Sequencer::default();
        let log = Arc::new(StdMutex::new(Vec::new()));
        let (t0, t1) = (seq.ticket(), seq.ticket());
        assert_eq!(seq.complete(t1, push(&log, 1)), 0);
        assert_eq!(
            seq.complete(t0, Some(Box::new(|| panic!("ordered part")))),
            2
        );
        assert_eq!(*log.lock().unwrap(), [1]);
        assert_eq!(seq.panics(), 1);
    }
}
