//! `harness`: runs fio-like workloads through checksum dispatch strategies and records
//! what happened. See the README for the commands.

mod case;
mod cli;
mod export;
mod manifest;
mod measure;
mod pipeline;
mod results;
mod summary;

fn main() {
    let code = match cli::main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            cli::EXIT_ERROR
        }
    };
    std::process::exit(code);
}
