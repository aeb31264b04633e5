//! The `harness` binary, tested from outside (assert_cmd, every process with a deadline),
//! in one test binary with a module per concern, as ripgrep does: one build and one link
//! for all of them, and the helpers in `common` shared without copies.

mod common;

mod batching;
mod cli;
mod corruption;
mod crossover;
mod deadlock;
mod edges;
mod faults;
mod files;
mod fio;
mod fio_json;
mod fio_logs;
mod interrupt;
mod overlap;
mod pauses;
mod report;
mod results_full;
mod stores;
mod trust;
mod verdicts;
mod verify_phase;
