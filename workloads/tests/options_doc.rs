//! The README's option table is the one the option table generates, so neither can drift.

use workloads::job::options::markdown_table;

const BEGIN: &str = "<!-- options:begin -->\n";
const END: &str = "<!-- options:end -->";

#[test]
fn the_readme_option_table_is_the_generated_one() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let start = readme.find(BEGIN).expect("README marks its option table") + BEGIN.len();
    let len = readme[start..]
        .find(END)
        .expect("README ends its option table");
    assert!(
        readme[start..start + len] == markdown_table(),
        "README.md's option table is out of date: replace what stands between the markers \
         with `cargo run -p harness -- list --options --format markdown`"
    );
}
