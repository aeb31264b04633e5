//! Every backend, by name. Adding a backend is one file and one line in `lib.rs`'s
//! `backends!` list.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::spec::{Knobs, Spec, SpecError};
use crate::Strategy;

/// A knob a backend accepts, with its default (a function: some defaults depend on the
/// machine, like "2 x online CPUs").
pub struct Knob {
    pub name: &'static str,
    pub default: fn() -> String,
    pub help: &'static str,
}

/// The `threads` knob of a pool that starts a fixed number of threads, by default one per
/// online CPU.
pub const fn threads_knob(help: &'static str) -> Knob {
    Knob {
        name: "threads",
        default: || online_cpus().to_string(),
        help,
    }
}

/// How to build one backend, and what `harness list` says about it.
pub struct Descriptor {
    pub name: &'static str,
    pub summary: &'static str,
    pub knobs: &'static [Knob],
    pub build: fn(&Knobs) -> Result<Arc<dyn Strategy>, SpecError>,
}

/// Every registered backend, in the order `harness list` prints them.
pub fn descriptors() -> &'static [Descriptor] {
    crate::BACKENDS
}

/// Declares every backend's module (one file each, exporting its `DESCRIPTOR`) and
/// registers it in [`descriptors`], one line per backend, attributes such as `#[cfg]` kept.
macro_rules! backends {
    ($($(#[$attr:meta])* $module:ident,)+) => {
        $($(#[$attr])* pub mod $module;)+

        const BACKENDS: &[$crate::registry::Descriptor] = &[$($(#[$attr])* $module::DESCRIPTOR,)+];
    };
}
pub(crate) use backends;
/// Looks a backend up by name.
pub fn descriptor(name: &str) -> Result<&'static Descriptor, SpecError> {
    descriptors()
        .iter()
        .find(|d| d.name == name)
        .ok_or_else(|| SpecError::UnknownStrategy(name.to_string()))
}

/// Resolves a spec against its backend's knobs: unknown knobs are errors, defaults filled.
pub fn resolve(spec: &str) -> Result<(&'static Descriptor, Knobs), SpecError> {
    let spec = Spec::parse(spec)?;
    let desc = descriptor(&spec.name)?;
    for knob in spec.knobs.keys() {
        if !desc.knobs.iter().any(|k| k.name == knob) {
            let known: Vec<&str> = desc.knobs.iter().map(|k| k.name).collect();
            return Err(SpecError::UnknownKnob {
                strategy: spec.name.clone(),
                knob: knob.clone(),
                known: if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                },
            });
        }
    }
    let values: BTreeMap<String, String> = desc
        .knobs
        .iter()
        .map(|k| {
            let v = spec
                .knobs
                .get(k.name)
                .cloned()
                .unwrap_or_else(|| (k.default)());
            (k.name.to_string(), v)
        })
        .collect();
    Ok((desc, Knobs::new(desc.name, values)))
}

/// Builds a strategy from a spec string such as `kthread:max_workers=4,ordered=1`.
pub fn build(spec: &str) -> Result<Arc<dyn Strategy>, SpecError> {
    let (desc, knobs) = resolve(spec)?;
    let strategy = (desc.build)(&knobs)?;
    // One configuration, one name: results are grouped by it.
    debug_assert_eq!(strategy.name(), knobs.spec_string(), "a backend's name");
    Ok(strategy)
}

/// Online CPUs, for defaults like "2 x CPUs".
pub fn online_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

// Under loom the pools' primitives only work inside a model.
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_and_knobs_are_named_in_the_error() {
        let e = build("nope").err().unwrap().to_string();
        assert!(e.contains("unknown strategy 'nope'"), "{e}");
        let e = build("kthread:bogus=1").err().unwrap().to_string();
        assert!(e.contains("unknown knob 'bogus'"), "{e}");
        assert!(e.contains("max_workers"), "{e}");
        let e = build("kthread:max_workers=0").err().unwrap().to_string();
        assert!(e.contains("max_workers=0"), "{e}");
        let e = build("kthread:max_workers").err().unwrap().to_string();
        assert!(e.contains("malformed"), "{e}");
        let e = build("inline:x=1").err().unwrap().to_string();
        assert!(e.contains("known: none"), "{e}");
    }

    #[test]
    fn names_carry_every_knob() {
        let s = build("kthread:max_workers=3").unwrap();
        assert!(s.name().starts_with("kthread:"), "{}", s.name());
        assert!(s.name().contains("max_workers=3"), "{}", s.name());
        assert!(s.name().contains("idle_thresh=64"), "{}", s.name());
        assert_eq!(build("inline").unwrap().name(), "inline");
    }

    #[test]
    fn ordered_is_said_by_the_pools_that_order() {
        for (spec, ordered) in [
            ("kthread:ordered=1", true),
            ("kthread", false),
            ("btrfs-wq", true),
            ("workqueue", false),
            ("overlap", false),
            ("inline", false),
        ] {
            assert_eq!(build(spec).unwrap().ordered(), ordered, "{spec}");
        }
    }
}
