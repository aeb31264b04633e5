//! `harness`: runs fio-like workloads through checksum dispatch strategies and records
//! what happened. See the README for the commands.

fn main() {
    let code = match harness::cli::main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            harness::cli::EXIT_ERROR
        }
    };
    std::process::exit(code);
}
