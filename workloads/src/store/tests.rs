use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Child, Command, Stdio};

use super::format::{header_crc, HEADER_CRC};
use super::*;

const CRC32C: Algorithm = Algorithm {
    name: "crc32c",
    csum_len: 4,
};
const SHA256: Algorithm = Algorithm {
    name: "sha256",
    csum_len: 32,
};
const NONE: Algorithm = Algorithm {
    name: "none",
    csum_len: 0,
};

/// A data file of `sectors` sectors of 7s in `dir`.
fn data_file(dir: &Path, sectors: u64) -> PathBuf {
    let data = dir.join("data");
    std::fs::write(&data, vec![7u8; (sectors * SECTOR_SIZE) as usize]).unwrap();
    data
}

/// A new store beside `data`, for `sectors` sectors.
fn new_store(data: &Path, algo: Algorithm, sectors: u64) -> CsumStore {
    let id = Identity::of(data).unwrap();
    let path = CsumStore::beside(data);
    CsumStore::create(
        &path,
        algo,
        sectors * SECTOR_SIZE,
        &id,
        Overwrite::StoresOnly,
    )
    .unwrap()
}

/// Marks `store` clean, syncing `data`.
fn persist(store: &CsumStore, data: &Path) {
    store.persist(&File::open(data).unwrap()).unwrap();
}

/// A clean crc32c store of `data` with every one of its `sectors` summed as 1s.
fn summed(data: &Path, sectors: u64) -> PathBuf {
    let s = new_store(data, CRC32C, sectors);
    s.record(0, &vec![1u8; sectors as usize * 4]).unwrap();
    persist(&s, data);
    s.path().to_path_buf()
}

fn open(path: &Path, data: &Path, mode: Mode) -> Result<CsumStore, StoreError> {
    CsumStore::open_for(path, data, CRC32C, mode)
}

/// Why opening the crc32c store at `path` of `data` for reading fails.
fn refused(path: &Path, data: &Path) -> StoreError {
    open(path, data, Mode::Read).err().expect("refused")
}

/// Asserts that what is at `path` is refused, and not taken for a store, because of `why`.
fn refused_as_foreign(path: &Path, data: &Path, why: Foreign) {
    let e = refused(path, data);
    assert!(
        matches!(e, StoreError::NotAStore { why: w, .. } if w == why),
        "{e}"
    );
    assert!(!CsumStore::exists(path).unwrap());
}

/// Puts the header's checksum right after a field was changed, as a foreign or faulty
/// writer would: what is refused then is the field itself.
fn reseal(raw: &mut [u8]) {
    let id_len = u32::from_le_bytes(raw[48..52].try_into().unwrap()) as usize;
    let end = (64 + id_len).min(raw.len());
    let crc = header_crc(&raw[..end]);
    raw[HEADER_CRC].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn recorded_checksums_survive_a_reopen_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path(), 10);
    let s = new_store(&data, CRC32C, 10);
    let sums: Vec<u8> = (0..12).collect();
    s.record(2, &sums).unwrap();
    assert!(
        s.verify(2, &sums, 3).is_empty(),
        "visible before persisting"
    );
    persist(&s, &data);
    drop(s);
    let s = open(&CsumStore::beside(&data), &data, Mode::Read).unwrap();
    assert_eq!((s.algo(), s.csum_len()), ("crc32c", 4));
    assert_eq!(s.data_size(), 10 * SECTOR_SIZE);
    assert!(s.verify(2, &sums, 3).is_empty());
    let mut wrong = sums.clone();
    wrong[5] ^= 1;
    assert_eq!(s.verify(2, &wrong, 3), vec![(3, Bad::Mismatch)]);
    assert_eq!(
        s.verify(0, &[0; 8], 2),
        vec![(0, Bad::Missing), (1, Bad::Missing)]
    );
    // Checksums missing from `actual` never pass; sectors beyond the store have none.
    assert_eq!(s.verify(2, &sums[..8], 3), vec![(4, Bad::Mismatch)]);
    assert_eq!(s.verify(9, &[0; 8], 2)[1], (10, Bad::Missing));
    assert!(!s.covers(0, 10 * SECTOR_SIZE));
    assert!(s.covers(2 * SECTOR_SIZE, 5 * SECTOR_SIZE));
    assert!(CsumStore::exists(s.path()).unwrap());
}

#[test]
fn covers_is_about_the_range_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path(), 1);
    let s = new_store(&data, CRC32C, 300);
    // Sectors 100..200: across the bitmap's words at 128 and 192.
    s.record(100, &vec![0u8; 100 * 4]).unwrap();
    let covers = |a: u64, b: u64| s.covers(a * SECTOR_SIZE, b * SECTOR_SIZE);
    assert!(covers(100, 200));
    assert!(covers(128, 192) && covers(150, 151) && covers(199, 200));
    assert!(!covers(99, 200) && !covers(100, 201) && !covers(0, 200));
    assert!(!covers(0, 1) && !covers(200, 300));
    assert!(!covers(100, 301), "beyond the store");
    // Partial sectors count whole.
    assert!(s.covers(100 * SECTOR_SIZE + 1, 200 * SECTOR_SIZE - 1));
    assert!(!s.covers(100 * SECTOR_SIZE - 1, 150 * SECTOR_SIZE));
    assert!(!s.covers(150 * SECTOR_SIZE, 200 * SECTOR_SIZE + 1));
    assert!(s.covers(5, 5) && s.covers(u64::MAX, 0), "empty ranges");
    // Whole words, and a store that is all summed.
    s.record(0, &vec![0u8; 300 * 4]).unwrap();
    assert!(covers(0, 300) && covers(64, 128) && covers(0, 64));
    assert!(!covers(0, 301));
}

#[test]
fn the_file_is_laid_out_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path(), 70);
    let path = summed(&data, 70);
    let id = Identity::of(&data).unwrap();
    let raw = std::fs::read(&path).unwrap();
    let u32_at = |at: usize| u32::from_le_bytes(raw[at..at + 4].try_into().unwrap());
    assert_eq!(&raw[0..8], b"CSUMBCH1");
    assert_eq!(
        (u32_at(8), u32_at(12), u32_at(16), u32_at(20)),
        (3, 3, 4, 4096)
    );
    assert_eq!(&raw[24..32], &(70 * SECTOR_SIZE).to_le_bytes());
    assert_eq!(&raw[32..48], b"crc32c\0\0\0\0\0\0\0\0\0\0");
    assert_eq!(u32_at(48) as usize, id.as_str().len());
    assert_eq!(&raw[64..64 + id.as_str().len()], id.as_str().as_bytes());
    assert_eq!(u32_at(60), 0);
    // Bitmap at 4096: 70 bits in two words; checksums at the next 4 KiB.
    let bitmap = &raw[4096..4112];
    assert_eq!(&bitmap[..8], &u64::MAX.to_le_bytes());
    assert_eq!(&bitmap[8..], &0x3fu64.to_le_bytes());
    assert_eq!(u32_at(52), crc32c::crc32c(bitmap));
    assert_eq!(raw.len(), 8192 + 70 * 4);
    assert!(raw[8192..].iter().all(|&b| b == 1));
    let mut zeroed = raw[..64 + id.as_str().len()].to_vec();
    zeroed[56..60].fill(0);
    assert_eq!(u32_at(56), crc32c::crc32c(&zeroed));
}

#[test]
fn a_store_left_open_for_update_is_dirty_until_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path(), 4);
    let path = summed(&data, 4);
    let s = open(&path, &data, Mode::Update).unwrap();
    drop(s);
    let e = refused(&path, &data);
    assert_eq!(
        e.to_string(),
        format!(
            "checksum store {}: not cleanly closed (the run that wrote it did not finish: it failed, was interrupted or was killed); \
             its checksums cannot be trusted",
            path.display()
        )
    );
    assert!(matches!(
        open(&path, &data, Mode::Update),
        Err(StoreError::Dirty { .. })
    ));
    assert_eq!(e.whose(), Whose::TheData);
    // Ours all the same: a new one replaces it.
    let s = new_store(&data, CRC32C, 4);
    persist(&s, &data);
    drop(s);
    open(&path, &data, Mode::Read).unwrap();
}

#[test]
fn whose_data_a_store_is_of_is_told_before_why_it_cannot_be_used() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path(), 4);
    let path = summed(&data, 4);
    let was = Identity::of(&data).unwrap();
    // Interrupted, and of another algorithm: a store of the data all the same.
    drop(open(&path, &data, Mode::Update).unwrap());
    let e = CsumStore::open_for(&path, &data, SHA256, Mode::Read)
        .err()
        .unwrap();
    assert!(matches!(e, StoreError::OtherAlgorithm { .. }), "{e}");
    assert_eq!(e.whose(), Whose::TheData);
    // Another file moved over the data: the store is of other data, however unusable.
    let other = dir.path().join("other");
    std::fs::write(&other, vec![7u8; 4 * SECTOR_SIZE as usize]).unwrap();
    std::fs::rename(&other, &data).unwrap();
    for algo in [CRC32C, SHA256] {
        let e = CsumStore::open_for(&path, &data, algo, Mode::Read)
            .err()
            .unwrap();
        match &e {
            StoreError::Stale(Stale::Different { was: w, .. }) => assert_eq!(*w, was.to_string()),
            _ => panic!("{e}"),
        }
        assert_eq!(e.whose(), Whose::OtherData);
    }
    // Without a store, or with one that cannot be read as far as its identity, nothing
    // tells.
    let mut raw = std::fs::read(&path).unwrap();
    raw[HEADER_CRC.start] ^= 1;
    std::fs::write(&path, &raw).unwrap();
    assert_eq!(refused(&path, &data).whose(), Whose::Unknown);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(refused(&path, &data).whose(), Whose::Unknown);
}

#[test]
fn a_store_is_trusted_only_for_the_file_it_was_written_for() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path(), 4);
    let path = summed(&data, 4);
    let s = open(&path, &data, Mode::Read).unwrap();
    let id = Identity::of(&data).unwrap();
    assert_eq!(s.identity(), id.as_str());
    assert_eq!(id.what(), "file");
    assert!(id.as_str().starts_with("inode="), "{id}");
    drop(s);
    // Updated and persisted again, it keeps its identity.
    let s = open(&path, &data, Mode::Update).unwrap();
    persist(&s, &data);
    drop(s);
    // New contents in the same file are the same file: verification judges them.
    std::fs::write(&data, vec![9u8; 4 * SECTOR_SIZE as usize]).unwrap();
    assert!(open(&path, &data, Mode::Read)
        .unwrap()
        .covers(0, 4 * SECTOR_SIZE));

    // Another file moved over it is not.
    let other = dir.path().join("other");
    std::fs::write(&other, vec![7u8; 4 * SECTOR_SIZE as usize]).unwrap();
    let other_id = Identity::of(&other).unwrap();
    std::fs::rename(&other, &data).unwrap();
    assert_eq!(
        refused(&path, &data).to_string(),
        format!("the checksum store was written for a different file (was: {id}, now: {other_id})")
    );
    // Nor is one made again under its name (the inode number may be reused).
    let path = summed(&data, 4);
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::remove_file(&data).unwrap();
    std::fs::write(&data, vec![7u8; 4 * SECTOR_SIZE as usize]).unwrap();
    if std::fs::metadata(&data).unwrap().created().is_ok() {
        let e = refused(&path, &data).to_string();
        assert!(e.contains("a different file (was: inode="), "{e}");
    } else {
        eprintln!("skipping the re-created file: this filesystem keeps no creation time");
    }
    // Nor anything, once the file is gone.
    std::fs::remove_file(&data).unwrap();
    let e = refused(&path, &data).to_string();
    let want = format!("cannot tell which file or device {} is: ", data.display());
    assert!(e.starts_with(&want), "{e}");
}

#[test]
fn older_and_newer_formats_are_refused_not_misread() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path(), 4);
    let path = summed(&data, 4);
    let raw = std::fs::read(&path).unwrap();
    for format in [1u32, 2, 4] {
        let mut old = raw.clone();
        old[8..12].copy_from_slice(&format.to_le_bytes());
        std::fs::write(&path, &old).unwrap();
        let e = refused(&path, &data);
        let want = match format {
            4 => format!("written by a newer csumbench (store format {format})"),
            _ => format!(
                "written by an older csumbench (store format {format}), which did not \
                 protect it with checksums of its own; not trusted"
            ),
        };
        assert_eq!(
            e.to_string(),
            format!("checksum store {}: {want}", path.display())
        );
        // Not laid out as format 1 or 2 stores were: no identity to go by.
        assert_eq!(e.whose(), Whose::Unknown, "format {format}");
        assert!(CsumStore::exists(&path).unwrap(), "still ours to replace");
    }
}

/// A store as format 2 wrote it (format 1 without `identity`): the 64-byte header, the
/// bitmap, the checksums, then the identity. Every sector summed, clean.
fn old_store(sectors: u64, identity: Option<&Identity>) -> Vec<u8> {
    let id = identity.map_or("", |i| i.as_str());
    let mut raw = vec![0u8; 64];
    raw[0..8].copy_from_slice(b"CSUMBCH1");
    let format: u32 = if identity.is_some() { 2 } else { 1 };
    raw[8..12].copy_from_slice(&format.to_le_bytes());
    raw[12..16].copy_from_slice(&1u32.to_le_bytes());
    raw[16..20].copy_from_slice(&4u32.to_le_bytes());
    raw[20..24].copy_from_slice(&4096u32.to_le_bytes());
    raw[24..32].copy_from_slice(&(sectors * SECTOR_SIZE).to_le_bytes());
    raw[32..38].copy_from_slice(b"crc32c");
    raw[48..52].copy_from_slice(&(id.len() as u32).to_le_bytes());
    for w in 0..sectors.div_ceil(64) {
        let bits = (sectors - w * 64).min(64);
        let word = if bits == 64 {
            u64::MAX
        } else {
            (1 << bits) - 1
        };
        raw.extend_from_slice(&word.to_le_bytes());
    }
    raw.extend(std::iter::repeat_n(1u8, sectors as usize * 4));
    raw.extend_from_slice(id.as_bytes());
    raw
}

#[test]
fn an_older_store_is_not_trusted_but_its_identity_says_whose_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path(), 70);
    let path = CsumStore::beside(&data);
    let id = Identity::of(&data).unwrap();
    let whose = || match refused(&path, &data) {
        StoreError::OldFormat { format, whose, .. } => (format, whose),
        e => panic!("{e}"),
    };
    std::fs::write(&path, old_store(70, Some(&id))).unwrap();
    assert_eq!(whose(), (2, Whose::TheData));
    std::fs::write(&path, old_store(70, None)).unwrap();
    assert_eq!(whose(), (1, Whose::Unknown));
    let other = dir.path().join("other");
    std::fs::write(&other, b"").unwrap();
    let mut raw = old_store(70, Some(&Identity::of(&other).unwrap()));
    std::fs::write(&path, &raw).unwrap();
    assert_eq!(whose(), (2, Whose::OtherData));
    // An identity not where format 2 put it is none.
    raw.push(0);
    std::fs::write(&path, &raw).unwrap();
    assert_eq!(whose(), (2, Whose::Unknown));
}

/// One header field set to a value, resealed, and what opening the store then says.
struct Forged {
    at: usize,
    bytes: Vec<u8>,
    field: Option<Field>,
    says: String,
}

fn forged(at: usize, bytes: &[u8], field: Option<Field>, says: impl Into<String>) -> Forged {
    Forged {
        at,
        bytes: bytes.to_vec(),
        field,
        says: says.into(),
    }
}

#[test]
fn every_header_field_is_checked_against_the_algorithm_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path(), 4);
    let path = summed(&data, 4);
    let raw = std::fs::read(&path).unwrap();
    let len = raw.len();
    let id_len = u32::from_le_bytes(raw[48..52].try_into().unwrap());
    let u32le = |v: u32| v.to_le_bytes();
    let u64le = |v: u64| v.to_le_bytes();
    let cases = [
        forged(16, &u32le(u32::MAX), Some(Field::CsumLen), "csum_len=4294967295 does not fit crc32c (4 bytes)"),
        forged(16, &u32le(0), Some(Field::CsumLen), "csum_len=0 does not fit crc32c (4 bytes)"),
        forged(16, &u32le(32), Some(Field::CsumLen), "csum_len=32 does not fit crc32c (4 bytes)"),
        forged(12, &u32le(7), Some(Field::State), "state=7 is not a state"),
        forged(20, &u32le(512), Some(Field::SectorSize), "sector_size=512 is not 4096"),
        forged(24, &u64le(4097), Some(Field::DataSize), "data_size=4097 is not a whole number of 4096-byte sectors"),
        forged(24, &u64le(8 * SECTOR_SIZE), Some(Field::Length), format!("length={len} is not the 8224 bytes its header describes: the store was truncated or extended")),
        forged(24, &u64le(u64::MAX - 4095), Some(Field::Length), format!("length={len} is not the ")),
        forged(32, b"crc32c\0x", Some(Field::Algorithm), r#"algorithm="crc32c\x00x\x00\x00\x00\x00\x00\x00\x00\x00" is not a NUL-padded name of printable ASCII characters"#),
        forged(32, b"\0rc32c", Some(Field::Algorithm), "algorithm="),
        forged(32, b"sha256", None, "its checksums are sha256, not crc32c"),
        forged(48, &u32le(0), Some(Field::IdentityLen), "identity_len=0 is not between 1 and 65536 bytes"),
        forged(48, &u32le(u32::MAX), Some(Field::IdentityLen), "identity_len=4294967295 is not between 1 and 65536 bytes"),
        forged(48, &u32le(60000), Some(Field::IdentityLen), format!("identity_len=60000 runs past the end of the file ({len} bytes)")),
        forged(64, &[0xff], Some(Field::Identity), "identity=\"\\xff"),
    ];
    for case in cases {
        let mut bad = raw.clone();
        bad[case.at..case.at + case.bytes.len()].copy_from_slice(&case.bytes);
        reseal(&mut bad);
        std::fs::write(&path, &bad).unwrap();
        let e = refused(&path, &data);
        let want = format!("checksum store {}: {}", path.display(), case.says);
        assert!(e.to_string().starts_with(&want), "{e}\nwanted: {want}");
        match (&e, case.field) {
            (StoreError::Invalid { field, .. }, Some(f)) => assert_eq!(*field, f),
            (StoreError::OtherAlgorithm { .. }, None) => {}
            _ => panic!("{e:?}"),
        }
        // Past the identity, the store is known to be of the data.
        let before_identity = matches!(case.field, Some(Field::IdentityLen | Field::Identity));
        let whose = match before_identity {
            true => Whose::Unknown,
            false => Whose::TheData,
        };
        assert_eq!(e.whose(), whose, "{e}");
        // Not ours to believe, ours to replace.
        assert!(CsumStore::exists(&path).unwrap());
    }
    // A longer identity, sealed, is another identity: a store of other data, however
    // wrong the rest of it would be.
    let mut longer = raw.clone();
    longer[48..52].copy_from_slice(&u32le(id_len + 4096));
    reseal(&mut longer);
    std::fs::write(&path, &longer).unwrap();
    let e = refused(&path, &data);
    assert!(
        matches!(e, StoreError::Stale(Stale::Different { .. })),
        "{e}"
    );
    assert_eq!(e.whose(), Whose::OtherData);
    assert!(e.to_string().contains(r"\u{0}\u{0}"), "NULs escaped: {e}");
}

#[test]
fn a_flipped_bit_anywhere_in_the_header_or_bitmap_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path(), 200);
    let path = summed(&data, 200);
    let raw = std::fs::read(&path).unwrap();
    let id_len = u32::from_le_bytes(raw[48..52].try_into().unwrap()) as usize;
    for at in 0..64 + id_len {
        for bit in [0, 5] {
            let mut bad = raw.clone();
            bad[at] ^= 1 << bit;
            std::fs::write(&path, &bad).unwrap();
            let e = refused(&path, &data);
            let ok = match at {
                0..8 => matches!(e, StoreError::NotAStore { .. }),
                8..12 => matches!(
                    e,
                    StoreError::OldFormat { .. } | StoreError::NewerFormat { .. }
                ),
                48..52 => matches!(
                    e,
                    StoreError::Invalid {
                        field: Field::IdentityLen | Field::HeaderCrc,
                        ..
                    }
                ),
                _ => matches!(
                    e,
                    StoreError::Invalid {
                        field: Field::HeaderCrc,
                        ..
                    }
                ),
            };
            assert!(ok, "byte {at} bit {bit}: {e}");
            assert_eq!(e.whose(), Whose::Unknown, "byte {at} bit {bit}: {e}");
        }
    }
    // The bitmap: 200 bits in 4 words at 4096.
    for at in 4096..4096 + 32 {
        let mut bad = raw.clone();
        bad[at] ^= 0x10;
        std::fs::write(&path, &bad).unwrap();
        let e = refused(&path, &data);
        assert!(
            matches!(
                e,
                StoreError::Invalid {
                    field: Field::BitmapCrc,
                    ..
                }
            ),
            "bitmap byte {at}: {e}"
        );
        assert!(e.to_string().contains(": it is damaged"), "{e}");
        assert_eq!(e.whose(), Whose::TheData);
    }
}

#[test]
fn a_truncated_or_extended_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path(), 8);
    let path = summed(&data, 8);
    let raw = std::fs::read(&path).unwrap();
    // With its identity intact, a cut store is still known to be of the data.
    let cases: [(usize, &str, Whose); 6] = [
        (raw.len() - 1, "length=", Whose::TheData),
        (4096, "length=4096 is not the ", Whose::TheData),
        (100, "identity_len=", Whose::Unknown),
        (30, "length=30 is shorter than a header", Whose::Unknown),
        (10, "length=10 is shorter than a header", Whose::Unknown),
        (raw.len() + 1, "length=", Whose::TheData),
    ];
    for (len, says, whose) in cases {
        let mut cut = raw.clone();
        cut.resize(len, 0);
        std::fs::write(&path, &cut).unwrap();
        let e = refused(&path, &data);
        let want = format!("checksum store {}: {says}", path.display());
        assert!(e.to_string().starts_with(&want), "{len} bytes: {e}");
        assert_eq!(e.whose(), whose, "{len} bytes: {e}");
    }
    for len in [5, 0] {
        std::fs::write(&path, &raw[..len]).unwrap();
        refused_as_foreign(&path, &data, Foreign::NoMagic);
    }
}

#[test]
fn a_foreign_file_at_the_store_path_is_never_overwritten_without_permission() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path(), 4);
    let path = CsumStore::beside(&data);
    std::fs::write(&path, b"my own checksums, not csumbench's").unwrap();
    let id = Identity::of(&data).unwrap();
    let create = |overwrite| CsumStore::create(&path, CRC32C, 4096, &id, overwrite);
    let e = create(Overwrite::StoresOnly).err().expect("refused");
    assert_eq!(
        e.to_string(),
        format!(
            "refusing to overwrite {}: it is not a csumbench checksum store \
             (it does not begin with csumbench's magic number)",
            path.display()
        )
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"my own checksums, not csumbench's"
    );
    assert!(!CsumStore::exists(&path).unwrap());
    let e = refused(&path, &data);
    assert_eq!(
        e.to_string(),
        format!(
            "{} is not a csumbench checksum store (it does not begin with csumbench's magic number)",
            path.display()
        )
    );
    // With the user's permission it is replaced; nothing is left beside it.
    persist(&create(Overwrite::AnyFile).unwrap(), &data);
    open(&path, &data, Mode::Read).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["data", "data.csum"]);
}

#[test]
fn a_symlink_at_the_store_path_is_refused_even_with_permission() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path(), 4);
    let path = CsumStore::beside(&data);
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    std::os::unix::fs::symlink(&victim, &path).unwrap();
    let id = Identity::of(&data).unwrap();
    for overwrite in [Overwrite::StoresOnly, Overwrite::AnyFile] {
        let e = CsumStore::create(&path, CRC32C, 4096, &id, overwrite)
            .err()
            .expect("refused");
        assert_eq!(
            e.to_string(),
            format!(
                "refusing to overwrite {}: it is not a csumbench checksum store \
                 (it is a symbolic link)",
                path.display()
            )
        );
    }
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(std::fs::symlink_metadata(&path)
        .unwrap()
        .file_type()
        .is_symlink());
    // Not even a symlink to a good store is followed.
    std::fs::remove_file(&path).unwrap();
    let real = summed(&data, 4);
    let link = dir.path().join("link.csum");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    refused_as_foreign(&link, &data, Foreign::Symlink);
}

#[test]
fn special_files_at_the_store_path_are_refused_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path(), 4);
    let path = CsumStore::beside(&data);
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: c is a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let e = refused(&path, &data);
    assert_eq!(
        e.to_string(),
        format!(
            "{} is not a csumbench checksum store (it is a FIFO)",
            path.display()
        )
    );
    assert!(!CsumStore::exists(&path).unwrap());
    let id = Identity::of(&data).unwrap();
    let e = CsumStore::create(&path, CRC32C, 4096, &id, Overwrite::AnyFile)
        .err()
        .unwrap();
    assert!(matches!(
        e,
        StoreError::WontOverwrite {
            why: Foreign::NotAFile("FIFO"),
            ..
        }
    ));
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    let e = refused(&path, &data).to_string();
    assert!(e.ends_with("(it is a directory)"), "{e}");
}

#[test]
fn records_that_do_not_fit_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path(), 4);
    let s = new_store(&data, CRC32C, 4);
    let e = s.record(3, &[0; 8]).unwrap_err().to_string();
    assert_eq!(e, "sectors 3+2 are beyond the store's 4");
    assert!(s.record(u64::MAX, &[0; 4]).is_err());
    let e = s.record(0, &[0; 6]).unwrap_err().to_string();
    assert_eq!(e, "6 bytes are not whole 4-byte checksums");
    let e = s.record_unsummed(0, 1).unwrap_err().to_string();
    assert_eq!(e, "the store keeps crc32c checksums: record them");
    s.record(0, &[0; 16]).unwrap();
    persist(&s, &data);
    let e = s.record(0, &[0; 4]).unwrap_err().to_string();
    assert_eq!(e, "the store was persisted: it takes no more checksums");
    drop(s);
    let r = open(&CsumStore::beside(&data), &data, Mode::Read).unwrap();
    let e = r.record(0, &[0; 4]).unwrap_err().to_string();
    assert_eq!(e, "the store is open for reading only");
    r.persist(&File::open(&data).unwrap()).unwrap();
}

#[test]
fn none_keeps_no_checksums_but_knows_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path(), 6);
    let s = new_store(&data, NONE, 6);
    s.record_unsummed(2, 3).unwrap();
    assert!(s.record(0, &[]).is_err());
    persist(&s, &data);
    drop(s);
    let path = CsumStore::beside(&data);
    let s = CsumStore::open_for(&path, &data, NONE, Mode::Read).unwrap();
    let missing = |s: u64| (s, Bad::Missing);
    assert_eq!(
        s.verify(0, &[], 6),
        vec![missing(0), missing(1), missing(5)]
    );
    assert!(s.covers(2 * SECTOR_SIZE, 5 * SECTOR_SIZE));
    drop(s);
    for algo in [CRC32C, SHA256] {
        let e = CsumStore::open_for(&path, &data, algo, Mode::Read)
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            format!(
                "checksum store {}: its checksums are none, not {}",
                path.display(),
                algo.name
            )
        );
    }
}

#[test]
fn a_store_is_marked_clean_only_after_its_data_is_synced() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path(), 4);
    let s = new_store(&data, CRC32C, 4);
    s.record(0, &[1; 16]).unwrap();
    // fdatasync of a pipe fails (EINVAL): data that cannot be made durable.
    let mut fds = [0; 2];
    // SAFETY: pipe fills two descriptors, which the Files below then own.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let (pipe, _other_end) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    let e = s.persist(&pipe).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "checksum store {}: the data it is of could not be synced, so it stays unclean: ",
            s.path().display()
        )),
        "{e}"
    );
    assert!(s.record(0, &[1; 4]).is_err(), "recording ended");
    let path = s.path().to_path_buf();
    let state = |raw: Vec<u8>| u32::from_le_bytes(raw[12..16].try_into().unwrap());
    assert_eq!(state(std::fs::read(&path).unwrap()), State::Updating as u32);
    // Once the data syncs, the same store is marked clean.
    persist(&s, &data);
    drop(s);
    assert!(open(&path, &data, Mode::Read)
        .unwrap()
        .covers(0, 4 * SECTOR_SIZE));
}

#[test]
fn replacing_a_store_in_use_is_refused_and_otherwise_renames_a_new_one_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path(), 4);
    let path = summed(&data, 4);
    let old_inode = std::fs::metadata(&path).unwrap().ino();
    let reader = open(&path, &data, Mode::Read).unwrap();
    let id = Identity::of(&data).unwrap();
    let e = CsumStore::create(&path, SHA256, 4096, &id, Overwrite::StoresOnly)
        .err()
        .unwrap();
    assert!(matches!(e, StoreError::Locked { .. }), "{e}");
    drop(reader);
    let s = CsumStore::create(&path, SHA256, 4096, &id, Overwrite::StoresOnly).unwrap();
    assert_ne!(std::fs::metadata(&path).unwrap().ino(), old_inode);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "no temp file left"
    );
    // Held by its creator from the start.
    assert!(matches!(
        CsumStore::open_for(&path, &data, SHA256, Mode::Read),
        Err(StoreError::Locked { .. })
    ));
    drop(s);
    assert!(matches!(
        CsumStore::open_for(&path, &data, SHA256, Mode::Read),
        Err(StoreError::Dirty { .. })
    ));
}

#[test]
fn two_stores_of_one_file_in_one_process_exclude_each_other_as_two_processes_do() {
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path(), 4);
    let path = summed(&data, 4);
    let a = open(&path, &data, Mode::Read).unwrap();
    let b = open(&path, &data, Mode::Read).unwrap();
    let e = open(&path, &data, Mode::Update).err().unwrap();
    assert_eq!(
        e.to_string(),
        format!(
            "checksum store {} is in use by this process (an earlier job of this run still \
             holds it): another csumbench is running on the same data",
            path.display()
        )
    );
    // Checking whether a store is there opens and closes it: no lock is lost.
    assert!(CsumStore::exists(&path).unwrap());
    drop((a, b));
    let w = open(&path, &data, Mode::Update).unwrap();
    assert!(CsumStore::exists(&path).unwrap());
    assert!(
        matches!(refused(&path, &data), StoreError::Locked { pid: Some(p), .. } if p == std::process::id())
    );
    drop(w);
}

/// What a child copy of this test binary is to do (see [`play`]).
const ROLE: &str = "CSUMBENCH_STORE_TEST_ROLE";

/// This test binary, to run `test` alone as a child that plays `role` on the store at
/// `path` of `data`: the test sees [`ROLE`] set and plays instead of being the parent.
fn child(test: &str, role: &str, path: &Path, data: &Path) -> Command {
    let name = format!("{}::{test}", module_path!().split_once("::").unwrap().1);
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env("STORE", path)
        .env("DATA", data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    c
}

/// The first `n` things the child printed after "ANSWER ", each to the end of its line
/// (libtest prints too, the first answer after its "test NAME ... ").
fn answers(child: &mut Child, n: usize) -> Vec<String> {
    BufReader::new(child.stdout.as_mut().unwrap())
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| l.split_once("ANSWER ").map(|(_, a)| a.to_string()))
        .take(n)
        .collect()
}

/// Runs `test` as a child playing `role` to the end; its `n` answers.
fn ask(test: &str, role: &str, path: &Path, data: &Path, n: usize) -> Vec<String> {
    let mut c = child(test, role, path, data).spawn().unwrap();
    let said = answers(&mut c, n);
    assert!(
        c.wait().unwrap().success(),
        "the child failed; it said {said:?}"
    );
    said
}

/// Drops root's privileges, which ignore file modes, for those of user nobody.
fn become_nobody() {
    const NOBODY: u32 = 65534;
    // SAFETY: plain system calls; glibc applies them to every thread of the process.
    unsafe {
        assert_eq!(libc::setgid(NOBODY), 0);
        assert_eq!(libc::setuid(NOBODY), 0);
    }
}

/// Plays the child's part if this process is a child (see [`child`]); true if it was.
fn play() -> bool {
    let Ok(role) = std::env::var(ROLE) else {
        return false;
    };
    let path = PathBuf::from(std::env::var_os("STORE").unwrap());
    let data = PathBuf::from(std::env::var_os("DATA").unwrap());
    let try_open = |mode| match open(&path, &data, mode) {
        Ok(_) => "opened".to_string(),
        Err(e) => e.to_string(),
    };
    match role.as_str() {
        "hold-read" => {
            let _held = open(&path, &data, Mode::Read).expect("a store to hold");
            println!("ANSWER held");
            // Held until the parent closes our stdin, or kills us.
            let _ = std::io::stdin().read_line(&mut String::new());
        }
        "try" | "try-as-nobody" => {
            if role == "try-as-nobody" {
                become_nobody();
            }
            println!("ANSWER {}", try_open(Mode::Read));
            println!("ANSWER {}", try_open(Mode::Update));
            match CsumStore::exists(&path) {
                Ok(ours) => println!("ANSWER exists={ours}"),
                Err(e) => println!("ANSWER {e}"),
            }
        }
        "device-path" => match CsumStore::path_for(&data, true) {
            Ok(p) => println!("ANSWER {}", p.display()),
            Err(e) => println!("ANSWER {e}"),
        },
        _ => panic!("no such role: {role}"),
    }
    true
}

#[test]
fn a_second_process_is_refused_with_the_holders_pid_until_it_dies() {
    const TEST: &str = "a_second_process_is_refused_with_the_holders_pid_until_it_dies";
    if play() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path(), 4);
    let path = summed(&data, 4);
    let busy = |pid: u32| {
        format!(
            "checksum store {} is in use by process {pid}: another csumbench is running \
             on the same data",
            path.display()
        )
    };
    // This process writes: another may neither read nor write.
    let writer = open(&path, &data, Mode::Update).unwrap();
    let me = std::process::id();
    assert_eq!(
        ask(TEST, "try", &path, &data, 3),
        [busy(me), busy(me), "exists=true".into()]
    );
    persist(&writer, &data);
    drop(writer);
    // Another reads: this one may read too, not write.
    let mut reader = child(TEST, "hold-read", &path, &data).spawn().unwrap();
    assert_eq!(answers(&mut reader, 1), ["held"]);
    open(&path, &data, Mode::Read).unwrap();
    let e = open(&path, &data, Mode::Update).err().unwrap();
    assert_eq!(e.to_string(), busy(reader.id()));
    // It dies without closing anything: its lock goes with it.
    reader.kill().unwrap();
    reader.wait().unwrap();
    open(&path, &data, Mode::Update).unwrap();
}

#[test]
fn a_store_is_read_with_read_access_only_and_an_unreadable_one_is_named() {
    const TEST: &str = "a_store_is_read_with_read_access_only_and_an_unreadable_one_is_named";
    if play() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(dir.path(), 4);
    let path = summed(&data, 4);
    let s = open(&path, &data, Mode::Read).unwrap();
    // SAFETY: F_GETFL only reads the flags of a descriptor `s` keeps open.
    let flags = unsafe { libc::fcntl(s.file.as_raw_fd(), libc::F_GETFL) };
    assert_eq!(flags & libc::O_ACCMODE, libc::O_RDONLY);
    drop(s);
    // Root may open anything whatever its mode: the child plays an unprivileged user.
    // SAFETY: geteuid has no preconditions.
    let role = match unsafe { libc::geteuid() } {
        0 => "try-as-nobody",
        _ => "try",
    };
    let mode = |p: &Path, m| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
    mode(dir.path(), 0o755).unwrap();
    mode(&path, 0o444).unwrap();
    let denied = |verb: &str| {
        format!(
            "cannot {verb} checksum store {}: Permission denied (os error 13)",
            path.display()
        )
    };
    assert_eq!(
        ask(TEST, role, &path, &data, 3),
        [
            "opened".into(),
            denied("open for update"),
            "exists=true".into()
        ]
    );
    mode(&path, 0o000).unwrap();
    assert_eq!(
        ask(TEST, role, &path, &data, 3),
        [denied("read"), denied("open for update"), denied("read")]
    );
}

#[test]
fn device_stores_live_in_a_directory_private_to_the_user() {
    const TEST: &str = "device_stores_live_in_a_directory_private_to_the_user";
    if play() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let device = Path::new("/dev/sdz");
    let asked = |env: &[(&str, &Path)], unset: &str| {
        let mut c = child(TEST, "device-path", Path::new("-"), device);
        c.env_remove(unset);
        c.envs(env.iter().map(|&(k, v)| (k, v)));
        let mut c = c.spawn().unwrap();
        let said = answers(&mut c, 1).pop().unwrap();
        assert!(c.wait().unwrap().success());
        said
    };
    let state = dir.path().join("state");
    let home = dir.path().join("home");
    let mine = state.join("csumbench");
    assert_eq!(
        asked(&[("XDG_STATE_HOME", &state), ("HOME", &home)], ""),
        mine.join("sdz.csum").display().to_string()
    );
    assert_eq!(std::fs::metadata(&mine).unwrap().mode() & 0o777, 0o700);
    // Unset or relative: under $HOME, as the XDG specification says.
    let in_home = home.join(".local/state/csumbench/sdz.csum");
    assert_eq!(
        asked(&[("HOME", &home)], "XDG_STATE_HOME"),
        in_home.display().to_string()
    );
    let relative = Path::new("state");
    assert_eq!(
        asked(&[("XDG_STATE_HOME", relative), ("HOME", &home)], ""),
        in_home.display().to_string()
    );

    let says = |p: &Path| place::private_dir(p).unwrap_err().to_string();
    let refusal = |p: &Path, why: &str| {
        format!(
            "cannot keep checksum stores of block devices in {}: {why}",
            p.display()
        )
    };
    let mode = |p: &Path, m| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
    mode(&mine, 0o755).unwrap();
    assert_eq!(
        says(&mine),
        refusal(
            &mine,
            "other users have access to it (mode 0755); `chmod 700` it"
        )
    );
    mode(&mine, 0o700).unwrap();
    place::private_dir(&mine).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&mine, &link).unwrap();
    assert_eq!(says(&link), refusal(&link, "it is a symbolic link"));
    let file = dir.path().join("file");
    std::fs::write(&file, b"").unwrap();
    assert_eq!(says(&file), refusal(&file, "it is not a directory"));
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        std::os::unix::fs::chown(&mine, Some(65534), None).unwrap();
        let why = "it belongs to uid 65534, not to this user (uid 0)";
        assert_eq!(says(&mine), refusal(&mine, why));
    }
}

#[test]
fn the_holder_of_a_lock_is_read_from_proc_locks() {
    let locks = "\
1: POSIX  ADVISORY  WRITE 11 fe:00:77 0 EOF
2: FLOCK  ADVISORY  READ 22 fe:00:77 0 EOF
2: -> FLOCK  ADVISORY  WRITE 33 fe:00:77 0 EOF
3: FLOCK  ADVISORY  WRITE 44 08:01:77 0 EOF
4: FLOCK  ADVISORY  WRITE 0 fe:00:77 0 EOF
5: FLOCK  ADVISORY  WRITE 55 fe:00:77 0 EOF
6: OFDLCK ADVISORY  WRITE -1 fe:00:77 0 EOF
";
    let dev = libc::makedev(0xfe, 0);
    // A writer is stopped by any holder; the first on the same device and inode.
    assert_eq!(lock::holder(locks, dev, 77, Mode::Update), Some(22));
    // A reader only by a writer (44 is on another device; 0 is outside our namespace).
    assert_eq!(lock::holder(locks, dev, 77, Mode::Read), Some(55));
    // No such device (btrfs's stat and /proc/locks differ): the inode alone.
    assert_eq!(
        lock::holder(locks, libc::makedev(9, 9), 77, Mode::Read),
        Some(44)
    );
    assert_eq!(lock::holder(locks, dev, 78, Mode::Update), None);
}

#[test]
fn a_whole_device_store_keeps_resident_only_what_a_job_touches() {
    const TIB: u64 = 1 << 40;
    const PLACES: u64 = 16;
    /// Sectors per place: a 1 MiB bio.
    const BIO: u64 = 256;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::write(&data, b"").unwrap();
    let id = Identity::of(&data).unwrap();
    let path = CsumStore::beside(&data);
    let s = CsumStore::create(&path, CRC32C, TIB, &id, Overwrite::StoresOnly).unwrap();
    let sectors = TIB / SECTOR_SIZE;
    let places: Vec<u64> = (0..PLACES).map(|i| i * (sectors / PLACES) + 4321).collect();
    let sums: Vec<u8> = (0..BIO * 4).map(|i| i as u8).collect();
    for &at in &places {
        s.record(at, &sums).unwrap();
        assert!(s.verify(at, &sums, BIO).is_empty());
    }
    let writing = s.regions.resident_kib();
    persist(&s, &data);
    drop(s);
    let s = open(&path, &data, Mode::Read).unwrap();
    for &at in &places {
        assert!(s.verify(at, &sums, BIO).is_empty());
        assert!(s.covers(at * SECTOR_SIZE, (at + BIO) * SECTOR_SIZE));
    }
    assert!(!s.covers(0, TIB));
    let reading = s.regions.resident_kib();
    let mapped = (sectors / 8 + sectors * 4) >> 10;
    let on_disk = std::fs::metadata(&path).unwrap().blocks() / 2;
    eprintln!(
        "1 TiB crc32c store, {mapped} KiB mapped, {PLACES} places of 1 MiB touched: \
         {writing} KiB resident writing, {reading} KiB reading, {on_disk} KiB on disk"
    );
    // Each place brings a page or two of bitmap and checksums, and the kernel maps what
    // it has cached around a page read (fault-around, 64 KiB by default): a few pages a
    // place, far from all of it (1 GiB of checksums, 32 MiB of bitmap).
    let bound = PLACES * 2 * 256;
    assert!(
        writing <= bound && reading <= bound,
        "{writing} / {reading} KiB"
    );
    assert!(
        on_disk <= bound,
        "{on_disk} KiB allocated: the store is not sparse"
    );
}
