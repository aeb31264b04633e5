//! `--inject KIND@N`: faults on demand, so a user (and the tests) can see what the harness
//! does when storage or a pool misbehaves. Counted per case, over all its jobs:
//!
//! | KIND | what happens to the Nth … |
//! |---|---|
//! | `eio` | data I/O: completes with EIO |
//! | `enospc` | data I/O: completes with ENOSPC |
//! | `short` | data I/O: completes short |
//! | `hang` | data I/O: never completes (the watchdog reports a stall) |
//! | `panic` | checksum or endio work item: panics inside the pool |

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use workloads::engine::{FaultPlan, IoFault};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injection {
    Io(IoFault, u64),
    /// The Nth checksum or endio work item the pipeline dispatches panics.
    Panic(u64),
}

impl FromStr for Injection {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let kinds = format!("{}, panic", IoFault::NAMES.join(", "));
        let (kind, at) = s.split_once('@').ok_or_else(|| {
            format!("{s}: expected KIND@N, KIND one of {kinds}, N the I/O or work item (from 1)")
        })?;
        let at: u64 = at
            .parse()
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| format!("{s}: N must be a whole number from 1, not '{at}'"))?;
        if kind == "panic" {
            return Ok(Injection::Panic(at));
        }
        let fault = kind
            .parse()
            .map_err(|_| format!("{s}: unknown fault '{kind}', expected one of {kinds}"))?;
        Ok(Injection::Io(fault, at))
    }
}

impl fmt::Display for Injection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Injection::Io(fault, at) => write!(f, "{fault}@{at}"),
            Injection::Panic(at) => write!(f, "panic@{at}"),
        }
    }
}

impl serde::Serialize for Injection {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The I/O faults of a run, as a fresh plan for one case; `None` when there are none.
pub fn io_plan(injections: &[Injection]) -> Option<Arc<FaultPlan>> {
    let faults: Vec<(IoFault, u64)> = injections
        .iter()
        .filter_map(|i| match *i {
            Injection::Io(fault, at) => Some((fault, at)),
            Injection::Panic(_) => None,
        })
        .collect();
    (!faults.is_empty()).then(|| FaultPlan::new(faults))
}

/// The work item that must panic, if any.
pub fn panic_at(injections: &[Injection]) -> Option<u64> {
    injections.iter().find_map(|i| match *i {
        Injection::Panic(at) => Some(at),
        Injection::Io(..) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind_and_names_what_is_wrong() {
        assert_eq!(
            "eio@3".parse::<Injection>(),
            Ok(Injection::Io(IoFault::Eio, 3))
        );
        assert_eq!("panic@1".parse::<Injection>(), Ok(Injection::Panic(1)));
        for s in ["enospc@2", "short@7", "hang@1", "panic@9"] {
            assert_eq!(s.parse::<Injection>().unwrap().to_string(), s);
        }
        for (bad, needle) in [
            ("eio", "KIND@N"),
            ("eio@0", "from 1"),
            ("eio@-1", "'-1'"),
            ("eio@x", "'x'"),
            ("boom@1", "unknown fault 'boom'"),
            ("@1", "unknown fault ''"),
        ] {
            let e = bad.parse::<Injection>().unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }
}
