//! Store format 3: the header, checked field by field, and where the bitmap and the
//! checksums sit. The byte layout is in the module documentation of [`super`].

use std::path::Path;

use super::error::{Field, Foreign, StoreError, Whose};
use super::Algorithm;
use crate::SECTOR_SIZE;

pub(super) const MAGIC: &[u8; 8] = b"CSUMBCH1";
pub(super) const FORMAT: u32 = 3;
/// The fixed part of the header; the identity follows it.
pub(super) const HEADER_LEN: usize = 64;
const ALGO_FIELD: std::ops::Range<usize> = 32..48;
pub(super) const HEADER_CRC: std::ops::Range<usize> = 56..60;
/// No identity is longer (a loop device's is mostly its backing file's path).
pub(super) const MAX_IDENTITY: usize = 64 << 10;
/// btrfs's largest checksum is 32 bytes: room for twice that.
pub(super) const MAX_CSUM_LEN: usize = 64;
/// What `open` reads before trusting any length: the header and the longest identity.
pub(super) const MAX_HEAD: usize = HEADER_LEN + MAX_IDENTITY;
/// The bitmap and the checksums start on 4 KiB boundaries: each maps as whole pages, and
/// the bitmap goes back to the file in 4 KiB blocks.
pub(super) const ALIGN: u64 = 4096;

/// Whether the checksums may be trusted. The values are not format 1's "clean" (1), so a
/// format-1 reader, which never looked at the format, refuses a format-3 store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// Open for update: the data may have changed since the checksums were recorded.
    Updating = 2,
    /// Closed by `persist`, after the data was made durable.
    Clean = 3,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Header {
    pub state: State,
    pub algo: String,
    pub csum_len: usize,
    pub sectors: u64,
    pub identity: String,
    /// crc32c of the bitmap when the store was last marked clean.
    pub bitmap_crc: u32,
}

/// Where the parts of a store file are, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Layout {
    pub bitmap_at: u64,
    pub bitmap_words: u64,
    pub sums_at: u64,
    pub sums_len: u64,
}

impl Layout {
    /// None when the sizes do not fit in a file (or in memory, to be mapped).
    pub fn of(identity_len: usize, sectors: u64, csum_len: usize) -> Option<Layout> {
        let bitmap_at = (HEADER_LEN as u64 + identity_len as u64).next_multiple_of(ALIGN);
        let bitmap_words = sectors.div_ceil(64);
        let sums_at = bitmap_at
            .checked_add(bitmap_words * 8)?
            .checked_next_multiple_of(ALIGN)?;
        let sums_len = sectors.checked_mul(csum_len as u64)?;
        let layout = Layout {
            bitmap_at,
            bitmap_words,
            sums_at,
            sums_len,
        };
        let end = sums_at.checked_add(sums_len)?;
        (end <= isize::MAX as u64).then_some(layout)
    }

    pub fn bitmap_len(&self) -> u64 {
        self.bitmap_words * 8
    }

    pub fn file_len(&self) -> u64 {
        self.sums_at + self.sums_len
    }
}

/// A field that does not hold, in a store not (yet) known to be of the data.
fn invalid(path: &Path, field: Field, value: impl ToString, why: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        path: path.to_path_buf(),
        field,
        value: value.to_string(),
        why: why.into(),
        whose: Whose::Unknown,
    }
}

fn other_format(path: &Path, format: u32) -> StoreError {
    let path = path.to_path_buf();
    match format {
        f if f < FORMAT => StoreError::OldFormat {
            path,
            format: f,
            whose: Whose::Unknown,
        },
        f => StoreError::NewerFormat { path, format: f },
    }
}

/// Where a format-2 store keeps its identity, unprotected: after the 64-byte header, the
/// bitmap and the checksums, `identity_len` bytes (header bytes 48..52; format 1 left them
/// zero) that end the file. None where the file is not laid out so (format 1, or a store
/// of another format with a flipped bit): no identity to read.
pub(super) fn format2_identity(head: &[u8], file_len: u64) -> Option<std::ops::Range<u64>> {
    let fixed = head.get(..HEADER_LEN)?;
    let sectors = u64::from_le_bytes(fixed[24..32].try_into().expect("8 bytes")) / SECTOR_SIZE;
    let sums_len = sectors.checked_mul(u32_at(fixed, 16) as u64)?;
    let id_at = (HEADER_LEN as u64 + sectors.div_ceil(64) * 8).checked_add(sums_len)?;
    let id_len = u32_at(fixed, 48) as u64;
    let fits =
        (1..=MAX_IDENTITY as u64).contains(&id_len) && id_at.checked_add(id_len) == Some(file_len);
    (u32_at(fixed, 8) == 2 && fits).then_some(id_at..file_len)
}

/// Raw bytes for a message: quoted, non-ASCII escaped.
fn quoted(raw: &[u8]) -> String {
    format!("\"{}\"", raw.escape_ascii())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// The header's checksum: over the fixed part (its own field as zeros) and the identity.
pub(super) fn header_crc(head: &[u8]) -> u32 {
    let zeros = [0u8; 4];
    let crc = crc32c::crc32c(&head[..HEADER_CRC.start]);
    let crc = crc32c::crc32c_append(crc, &zeros);
    crc32c::crc32c_append(crc, &head[HEADER_CRC.end..])
}

/// An algorithm's name fits the header: 1 to 16 printable ASCII characters.
pub(super) fn algo_name_fits(name: &str) -> bool {
    (1..=ALGO_FIELD.len()).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_graphic())
}

impl Header {
    /// The header and the identity, as they start the file.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN + self.identity.len()];
        b[0..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&FORMAT.to_le_bytes());
        b[12..16].copy_from_slice(&(self.state as u32).to_le_bytes());
        b[16..20].copy_from_slice(&(self.csum_len as u32).to_le_bytes());
        b[20..24].copy_from_slice(&(SECTOR_SIZE as u32).to_le_bytes());
        b[24..32].copy_from_slice(&(self.sectors * SECTOR_SIZE).to_le_bytes());
        b[ALGO_FIELD][..self.algo.len()].copy_from_slice(self.algo.as_bytes());
        b[48..52].copy_from_slice(&(self.identity.len() as u32).to_le_bytes());
        b[52..56].copy_from_slice(&self.bitmap_crc.to_le_bytes());
        b[HEADER_LEN..].copy_from_slice(self.identity.as_bytes());
        let crc = header_crc(&b);
        b[HEADER_CRC].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// The identity a header records, once what comes before believing it holds: magic,
    /// format, identity length (bounded, inside the file), the header's checksum, UTF-8.
    /// `head` is the file's first bytes (up to [`MAX_HEAD`]), `file_len` its length.
    pub fn identity<'h>(path: &Path, head: &'h [u8], file_len: u64) -> Result<&'h str, StoreError> {
        let short = || invalid(path, Field::Length, file_len, "is shorter than a header");
        if head.len() < MAGIC.len() || &head[..MAGIC.len()] != MAGIC {
            return Err(StoreError::NotAStore {
                path: path.to_path_buf(),
                why: Foreign::NoMagic,
            });
        }
        let format = u32_at(head.get(..12).ok_or_else(short)?, 8);
        if format != FORMAT {
            return Err(other_format(path, format));
        }
        let fixed = head.get(..HEADER_LEN).ok_or_else(short)?;
        let id_len = u32_at(fixed, 48) as usize;
        if id_len == 0 || id_len > MAX_IDENTITY {
            let why = format!("is not between 1 and {MAX_IDENTITY} bytes");
            return Err(invalid(path, Field::IdentityLen, id_len, why));
        }
        let Some(head) = head.get(..HEADER_LEN + id_len) else {
            let why = format!("runs past the end of the file ({file_len} bytes)");
            return Err(invalid(path, Field::IdentityLen, id_len, why));
        };
        let (stored, computed) = (u32_at(head, HEADER_CRC.start), header_crc(head));
        if stored != computed {
            let why = format!("does not match the header ({computed:#010x}): it is damaged");
            let stored = format!("{stored:#010x}");
            return Err(invalid(path, Field::HeaderCrc, stored, why));
        }
        std::str::from_utf8(&head[HEADER_LEN..]).map_err(|e| {
            let why = format!("is not UTF-8 ({e})");
            invalid(path, Field::Identity, quoted(&head[HEADER_LEN..]), why)
        })
    }

    /// Reads and checks a header whose [`Header::identity`] holds: every other field
    /// against the file's length `file_len` and the algorithm `expect` the caller
    /// verifies with, before anything is believed.
    pub fn decode(
        path: &Path,
        head: &[u8],
        file_len: u64,
        expect: Algorithm,
    ) -> Result<(Header, Layout), StoreError> {
        let identity = Self::identity(path, head, file_len)?;
        let header = Self::fields(path, head, identity, expect)?;
        let layout =
            Layout::of(identity.len(), header.sectors, header.csum_len).ok_or_else(|| {
                let size = header.sectors * SECTOR_SIZE;
                invalid(path, Field::DataSize, size, "is too large for a store file")
            })?;
        if file_len != layout.file_len() {
            let why = format!(
                "is not the {} bytes its header describes: the store was truncated or extended",
                layout.file_len()
            );
            return Err(invalid(path, Field::Length, file_len, why));
        }
        Ok((header, layout))
    }

    /// The fields of a header whose checksum holds, each checked against what csumbench
    /// writes and what the caller expects.
    fn fields(
        path: &Path,
        head: &[u8],
        identity: &str,
        expect: Algorithm,
    ) -> Result<Header, StoreError> {
        let state = match u32_at(head, 12) {
            2 => State::Updating,
            3 => State::Clean,
            s => return Err(invalid(path, Field::State, s, "is not a state")),
        };
        let sector_size = u32_at(head, 20);
        if sector_size as u64 != SECTOR_SIZE {
            let why = format!("is not {SECTOR_SIZE}");
            return Err(invalid(path, Field::SectorSize, sector_size, why));
        }
        let raw = &head[ALGO_FIELD];
        let name_len = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        let algo = std::str::from_utf8(&raw[..name_len])
            .ok()
            .filter(|name| algo_name_fits(name) && raw[name_len..].iter().all(|&b| b == 0))
            .ok_or_else(|| {
                let why = "is not a NUL-padded name of printable ASCII characters";
                invalid(path, Field::Algorithm, quoted(raw), why)
            })?;
        if algo != expect.name {
            return Err(StoreError::OtherAlgorithm {
                path: path.to_path_buf(),
                found: algo.to_string(),
                expected: expect.name.to_string(),
            });
        }
        let csum_len = u32_at(head, 16);
        if csum_len as usize != expect.csum_len {
            let why = format!("does not fit {expect}");
            return Err(invalid(path, Field::CsumLen, csum_len, why));
        }
        let data_size = u64::from_le_bytes(head[24..32].try_into().expect("8 bytes"));
        if !data_size.is_multiple_of(SECTOR_SIZE) {
            let why = format!("is not a whole number of {SECTOR_SIZE}-byte sectors");
            return Err(invalid(path, Field::DataSize, data_size, why));
        }
        Ok(Header {
            state,
            algo: algo.to_string(),
            csum_len: csum_len as usize,
            sectors: data_size / SECTOR_SIZE,
            identity: identity.to_string(),
            bitmap_crc: u32_at(head, 52),
        })
    }
}
