//! What an engine is, for everything but its I/O: its descriptor, the handle jobs keep
//! ([`EngineKind`]), and the options and file it is opened with.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io;
use std::sync::Arc;

use serde::{Serialize, Serializer};

use super::{registry, Engine};
use crate::job::values::alternatives;
use crate::job::{JobOption, JobSpec};

/// What an engine can do, as fio's engine flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Caps {
    /// I/O completes inside `queue`.
    pub sync: bool,
    /// No device: nothing reaches a file.
    pub diskless: bool,
    /// Queues I/O only with O_DIRECT: on a buffered file each I/O completes inside its
    /// submission (Linux AIO), so `iodepth` does not queue.
    pub queues_only_direct: bool,
}

impl Caps {
    /// The capabilities that hold, as words for `harness list`.
    pub fn words(self) -> Vec<&'static str> {
        let mut words = vec![if self.sync { "sync" } else { "async" }];
        if self.diskless {
            words.push("diskless");
        }
        if self.queues_only_direct {
            words.push("queues only with direct=1");
        }
        words
    }
}

/// How to open an engine.
pub struct EngineSetup<'a> {
    /// The clone's files, already opened (with O_DIRECT if the job asks), in the order
    /// [`super::IoReq::file`] numbers them; empty only for a diskless engine.
    pub files: Vec<Arc<File>>,
    /// The most I/Os the caller keeps in flight (rings and contexts are sized from it).
    pub depth: u32,
    pub options: &'a EngineOptions,
}

impl EngineSetup<'_> {
    /// The files, or an error saying that `engine` needs one.
    pub fn files(&self, engine: &str) -> io::Result<Vec<Arc<File>>> {
        if self.files.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{engine} needs a file"),
            ));
        }
        Ok(self.files.clone())
    }
}

/// One engine, as `harness list` shows it and as jobs open it.
pub struct EngineDescriptor {
    /// fio's name for it.
    pub name: &'static str,
    /// fio's other names for it.
    pub aliases: &'static [&'static str],
    /// One line: what each I/O is.
    pub summary: &'static str,
    pub caps: Caps,
    /// The engine's own options (fio's engine options); they are job options too.
    pub options: &'static [JobOption],
    /// Checks a job using this engine before it runs: an error refuses the job; the
    /// strings are warnings for the user (it runs, but not as it may expect).
    pub check: fn(&JobSpec) -> Result<Vec<String>, String>,
    pub open: fn(EngineSetup) -> io::Result<Box<dyn Engine>>,
}

/// The `check` of an engine that accepts every job.
pub(crate) fn accept_any(_: &JobSpec) -> Result<Vec<String>, String> {
    Ok(Vec::new())
}

/// A registered engine, as a job names it (`ioengine=`).
#[derive(Clone, Copy)]
pub struct EngineKind(&'static EngineDescriptor);

impl From<&'static EngineDescriptor> for EngineKind {
    fn from(descriptor: &'static EngineDescriptor) -> EngineKind {
        EngineKind(descriptor)
    }
}

impl EngineKind {
    /// `ioengine=VALUE`: a registered name or alias.
    pub fn parse(key: &str, value: &str) -> Result<EngineKind, String> {
        let v = value.trim();
        registry::find(v).map(EngineKind).ok_or_else(|| {
            let why = crate::job::fio::missing_engine(v)
                .unwrap_or_else(|| format!("expected {}", alternatives(&registry::names())));
            format!("{key}={v}: {why}")
        })
    }

    pub fn name(self) -> &'static str {
        self.0.name
    }

    pub fn descriptor(self) -> &'static EngineDescriptor {
        self.0
    }

    pub fn caps(self) -> Caps {
        self.0.caps
    }

    /// Opens the engine; see [`JobSpec::open_engine`] for a job's.
    pub fn open(self, setup: EngineSetup) -> io::Result<Box<dyn Engine>> {
        (self.0.open)(setup)
    }
}

impl Default for EngineKind {
    /// fio's default engine.
    fn default() -> Self {
        EngineKind(&super::psync::DESCRIPTOR)
    }
}

impl PartialEq for EngineKind {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for EngineKind {}

impl fmt::Debug for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        EngineKind::parse("ioengine", s)
    }
}

impl Serialize for EngineKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// The engine options a job set, by name; leaving one out, or setting its default, is the
/// same. Flags are 0 or 1, as in fio.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct EngineOptions(BTreeMap<&'static str, i64>);

impl EngineOptions {
    pub(crate) fn set(&mut self, name: &'static str, value: i64, default: i64) {
        if value == default {
            self.0.remove(name);
        } else {
            self.0.insert(name, value);
        }
    }

    /// The value set for `name`, if any.
    pub fn get(&self, name: &str) -> Option<i64> {
        self.0.get(name).copied()
    }

    /// Whether the flag `name` is set.
    pub fn flag(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| v != 0)
    }

    /// The names of the options set.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.keys().copied()
    }
}
