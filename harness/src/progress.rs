//! What a long `run` or `compare` shows while it works: a progress bar on stderr for the
//! case under way (which case of how many, bytes done of the total or time of the runtime,
//! live MiB/s), only when stderr is a terminal; and one line per finished case, always.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{BinaryBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use workloads::JobSpec;

/// Weight of the newest interval in the displayed rate: smooths 100 ms jitter while still
/// following a real change within about a second.
const SMOOTHING: f64 = 0.3;

pub struct Progress {
    total_cases: usize,
    /// Where bars are drawn; `None` (stderr is not a terminal): no bar at all.
    target: Option<fn() -> ProgressDrawTarget>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    started: usize,
    case: Option<CaseBar>,
}

/// How far a case has to go: its bytes, or its runtime when the job is time_based.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Goal {
    Bytes(u64),
    Time(Duration),
}

impl Goal {
    /// The jobs of a case run at once: time-based if any is (the longest ramp + runtime),
    /// else all their bytes.
    fn of(jobs: &[JobSpec]) -> Goal {
        let longest = jobs
            .iter()
            .filter(|j| j.time_based)
            .filter_map(|j| Some(j.runtime? + j.ramp_time.unwrap_or_default()))
            .max();
        match longest {
            Some(t) => Goal::Time(t),
            None => Goal::Bytes(
                jobs.iter()
                    .map(|j| j.blocks() * j.bs * u64::from(j.numjobs))
                    .sum(),
            ),
        }
    }
}

struct CaseBar {
    bar: ProgressBar,
    id: String,
    goal: Goal,
    start: Instant,
    last: (Instant, u64),
    mib_s: Option<f64>,
}

impl CaseBar {
    fn show(&self, bytes: u64) {
        let (position, done) = match self.goal {
            Goal::Bytes(total) => (
                bytes.min(total),
                format!("{} of {}", BinaryBytes(bytes), BinaryBytes(total)),
            ),
            Goal::Time(runtime) => {
                let elapsed = self.start.elapsed().min(runtime);
                (
                    elapsed.as_millis() as u64,
                    format!(
                        "{:.0}s of {:.0}s",
                        elapsed.as_secs_f64(),
                        runtime.as_secs_f64()
                    ),
                )
            }
        };
        let rate = self
            .mib_s
            .map(|r| format!(", {r:.0} MiB/s"))
            .unwrap_or_default();
        self.bar.set_position(position);
        self.bar.set_message(format!("{done}{rate}  {}", self.id));
    }
}

impl Progress {
    /// Progress for a run of `total_cases` cases; bars only if stderr is a terminal.
    pub fn new(total_cases: usize) -> Progress {
        let tty = std::io::stderr().is_terminal();
        Progress::with_target(total_cases, tty.then_some(ProgressDrawTarget::stderr))
    }

    fn with_target(total_cases: usize, target: Option<fn() -> ProgressDrawTarget>) -> Progress {
        Progress {
            total_cases,
            target,
            state: Mutex::new(State::default()),
        }
    }

    /// The next case starts its measured part (call after any lay-out messages).
    pub fn start_case(&self, id: &str, jobs: &[JobSpec]) {
        let mut state = self.state.lock().unwrap();
        state.started += 1;
        if let Some(old) = state.case.take() {
            old.bar.finish_and_clear();
        }
        let Some(target) = self.target else {
            return;
        };
        let goal = Goal::of(jobs);
        let len = match goal {
            Goal::Bytes(b) => b,
            Goal::Time(t) => t.as_millis() as u64,
        };
        // The id goes last: on a narrow terminal wide_msg cuts it rather than wrapping.
        let style = ProgressStyle::with_template("{prefix} [{bar:20}] {wide_msg}")
            .expect("valid template")
            .progress_chars("=> ");
        let bar = ProgressBar::with_draw_target(Some(len), target())
            .with_style(style)
            .with_prefix(format!("case {}/{}", state.started, self.total_cases));
        let now = Instant::now();
        let case = CaseBar {
            bar,
            id: id.to_string(),
            goal,
            start: now,
            last: (now, 0),
            mib_s: None,
        };
        case.show(0);
        state.case = Some(case);
    }

    /// Bytes the running case has completed so far; called once per collector interval.
    pub fn update(&self, bytes_done: u64) {
        let mut state = self.state.lock().unwrap();
        let Some(case) = state.case.as_mut() else {
            return;
        };
        let now = Instant::now();
        let dt = (now - case.last.0).as_secs_f64();
        if dt > 0.0 {
            let rate = bytes_done.saturating_sub(case.last.1) as f64 / (1 << 20) as f64 / dt;
            case.mib_s = Some(case.mib_s.map_or(rate, |r| r + (rate - r) * SMOOTHING));
            case.last = (now, bytes_done);
        }
        case.show(bytes_done);
    }

    /// The case ended: its bar goes, its one-line summary stays.
    pub fn finish_case(&self, line: &str) {
        if let Some(case) = self.state.lock().unwrap().case.take() {
            case.bar.finish_and_clear();
        }
        eprintln!("{line}");
    }
}

impl Drop for Progress {
    /// A run that stops with an error leaves no half-drawn bar above the error message.
    fn drop(&mut self) {
        if let Some(case) = self.state.get_mut().unwrap().case.take() {
            case.bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(opts: &[(&str, &str)]) -> JobSpec {
        JobSpec::with(opts).unwrap()
    }

    #[test]
    fn the_goal_is_bytes_or_the_runtime_of_a_time_based_job() {
        let bytes = job(&[("size", "64m"), ("bs", "1m"), ("numjobs", "2")]);
        assert_eq!(
            Goal::of(std::slice::from_ref(&bytes)),
            Goal::Bytes(128 << 20)
        );
        let timed = job(&[("runtime", "30s"), ("time_based", "1"), ("ramp_time", "2s")]);
        assert_eq!(
            Goal::of(&[bytes, timed]),
            Goal::Time(Duration::from_secs(32))
        );
    }

    #[test]
    fn shows_which_case_how_far_and_how_fast() {
        let p = Progress::with_target(3, Some(ProgressDrawTarget::hidden));
        p.start_case("01-inline-r1", &[job(&[("size", "64m"), ("bs", "1m")])]);
        std::thread::sleep(Duration::from_millis(20));
        p.update(16 << 20);
        {
            let state = p.state.lock().unwrap();
            let bar = &state.case.as_ref().unwrap().bar;
            assert_eq!(bar.prefix(), "case 1/3");
            assert_eq!(bar.position(), 16 << 20);
            assert_eq!(bar.length(), Some(64 << 20));
            let msg = bar.message();
            assert!(msg.starts_with("16.00 MiB of 64.00 MiB, "), "{msg}");
            assert!(msg.ends_with(" MiB/s  01-inline-r1"), "{msg}");
        }
        p.finish_case("01-inline-r1: Ok");
        assert!(p.state.lock().unwrap().case.is_none());
        p.start_case("02-kthread-r1", &[job(&[("size", "64m"), ("bs", "1m")])]);
        let state = p.state.lock().unwrap();
        let bar = &state.case.as_ref().unwrap().bar;
        assert_eq!(bar.prefix(), "case 2/3");
        assert_eq!(bar.message(), "0 B of 64.00 MiB  02-kthread-r1");
    }
}
