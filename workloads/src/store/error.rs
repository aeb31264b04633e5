//! Why a checksum store cannot be used: one typed error per reason, so that a caller decides
//! in one place whether to lay the data out again or to refuse.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::Mode;

/// A header field of a store file, as its messages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The file's length, against what the header describes.
    Length,
    State,
    CsumLen,
    SectorSize,
    DataSize,
    Algorithm,
    IdentityLen,
    Identity,
    HeaderCrc,
    BitmapCrc,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Length => "length",
            Field::State => "state",
            Field::CsumLen => "csum_len",
            Field::SectorSize => "sector_size",
            Field::DataSize => "data_size",
            Field::Algorithm => "algorithm",
            Field::IdentityLen => "identity_len",
            Field::Identity => "identity",
            Field::HeaderCrc => "header_crc",
            Field::BitmapCrc => "bitmap_crc",
        })
    }
}

/// What sits at a store's path when it is not a store of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Foreign {
    /// A store is never read or written through a symlink.
    Symlink,
    /// A directory, FIFO, socket or device node: what it is.
    NotAFile(&'static str),
    /// A regular file without csumbench's magic number.
    NoMagic,
}

impl fmt::Display for Foreign {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Foreign::Symlink => f.write_str("it is a symbolic link"),
            Foreign::NotAFile(kind) => write!(f, "it is a {kind}"),
            Foreign::NoMagic => f.write_str("it does not begin with csumbench's magic number"),
        }
    }
}

/// Whose data a store's checksums are of, as far as the store can tell: what decides
/// whether the data at hand is csumbench's (to lay out again when its store cannot be
/// used) or someone else's (to write over only with the user's permission).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    /// The store records this very file's or device's identity: csumbench wrote the data,
    /// even if the store cannot be used now (not cleanly closed, another algorithm,
    /// damaged past its header).
    TheData,
    /// The store records another file or device: what is at the data's path now is not
    /// what csumbench wrote there.
    OtherData,
    /// Nothing tells: no store, a file that is not one, a header damaged before its
    /// identity, a format that recorded none, or data that cannot be identified.
    Unknown,
}

/// Why a store's checksums are not for the data at hand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Stale {
    #[error("the checksum store was written for a different {what} (was: {was}, now: {now})")]
    Different {
        what: &'static str,
        was: String,
        now: String,
    },
    #[error("cannot tell which file or device {} is: {error}", .data.display())]
    Unknown { data: PathBuf, error: String },
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no checksum store at {}", .path.display())]
    NotFound { path: PathBuf },
    /// Something else is at the path; opening it is refused.
    #[error("{} is not a csumbench checksum store ({why})", .path.display())]
    NotAStore { path: PathBuf, why: Foreign },
    /// Creating a store would replace something that is not one.
    #[error(
        "refusing to overwrite {}: it is not a csumbench checksum store ({why})",
        .path.display()
    )]
    WontOverwrite { path: PathBuf, why: Foreign },
    #[error("cannot {} checksum store {}: {error}", mode.verb(), .path.display())]
    Unreadable {
        path: PathBuf,
        mode: Mode,
        error: io::Error,
    },
    /// A header field that does not hold: the store is damaged or not what it claims.
    /// `whose` is [`Whose::TheData`] when the header held as far as the identity, and that
    /// is the data's.
    #[error("checksum store {}: {field}={value} {why}", .path.display())]
    Invalid {
        path: PathBuf,
        field: Field,
        value: String,
        why: String,
        whose: Whose,
    },
    /// A sound store of the data, of another algorithm's checksums.
    #[error(
        "checksum store {}: its checksums are {found}, not {expected}",
        .path.display()
    )]
    OtherAlgorithm {
        path: PathBuf,
        found: String,
        expected: String,
    },
    /// A store of the data, left "being updated".
    #[error(
        "checksum store {}: not cleanly closed (the run that wrote it did not finish: it \
         failed, was interrupted or was killed); its checksums cannot be trusted",
        .path.display()
    )]
    Dirty { path: PathBuf },
    /// Format 1 recorded no identity ([`Whose::Unknown`]); format 2's, unprotected, is
    /// compared with the data's all the same, to tell whose the store is.
    #[error(
        "checksum store {}: written by an older csumbench (store format {format}), \
         which did not protect it with checksums of its own; not trusted",
        .path.display()
    )]
    OldFormat {
        path: PathBuf,
        format: u32,
        whose: Whose,
    },
    #[error(
        "checksum store {}: written by a newer csumbench (store format {format})",
        .path.display()
    )]
    NewerFormat { path: PathBuf, format: u32 },
    #[error(transparent)]
    Stale(Stale),
    /// Another store of the same file holds a conflicting lock: a writer excludes all.
    #[error(
        "checksum store {} is in use by {}: another csumbench is running on the same data",
        .path.display(),
        holder(*.pid)
    )]
    Locked { path: PathBuf, pid: Option<u32> },
    /// Where block devices' stores go is not private to this user.
    #[error("cannot keep checksum stores of block devices in {}: {why}", .dir.display())]
    PrivateDir { dir: PathBuf, why: String },
    /// A system call on a store that was opened failed.
    #[error("checksum store {}: {what}: {error}", .path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        error: io::Error,
    },
}

impl StoreError {
    /// Whose data the store is of, as far as this error tells. An open that succeeds is
    /// [`Whose::TheData`]: the identity is checked before anything else is believed, so
    /// every refusal after it (not cleanly closed, another algorithm, a field or the
    /// bitmap damaged) is about a store of the data.
    pub fn whose(&self) -> Whose {
        match self {
            StoreError::Dirty { .. } | StoreError::OtherAlgorithm { .. } => Whose::TheData,
            StoreError::Invalid { whose, .. } | StoreError::OldFormat { whose, .. } => *whose,
            StoreError::Stale(Stale::Different { .. }) => Whose::OtherData,
            _ => Whose::Unknown,
        }
    }

    /// This error, found in a store whose identity is the data's.
    pub(super) fn of_the_data(mut self) -> Self {
        if let StoreError::Invalid { whose, .. } = &mut self {
            *whose = Whose::TheData;
        }
        self
    }
}

fn holder(pid: Option<u32>) -> String {
    match pid {
        Some(pid) if pid == std::process::id() => {
            "this process (an earlier job of this run still holds it)".into()
        }
        Some(pid) => format!("process {pid}"),
        None => "another process (whose pid is not visible here)".into(),
    }
}

impl Mode {
    fn verb(self) -> &'static str {
        match self {
            Mode::Read => "read",
            Mode::Update => "open for update",
        }
    }
}
