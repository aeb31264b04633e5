//! The README's option tables are the ones the option table generates, so neither can drift,
//! and every option fio has is in them.

use std::collections::BTreeSet;

use workloads::job::options::{fio_markdown_table, fio_options, markdown_table};

/// The README's text between a table's markers.
fn readme_table(name: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let begin = format!("<!-- {name}:begin -->\n");
    let start = readme.find(&begin).expect("README marks its table") + begin.len();
    let len = readme[start..]
        .find(&format!("<!-- {name}:end -->"))
        .expect("README ends its table");
    readme[start..start + len].to_string()
}

#[test]
fn the_readme_option_table_is_the_generated_one() {
    assert!(
        readme_table("options") == markdown_table(),
        "README.md's option table is out of date: replace what stands between the markers \
         with `cargo run -p harness -- list --options --format markdown` (scripts/regen-readme-tables does both tables)"
    );
}

#[test]
fn the_readme_fio_option_table_is_the_generated_one() {
    assert!(
        readme_table("fio-options") == fio_markdown_table(),
        "README.md's table of fio's options is out of date: replace what stands between the \
         markers with `cargo run -p harness -- list --fio --format markdown` (scripts/regen-readme-tables does both tables)"
    );
}

/// fio 3.42's option names (options.c) and its engines' (engines/*.c), one a line.
const FIO_OPTIONS: &str = include_str!("fio-3.42-options.txt");

#[test]
fn every_option_fio_has_is_in_the_table_once() {
    let listed: Vec<&str> = fio_options()
        .into_iter()
        .flat_map(|(names, ..)| names)
        .collect();
    let unique: BTreeSet<&str> = listed.iter().copied().collect();
    assert_eq!(unique.len(), listed.len(), "a name in two rows");
    let fio: BTreeSet<&str> = FIO_OPTIONS.lines().collect();
    let missing: Vec<&&str> = fio.difference(&unique).collect();
    assert!(
        missing.is_empty(),
        "fio options the table lacks: {missing:?}"
    );
    let not_fios: Vec<&&str> = unique.difference(&fio).collect();
    assert!(
        not_fios.is_empty(),
        "rows for names fio does not have: {not_fios:?}"
    );
}
