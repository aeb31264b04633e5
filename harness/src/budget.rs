//! What a run will hold at once, checked before anything is allocated or created: the jobs
//! of a group run together, so each group's memory (I/O buffers, job thread stacks),
//! threads and file descriptors must fit what the machine allows. Checksum stores are not
//! counted: they are mapped from their files, so what they hold resident is page cache
//! that follows the sectors a job touches, and the kernel reclaims it. A run that does
//! not fit is refused with the figure and the limit, not started and left to fail midway
//! (ten thousand job sections used to hit EMFILE after 34 s and leave 19,995 files behind).

use anyhow::{bail, Result};
use workloads::job::MAX_NUMJOBS;
use workloads::units::format_size_approx;
use workloads::JobSpec;

/// The stack a job thread reserves (Rust's default for spawned threads).
const JOB_STACK: u64 = 2 << 20;
/// Descriptors the process holds besides its jobs' (stdio, the results folder, the binary's
/// own libraries and the pools' runtimes).
const FDS_BESIDES_JOBS: u64 = 64;

/// What one group holds at once.
#[derive(Debug, Default, PartialEq)]
struct Need {
    buffers: u64,
    stacks: u64,
    threads: u64,
    fds: u64,
}

impl Need {
    fn of(jobs: &[JobSpec]) -> Need {
        let mut need = Need::default();
        for job in jobs {
            let clones = u64::from(job.numjobs);
            // Each clone's files, unless they share `filename`'s.
            let per_clone = u64::from(job.nr_files());
            let files = per_clone * if job.filename.is_some() { 1 } else { clones };
            // The sync engine opens each file again, for a position of its own.
            let reopened = match job.ioengine.name() {
                "sync" => clones * per_clone,
                _ => 0,
            };
            need.buffers = need.buffers.saturating_add(job.buffer_bytes());
            need.stacks = need.stacks.saturating_add(clones * JOB_STACK);
            need.threads += clones;
            // Each file and its store; each clone's engine may hold one more (a ring).
            need.fds += 2 * files + clones + reopened;
        }
        need
    }

    fn memory(&self) -> u64 {
        self.buffers.saturating_add(self.stacks)
    }
}

/// Refuses a run whose groups would not fit `memory` (half the machine's, the same rule a
/// single job's buffers follow) or `fd_limit` open files, or that starts more job threads
/// at once than fio allows in a whole run.
fn check_groups(groups: &[Vec<JobSpec>], memory: u64, fd_limit: u64) -> Result<()> {
    for (g, jobs) in groups.iter().enumerate() {
        let need = Need::of(jobs);
        let which = match groups.len() {
            1 => "the run's jobs".to_string(),
            _ => format!("the jobs of group {} (they run at the same time)", g + 1),
        };
        if need.threads > u64::from(MAX_NUMJOBS) {
            bail!(
                "{which} start {} job threads; at most {MAX_NUMJOBS} run at once (fio's limit \
                 too): split them into groups with stonewall, or lower numjobs",
                need.threads
            );
        }
        if need.memory() > memory / 2 {
            bail!(
                "{which} need {} of memory ({} of I/O buffers, {} of thread stacks), more \
                 than half of this machine's {}; lower iodepth or numjobs",
                format_size_approx(need.memory()),
                format_size_approx(need.buffers),
                format_size_approx(need.stacks),
                format_size_approx(memory)
            );
        }
        if need.fds + FDS_BESIDES_JOBS > fd_limit {
            bail!(
                "{which} need {} open files, more than this process may have ({fd_limit}, \
                 `ulimit -n`); raise the limit, or split the jobs into groups with stonewall",
                need.fds + FDS_BESIDES_JOBS
            );
        }
    }
    Ok(())
}

/// Checks the run's groups against this machine and process, after raising the open-file
/// limit as far as the hard limit allows.
pub fn check(groups: &[Vec<JobSpec>]) -> Result<()> {
    check_groups(groups, workloads::job::physical_memory(), raise_fd_limit())
}

/// Raises the soft limit on open files to the hard one (as many servers do) and returns
/// the limit now in force.
fn raise_fd_limit() -> u64 {
    // SAFETY: getrlimit and setrlimit read and write the struct they are given.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return u64::MAX;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
        lim.rlim_cur
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(opts: &[(&str, &str)]) -> JobSpec {
        JobSpec::with(opts).unwrap()
    }

    const GIB: u64 = 1 << 30;

    #[test]
    fn a_group_is_counted_as_a_whole() {
        // Three jobs of 10 GiB of buffers each: each alone is under half of 23.5 GiB.
        let big = job(&[("bs", "1m"), ("iodepth", "10240"), ("size", "1g")]);
        assert_eq!(big.buffer_bytes(), 10 * GIB);
        let memory = 47 * GIB / 2;
        big.check_memory(memory).unwrap();
        check_groups(&[vec![big.clone()]], memory, 1024).unwrap();
        let e = check_groups(&[vec![big.clone(), big.clone(), big.clone()]], memory, 1024)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("the run's jobs need 30")
                && e.contains("of I/O buffers")
                && e.contains("23.5GiB"),
            "{e}"
        );
        // The same jobs one after another fit.
        let groups = [vec![big.clone()], vec![big.clone()], vec![big]];
        check_groups(&groups, memory, 1024).unwrap();
    }

    #[test]
    fn stacks_count_and_clones_sharing_a_file_share_it() {
        let shared = job(&[("size", "1g"), ("numjobs", "4"), ("filename", "/x")]);
        let own = job(&[("size", "1g"), ("numjobs", "4")]);
        let need = Need::of(&[shared, own]);
        assert_eq!(need.stacks, 8 * JOB_STACK);
        assert_eq!(need.threads, 8);
        // (1 + 4 files) x (data + store) + 8 engines.
        assert_eq!(need.fds, 18);
    }

    #[test]
    fn threads_and_open_files_are_limited() {
        let one = job(&[("size", "4k")]);
        let many: Vec<JobSpec> = (0..5000).map(|_| one.clone()).collect();
        let e = check_groups(&[many], 64 * GIB, 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(e.contains("start 5000 job threads; at most 4096"), "{e}");
        let groups = [(0..1000).map(|_| one.clone()).collect::<Vec<_>>()];
        let e = check_groups(&groups, 64 * GIB, 1024)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("need 3064 open files") && e.contains("(1024, `ulimit -n`)"),
            "{e}"
        );
        check_groups(&groups, 64 * GIB, 4096).unwrap();
    }
}
