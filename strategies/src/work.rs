/// One unit of work: a `run` part, and an optional `ordered` part that runs after it.
///
/// This is btrfs's `btrfs_work` with `func` and `ordered_func`: `run` may execute
/// concurrently with other items; in an ordered pool the `ordered` parts execute in
/// dispatch order (btrfs uses this to submit checksummed bios in the order writeback
/// sent them, so streaming stays streaming).
pub struct Work {
    run: Part,
    ordered: Option<Part>,
}

/// One part of a work item.
pub type Part = Box<dyn FnOnce() + Send + 'static>;

impl Work {
    pub fn new(run: impl FnOnce() + Send + 'static) -> Self {
        Work {
            run: Box::new(run),
            ordered: None,
        }
    }

    pub fn with_ordered(
        run: impl FnOnce() + Send + 'static,
        ordered: impl FnOnce() + Send + 'static,
    ) -> Self {
        Work {
            run: Box::new(run),
            ordered: Some(Box::new(ordered)),
        }
    }

    /// The same item with `first` run just before its run part (btrfs-wq's
    /// thresh_exec_hook).
    pub(crate) fn with_prologue(self, first: impl FnOnce() + Send + 'static) -> Work {
        let run = self.run;
        Work {
            run: Box::new(move || {
                first();
                run();
            }),
            ordered: self.ordered,
        }
    }

    /// Splits the item so an ordered backend can run the parts at different times.
    pub fn into_parts(self) -> (Part, Option<Part>) {
        (self.run, self.ordered)
    }
}

impl std::fmt::Debug for Work {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Work")
            .field("ordered", &self.ordered.is_some())
            .finish()
    }
}
