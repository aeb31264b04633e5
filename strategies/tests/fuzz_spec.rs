//! Fuzzing strategy specs (`NAME[:key=value,...]`) with arbitrary and spec-shaped text:
//! `Spec::parse`, `registry::resolve` and `build` answer every input, quickly, with a
//! strategy or with an error that names the part of the spec at fault, and no spec starts
//! an unbounded number of threads. `build` starts real pools, so it runs only on specs that
//! resolved, and in fewer cases.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use proptest::prelude::*;
use strategies::registry::{descriptor, resolve};
use strategies::{build, descriptors, Spec, SpecError, Work};

/// Far more than any of these inputs needs, even in a debug build on a busy machine.
const DEADLINE: Duration = Duration::from_secs(30);

/// Runs `f(input)` on its own thread and fails, naming the input, if it has not returned
/// by [`DEADLINE`]. A panic in `f` is re-raised here, so proptest shrinks it.
fn within<T: Send + 'static>(input: &str, f: fn(&str) -> T) -> T {
    let (tx, rx) = mpsc::channel();
    let owned = input.to_string();
    let worker = std::thread::spawn(move || {
        let out = f(&owned);
        let _ = tx.send(());
        out
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Ok(out) => out,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("no answer after {DEADLINE:?} for {input:?}")
        }
    }
}

/// Knobs that set how many threads a pool may start (or items run at once, one thread
/// each): no spec may set one beyond this.
const THREAD_KNOBS: &[&str] = &[
    "threads",
    "max_workers",
    "max_active",
    "limit_active",
    "max_blocking",
];
const MOST_THREADS: u128 = 4096;

/// Values at the edges of a count's or a flag's syntax.
const EDGE_VALUES: &[&str] = &[
    "0",
    "1",
    "2",
    "+1",
    "+0",
    "01",
    "0002",
    "-1",
    "-0",
    "64",
    "1023",
    "1024",
    "1025",
    "2048",
    "2049",
    "4096",
    "4097",
    "1048576",
    "1048577",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "1e3",
    "1e99",
    "99999999999p",
    "0x10",
    "1.0",
    "auto",
    "yes",
    "no",
    "true",
    "off",
    "on",
    "maybe",
    "=",
    "1=1",
    "２",
    "١",
    "é",
    "\u{202e}1",
    "\u{0}",
];

fn names() -> Vec<&'static str> {
    descriptors().iter().map(|d| d.name).collect()
}

fn all_knobs() -> Vec<&'static str> {
    let mut knobs: Vec<&str> = descriptors()
        .iter()
        .flat_map(|d| d.knobs.iter().map(|k| k.name))
        .collect();
    knobs.sort_unstable();
    knobs.dedup();
    knobs
}

/// A strategy name: a real one (mostly), a near miss, or anything.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => proptest::sample::select(names()).prop_map(str::to_string),
        1 => proptest::sample::select(names()).prop_map(|n| n.to_uppercase()),
        1 => proptest::sample::select(vec!["", " ", "kthraed", "tokio_blocking", "inline ", " steal", "rayon pool"])
            .prop_map(str::to_string),
        1 => "\\PC{0,8}",
    ]
}

/// A knob name: one some backend declares (mostly), or anything.
fn knob() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => proptest::sample::select(all_knobs()).prop_map(str::to_string),
        1 => proptest::sample::select(vec!["", " ", "Threads", "max-workers", "bogus"]).prop_map(str::to_string),
        1 => "[a-z_ ]{0,10}",
    ]
}

/// A knob value: an edge, a number, or anything without a `,`.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(EDGE_VALUES).prop_map(str::to_string),
        2 => (0u64..=8).prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => "[0-9a-z+=: -]{0,8}",
        1 => "\\PC{0,8}",
    ]
}

/// A spec-shaped string: a name, then knobs with optional blanks around every part.
fn spec_text(
    name: BoxedStrategy<String>,
    value: BoxedStrategy<String>,
) -> impl Strategy<Value = String> {
    let item = (
        knob(),
        value,
        proptest::sample::select(&["=", " = ", "=="][..]),
    )
        .prop_map(|(k, v, eq)| format!("{k}{eq}{v}"));
    let items = proptest::collection::vec(item, 0..4);
    let sep = proptest::sample::select(&[",", ", ", " ,", ",,"][..]);
    let colon = proptest::sample::select(&[":", " : ", "::", ""][..]);
    (name, colon, items, sep, any::<bool>()).prop_map(|(n, colon, items, sep, trailing)| {
        if items.is_empty() && !trailing {
            return n;
        }
        let mut s = format!("{n}{colon}{}", items.join(sep));
        if trailing {
            s.push(',');
        }
        s
    })
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof!["(?s).{0,64}", "[a-z_:=, +0-9-]{0,48}",]
}

/// The name part of a spec, as the parser reads it.
fn name_part(text: &str) -> &str {
    text.trim().split(':').next().unwrap_or("").trim()
}

/// Parse errors must come from the text: the name, item or knob they quote is in it.
fn check_parse(text: &str) -> Option<Spec> {
    let parsed = Spec::parse(text);
    match &parsed {
        Ok(spec) => {
            assert_eq!(spec.name, name_part(text));
            assert!(!spec.name.is_empty() && !spec.name.contains(':'));
            for (k, v) in &spec.knobs {
                assert!(!k.is_empty() && !v.is_empty(), "{spec:?}");
                assert!(!k.contains([',', '=']) && !v.contains(','), "{spec:?}");
                assert_eq!((k.trim(), v.trim()), (k.as_str(), v.as_str()));
            }
            // Display writes a spec that parses back to the same spec.
            let again = Spec::parse(&spec.to_string());
            assert_eq!(again.as_ref(), Ok(spec), "{spec}");
        }
        Err(e) => check_message(text, e),
    }
    parsed.ok()
}

/// An error's fields come from `text`, and its message quotes them.
fn check_message(text: &str, e: &SpecError) {
    let msg = e.to_string();
    assert!(!msg.trim().is_empty());
    let quoted = |what: &str| {
        assert!(
            msg.contains(&format!("'{what}'")),
            "'{what}' quoted in: {msg}"
        )
    };
    match e {
        SpecError::Empty => {
            assert!(name_part(text).is_empty(), "{text:?}: {msg}");
            assert!(msg.contains("without a name"), "{msg}");
        }
        SpecError::UnknownStrategy(name) => {
            assert_eq!(name, name_part(text));
            assert!(descriptor(name).is_err());
            quoted(name);
        }
        SpecError::Malformed { strategy, item } => {
            assert_eq!(strategy, name_part(text));
            assert!(text.contains(item.as_str()), "{text:?}: {msg}");
            let bad = match item.split_once('=') {
                None => true,
                Some((k, v)) => k.trim().is_empty() || v.trim().is_empty(),
            };
            assert!(bad, "'{item}' is a good knob: {msg}");
            quoted(strategy);
            if item.trim().is_empty() {
                assert!(msg.contains("empty knob"), "{msg}");
            } else {
                quoted(item);
            }
        }
        SpecError::Duplicate { strategy, knob } => {
            assert_eq!(strategy, name_part(text));
            assert!(text.matches(knob.as_str()).count() >= 2, "{text:?}: {msg}");
            quoted(strategy);
            quoted(knob);
        }
        SpecError::UnknownKnob {
            strategy,
            knob,
            known,
        } => {
            let desc = descriptor(strategy).expect("a known strategy");
            assert!(text.contains(knob.as_str()));
            assert!(desc.knobs.iter().all(|k| k.name != knob));
            let names: Vec<&str> = desc.knobs.iter().map(|k| k.name).collect();
            let expected = if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            };
            assert_eq!(known, &expected);
            quoted(strategy);
            quoted(knob);
        }
        SpecError::BadValue {
            strategy,
            knob,
            value,
            why,
        } => {
            assert!(!why.trim().is_empty());
            assert!(msg.contains(&format!("'{knob}={value}'")), "{msg}");
            quoted(strategy);
        }
    }
}

/// Resolving: the same answer as parsing, then unknown names and knobs named.
fn check_resolve(text: &str) -> bool {
    let parsed = check_parse(text);
    match (parsed, resolve(text)) {
        (None, Ok(_)) => panic!("{text:?} resolves but does not parse"),
        (None, Err(e)) => assert_eq!(Err::<(), _>(e), Spec::parse(text).map(|_| ())),
        (Some(spec), Ok((desc, knobs))) => {
            assert_eq!(desc.name, spec.name);
            let canonical = knobs.spec_string();
            assert!(canonical.starts_with(desc.name), "{canonical}");
            // Every declared knob is spelled out, and nothing else.
            let full = Spec::parse(&canonical).unwrap();
            assert_eq!(full.name, desc.name);
            let declared: Vec<&str> = desc.knobs.iter().map(|k| k.name).collect();
            assert_eq!(full.knobs.keys().map(String::as_str).collect::<Vec<_>>(), {
                let mut d = declared.clone();
                d.sort_unstable();
                d
            });
            return true;
        }
        (Some(spec), Err(e)) => {
            check_message(text, &e);
            assert!(
                matches!(
                    e,
                    SpecError::UnknownStrategy(_) | SpecError::UnknownKnob { .. }
                ),
                "{spec:?}: {e}"
            );
        }
    }
    false
}

/// Building a spec that resolved: a working pool, or an error naming the knob and value.
fn check_build(text: &str) {
    if !check_resolve(text) {
        return;
    }
    let spec = Spec::parse(text).unwrap();
    match within(text, build_and_run) {
        Ok((name, ran)) => {
            assert!(name.starts_with(&spec.name), "{name} from {text:?}");
            assert_eq!(ran, 4, "{name} from {text:?}");
            for (k, v) in &spec.knobs {
                if THREAD_KNOBS.contains(&k.as_str()) {
                    let n: u128 = v.parse().unwrap_or_else(|_| panic!("{k}={v} built"));
                    assert!(
                        (1..=MOST_THREADS).contains(&n),
                        "{text:?} built a pool with {k}={v}"
                    );
                }
            }
        }
        Err(e) => {
            check_message(text, &e);
            let SpecError::BadValue {
                strategy,
                knob,
                value,
                ..
            } = &e
            else {
                panic!("{text:?}: a resolved spec fails only on a value: {e}");
            };
            assert_eq!(strategy, &spec.name, "{e}");
            let desc = descriptor(strategy).unwrap();
            let declared = desc
                .knobs
                .iter()
                .find(|k| k.name == knob)
                .expect("declared");
            let given = spec.knobs.get(knob).cloned();
            assert_eq!(value, &given.unwrap_or_else(|| (declared.default)()), "{e}");
        }
    }
}

/// Builds `text` and has the pool run four items: its name, and how many ran.
fn build_and_run(text: &str) -> Result<(String, u64), SpecError> {
    let pool = build(text)?;
    let ran = Arc::new(AtomicU64::new(0));
    for _ in 0..4 {
        let ran = ran.clone();
        pool.dispatch(Work::new(move || {
            ran.fetch_add(1, Ordering::Relaxed);
        }));
    }
    pool.quiesce();
    Ok((pool.name().to_string(), ran.load(Ordering::Relaxed)))
}

/// Specs with real names and their own knobs, values from the edges and small numbers: most
/// of them build, and build small pools.
fn buildable_spec() -> impl Strategy<Value = String> {
    let small = prop_oneof![
        3 => (1u64..=3).prop_map(|n| n.to_string()),
        2 => proptest::sample::select(vec!["+2", "02", "+003", "0", "1", "yes", "off"])
            .prop_map(str::to_string),
        2 => proptest::sample::select(EDGE_VALUES).prop_map(str::to_string),
    ];
    (0..descriptors().len())
        .prop_flat_map(move |i| {
            let desc = &descriptors()[i];
            let knobs: Vec<&'static str> = desc.knobs.iter().map(|k| k.name).collect();
            let item = (
                proptest::sample::select(if knobs.is_empty() { vec!["x"] } else { knobs }),
                small.clone(),
            )
                .prop_map(|(k, v)| format!("{k}={v}"));
            let n = if desc.knobs.is_empty() { 0..1 } else { 0..3 };
            (Just(desc.name), proptest::collection::vec(item, n))
        })
        .prop_map(|(name, items)| {
            if items.is_empty() {
                name.to_string()
            } else {
                format!("{name}:{}", items.join(","))
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn spec_any_text_parses_or_names_the_problem(text in any_text()) {
        within(&text, check_resolve);
    }

    #[test]
    fn spec_shaped_text_resolves_or_names_the_problem(
        text in spec_text(name().boxed(), value().boxed()),
    ) {
        within(&text, check_resolve);
    }
}

proptest! {
    // Each successful case starts a real pool.
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn spec_build_starts_a_bounded_pool_or_names_the_value(text in buildable_spec()) {
        check_build(&text);
    }
}

// Edge inputs, spelled out.

#[test]
fn every_knob_with_every_edge_value() {
    for desc in descriptors() {
        for knob in desc.knobs {
            for v in EDGE_VALUES {
                let text = format!("{}:{}={v}", desc.name, knob.name);
                let resolved = within(&text, check_resolve);
                let ok = v
                    .trim_start_matches('+')
                    .parse::<u128>()
                    .is_ok_and(|n| n <= 64)
                    || ["yes", "no", "true", "off", "on"].contains(v);
                // Larger numbers may be valid, but would start many threads: resolve only.
                if resolved && ok {
                    check_build(&text);
                }
            }
        }
    }
}

#[test]
fn huge_and_malformed_counts_are_rejected_by_name() {
    for desc in descriptors() {
        for knob in desc.knobs {
            for v in [
                "-1",
                "18446744073709551615",
                "18446744073709551616",
                "1e99",
                "99999999999p",
                "٣",
                "1.0",
            ] {
                let text = format!("{}:{}={v}", desc.name, knob.name);
                let e = within(&text, build).err().expect(&text).to_string();
                assert!(
                    e.contains(&format!("'{}={v}'", knob.name)) && e.contains(desc.name),
                    "{text}: {e}"
                );
            }
        }
    }
}

#[test]
fn plus_signs_and_leading_zeros_name_the_same_pool() {
    for desc in descriptors() {
        for knob in desc.knobs {
            let text = format!("{}:{}=2", desc.name, knob.name);
            let Ok(plain) = build(&text) else { continue };
            for v in ["+2", "02", "+002"] {
                let other = format!("{}:{}={v}", desc.name, knob.name);
                // Used to fail a debug assertion in rayon, tokio, tokio-blocking, smol and
                // steal, which name themselves with the number they were given.
                let (name, ran) =
                    within(&other, build_and_run).unwrap_or_else(|e| panic!("{other}: {e}"));
                assert_eq!((name.as_str(), ran), (plain.name(), 4), "{other}");
            }
        }
    }
}

#[test]
fn empty_items_and_names_say_what_is_missing() {
    for text in ["", "  ", ":max_workers=2", " : "] {
        let e = resolve(text).err().unwrap().to_string();
        assert!(e.contains("without a name"), "{text:?}: {e}");
    }
    for text in [
        "kthread:",
        "kthread:max_workers=2,",
        "kthread:,max_workers=2",
        "kthread:max_workers=2,,ordered=1",
    ] {
        let e = resolve(text).err().unwrap().to_string();
        assert!(
            e.contains("'kthread'") && e.contains("empty knob"),
            "{text:?}: {e}"
        );
    }
    for (text, item) in [
        ("kthread:max_workers", "max_workers"),
        ("kthread:max_workers=", "max_workers="),
        ("kthread:=2", "=2"),
    ] {
        let e = resolve(text).err().unwrap().to_string();
        assert!(
            e.contains(&format!("malformed knob '{item}'")),
            "{text:?}: {e}"
        );
    }
    let e = resolve("kthread:max_workers=2, max_workers =3")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("'max_workers' given twice"), "{e}");
    let e = resolve("Kthread").err().unwrap().to_string();
    assert!(e.contains("unknown strategy 'Kthread'"), "{e}");
    // A value may hold '=' and ':'; it is then a bad number, named whole.
    let e = build("kthread:max_workers=2:ordered=1")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("'max_workers=2:ordered=1'"), "{e}");
}

#[test]
fn counts_beyond_any_integer_say_the_range() {
    for text in [
        "kthread:max_workers=18446744073709551616",
        "steal:threads=340282366920938463463374607431768211456",
    ] {
        let e = within(text, build).err().expect(text).to_string();
        assert!(e.contains("must be between 1 and 1024"), "{text}: {e}");
    }
}

#[test]
fn thread_counts_are_capped() {
    for desc in descriptors() {
        for knob in desc.knobs.iter().filter(|k| THREAD_KNOBS.contains(&k.name)) {
            let text = format!("{}:{}={}", desc.name, knob.name, MOST_THREADS + 1);
            let e = within(&text, build).err().expect(&text).to_string();
            assert!(e.contains("must be between"), "{text}: {e}");
        }
    }
}

/// `overlap` builds a `kthread` pool: its own cap must reject a value first, or the error
/// names `kthread`, a strategy the user did not ask for.
#[test]
fn overlap_names_itself_when_max_workers_is_out_of_range() {
    let e = build("overlap:max_workers=2000").err().unwrap().to_string();
    assert!(
        e.contains("'overlap'") && e.contains("'max_workers=2000'"),
        "{e}"
    );
}
