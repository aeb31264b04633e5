//! crc32c (CRC-32/ISCSI, btrfs's default), from every implementation at hand, the fastest
//! on this CPU chosen at first use, as the kernel's crypto layer and raid6 choose theirs.
//!
//! Each candidate must first reproduce the RFC 3720 known answers and agree with the
//! table-driven one on a 4 KiB and a 1 MiB buffer (those take other SIMD paths than the
//! 32-byte vectors); one that fails is excluded and its fault recorded. The survivors are
//! timed for a few milliseconds on hot 4 KiB and 1 MiB buffers; the fastest on 4 KiB (the
//! sector, what the pipeline checksums) is chosen unless [`force_crc32c_impl`] named one.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

use serde::Serialize;

use super::timing;

/// A crc32c function: the whole CRC (init and final xor included) of a buffer.
pub type Crc32cFn = fn(&[u8]) -> u32;

/// One crc32c implementation, from one crate.
pub struct Crc32cImpl {
    /// What `--csum-impl` calls it.
    pub name: &'static str,
    pub checksum: Crc32cFn,
    /// Which code path it takes on this CPU.
    detail: fn() -> String,
}

/// The crc crate's slice-by-16 tables: no SIMD, one code path for every length, so it is
/// also the reference the others are checked against on long buffers.
static SLICE16: crc::Crc<u32, crc::Table<16>> =
    crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISCSI);

fn slice16(data: &[u8]) -> u32 {
    SLICE16.checksum(data)
}

fn crc32c_crate_path() -> String {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("sse4.2") {
        return "SSE4.2 crc32 instruction, 3 streams".into();
    }
    "software tables".into()
}

fn crc_fast_path() -> String {
    crc_fast::get_calculator_target(crc_fast::CrcAlgorithm::Crc32Iscsi)
}

/// Every candidate, one per crate.
static IMPLS: [Crc32cImpl; 3] = [
    Crc32cImpl {
        name: "crc32c-crate",
        checksum: ::crc32c::crc32c,
        detail: crc32c_crate_path,
    },
    Crc32cImpl {
        name: "crc-fast",
        checksum: crc_fast::crc32_iscsi,
        detail: crc_fast_path,
    },
    Crc32cImpl {
        name: "crc-slice16",
        checksum: slice16,
        detail: || "crc crate, slice-by-16 tables".into(),
    },
];

/// Every crc32c implementation this build has, verified or not.
pub fn crc32c_implementations() -> &'static [Crc32cImpl] {
    &IMPLS
}

/// RFC 3720 appendix B.4, and the CRC catalogue's check value for "123456789".
pub(super) fn known_answers() -> [(&'static str, Vec<u8>, u32); 5] {
    [
        ("32 bytes of 0x00", vec![0; 32], 0x8A91_36AA),
        ("32 bytes of 0xFF", vec![0xFF; 32], 0x62A8_AB43),
        ("32 incrementing bytes", (0..32).collect(), 0x46DD_794E),
        (
            "32 decrementing bytes",
            (0..32).rev().collect(),
            0x113F_DB5C,
        ),
        ("\"123456789\"", b"123456789".to_vec(), 0xE306_9283),
    ]
}

/// Sizes the candidates are checked and timed on: the sector, and a whole 1 MiB bio.
const SIZES: [usize; 2] = [4 << 10, 1 << 20];

/// Not all zeros: no implementation gets to shortcut on trivial input.
fn buffer(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761) as u8)
        .collect()
}

/// Why `f` cannot be trusted, if it cannot.
fn fault(f: Crc32cFn, long_buffers: &[(Vec<u8>, u32)]) -> Option<String> {
    for (what, data, want) in known_answers() {
        let got = f(&data);
        if got != want {
            return Some(format!(
                "known answer for {what}: got {got:#010X}, want {want:#010X}"
            ));
        }
    }
    for (data, want) in long_buffers {
        let got = f(data);
        if got != *want {
            return Some(format!(
                "{} byte buffer: got {got:#010X}, the slice-by-16 tables {want:#010X}",
                data.len()
            ));
        }
    }
    None
}

/// What start-up found about one implementation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub name: &'static str,
    /// Its code path on this CPU.
    pub detail: String,
    /// Passed the known answers; the others are never used.
    pub verified: bool,
    /// Why it did not, if it did not.
    pub fault: Option<String>,
    /// Hot-buffer throughput, measured only for verified implementations.
    pub gib_s_4k: Option<f64>,
    pub gib_s_1m: Option<f64>,
}

/// Which crc32c runs and why: the record for the results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Crc32cCalibration {
    pub chosen: &'static str,
    /// Named by [`force_crc32c_impl`] rather than chosen by speed.
    pub forced: bool,
    pub candidates: Vec<Candidate>,
}

/// Verifies every implementation, then times the verified ones on each of [`SIZES`].
fn measure() -> Vec<Candidate> {
    let buffers: Vec<Vec<u8>> = SIZES.iter().map(|&len| buffer(len)).collect();
    let reference: Vec<(Vec<u8>, u32)> = buffers.iter().map(|b| (b.clone(), slice16(b))).collect();
    let faults: Vec<Option<String>> = IMPLS
        .iter()
        .map(|i| fault(i.checksum, &reference))
        .collect();
    let verified: Vec<&Crc32cImpl> = IMPLS
        .iter()
        .zip(&faults)
        .filter_map(|(i, f)| f.is_none().then_some(i))
        .collect();
    let speeds: Vec<Vec<f64>> = buffers
        .iter()
        .map(|data| {
            let mut runs: Vec<_> = verified
                .iter()
                .map(|i| {
                    let f = i.checksum;
                    move || {
                        std::hint::black_box(f(std::hint::black_box(data)));
                    }
                })
                .collect();
            timing::best_ns_per_call(&mut runs, timing::ROUNDS)
                .into_iter()
                .map(|ns| timing::gib_per_s(data.len(), ns))
                .collect()
        })
        .collect();
    let speed_of = |name: &str, size: usize| {
        let k = verified.iter().position(|v| v.name == name)?;
        Some(speeds[size][k])
    };
    IMPLS
        .iter()
        .zip(faults)
        .map(|(i, fault)| Candidate {
            name: i.name,
            detail: (i.detail)(),
            verified: fault.is_none(),
            fault,
            gib_s_4k: speed_of(i.name, 0),
            gib_s_1m: speed_of(i.name, 1),
        })
        .collect()
}

/// The measurements, taken once per process, at first use.
fn measured() -> &'static [Candidate] {
    static MEASURED: OnceLock<Vec<Candidate>> = OnceLock::new();
    MEASURED.get_or_init(measure)
}

/// Index into [`IMPLS`] of the implementation in use; [`UNCHOSEN`] until first use.
static SELECTED: AtomicUsize = AtomicUsize::new(UNCHOSEN);
const UNCHOSEN: usize = usize::MAX;
static FORCED: AtomicBool = AtomicBool::new(false);

/// The fastest verified candidate on 4 KiB.
fn fastest(candidates: &[Candidate]) -> usize {
    candidates
        .iter()
        .enumerate()
        .filter_map(|(k, c)| Some((k, c.gib_s_4k?)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(k, _)| k)
        .unwrap_or_else(|| {
            // Only a miscompiled build gets here: every crate fails the RFC's answers.
            let faults: Vec<String> = candidates
                .iter()
                .map(|c| format!("{}: {}", c.name, c.fault.as_deref().unwrap_or("?")))
                .collect();
            panic!(
                "no crc32c implementation is correct here: {}",
                faults.join("; ")
            )
        })
}

fn selected_index() -> usize {
    match SELECTED.load(Ordering::Acquire) {
        UNCHOSEN => {
            let best = fastest(measured());
            // A force that came first wins.
            match SELECTED.compare_exchange(UNCHOSEN, best, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => best,
                Err(forced) => forced,
            }
        }
        k => k,
    }
}

/// The crc32c function in use: resolve it once per batch of sectors, then call it freely.
pub fn selected() -> Crc32cFn {
    IMPLS[selected_index()].checksum
}

/// crc32c of `data` with the implementation in use.
pub fn crc32c(data: &[u8]) -> u32 {
    selected()(data)
}

/// Uses the implementation called `name` from now on, whatever the timing says. It must
/// exist and have passed the known answers; the error says which do.
pub fn force_crc32c_impl(name: &str) -> Result<(), String> {
    let candidates = measured();
    let names = || IMPLS.iter().map(|i| i.name).collect::<Vec<_>>().join(", ");
    let k = IMPLS.iter().position(|i| i.name == name).ok_or_else(|| {
        format!(
            "unknown crc32c implementation '{name}' (available: {})",
            names()
        )
    })?;
    if let Some(fault) = &candidates[k].fault {
        return Err(format!(
            "crc32c implementation '{name}' is wrong on this machine ({fault}); use one of: {}",
            candidates
                .iter()
                .filter(|c| c.verified)
                .map(|c| c.name)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    FORCED.store(true, Ordering::Release);
    SELECTED.store(k, Ordering::Release);
    Ok(())
}

/// Which implementation runs, whether it was forced, and what every candidate did.
pub fn crc32c_calibration() -> Crc32cCalibration {
    let chosen = IMPLS[selected_index()].name;
    Crc32cCalibration {
        chosen,
        forced: FORCED.load(Ordering::Acquire),
        candidates: measured().to_vec(),
    }
}

/// One line for the manifest: the implementation in use and how it was picked.
pub(super) fn describe() -> String {
    let cal = crc32c_calibration();
    let c = cal
        .candidates
        .iter()
        .find(|c| c.name == cal.chosen)
        .expect("chosen is a candidate");
    let how = if cal.forced {
        "forced".to_string()
    } else {
        let verified = cal.candidates.iter().filter(|c| c.verified).count();
        format!("fastest on 4 KiB of {verified} verified")
    };
    format!("{} ({}), {how}", c.name, c.detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_implementation_reproduces_rfc3720() {
        for i in crc32c_implementations() {
            for (what, data, want) in known_answers() {
                assert_eq!((i.checksum)(&data), want, "{} on {what}", i.name);
            }
        }
    }

    #[test]
    fn start_up_verifies_and_times_every_candidate_and_picks_a_verified_one() {
        let cal = crc32c_calibration();
        assert_eq!(cal.candidates.len(), IMPLS.len());
        for c in &cal.candidates {
            assert!(c.verified, "{} failed: {:?}", c.name, c.fault);
            for speed in [c.gib_s_4k, c.gib_s_1m] {
                assert!(speed.is_some_and(|s| s.is_finite() && s > 0.0), "{c:?}");
            }
        }
        let chosen = cal
            .candidates
            .iter()
            .find(|c| c.name == cal.chosen)
            .unwrap();
        assert!(chosen.verified);
        assert!(describe().starts_with(cal.chosen), "{}", describe());
    }

    #[test]
    fn forcing_names_the_choices_and_refuses_unknown_ones() {
        let err = force_crc32c_impl("crc32-ieee").unwrap_err();
        assert!(err.contains("crc32-ieee"), "{err}");
        for i in crc32c_implementations() {
            assert!(err.contains(i.name), "{err} lacks {}", i.name);
        }
    }

    #[test]
    fn a_fault_is_described() {
        let wrong: Crc32cFn = |d| ::crc32c::crc32c(d) ^ 1;
        let why = fault(wrong, &[]).unwrap();
        assert!(
            why.contains("32 bytes of 0x00") && why.contains("0x8A9136AA"),
            "{why}"
        );
        // Right on the short vectors, wrong past them: caught by the long buffers.
        let long: Crc32cFn = |d| ::crc32c::crc32c(d) ^ u32::from(d.len() > 64);
        let data = buffer(4096);
        let want = slice16(&data);
        let why = fault(long, &[(data, want)]).unwrap();
        assert!(why.contains("4096 byte buffer"), "{why}");
        assert_eq!(fault(slice16, &[]), None);
    }

    proptest! {
        #[test]
        fn every_implementation_agrees_on_random_data(
            data in proptest::collection::vec(any::<u8>(), 0..20_000),
            skip in 0usize..16,
        ) {
            // Unaligned starts too: SIMD paths handle a ragged head.
            let data = &data[skip.min(data.len())..];
            let want = slice16(data);
            for i in crc32c_implementations() {
                prop_assert_eq!((i.checksum)(data), want, "{} on {} bytes", i.name, data.len());
            }
            prop_assert_eq!(crc32c(data), want);
        }
    }
}
