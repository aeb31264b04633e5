//! The I/Os of a clone with several files, as fio serves them (`io_u.c`: `__get_next_file`,
//! `set_io_u_file`; `backend.c`: `keep_running`): each file has its own pattern (its own
//! positions and random map, over its own share of the I/O), and `file_service_type`
//! picks the file of each I/O. A file whose pass has ended is done (fio's
//! `fio_file_set_done`), or starts again at once for the non-uniform service types and for
//! a time-based random job (fio's `fio_file_reset`); once every file is done the clone
//! makes another pass over all of them while `loops`, `io_size` or `time_based` ask for
//! one. `io_size`, `number_ios` and the clone's `size` count over all its files.

use super::limits::Limits;
use super::random::{Hot, Rng};
use super::{Io, IoPattern};
use crate::job::{mix64, FileService, JobSpec};

/// fio's `FIO_FSERVICE_SHIFT`: a skewed file service draws among 2^10 ranges per file.
const SERVICE_SHIFT: u32 = 10;
/// Draws of a random file service before it takes the next file that is not done.
const MOST_DRAWS: usize = 64;

/// The I/Os of one clone, each with the index of the file it goes to.
#[allow(clippy::large_enum_variant)]
pub enum ClonePattern {
    /// The job's one file: its pattern is the job's own (unboxed: the hot path reads it).
    One(IoPattern),
    Many(Box<FileSet>),
}

impl ClonePattern {
    /// The I/Os of clone `jobnum` of `job` over its files, whose data ends at `file_ends`
    /// (as [`IoPattern::new`] takes it), drawn from `seed`.
    pub fn new(job: &JobSpec, jobnum: u32, file_ends: &[u64], seed: u64) -> ClonePattern {
        let sizes = job.file_sizes(jobnum);
        // The first file draws from the clone's own seed, as a job of one file does.
        let pattern = |file: usize| {
            let own = job.for_file(sizes[file]);
            let seed = match file {
                0 => seed,
                f => seed ^ mix64(f as u64),
            };
            IoPattern::new(&own, jobnum, file_ends[file], seed)
        };
        match job.nr_files() {
            1 => ClonePattern::One(pattern(0)),
            n => ClonePattern::Many(Box::new(FileSet::new(
                job,
                jobnum,
                (0..n as usize).map(pattern).collect(),
                seed,
            ))),
        }
    }
}

impl Iterator for ClonePattern {
    type Item = (usize, Io);

    // A thin dispatch on the hot path, called from another crate: inlined there.
    #[inline]
    fn next(&mut self) -> Option<(usize, Io)> {
        match self {
            ClonePattern::One(pattern) => pattern.next().map(|io| (0, io)),
            ClonePattern::Many(set) => set.next(),
        }
    }
}

/// Several files' patterns, served as the job says.
pub struct FileSet {
    files: Vec<FileState>,
    done: usize,
    service: Service,
    /// The clone's own limits, over all its files.
    limits: Limits,
    /// Files start again when their pass ends, rather than being done.
    reset_files: bool,
    /// I/Os of this pass over the files: one that issues nothing would be followed by
    /// another like it.
    pass_ios: u64,
    /// Between two passes over the files (and before the first).
    between: bool,
    finished: bool,
}

struct FileState {
    pattern: IoPattern,
    done: bool,
    /// I/Os since its pass (re)started: a pass that issues none is over for good.
    ios: u64,
}

/// fio's file service: the file in use, how many more I/Os it gets, and the picking.
struct Service {
    kind: FileService,
    current: Option<usize>,
    left: u32,
    /// The next file round robin.
    next: usize,
    rng: Rng,
    hot: Option<Hot>,
}

impl FileSet {
    fn new(job: &JobSpec, jobnum: u32, patterns: Vec<IoPattern>, seed: u64) -> FileSet {
        let n = patterns.len() as u64;
        let kind = job.files.service;
        let mut rng = Rng::new(seed ^ mix64(0xF11E));
        // fio draws from files x 2^10 ranges, unhashed, and shifts back to a file.
        let ranges = n << SERVICE_SHIFT;
        let hot = match kind {
            FileService::Zipf(theta, at) => Some(Hot::zipf(ranges, theta, at, &mut rng)),
            FileService::Pareto(h, at) => Some(Hot::pareto(ranges, h, at, &mut rng)),
            FileService::Normal(sigma, at) => Some(Hot::normal(ranges, sigma, at)),
            _ => None,
        }
        .map(Hot::unhashed);
        FileSet {
            reset_files: hot.is_some() || (job.time_based && job.rw.is_random()),
            files: patterns
                .into_iter()
                .map(|pattern| FileState {
                    pattern,
                    done: false,
                    ios: 0,
                })
                .collect(),
            done: 0,
            service: Service {
                kind,
                current: None,
                left: 0,
                next: 0,
                rng,
                hot,
            },
            limits: Limits::new(job, job.pass_size(jobnum)),
            pass_ios: 0,
            between: true,
            finished: false,
        }
    }

    /// Every file starts a new pass.
    fn start_pass(&mut self) {
        for file in &mut self.files {
            file.pattern.rewind();
            (file.done, file.ios) = (false, 0);
        }
        self.done = 0;
        self.service.current = None;
        self.pass_ios = 0;
    }

    /// The pass of file `f` has ended: it starts again, or is done.
    fn file_ended(&mut self, f: usize) {
        let file = &mut self.files[f];
        if self.reset_files && file.ios > 0 {
            file.pattern.rewind();
            file.ios = 0;
            return;
        }
        file.done = true;
        self.done += 1;
    }
}

impl Iterator for FileSet {
    type Item = (usize, Io);

    fn next(&mut self) -> Option<(usize, Io)> {
        while !self.finished {
            if self.between {
                // Between passes every file is done: the last pass ended with them.
                if !self.limits.keep_running(true) {
                    break;
                }
                self.start_pass();
                self.between = false;
            }
            if self.limits.reached() {
                break;
            }
            let Some(f) = self.service.pick(&self.files, self.done) else {
                if self.pass_ios == 0 {
                    break;
                }
                self.between = true;
                continue;
            };
            match self.files[f].pattern.next() {
                Some(io) => {
                    self.files[f].ios += 1;
                    self.pass_ios += 1;
                    self.limits.count(io.len);
                    return Some((f, io));
                }
                None => self.file_ended(f),
            }
        }
        self.finished = true;
        None
    }
}

impl Service {
    /// fio's `__get_next_file`: the file in use while it has I/Os left (to its end for
    /// `sequential`), else the next one by the service type; `None` once every file is
    /// done.
    fn pick(&mut self, files: &[FileState], done: usize) -> Option<usize> {
        if done >= files.len() {
            return None;
        }
        if let Some(f) = self.current.filter(|&f| !files[f].done) {
            if let FileService::Sequential { .. } = self.kind {
                return Some(f);
            }
            if self.left > 0 {
                self.left -= 1;
                return Some(f);
            }
        }
        let n = files.len();
        let after = |from: usize| (0..n).map(|i| (from + i) % n).find(|&f| !files[f].done);
        let f = match (self.kind, &self.hot) {
            (FileService::RoundRobin { .. } | FileService::Sequential { .. }, _) => {
                let f = after(self.next)?;
                self.next = (f + 1) % n;
                f
            }
            // fio draws again until a file is not done; a draw that keeps landing on done
            // files (all the weight on them) takes the next file that is not, rather than
            // draw for ever.
            (_, hot) => {
                let mut draw = || match hot {
                    Some(hot) => (hot.next(&mut self.rng) >> SERVICE_SHIFT) as usize,
                    None => self.rng.below(n as u64) as usize,
                };
                let mut f = draw();
                for _ in 0..MOST_DRAWS {
                    if !files[f].done {
                        break;
                    }
                    f = draw();
                }
                after(f)?
            }
        };
        self.current = Some(f);
        self.left = match self.kind {
            FileService::RoundRobin { ios }
            | FileService::Random { ios }
            | FileService::Sequential { ios } => ios - 1,
            _ => 0,
        };
        Some(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Op;

    fn job(options: &[(&str, &str)]) -> JobSpec {
        JobSpec::with(options).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The clone's I/Os with fresh files as long as their shares.
    fn ios(options: &[(&str, &str)]) -> Vec<(usize, Io)> {
        let j = job(options);
        let ends: Vec<u64> = j.file_sizes(0);
        ClonePattern::new(&j, 0, &ends, 7).collect()
    }

    fn bytes_per_file(ios: &[(usize, Io)], n: usize) -> Vec<u64> {
        let mut bytes = vec![0; n];
        for (f, io) in ios {
            bytes[*f] += io.len;
        }
        bytes
    }

    #[test]
    fn round_robin_takes_each_file_in_turn_over_its_share_of_size() {
        let ios = ios(&[("size", "64k"), ("bs", "4k"), ("nrfiles", "4")]);
        let files: Vec<usize> = ios.iter().map(|(f, _)| *f).take(8).collect();
        assert_eq!(files, [0, 1, 2, 3, 0, 1, 2, 3]);
        assert_eq!(bytes_per_file(&ios, 4), [16 << 10; 4]);
        // Each file's own positions: file 1's I/Os run 0, 4k, 8k, 12k.
        let offsets: Vec<u64> = ios
            .iter()
            .filter(|(f, _)| *f == 1)
            .map(|(_, io)| io.offset)
            .collect();
        assert_eq!(offsets, [0, 4 << 10, 8 << 10, 12 << 10]);
    }

    #[test]
    fn each_file_issues_the_whole_blocks_of_its_share() {
        // fio's setup_files: 40k / 3 each, of which three 4k blocks are issued.
        let j = job(&[("size", "40k"), ("bs", "4k"), ("nrfiles", "3")]);
        assert_eq!(j.file_sizes(0), [13653; 3]);
        let ios = ios(&[("size", "40k"), ("bs", "4k"), ("nrfiles", "3")]);
        assert_eq!(bytes_per_file(&ios, 3), [12 << 10; 3]);
    }

    #[test]
    fn service_types_keep_a_file_for_their_count_of_ios() {
        let base = [("size", "32k"), ("bs", "4k"), ("nrfiles", "2")];
        let order = |service: &str| -> Vec<usize> {
            let mut o = base.to_vec();
            o.push(("file_service_type", service));
            ios(&o).iter().map(|(f, _)| *f).collect()
        };
        assert_eq!(order("roundrobin:2"), [0, 0, 1, 1, 0, 0, 1, 1]);
        assert_eq!(order("sequential"), [0, 0, 0, 0, 1, 1, 1, 1]);
        let random = order("random");
        assert_eq!(random.len(), 8, "every block of both files");
        assert_eq!(
            bytes_per_file(
                &ios(&[
                    ("size", "32k"),
                    ("bs", "4k"),
                    ("nrfiles", "2"),
                    ("file_service_type", "random")
                ]),
                2
            ),
            [16 << 10; 2]
        );
    }

    #[test]
    fn random_io_covers_each_block_of_each_file_once() {
        let ios = ios(&[
            ("size", "256k"),
            ("bs", "4k"),
            ("nrfiles", "4"),
            ("rw", "randwrite"),
        ]);
        for f in 0..4 {
            let mut offsets: Vec<u64> = ios
                .iter()
                .filter(|(g, _)| *g == f)
                .map(|(_, io)| io.offset)
                .collect();
            offsets.sort_unstable();
            assert_eq!(
                offsets,
                (0..16).map(|b| b * 4096).collect::<Vec<_>>(),
                "file {f}"
            );
        }
    }

    #[test]
    fn loops_io_size_and_number_ios_count_over_all_the_files() {
        let base = [("size", "32k"), ("bs", "4k"), ("nrfiles", "2")];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut o = base.to_vec();
            o.extend_from_slice(extra);
            ios(&o)
        };
        assert_eq!(with(&[("loops", "3")]).len(), 24);
        assert_eq!(with(&[("io_size", "16k")]).len(), 4);
        // A larger io_size makes more passes over both files.
        assert_eq!(
            bytes_per_file(&with(&[("io_size", "64k")]), 2),
            [32 << 10; 2]
        );
        assert_eq!(with(&[("number_ios", "3")]).len(), 3);
    }

    #[test]
    fn every_clone_needs_a_share_of_its_files() {
        // Clone 2 starts at 64k, where filesize=64k ends: fio refuses it, and so do we.
        let e = job(&[
            ("filesize", "64k"),
            ("offset_increment", "32k"),
            ("numjobs", "3"),
        ])
        .validate()
        .unwrap_err();
        assert!(e.contains("clone 2's offset of 64KiB"), "{e}");
    }

    #[test]
    fn filesize_sizes_each_file_and_size_then_only_limits() {
        let j = job(&[("filesize", "16k"), ("bs", "4k"), ("nrfiles", "3")]);
        assert_eq!(j.file_sizes(0), [16 << 10; 3]);
        assert_eq!(
            j.pass_size(0),
            48 << 10,
            "fio's size is the files' together"
        );
        let j = job(&[
            ("filesize", "16k"),
            ("size", "20k"),
            ("bs", "4k"),
            ("nrfiles", "3"),
        ]);
        assert_eq!(j.pass_size(0), 20 << 10);
        let ranged = job(&[("filesize", "8k-64k"), ("bs", "4k"), ("nrfiles", "8")]);
        let sizes = ranged.file_sizes(0);
        assert!(sizes
            .iter()
            .all(|s| (8 << 10..=64 << 10).contains(s) && s % 4096 == 0));
        assert_eq!(
            sizes,
            ranged.file_sizes(0),
            "the same each time it is asked"
        );
    }

    #[test]
    fn skewed_service_ends_by_bytes_and_favours_a_few_files() {
        let ios = ios(&[
            ("size", "4m"),
            ("bs", "4k"),
            ("nrfiles", "16"),
            ("rw", "randread"),
            ("file_service_type", "zipf:1.2"),
        ]);
        assert_eq!(ios.iter().map(|(_, io)| io.len).sum::<u64>(), 4 << 20);
        let mut per = bytes_per_file(&ios, 16);
        per.sort_unstable();
        assert!(per[15] > per[0] * 4, "{per:?}");
        assert!(ios.iter().all(|(_, io)| io.op == Op::Read));
    }

    #[test]
    fn time_based_goes_on_over_every_file() {
        let j = job(&[
            ("size", "16k"),
            ("bs", "4k"),
            ("nrfiles", "2"),
            ("time_based", "1"),
            ("runtime", "1"),
        ]);
        let ends = j.file_sizes(0);
        let ios: Vec<_> = ClonePattern::new(&j, 0, &ends, 1).take(100).collect();
        assert_eq!(ios.len(), 100);
        assert_eq!(bytes_per_file(&ios, 2), [200 << 10; 2]);
    }

    #[test]
    fn a_skewed_pick_takes_a_file_not_done_rather_than_draw_for_ever() {
        let j = job(&[
            ("size", "8k"),
            ("bs", "4k"),
            ("nrfiles", "2"),
            ("file_service_type", "zipf:100"),
        ]);
        let ClonePattern::Many(mut set) = ClonePattern::new(&j, 0, &[4096, 4096], 1) else {
            panic!("two files");
        };
        // Whichever file the distribution favours, with it done the pick is the other.
        for f in 0..2 {
            set.files[f].done = true;
            set.service.current = None;
            assert_eq!(set.service.pick(&set.files, 1), Some(1 - f));
            set.files[f].done = false;
        }
    }

    #[test]
    fn names_follow_the_list_or_the_format() {
        let j = job(&[("filename", "a:b"), ("nrfiles", "5")]);
        assert_eq!(j.nr_files(), 2, "a list sets the number of files");
        assert_eq!(j.file_name(3, 1), std::path::PathBuf::from("b"));
        let j = job(&[
            ("nrfiles", "2"),
            ("filename_format", "f.$JobName.$filenum-$jobnum"),
        ]);
        let mut j = j;
        j.name = "w".into();
        assert_eq!(j.file_name(2, 1), std::path::PathBuf::from("f.w.1-2"));
        // What is put in is not read again: a job named with a keyword ends.
        j.name = "a$JOBNAME$filenum".into();
        assert_eq!(
            j.file_name(0, 3),
            std::path::PathBuf::from("f.a$JOBNAME$filenum.3-0")
        );
        j.files.format = None;
        assert_eq!(
            j.file_name(1, 2),
            std::path::PathBuf::from("a$JOBNAME$filenum.1.2")
        );
    }
}
