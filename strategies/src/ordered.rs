//! Ordered completions: ordered parts run one at a time, in the order their tickets were
//! taken, whatever order the run parts finish in (btrfs's `run_ordered_work`, and
//! `run_ordered_completions` in the kthread pools of 2008).
//!
//! Protocol: take a [`Ticket`] when the item is submitted; when its run part is done, the
//! worker hands the ordered part to [`Sequencer::complete`], which finishes every ticket now
//! due on that worker, unless another worker is already doing so. That worker looks at the
//! head of the line again before it stops, so nothing is left behind.
//!
//! The sequencer only decides who runs what when: running a part (and catching its panic)
//! and counting the item done is the [`Tracker`](crate::tracker::Tracker)'s, through the
//! `finish` callback.

use std::collections::VecDeque;

use crate::sync::Mutex;
use crate::work::Part;

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
    /// The ticket of `slots[0]`, the next one due.
    head: u64,
    /// One slot per ticket from `head` on, in ticket order.
    slots: VecDeque<Slot>,
    /// Slots that are `Done` and wait for their turn.
    waiting: u64,
    /// A worker is finishing tickets; the others leave theirs to it (the barrier that
    /// WORK_ORDER_DONE_BIT is in btrfs).
    draining: bool,
}

enum Slot {
    Running,
    /// The run part is done; the ordered part still to run (`None` when there is nothing to
    /// run: the item had none, or its run part panicked).
    Done(Option<Part>),
}

impl Line {
    /// Takes the head of the line if its run part is done: its ordered part, if any.
    fn pop_due(&mut self) -> Option<Option<Part>> {
        let Slot::Done(ordered) = self.slots.front_mut()? else {
            return None;
        };
        let ordered = ordered.take();
        self.slots.pop_front();
        self.head += 1;
        self.waiting -= 1;
        Some(ordered)
    }
}

impl Sequencer {
    /// The next place in line. Take it in submission order.
    pub(crate) fn ticket(&self) -> Ticket {
        let mut line = self.line.lock().unwrap();
        line.slots.push_back(Slot::Running);
        Ticket(line.head + line.slots.len() as u64 - 1)
    }

    /// Marks `ticket`'s run part done with `ordered` still to run, then hands every ticket
    /// now due, in ticket order, to `finish` on this thread (with its ordered part, if any),
    /// unless another thread is draining the line: that one then finishes this ticket too.
    /// `finish` runs without the line's lock, so an ordered part may dispatch more work.
    pub(crate) fn complete(
        &self,
        ticket: Ticket,
        ordered: Option<Part>,
        mut finish: impl FnMut(Option<Part>),
    ) {
        let mut line = self.line.lock().unwrap();
        let index = (ticket.0 - line.head) as usize;
        line.slots[index] = Slot::Done(ordered);
        line.waiting += 1;
        if line.draining {
            return;
        }
        line.draining = true;
        while let Some(ordered) = line.pop_due() {
            drop(line);
            finish(ordered);
            line = self.line.lock().unwrap();
        }
        line.draining = false;
    }

    /// Tickets whose run part is done, waiting for their turn.
    pub(crate) fn waiting(&self) -> u64 {
        self.line.lock().unwrap().waiting
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex as StdMutex};

    fn push(log: &Arc<StdMutex<Vec<u32>>>, v: u32) -> Option<Part> {
        let log = log.clone();
        Some(Box::new(move || log.lock().unwrap().push(v)))
    }

    /// Completes `ticket` and returns how many tickets this call finished.
    fn complete(seq: &Sequencer, ticket: Ticket, ordered: Option<Part>) -> usize {
        let mut finished = 0;
        seq.complete(ticket, ordered, |part| {
            part.into_iter().for_each(|run| run());
            finished += 1;
        });
        finished
    }

    #[test]
    fn out_of_order_completions_run_in_ticket_order() {
        let seq = Sequencer::default();
        let log = Arc::new(StdMutex::new(Vec::new()));
        let (t0, t1, t2) = (seq.ticket(), seq.ticket(), seq.ticket());
        assert_eq!(complete(&seq, t2, push(&log, 2)), 0, "waits for 0 and 1");
        assert_eq!(complete(&seq, t1, None), 0, "nothing to run, still waits");
        assert_eq!(seq.waiting(), 2);
        assert!(log.lock().unwrap().is_empty());
        assert_eq!(complete(&seq, t0, push(&log, 0)), 3);
        assert_eq!(*log.lock().unwrap(), [0, 2]);
        assert_eq!(seq.waiting(), 0);
    }

    #[test]
    fn tickets_taken_after_a_drain_start_where_it_stopped() {
        let seq = Sequencer::default();
        let log = Arc::new(StdMutex::new(Vec::new()));
        let t0 = seq.ticket();
        assert_eq!(complete(&seq, t0, push(&log, 0)), 1);
        let (t1, t2) = (seq.ticket(), seq.ticket());
        assert_eq!(complete(&seq, t2, push(&log, 2)), 0);
        assert_eq!(complete(&seq, t1, push(&log, 1)), 2);
        assert_eq!(*log.lock().unwrap(), [0, 1, 2]);
    }
}

#[cfg(all(test, loom))]
mod models {
    use super::*;
    use crate::loom_models::model;
    use crate::sync::{thread, Arc, AtomicUsize, Ordering::SeqCst};

    /// What the ordered parts did: the order they ran in, and whether two ever overlapped.
    #[derive(Default)]
    struct Log {
        order: Mutex<Vec<u64>>,
        /// Ordered parts running now, and the most ever at once.
        inside: AtomicUsize,
        most_inside: AtomicUsize,
    }

    fn part(log: &Arc<Log>, i: u64) -> Option<Part> {
        let log = log.clone();
        Some(Box::new(move || {
            let inside = log.inside.fetch_add(1, SeqCst) + 1;
            log.most_inside.fetch_max(inside, SeqCst);
            log.order.lock().unwrap().push(i);
            log.inside.fetch_sub(1, SeqCst);
        }))
    }

    fn complete(seq: &Sequencer, ticket: Ticket, ordered: Option<Part>) {
        seq.complete(ticket, ordered, |due| due.into_iter().for_each(|run| run()));
    }

    /// Three run parts finish at once on three threads: every ordered part runs exactly
    /// once, in ticket order, one at a time, and the line is left empty and not draining.
    #[test]
    fn racing_completions_run_every_part_once_in_turn() {
        model(2, || {
            let seq = Arc::new(Sequencer::default());
            let log = Arc::new(Log::default());
            let mut tickets: Vec<Ticket> = (0..3).map(|_| seq.ticket()).collect();
            let first = tickets.remove(0);
            let others: Vec<_> = (1..)
                .zip(tickets)
                .map(|(i, ticket)| {
                    let (seq, log) = (seq.clone(), log.clone());
                    thread::spawn(move || complete(&seq, ticket, part(&log, i)))
                })
                .collect();
            complete(&seq, first, part(&log, 0));
            others.into_iter().for_each(|t| t.join().unwrap());
            assert_eq!(*log.order.lock().unwrap(), [0, 1, 2]);
            assert_eq!(log.most_inside.load(SeqCst), 1, "ordered parts overlapped");
            assert_eq!(seq.waiting(), 0);
            // Not left draining: the next ticket runs at once.
            complete(&seq, seq.ticket(), part(&log, 3));
            assert_eq!(log.order.lock().unwrap().len(), 4);
        });
    }
}
