//! The engine contract, checked on every registered engine: an engine added to the registry
//! is covered without touching this file. Each runs on a file on tmpfs (/dev/shm) and on the
//! temp dir's filesystem, buffered and with O_DIRECT where the filesystem takes it. An
//! engine this machine cannot run (io_uring disabled, no Linux AIO) says so and is skipped.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use workloads::buf::Filler;
use workloads::engine::{registry, EngineDescriptor};
use workloads::{AlignedBuf, Engine, EngineKind, IoDone, IoReq, JobSpec, Op};

/// A filesystem to run on, buffered or direct.
struct Place {
    label: String,
    dir: tempfile::TempDir,
    direct: bool,
}

/// Every place this machine offers: the temp dir's filesystem and tmpfs, each buffered and
/// (where the filesystem takes O_DIRECT) direct.
fn places() -> Vec<Place> {
    let mut roots = vec![("disk", std::env::temp_dir())];
    if Path::new("/dev/shm").is_dir() {
        roots.push(("tmpfs", PathBuf::from("/dev/shm")));
    }
    let mut places = Vec::new();
    for (label, root) in roots {
        for direct in [false, true] {
            let dir = tempfile::tempdir_in(&root).unwrap();
            if direct && !takes_direct(dir.path()) {
                eprintln!(
                    "{label}: no O_DIRECT on {}, direct cases skipped",
                    root.display()
                );
                continue;
            }
            let mode = if direct { "direct" } else { "buffered" };
            places.push(Place {
                label: format!("{label} {mode}"),
                dir,
                direct,
            });
        }
    }
    places
}

fn takes_direct(dir: &Path) -> bool {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(dir.join("probe"))
        .is_ok()
}

/// One engine at one place.
struct Case<'a> {
    engine: &'static EngineDescriptor,
    place: &'a Place,
}

impl Case<'_> {
    fn kind(&self) -> EngineKind {
        EngineKind::from(self.engine)
    }

    fn diskless(&self) -> bool {
        self.engine.caps.diskless
    }

    fn path(&self, name: &str) -> PathBuf {
        self.place
            .dir
            .path()
            .join(format!("{}-{name}", self.engine.name))
    }

    /// A file of `len` zero bytes, opened as the place says.
    fn file(&self, name: &str, len: u64) -> Arc<File> {
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(true);
        if self.place.direct {
            opts.custom_flags(libc::O_DIRECT);
        }
        let f = opts.open(self.path(name)).unwrap();
        f.set_len(len).unwrap();
        Arc::new(f)
    }

    /// The engine over `file`, opened as a job with `options` (`key=value`) would open it;
    /// `None` (said on stderr) where this machine cannot run it.
    fn open(&self, file: &Arc<File>, depth: u32, options: &[&str]) -> Option<Box<dyn Engine>> {
        self.open_files(std::slice::from_ref(file), depth, options)
    }

    /// The engine over several files, as [`Case::open`].
    fn open_files(
        &self,
        files: &[Arc<File>],
        depth: u32,
        options: &[&str],
    ) -> Option<Box<dyn Engine>> {
        let mut job = JobSpec::default();
        job.set("ioengine", self.engine.name).unwrap();
        job.set("iodepth", &depth.to_string()).unwrap();
        job.set("direct", if self.place.direct { "1" } else { "0" })
            .unwrap();
        for option in options {
            let (k, v) = option.split_once('=').unwrap();
            job.set(k, v).unwrap();
        }
        job.validate()
            .unwrap_or_else(|e| panic!("{options:?}: {e}"));
        match job.open_engine(files.to_vec()) {
            Ok(e) => Some(e),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Unsupported | io::ErrorKind::PermissionDenied
                ) =>
            {
                eprintln!("skipping {} {options:?}: {e}", self.engine.name);
                None
            }
            Err(e) => panic!("cannot open {} {options:?}: {e}", self.engine.name),
        }
    }
}

/// Runs `$body` for every registered engine at every place; a failure says which.
macro_rules! conformance {
    ($test:ident, |$case:ident| $body:block) => {
        #[test]
        fn $test() {
            for engine in registry::engines() {
                for place in places() {
                    let $case = Case {
                        engine,
                        place: &place,
                    };
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| $body));
                    if let Err(panic) = outcome {
                        // The panic's own message is above; say which engine and place.
                        eprintln!("failed: {} on {}", engine.name, place.label);
                        std::panic::resume_unwind(panic);
                    }
                }
            }
        }
    };
}

fn req(op: Op, offset: u64, len: usize, tag: u64) -> IoReq {
    IoReq {
        op,
        file: 0,
        offset,
        buf: AlignedBuf::new(len),
        tag,
    }
}

/// `blocks` blocks of `bs` once each, in a scrambled but fixed order (a stride coprime to
/// every power of two).
fn shuffled(blocks: u64, bs: usize) -> Vec<u64> {
    (0..blocks)
        .map(|i| (i * 37 + 11) % blocks * bs as u64)
        .collect()
}

/// Writes of a seeded pattern at `offsets`.
fn writes(offsets: &[u64], bs: usize) -> Vec<IoReq> {
    let mut filler = Filler::new(99, bs);
    offsets
        .iter()
        .enumerate()
        .map(|(tag, &offset)| {
            let mut r = req(Op::Write, offset, bs, tag as u64);
            filler.fill(&mut r.buf, offset);
            r
        })
        .collect()
}

/// Runs `reqs` with up to `depth` in flight, queueing as many as fit and committing them at
/// once; returns the completions, after checking each I/O came back exactly once.
fn run(engine: &mut dyn Engine, reqs: Vec<IoReq>, depth: usize) -> Vec<IoDone> {
    let total = reqs.len();
    let mut pending = reqs.into_iter();
    let mut done = Vec::new();
    while done.len() < total {
        while engine.in_flight() < depth {
            match pending.next() {
                Some(r) => engine.queue(r).unwrap(),
                None => break,
            }
        }
        engine.commit().unwrap();
        engine.reap(1, &mut done).unwrap();
    }
    assert_eq!(engine.in_flight(), 0);
    let mut tags: Vec<u64> = done.iter().map(|d| d.req.tag).collect();
    tags.sort_unstable();
    assert_eq!(
        tags,
        (0..total as u64).collect::<Vec<_>>(),
        "every I/O once"
    );
    done
}

conformance!(each_io_goes_to_the_file_it_names, |case| {
    let (blocks, bs) = (16u64, 4096usize);
    let names = ["files-a", "files-b", "files-c"];
    let files: Vec<Arc<File>> = names
        .iter()
        .map(|n| case.file(n, blocks * bs as u64))
        .collect();
    for options in [&[][..], &["registerfiles=1"][..]] {
        if options
            .iter()
            .any(|o| !case.engine.options.iter().any(|e| o.starts_with(e.name)))
        {
            continue;
        }
        let Some(mut e) = case.open_files(&files, 8, options) else {
            return;
        };
        // Block i goes to file i % 3, at its own offset: every file gets its own blocks.
        let offsets: Vec<u64> = (0..blocks * 3).map(|i| i / 3 * bs as u64).collect();
        let mut reqs = writes(&offsets, bs);
        for (i, r) in reqs.iter_mut().enumerate() {
            r.file = (i % 3) as u32;
            // Tell the files apart: each block carries its file's number.
            r.buf.for_write(0)[0] = r.file as u8 + 1;
        }
        let mut expected = vec![vec![0u8; (blocks * bs as u64) as usize]; 3];
        if !case.diskless() {
            for r in &reqs {
                expected[r.file as usize][r.offset as usize..][..bs].copy_from_slice(&r.buf);
            }
        }
        for d in run(e.as_mut(), reqs, 8) {
            d.result.unwrap();
        }
        for f in 0..3 {
            e.sync(f).unwrap();
        }
        for (f, name) in names.iter().enumerate() {
            let on_disk = std::fs::read(case.path(name)).unwrap();
            assert!(on_disk == expected[f], "{options:?}: {name} differs");
        }
    }
});

conformance!(writes_read_back_at_every_depth_and_block_size, |case| {
    for (depth, bs) in [(1, 4096), (4, 64 << 10), (32, 4096), (32, 64 << 10)] {
        let blocks = 64;
        let file = case.file(&format!("d{depth}-bs{bs}"), blocks * bs as u64);
        let Some(mut e) = case.open(&file, depth as u32, &[]) else {
            return;
        };
        let offsets = shuffled(blocks, bs);
        for d in run(e.as_mut(), writes(&offsets, bs), depth) {
            d.result.unwrap();
        }
        e.sync(0).unwrap();
        let mut expected = vec![0u8; (blocks * bs as u64) as usize];
        if !case.diskless() {
            for w in writes(&offsets, bs) {
                expected[w.offset as usize..][..bs].copy_from_slice(&w.buf);
            }
        }
        let on_disk = std::fs::read(case.path(&format!("d{depth}-bs{bs}"))).unwrap();
        assert!(
            on_disk == expected,
            "depth {depth}, bs {bs}: the file differs"
        );
        // Read back by a fresh engine, in the same scrambled order.
        let mut e = case.open(&file, depth as u32, &[]).unwrap();
        let reads = offsets
            .iter()
            .enumerate()
            .map(|(tag, &o)| req(Op::Read, o, bs, tag as u64))
            .collect();
        for d in run(e.as_mut(), reads, depth) {
            d.result.unwrap();
            let at = d.req.offset as usize;
            assert!(
                d.req.buf[..] == expected[at..at + bs],
                "depth {depth}, bs {bs}: block at {at} read back wrong"
            );
        }
    }
});

conformance!(a_read_past_the_end_is_an_eof_naming_its_offset, |case| {
    if case.diskless() {
        return;
    }
    let file = case.file("short", 8192);
    let Some(mut e) = case.open(&file, 4, &[]) else {
        return;
    };
    // Straddling the end (a short read, then nothing) and wholly beyond it.
    e.queue(req(Op::Read, 0, 16384, 1)).unwrap();
    e.queue(req(Op::Read, 8192, 4096, 2)).unwrap();
    e.commit().unwrap();
    let mut done = Vec::new();
    e.reap(2, &mut done).unwrap();
    done.sort_by_key(|d| d.req.tag);
    assert_eq!(done.len(), 2);
    for d in done {
        let err = d.result.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
        let msg = err.to_string();
        assert!(msg.contains(&format!("offset {}", d.req.offset)), "{msg}");
    }
});

conformance!(in_flight_counts_and_reap_waits_for_min_never_more, |case| {
    let file = case.file("reap", 1 << 20);
    let Some(mut e) = case.open(&file, 8, &[]) else {
        return;
    };
    let mut done = Vec::new();
    e.reap(4, &mut done).unwrap();
    assert!(done.is_empty(), "nothing in flight: reap returns at once");

    for t in 0..8 {
        e.queue(req(Op::Read, t * 4096, 4096, t)).unwrap();
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
    e.queue(req(Op::Write, 20 * 4096, 4096, 20)).unwrap();
    e.reap(1, &mut done).unwrap();
    assert_eq!(done.len(), 1);
    done[0].result.as_ref().unwrap();

    // More queued than the depth, one commit: every one completes.
    done.clear();
    for t in 0..40 {
        e.queue(req(Op::Read, t * 4096, 4096, t)).unwrap();
    }
    e.commit().unwrap();
    e.reap(40, &mut done).unwrap();
    assert_eq!(done.len(), 40);
    assert!(done.iter().all(|d| d.result.is_ok()));
    assert_eq!(e.in_flight(), 0);
});

conformance!(sync_waits_for_writes_and_keeps_their_completions, |case| {
    let file = case.file("sync", 1 << 20);
    let Some(mut e) = case.open(&file, 8, &[]) else {
        return;
    };
    for t in 0..4 {
        e.queue(req(Op::Write, t * 4096, 4096, t)).unwrap();
    }
    e.commit().unwrap();
    e.sync(0).unwrap();
    assert_eq!(e.in_flight(), 4, "completions wait for the next reap");
    let mut done = Vec::new();
    e.reap(0, &mut done).unwrap();
    assert_eq!(done.len(), 4);
    assert!(done.iter().all(|d| d.result.is_ok()));
    assert_eq!(e.in_flight(), 0);
});

conformance!(
    dropped_with_io_in_flight_it_waits_and_does_not_crash,
    |case| {
        let file = case.file("drop", 1 << 20);
        for commit in [true, false] {
            let Some(mut e) = case.open(&file, 8, &[]) else {
                return;
            };
            for t in 0..8 {
                e.queue(req(Op::Write, t * 4096, 4096, t)).unwrap();
            }
            if commit {
                e.commit().unwrap();
            }
            drop(e);
        }
        let mut e = case.open(&file, 8, &[]).unwrap();
        let done = run(e.as_mut(), vec![req(Op::Read, 0, 4096, 0)], 1);
        done[0].result.as_ref().unwrap();
    }
);

conformance!(capabilities_are_what_the_descriptor_says, |case| {
    let file = case.file("caps", 1 << 20);
    let Some(mut e) = case.open(&file, 4, &[]) else {
        return;
    };
    let caps = e.caps();
    let declared = case.engine.caps;
    if declared.queues_only_direct {
        assert_eq!(
            caps.sync, !case.place.direct,
            "synchronous exactly when buffered"
        );
    } else {
        assert_eq!(caps, declared);
    }
    assert_eq!(caps.diskless, declared.diskless);
    // Diskless: a write reaches no file, and a read leaves the buffer as it was.
    let mut w = req(Op::Write, 0, 4096, 0);
    w.buf.fill(0xA5);
    let done = run(e.as_mut(), vec![w], 1);
    done[0].result.as_ref().unwrap();
    let head = std::fs::read(case.path("caps")).unwrap()[..4096].to_vec();
    assert_eq!(
        head.iter().all(|&b| b == 0),
        declared.diskless,
        "file written?"
    );
    let mut r = req(Op::Read, 0, 4096, 0);
    r.buf.fill(7);
    let done = run(e.as_mut(), vec![r], 1);
    let want = if declared.diskless { 7 } else { 0xA5 };
    assert!(done[0].req.buf.iter().all(|&b| b == want));
    assert_eq!(case.kind().caps(), declared);
});

/// Engine options with what they need to be tried alone.
const OPTION_SETS: &[(&str, &[&str])] = &[
    ("io_uring", &["registerfiles=1"]),
    ("io_uring", &["nonvectored=0"]),
    ("io_uring", &["nonvectored=1"]),
    ("io_uring", &["sqthread_poll=1"]),
    ("io_uring", &["sqthread_poll=1", "sqthread_poll_cpu=0"]),
    ("io_uring", &["hipri=1"]),
    ("io_uring", &["fixedbufs=1"]),
    ("io_uring", &["fixedbufs=1", "registerfiles=1"]),
    ("libaio", &["libaio_vectored=1"]),
    ("libaio", &["userspace_reap=1"]),
];

#[test]
fn every_engine_option_is_tried() {
    for engine in registry::engines() {
        for option in engine.options {
            let tried = OPTION_SETS.iter().any(|(e, sets)| {
                *e == engine.name
                    && sets
                        .iter()
                        .any(|s| s.starts_with(&format!("{}=", option.name)))
            });
            assert!(tried, "{}: {}", engine.name, option.name);
        }
    }
}

/// `reqs`, their buffers registered with the engine (which only `fixedbufs` uses).
fn registered(engine: &mut dyn Engine, reqs: Vec<IoReq>) -> Vec<IoReq> {
    let bufs: Vec<&AlignedBuf> = reqs.iter().map(|r| &r.buf).collect();
    engine.register_buffers(&bufs).unwrap();
    reqs
}

/// Whether every I/O succeeded; `false` (said on stderr) when the kernel or device does not
/// support what the options ask (polled completions without poll queues), a failure else.
fn all_done(done: &[IoDone], what: &str) -> bool {
    match done.iter().find_map(|d| d.result.as_ref().err()) {
        None => true,
        Some(err) if err.kind() == io::ErrorKind::Unsupported => {
            eprintln!("skipping {what}: {err}");
            false
        }
        Some(err) => panic!("{what}: {err}"),
    }
}

conformance!(engine_options_move_the_same_bytes, |case| {
    for (_, options) in OPTION_SETS.iter().filter(|(e, _)| *e == case.engine.name) {
        // Polled completions need O_DIRECT.
        if options.contains(&"hipri=1") && !case.place.direct {
            continue;
        }
        let what = format!("{options:?} on {}", case.place.label);
        let file = case.file("opts", 64 << 10);
        let Some(mut e) = case.open(&file, 8, options) else {
            continue;
        };
        let offsets = shuffled(16, 4096);
        let reqs = registered(e.as_mut(), writes(&offsets, 4096));
        let writes_done = run(e.as_mut(), reqs, 8);
        if !all_done(&writes_done, &what) {
            continue;
        }
        e.sync(0)
            .unwrap_or_else(|err| panic!("{what}: sync: {err}"));
        let reads = offsets
            .iter()
            .enumerate()
            .map(|(tag, &o)| req(Op::Read, o, 4096, tag as u64))
            .collect();
        let reads = registered(e.as_mut(), reads);
        let done = run(e.as_mut(), reads, 8);
        if !all_done(&done, &what) {
            continue;
        }
        let written = writes(&offsets, 4096);
        for d in done {
            assert!(
                d.req.buf[..] == written[d.req.tag as usize].buf[..],
                "{what}"
            );
        }
    }
});

#[test]
fn engine_names_parse_like_fio() {
    for engine in registry::engines() {
        for name in std::iter::once(&engine.name).chain(engine.aliases) {
            let kind: EngineKind = name.parse().unwrap();
            assert_eq!(kind.name(), engine.name);
        }
    }
    assert_eq!("aio".parse::<EngineKind>().unwrap().name(), "libaio");
    let e = "posixaio".parse::<EngineKind>().unwrap_err();
    assert!(e.ends_with("use libaio or io_uring"), "{e}");
    let e = "sideways".parse::<EngineKind>().unwrap_err();
    assert!(
        e.starts_with("ioengine=sideways: expected sync, psync, pvsync, libaio"),
        "{e}"
    );
    let job = JobSpec {
        ioengine: "io_uring".parse().unwrap(),
        ..JobSpec::default()
    };
    let e = job.open_engine(Vec::new()).err().unwrap().to_string();
    assert!(e.contains("io_uring needs a file"), "{e}");
}

#[test]
fn libaio_warns_when_it_cannot_queue() {
    let mut job = JobSpec::default();
    job.set("ioengine", "libaio").unwrap();
    job.set("iodepth", "32").unwrap();
    let warnings = job.warnings();
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].contains("iodepth=32 does not queue"),
        "{warnings:?}"
    );
    job.set("direct", "1").unwrap();
    assert!(job.warnings().is_empty());
    job.validate().unwrap();
}

conformance!(an_engine_opened_on_one_thread_runs_on_another, |case| {
    // Jobs open their engines before their threads start; io_uring's ring is bound to the
    // thread that first uses it.
    let file = case.file("moved", 64 << 10);
    let Some(mut e) = case.open(&file, 4, &[]) else {
        return;
    };
    let offsets = shuffled(16, 4096);
    std::thread::scope(|s| {
        s.spawn(|| {
            for d in run(e.as_mut(), writes(&offsets, 4096), 4) {
                d.result.unwrap();
            }
            e.sync(0).unwrap();
        });
    });
});

conformance!(reaping_without_waiting_finds_every_completion, |case| {
    // With deferred completions (DEFER_TASKRUN), a reap that does not wait must still ask
    // the kernel to post them; libaio's userspace_reap reads them from the ring itself.
    let sets = OPTION_SETS.iter().filter(|(e, _)| *e == case.engine.name);
    for options in std::iter::once(&[][..]).chain(sets.map(|(_, o)| *o)) {
        if options.contains(&"hipri=1") && !case.place.direct {
            continue;
        }
        let file = case.file("poll", 64 << 10);
        let Some(mut e) = case.open(&file, 8, options) else {
            continue;
        };
        let offsets = shuffled(16, 4096);
        let reqs = registered(e.as_mut(), writes(&offsets, 4096));
        let mut pending = reqs.into_iter();
        let mut done = Vec::new();
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while done.len() < 16 && std::time::Instant::now() < give_up {
            while e.in_flight() < 8 {
                let Some(r) = pending.next() else { break };
                e.queue(r).unwrap();
            }
            e.commit().unwrap();
            e.reap(0, &mut done).unwrap();
        }
        assert_eq!(
            done.len(),
            16,
            "{options:?}: every completion found by reap(0)"
        );
        assert_eq!(e.in_flight(), 0);
        let mut tags: Vec<u64> = done.iter().map(|d| d.req.tag).collect();
        tags.sort_unstable();
        assert_eq!(tags, (0..16).collect::<Vec<_>>(), "{options:?}: each once");
        if !all_done(&done, &format!("{options:?}")) {
            continue;
        }
        e.sync(0).unwrap();
        let on_disk = std::fs::read(case.path("poll")).unwrap();
        if !case.diskless() {
            for w in writes(&offsets, 4096) {
                let at = w.offset as usize;
                assert!(on_disk[at..at + 4096] == w.buf[..], "{options:?}");
            }
        }
    }
});
