//! The engines against real files: io_uring must move exactly the bytes psync moves, report
//! short transfers the same way, and keep the reap contract. Without io_uring (old kernel,
//! seccomp, io_uring_disabled), its tests say so and skip.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::Arc;

use workloads::buf::Filler;
use workloads::{AlignedBuf, Engine, EngineKind, IoDone, IoReq, Op};

const BS: usize = 64 << 10;
const BLOCKS: u64 = 64;
const DEPTH: usize = 16;

fn open_rw(path: &Path, len: u64) -> Arc<File> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .unwrap();
    f.set_len(len).unwrap();
    Arc::new(f)
}

/// Opens an engine, or says why io_uring cannot run here and returns `None`.
fn engine(kind: EngineKind, file: Arc<File>, depth: u32) -> Option<Box<dyn Engine>> {
    match kind.open(Some(file), depth) {
        Ok(e) => Some(e),
        Err(e)
            if kind == EngineKind::IoUring
                && matches!(
                    e.kind(),
                    io::ErrorKind::Unsupported | io::ErrorKind::PermissionDenied
                ) =>
        {
            eprintln!("skipping io_uring: {e}");
            None
        }
        Err(e) => panic!("{}: {e}", kind.name()),
    }
}

/// Every block once, in a scrambled but fixed order (a stride coprime to 64).
fn shuffled() -> Vec<u64> {
    (0..BLOCKS)
        .map(|i| (i * 37 + 11) % BLOCKS * BS as u64)
        .collect()
}

/// Runs `reqs` through `engine` with up to DEPTH in flight; returns the completions.
fn run(engine: &mut dyn Engine, reqs: Vec<IoReq>) -> Vec<IoDone> {
    let total = reqs.len();
    let mut pending = reqs.into_iter();
    let mut done = Vec::new();
    while done.len() < total {
        while engine.in_flight() < DEPTH {
            match pending.next() {
                Some(r) => engine.queue(r).unwrap(),
                None => break,
            }
        }
        engine.commit().unwrap();
        engine.reap(1, &mut done).unwrap();
    }
    assert_eq!(engine.in_flight(), 0);
    done
}

fn write_reqs() -> Vec<IoReq> {
    let mut filler = Filler::new(99, BS);
    shuffled()
        .into_iter()
        .enumerate()
        .map(|(tag, offset)| {
            let mut buf = AlignedBuf::new(BS);
            filler.fill(&mut buf, offset);
            IoReq {
                op: Op::Write,
                offset,
                buf,
                tag: tag as u64,
            }
        })
        .collect()
}

fn read_reqs() -> Vec<IoReq> {
    shuffled()
        .into_iter()
        .enumerate()
        .map(|(tag, offset)| IoReq {
            op: Op::Read,
            offset,
            buf: AlignedBuf::new(BS),
            tag: tag as u64,
        })
        .collect()
}

#[test]
fn io_uring_and_psync_write_and_read_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let len = BLOCKS * BS as u64;
    let paths = [dir.path().join("psync"), dir.path().join("uring")];
    let kinds = [EngineKind::Psync, EngineKind::IoUring];
    let files: Vec<Arc<File>> = paths.iter().map(|p| open_rw(p, len)).collect();
    for (kind, file) in kinds.iter().zip(&files) {
        let Some(mut e) = engine(*kind, file.clone(), DEPTH as u32) else {
            return;
        };
        let done = run(e.as_mut(), write_reqs());
        assert_eq!(done.len(), BLOCKS as usize);
        for d in &done {
            d.result.as_ref().unwrap();
        }
        e.sync().unwrap();
    }
    let bytes: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert_eq!(bytes[0].len() as u64, len);
    assert!(
        bytes[0] == bytes[1],
        "io_uring wrote different bytes than psync"
    );
    let mut expected = vec![0u8; len as usize];
    for r in write_reqs() {
        expected[r.offset as usize..][..BS].copy_from_slice(&r.buf);
    }
    assert!(
        bytes[0] == expected,
        "the files differ from what was written"
    );

    // Each engine reads both files back, block by block, in the same scrambled order.
    for kind in kinds {
        for file in &files {
            let mut e = engine(kind, file.clone(), DEPTH as u32).unwrap();
            let done = run(e.as_mut(), read_reqs());
            let mut tags: Vec<u64> = done.iter().map(|d| d.req.tag).collect();
            tags.sort_unstable();
            assert_eq!(tags, (0..BLOCKS).collect::<Vec<_>>(), "every I/O once");
            for d in done {
                d.result.unwrap();
                let at = d.req.offset as usize;
                assert!(
                    d.req.buf[..] == expected[at..at + BS],
                    "{}: block at {at} differs",
                    kind.name()
                );
            }
        }
    }
}

#[test]
fn a_read_past_the_end_is_an_error_naming_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    for kind in [EngineKind::Psync, EngineKind::IoUring] {
        let file = open_rw(&dir.path().join(kind.name()), 8192);
        let Some(mut e) = engine(kind, file, 4) else {
            continue;
        };
        // Straddling the end (io_uring: a short read, then nothing) and wholly beyond it.
        for (offset, len, tag) in [(0u64, 16384usize, 1u64), (8192, 4096, 2)] {
            e.queue(IoReq {
                op: Op::Read,
                offset,
                buf: AlignedBuf::new(len),
                tag,
            })
            .unwrap();
        }
        e.commit().unwrap();
        let mut done = Vec::new();
        e.reap(2, &mut done).unwrap();
        done.sort_by_key(|d| d.req.tag);
        assert_eq!(done.len(), 2);
        for d in done {
            let err = d.result.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{}", kind.name());
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("offset {}", d.req.offset)),
                "{}: {msg}",
                kind.name()
            );
        }
    }
}

#[test]
fn io_uring_reap_waits_for_at_least_min_and_never_for_more_than_is_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let file = open_rw(&dir.path().join("f"), 1 << 20);
    let Some(mut e) = engine(EngineKind::IoUring, file.clone(), 8) else {
        return;
    };
    let req = |tag: u64, op: Op| IoReq {
        op,
        offset: tag * 4096,
        buf: AlignedBuf::new(4096),
        tag,
    };
    let mut done = Vec::new();
    e.reap(4, &mut done).unwrap();
    assert!(done.is_empty(), "nothing in flight: reap returns at once");

    for t in 0..8 {
        e.queue(req(t, Op::Read)).unwrap();
    }
    assert_eq!(e.in_flight(), 8, "queued counts as in flight before commit");
    e.commit().unwrap();
    e.reap(3, &mut done).unwrap();
    assert!(done.len() >= 3, "reap(3) gave {}", done.len());
    assert_eq!(e.in_flight(), 8 - done.len());
    e.reap(100, &mut done).unwrap();
    assert_eq!(done.len(), 8, "reap(min) stops at what is in flight");
    assert_eq!(e.in_flight(), 0);

    // reap submits what was queued but not committed.
    done.clear();
    e.queue(req(20, Op::Write)).unwrap();
    e.reap(1, &mut done).unwrap();
    assert_eq!(done.len(), 1);
    done[0].result.as_ref().unwrap();

    // sync waits for the writes in flight and keeps their completions for the next reap.
    done.clear();
    for t in 30..34 {
        e.queue(req(t, Op::Write)).unwrap();
    }
    e.commit().unwrap();
    e.sync().unwrap();
    assert_eq!(e.in_flight(), 4);
    e.reap(0, &mut done).unwrap();
    assert_eq!(done.len(), 4);
    assert_eq!(e.in_flight(), 0);

    // More queued than the ring holds: queue makes room by submitting.
    for t in 0..40 {
        e.queue(req(t, Op::Read)).unwrap();
    }
    done.clear();
    e.reap(40, &mut done).unwrap();
    assert_eq!(done.len(), 40);

    // Dropped with I/O in flight: the engine waits for it before freeing the buffers.
    for t in 0..8 {
        e.queue(req(t, Op::Write)).unwrap();
    }
    e.commit().unwrap();
    drop(e);
}

#[test]
fn engine_names_parse_like_fio() {
    for (name, kind) in [
        ("io_uring", EngineKind::IoUring),
        ("psync", EngineKind::Psync),
        ("sync", EngineKind::Psync),
        ("pvsync", EngineKind::Psync),
        ("null", EngineKind::Null),
    ] {
        assert_eq!(name.parse::<EngineKind>().unwrap(), kind);
    }
    assert_eq!(EngineKind::IoUring.name(), "io_uring");
    let e = "libaio".parse::<EngineKind>().unwrap_err();
    assert!(e.contains("io_uring"), "{e}");
    let e = EngineKind::IoUring.open(None, 4).err().unwrap().to_string();
    assert!(e.contains("io_uring needs a file"), "{e}");
}
