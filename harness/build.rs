//! Records the versions of the crates that do the measured work, for the results manifest.

fn main() {
    println!("cargo:rerun-if-changed=../Cargo.lock");
    let lock = std::fs::read_to_string("../Cargo.lock").unwrap_or_default();
    let wanted = [
        "crc32c",
        "crc-fast",
        "crc",
        "xxhash-rust",
        "blake2",
        "sha2",
        "hdrhistogram",
        "rayon",
        "tokio",
        "async-std",
        "smol",
        "crossbeam-deque",
        "crossbeam-channel",
        "io-uring",
        "core_affinity",
    ];
    let mut found = Vec::new();
    let mut name = None;
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"').to_string());
        } else if let (Some(v), Some(n)) = (line.strip_prefix("version = "), name.take()) {
            if wanted.contains(&n.as_str()) {
                found.push(format!("{n}={}", v.trim_matches('"')));
            }
        }
    }
    println!("cargo:rustc-env=CSUMBENCH_CRATES={}", found.join(","));
}
