//! The harness library: the measured pipeline, cases, results and exporters. The
//! `harness` binary is a thin shell over [`cli::main`]; benches use the pieces directly.

pub mod budget;
pub mod case;
pub mod cli;
pub mod crossover;
pub mod export;
pub mod inject;
pub mod manifest;
pub mod measure;
pub mod names;
pub mod noise;
pub mod pipeline;
pub mod progress;
pub mod report;
pub mod results;
pub mod session;
pub mod stats;
pub mod summary;
