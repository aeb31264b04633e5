//! Fault injection (`harness --inject KIND@N`): wraps any engine and makes the Nth data I/O
//! of a case fail the way storage fails, so every error path of the harness can be driven on
//! demand and tested. The count is shared by all jobs of a case, so exactly one I/O fails.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{Caps, Engine, IoDone, IoReq};

/// How the chosen I/O fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoFault {
    /// Completes with EIO, as a failing medium does.
    Eio,
    /// Completes with ENOSPC, as a full (thin-provisioned) device does.
    Enospc,
    /// Completes short: fewer bytes than asked and no error code.
    Short,
    /// Never completes, as an I/O lost by a device or a driver: the submitter waiting for it
    /// blocks for good, so only the watchdog can notice.
    Hang,
}

impl IoFault {
    pub const NAMES: [&'static str; 4] = ["eio", "enospc", "short", "hang"];

    pub fn name(self) -> &'static str {
        match self {
            IoFault::Eio => "eio",
            IoFault::Enospc => "enospc",
            IoFault::Short => "short",
            IoFault::Hang => "hang",
        }
    }
}

impl FromStr for IoFault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "eio" => Ok(IoFault::Eio),
            "enospc" => Ok(IoFault::Enospc),
            "short" => Ok(IoFault::Short),
            "hang" => Ok(IoFault::Hang),
            other => Err(format!(
                "unknown I/O fault '{other}': expected {}",
                IoFault::NAMES.join(", ")
            )),
        }
    }
}

impl fmt::Display for IoFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which I/Os of a case fail, and the count of I/Os issued so far, shared by its jobs.
#[derive(Debug, Default)]
pub struct FaultPlan {
    faults: Vec<(IoFault, u64)>,
    issued: AtomicU64,
}

impl FaultPlan {
    /// `faults`: each fault with the 1-based number of the I/O it hits.
    pub fn new(faults: Vec<(IoFault, u64)>) -> Arc<FaultPlan> {
        Arc::new(FaultPlan {
            faults,
            issued: AtomicU64::new(0),
        })
    }

    /// Counts one I/O; the fault it must suffer, if any.
    fn next(&self) -> Option<(IoFault, u64)> {
        let n = self.issued.fetch_add(1, Ordering::Relaxed) + 1;
        self.faults.iter().copied().find(|&(_, at)| at == n)
    }
}

/// An engine whose I/Os fail according to a [`FaultPlan`]; the rest go to the real engine.
pub struct FaultyEngine {
    inner: Box<dyn Engine>,
    plan: Arc<FaultPlan>,
    /// Failed I/Os, completed at the next reap.
    failed: VecDeque<IoDone>,
    /// Hung I/Os: never completed. Their buffers are never touched again.
    hung: Vec<IoReq>,
}

impl FaultyEngine {
    pub fn new(inner: Box<dyn Engine>, plan: Arc<FaultPlan>) -> FaultyEngine {
        FaultyEngine {
            inner,
            plan,
            failed: VecDeque::new(),
            hung: Vec::new(),
        }
    }

    /// Blocks the calling thread for good, as a wait for a lost I/O does.
    fn hang(&self) -> ! {
        loop {
            std::thread::park();
        }
    }
}

fn injected(fault: IoFault, at: u64, req: &IoReq) -> io::Error {
    let cause = format!("injected by --inject {fault}@{at}");
    match fault {
        IoFault::Eio | IoFault::Enospc => {
            let errno = if fault == IoFault::Eio {
                libc::EIO
            } else {
                libc::ENOSPC
            };
            let os = io::Error::from_raw_os_error(errno);
            io::Error::new(os.kind(), format!("{os}, {cause}"))
        }
        IoFault::Short => io::Error::other(format!(
            "short {} at offset {}: fewer than {} bytes transferred, {cause}",
            req.op.name(),
            req.offset,
            req.buf.len()
        )),
        IoFault::Hang => unreachable!("a hung I/O never completes"),
    }
}

impl Engine for FaultyEngine {
    fn caps(&self) -> Caps {
        self.inner.caps()
    }

    fn queue(&mut self, req: IoReq) -> io::Result<()> {
        match self.plan.next() {
            None => self.inner.queue(req),
            Some((IoFault::Hang, _)) => {
                self.hung.push(req);
                Ok(())
            }
            Some((fault, at)) => {
                let error = injected(fault, at, &req);
                self.failed.push_back(IoDone {
                    req,
                    result: Err(error),
                });
                Ok(())
            }
        }
    }

    fn commit(&mut self) -> io::Result<()> {
        self.inner.commit()
    }

    fn reap(&mut self, min: usize, out: &mut Vec<IoDone>) -> io::Result<()> {
        let before = out.len();
        out.extend(self.failed.drain(..));
        let want = min.saturating_sub(out.len() - before);
        self.inner.reap(want.min(self.inner.in_flight()), out)?;
        if out.len() - before < min && !self.hung.is_empty() {
            self.hang();
        }
        Ok(())
    }

    fn in_flight(&self) -> usize {
        self.inner.in_flight() + self.failed.len() + self.hung.len()
    }

    fn sync(&mut self, file: usize) -> io::Result<()> {
        // fsync waits for every write, the lost one too.
        if !self.hung.is_empty() {
            self.hang();
        }
        self.inner.sync(file)
    }

    fn register_buffers(&mut self, bufs: &[&crate::AlignedBuf]) -> io::Result<()> {
        self.inner.register_buffers(bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{NullEngine, Op};
    use crate::AlignedBuf;

    fn req(tag: u64) -> IoReq {
        IoReq {
            file: 0,
            op: Op::Write,
            offset: tag * 4096,
            buf: AlignedBuf::new(4096),
            tag,
        }
    }

    #[test]
    fn only_the_chosen_io_fails_and_says_it_was_injected() {
        let plan = FaultPlan::new(vec![(IoFault::Eio, 2), (IoFault::Short, 4)]);
        let mut e = FaultyEngine::new(Box::new(NullEngine::default()), plan);
        let mut done = Vec::new();
        for tag in 0..5 {
            e.queue(req(tag)).unwrap();
            e.commit().unwrap();
            e.reap(1, &mut done).unwrap();
        }
        assert_eq!(e.in_flight(), 0);
        let errors: Vec<(u64, String)> = done
            .iter()
            .filter_map(|d| d.result.as_ref().err().map(|e| (d.req.tag, e.to_string())))
            .collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].0, 1);
        assert!(
            errors[0].1.contains("os error 5") && errors[0].1.contains("--inject eio@2"),
            "{errors:?}"
        );
        assert_eq!(errors[1].0, 3);
        assert!(errors[1].1.contains("short write at offset 12288"));
    }

    #[test]
    fn a_hung_io_stays_in_flight() {
        let plan = FaultPlan::new(vec![(IoFault::Hang, 1)]);
        let mut e = FaultyEngine::new(Box::new(NullEngine::default()), plan);
        e.queue(req(0)).unwrap();
        e.queue(req(1)).unwrap();
        let mut done = Vec::new();
        // Asking for no more than what did complete does not block.
        e.reap(1, &mut done).unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].req.tag, 1);
        assert_eq!(e.in_flight(), 1);
    }

    #[test]
    fn names_round_trip() {
        for name in IoFault::NAMES {
            assert_eq!(name.parse::<IoFault>().unwrap().name(), name);
        }
        assert!("eoi".parse::<IoFault>().unwrap_err().contains("eio"));
    }
}
