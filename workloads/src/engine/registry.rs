//! Every engine, by name. Adding an engine is one file with its [`EngineDescriptor`] and
//! its name in the `engines!` list of the engine module: `ioengine=`, its options,
//! `harness list`, the README's option table and the engine conformance tests all follow.

use super::{EngineDescriptor, ENGINES};

/// Every registered engine, in the order `harness list` shows them.
pub fn engines() -> &'static [&'static EngineDescriptor] {
    ENGINES
}

/// The engine with this name or alias.
pub fn find(name: &str) -> Option<&'static EngineDescriptor> {
    ENGINES
        .iter()
        .copied()
        .find(|e| e.name == name || e.aliases.contains(&name))
}

/// Every name `ioengine=` takes: each engine's, then its aliases.
pub fn names() -> Vec<&'static str> {
    ENGINES
        .iter()
        .flat_map(|e| std::iter::once(e.name).chain(e.aliases.iter().copied()))
        .collect()
}

/// The engines that declare the option `name` (none for a job option).
pub fn declaring(name: &str) -> Vec<&'static str> {
    ENGINES
        .iter()
        .filter(|e| e.options.iter().any(|o| o.name == name))
        .map(|e| e.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_find_their_engine() {
        for e in engines() {
            assert_eq!(find(e.name).map(|d| d.name), Some(e.name));
            for alias in e.aliases {
                assert_eq!(find(alias).map(|d| d.name), Some(e.name), "{alias}");
            }
        }
        assert!(find("posixaio").is_none());
        assert_eq!(find("aio").map(|d| d.name), Some("libaio"));
        let mut names = names();
        let all = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all, "a name is used twice");
    }
}
