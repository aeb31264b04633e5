//! What must be done to a file before a case may measure it, decided in one place: from what
//! is at the path (nothing, a file csumbench wrote, someone else's file, a block device), what
//! its checksum store says (usable, csumbench's but unusable, another file's, nothing
//! telling), what the case does with it (writes, reads, both) and what the user allowed
//! (`--overwrite`, `--allow-device-write`, `--relayout`).
//!
//! The rules, so that a verdict is never false and nothing is written that was not named:
//! - a read verifies the data that is there; it lays the file out (writes it) first only when
//!   the file is new, is this run's scratch file, or the user said `--relayout` for a store of
//!   csumbench's that cannot verify it (interrupted, another checksum, too small);
//! - a file whose store does not vouch for it (none, another file's, one that cannot be read
//!   as a store) is someone else's: written, by a write job or by a read's layout, only with
//!   `--overwrite` (a block device only with `--allow-device-write`, which target opening
//!   also checks, with its mounts and holders);
//! - a store another process holds, or that cannot be read, stops the case.
//!
//! The harness executes the plan (lays out, opens, replaces the store) and records it.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use crate::store::{Algorithm, CsumStore, Mode, Overwrite, StoreError, Whose};

/// What the user allowed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Allowed {
    pub overwrite: bool,
    pub allow_device_write: bool,
    pub relayout: bool,
}

/// What a case does with one file, all its jobs together.
pub struct Use<'a> {
    pub path: &'a Path,
    pub writes: bool,
    pub reads: bool,
    /// The bytes the reads cover, `[start, end)`: the store must have their sums.
    pub read_range: (u64, u64),
    pub algorithm: Algorithm<'a>,
    /// The file is in this run's scratch folder: csumbench's own, whatever is there.
    pub scratch: bool,
}

/// What is to be done, and why.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Write the file once, unmeasured, before the case (so a read has something to
    /// verify, or a scratch file is allocated): why.
    pub lay_out: Option<String>,
    /// A store that will not be used is replaced by a new one: why.
    pub replace_store: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "refusing to write {}: csumbench did not write it ({why}); pass --overwrite to use \
         it anyway (its contents are replaced)",
        .path.display()
    )]
    NotOurs { path: PathBuf, why: String },
    #[error(
        "{}: {why}; a read verifies the data that is there and does not lay it out again: \
         pass --relayout to write it again (replacing what it holds)",
        .path.display()
    )]
    NeedsRelayout { path: PathBuf, why: String },
    #[error(
        "refusing to write to block device {}: {why}; pass --allow-device-write if that is \
         what you want (it destroys its contents)",
        .path.display()
    )]
    DeviceWrite { path: PathBuf, why: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the store at hand says about the file.
enum Store {
    /// Its sums are the file's, of the job's checksum; `covers`: they cover the reads.
    Usable { covers: bool },
    /// csumbench's store of this very file, which cannot verify it: why.
    OursUnusable(String),
    /// Nothing vouches that csumbench wrote the file: why.
    NotOurs(String),
}

/// Decides what must be done to `u.path` before the case, or why it must not run.
pub fn plan(u: &Use, allowed: &Allowed) -> Result<Plan, PlanError> {
    let Ok(meta) = std::fs::metadata(u.path) else {
        // What is in the store's way stops the job before its new file is made.
        let overwrite = match allowed.overwrite {
            true => Overwrite::AnyFile,
            false => Overwrite::StoresOnly,
        };
        // (Anything else, a folder that is not one, is for the file's own opening to name.)
        if let Err(e @ StoreError::WontOverwrite { .. }) =
            CsumStore::check_replaceable(&CsumStore::beside(u.path), overwrite)
        {
            return Err(e.into());
        }
        let why = match u.scratch {
            true => "a scratch file, allocated once so every case overwrites the same blocks",
            false => "a new file: no data and no checksum store yet",
        };
        let lay_out = (u.reads || u.scratch).then(|| why.to_string());
        return Ok(Plan {
            lay_out,
            replace_store: None,
        });
    };
    let device = meta.file_type().is_block_device();
    if !device && !meta.is_file() {
        // A directory, FIFO, device node: target opening says what it is.
        return Ok(Plan::default());
    }
    let store = probe(u, device)?;
    let path = u.path.to_path_buf();
    match store {
        Store::Usable { covers } if covers || !u.reads => Ok(Plan::default()),
        Store::Usable { .. } => ours_unusable(
            u,
            allowed,
            "the checksum store does not cover the job".into(),
        ),
        Store::OursUnusable(why) => ours_unusable(u, allowed, why),
        Store::NotOurs(why) if device && !allowed.allow_device_write => {
            Err(PlanError::DeviceWrite { path, why })
        }
        Store::NotOurs(why) if !device && !allowed.overwrite && !u.scratch => {
            Err(PlanError::NotOurs { path, why })
        }
        Store::NotOurs(why) => Ok(Plan {
            lay_out: u.reads.then(|| why.clone()),
            replace_store: Some(why),
        }),
    }
}

/// A store of csumbench's that cannot be used: a read may lay the file out again only when
/// told to (or in the scratch folder); a write just starts a new store.
fn ours_unusable(u: &Use, allowed: &Allowed, why: String) -> Result<Plan, PlanError> {
    if u.reads && !allowed.relayout && !u.scratch {
        return Err(PlanError::NeedsRelayout {
            path: u.path.to_path_buf(),
            why,
        });
    }
    Ok(Plan {
        lay_out: u.reads.then(|| why.clone()),
        replace_store: Some(why),
    })
}

/// Reads the store (shared, read-only, and let go) and says what it tells.
fn probe(u: &Use, device: bool) -> Result<Store, PlanError> {
    let store_path = CsumStore::path_for(u.path, device)?;
    let e = match CsumStore::open_for(&store_path, u.path, u.algorithm, Mode::Read) {
        Ok(store) => {
            let (start, end) = u.read_range;
            return Ok(Store::Usable {
                covers: store.covers(start, end),
            });
        }
        Err(e) => e,
    };
    match (e.whose(), &e) {
        (Whose::TheData, _) => Ok(Store::OursUnusable(e.to_string())),
        (Whose::OtherData, _) => Ok(Store::NotOurs(e.to_string())),
        (Whose::Unknown, StoreError::NotFound { .. }) => {
            let why = match device {
                true => "csumbench has no checksum store for it",
                false => "there is no checksum store of csumbench's beside it",
            };
            Ok(Store::NotOurs(why.into()))
        }
        (
            Whose::Unknown,
            StoreError::NotAStore { .. }
            | StoreError::Invalid { .. }
            | StoreError::OldFormat { .. }
            | StoreError::NewerFormat { .. },
        ) => Ok(Store::NotOurs(format!(
            "nothing tells whose data it is: {e}"
        ))),
        // Held by another run, unreadable, an identity that cannot be taken: stop.
        (Whose::Unknown, _) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Identity;
    use crate::SECTOR_SIZE;

    const CRC: Algorithm<'static> = Algorithm {
        name: "crc32c",
        csum_len: 4,
    };
    const SIZE: u64 = 8 * SECTOR_SIZE;

    fn uses(path: &Path, writes: bool, reads: bool) -> Use<'_> {
        Use {
            path,
            writes,
            reads,
            read_range: (0, SIZE),
            algorithm: CRC,
            scratch: false,
        }
    }

    /// A data file with a store of csumbench's: every sector summed, and clean if `persist`.
    fn ours(dir: &Path, name: &str, sectors: u64, persist: bool) -> PathBuf {
        let data = dir.join(name);
        std::fs::write(&data, vec![1u8; SIZE as usize]).unwrap();
        let store = CsumStore::create(
            &CsumStore::beside(&data),
            CRC,
            SIZE,
            &Identity::of(&data).unwrap(),
            Overwrite::StoresOnly,
        )
        .unwrap();
        store.record(0, &vec![0u8; sectors as usize * 4]).unwrap();
        if persist {
            store.persist(&std::fs::File::open(&data).unwrap()).unwrap();
        }
        // Unpersisted, it stays "being updated", as a run that died leaves it.
        drop(store);
        data
    }

    fn none() -> Allowed {
        Allowed::default()
    }

    #[test]
    fn a_new_file_is_laid_out_for_reads_and_left_alone_for_writes() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new");
        let p = plan(&uses(&new, false, true), &none()).unwrap();
        assert_eq!(
            p.lay_out.as_deref(),
            Some("a new file: no data and no checksum store yet")
        );
        assert_eq!(
            plan(&uses(&new, true, false), &none()).unwrap(),
            Plan::default()
        );
        let scratch = Use {
            scratch: true,
            ..uses(&new, true, false)
        };
        assert!(plan(&scratch, &none())
            .unwrap()
            .lay_out
            .unwrap()
            .contains("scratch"));
    }

    #[test]
    fn a_file_of_ours_is_read_and_written_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let data = ours(dir.path(), "d", 8, true);
        for (w, r) in [(true, false), (false, true), (true, true)] {
            assert_eq!(plan(&uses(&data, w, r), &none()).unwrap(), Plan::default());
        }
    }

    #[test]
    fn a_read_never_replaces_the_data_it_was_asked_to_verify_unless_told() {
        let dir = tempfile::tempdir().unwrap();
        let dirty = ours(dir.path(), "dirty", 8, false);
        let short = ours(dir.path(), "short", 4, true);
        for data in [&dirty, &short] {
            let e = plan(&uses(data, false, true), &none()).unwrap_err();
            assert!(matches!(e, PlanError::NeedsRelayout { .. }), "{e}");
            assert!(e.to_string().contains("pass --relayout"), "{e}");
            let told = Allowed {
                relayout: true,
                ..none()
            };
            let p = plan(&uses(data, false, true), &told).unwrap();
            assert!(p.lay_out.is_some() && p.replace_store.is_some(), "{p:?}");
            // A write needs no layout: it writes the data and records its sums.
            let p = plan(&uses(data, true, false), &none()).unwrap();
            assert!(p.lay_out.is_none(), "{p:?}");
        }
        // Over a store that was not cleanly closed, it starts a new one.
        let p = plan(&uses(&dirty, true, false), &none()).unwrap();
        assert!(p.replace_store.unwrap().contains("not cleanly closed"));
        assert!(plan(&uses(&dirty, false, true), &none())
            .unwrap_err()
            .to_string()
            .contains("not cleanly closed"));
    }

    #[test]
    fn a_file_nothing_vouches_for_is_not_ours() {
        let dir = tempfile::tempdir().unwrap();
        // A user's file with no store; another file moved over one of ours; a store path
        // holding something that is not a store.
        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"keep me").unwrap();
        let moved = ours(dir.path(), "moved", 8, true);
        let other = dir.path().join("other");
        std::fs::write(&other, vec![2u8; SIZE as usize]).unwrap();
        std::fs::rename(&other, &moved).unwrap();
        let odd = dir.path().join("odd");
        std::fs::write(&odd, b"data").unwrap();
        std::fs::write(CsumStore::beside(&odd), b"my notes, not a store").unwrap();
        for (data, says) in [
            (&plain, "no checksum store of csumbench's beside it"),
            (&moved, "written for a different file"),
            (&odd, "nothing tells whose data it is"),
        ] {
            for (w, r) in [(true, false), (false, true)] {
                let e = plan(&uses(data, w, r), &none()).unwrap_err();
                let msg = e.to_string();
                assert!(matches!(e, PlanError::NotOurs { .. }), "{msg}");
                assert!(msg.contains(says) && msg.contains("--overwrite"), "{msg}");
                // --relayout is not permission to write someone else's file.
                let relayout = Allowed {
                    relayout: true,
                    ..none()
                };
                assert!(plan(&uses(data, w, r), &relayout).is_err());
                let overwrite = Allowed {
                    overwrite: true,
                    ..none()
                };
                let p = plan(&uses(data, w, r), &overwrite).unwrap();
                assert_eq!(p.lay_out.is_some(), r, "{p:?}");
            }
        }
        assert_eq!(
            std::fs::read(&plain).unwrap(),
            b"keep me",
            "planning writes nothing"
        );
    }
}
