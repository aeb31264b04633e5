//! Per-sector checksum algorithms: the CPU work the strategies place.
//!
//! btrfs's four (`csum_type`): crc32c, xxhash64, sha256, blake2b (256-bit), plus `none` and
//! a synthetic `cost:<time>` whose price per sector the user sets. crc32c runs the fastest
//! of several implementations, chosen by timing them at first use ([`crc32c_calibration`]).

mod blake2b;
mod cost;
mod crc32c;
mod sha256;
pub mod timing;
mod xxhash64;

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

pub use self::cost::{cost_calibration, CostCalibration, MAX_NS as MAX_COST_NS};
pub use self::crc32c::{
    crc32c, crc32c_calibration, crc32c_implementations, force_crc32c_impl, Candidate,
    Crc32cCalibration, Crc32cFn, Crc32cImpl,
};

/// Checksums cover 4 KiB sectors, as btrfs's do with 4 KiB pages.
pub const SECTOR_SIZE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algo {
    Crc32c,
    /// XXH64, seed 0. Also what fio's `verify=xxhash` (XXH32 there) means here.
    Xxhash64,
    Sha256,
    /// blake2b-256.
    Blake2b,
    None,
    /// Synthetic: the sector's crc32c plus calibrated work, costing `ns_per_sector` in all
    /// (below the crc32c's own cost, that cost). `FromStr` accepts 1 ns to
    /// [`MAX_COST_NS`]; code that builds one must stay in that range too, which is what
    /// keeps [`Algo::name`] within [`NAME_MAX`] (beyond it, `name` panics).
    Cost {
        ns_per_sector: u32,
    },
}

/// The longest name, which is what the checksum store has room for.
pub const NAME_MAX: usize = 16;

/// An algorithm's canonical name (`crc32c`, `cost:2us`), as the store records it: a short
/// string by value, so `Algo` stays `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Name {
    bytes: [u8; NAME_MAX],
    len: u8,
}

impl Name {
    fn new(s: &str) -> Name {
        // Every name is fixed or a cost of at most MAX_COST_NS (`cost:9999999ns`, 14 bytes).
        assert!(
            s.len() <= NAME_MAX,
            "checksum name {s:?} is over {NAME_MAX} bytes"
        );
        let mut bytes = [0u8; NAME_MAX];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        Name {
            bytes,
            len: s.len() as u8,
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).expect("built from a str")
    }
}

impl Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<Name> for &str {
    fn eq(&self, other: &Name) -> bool {
        *self == other.as_str()
    }
}

impl Algo {
    /// The algorithms without a parameter, in btrfs's `csum_type` order, then `none`.
    pub const ALL: [Algo; 5] = [
        Algo::Crc32c,
        Algo::Xxhash64,
        Algo::Sha256,
        Algo::Blake2b,
        Algo::None,
    ];

    /// The canonical name: what `csum=` takes, the store records and `FromStr` reads back.
    pub fn name(self) -> Name {
        Name::new(match self {
            Algo::Crc32c => "crc32c",
            Algo::Xxhash64 => "xxhash64",
            Algo::Sha256 => "sha256",
            Algo::Blake2b => "blake2b",
            Algo::None => "none",
            Algo::Cost { ns_per_sector } => {
                return Name::new(&format!("cost:{}", cost::format_ns(ns_per_sector)))
            }
        })
    }

    /// Bytes of checksum per sector (0 for `none`).
    #[allow(clippy::len_without_is_empty)] // a width, not a collection
    pub fn len(self) -> usize {
        match self {
            Algo::Crc32c | Algo::Cost { .. } => 4,
            Algo::Xxhash64 => xxhash64::LEN,
            Algo::Sha256 => sha256::LEN,
            Algo::Blake2b => blake2b::LEN,
            Algo::None => 0,
        }
    }

    /// Checksums one buffer.
    pub fn digest(self, data: &[u8], out: &mut [u8]) {
        debug_assert_eq!(out.len(), self.len());
        match self {
            Algo::Crc32c => out.copy_from_slice(&crc32c(data).to_le_bytes()),
            Algo::Xxhash64 => xxhash64::digest(data, out),
            Algo::Sha256 => sha256::digest(data, out),
            Algo::Blake2b => blake2b::digest(data, out),
            Algo::None => {}
            Algo::Cost { ns_per_sector } => {
                let sum =
                    cost::sector_sum(crc32c::selected(), data, cost::steps_for(ns_per_sector));
                out.copy_from_slice(&sum.to_le_bytes());
            }
        }
    }

    /// Checksums every whole sector of `data` into `out` (`len()` bytes per sector). What
    /// the csum stage runs: crc32c and cost look up their implementation and calibration
    /// once per call, not per sector.
    pub fn sectors(self, data: &[u8], out: &mut [u8]) {
        let n = self.len();
        assert_eq!(data.len() % SECTOR_SIZE, 0, "data is not whole sectors");
        assert_eq!(out.len(), data.len() / SECTOR_SIZE * n, "wrong output size");
        let sums = data
            .chunks_exact(SECTOR_SIZE)
            .zip(out.chunks_exact_mut(n.max(1)));
        match self {
            Algo::None => {}
            Algo::Crc32c => {
                let crc = crc32c::selected();
                sums.for_each(|(s, o)| o.copy_from_slice(&crc(s).to_le_bytes()));
            }
            Algo::Cost { ns_per_sector } => {
                let (crc, steps) = (crc32c::selected(), cost::steps_for(ns_per_sector));
                sums.for_each(|(s, o)| {
                    o.copy_from_slice(&cost::sector_sum(crc, s, steps).to_le_bytes())
                });
            }
            other => sums.for_each(|(s, o)| other.digest(s, o)),
        }
    }

    /// Which implementation runs, for the manifest. For crc32c and cost this is what the
    /// start-up calibration chose, which it runs first if it has not yet.
    pub fn implementation(self) -> String {
        match self {
            Algo::Crc32c => crc32c::describe(),
            Algo::Xxhash64 => xxhash64::implementation(),
            Algo::Sha256 => sha256::implementation(),
            Algo::Blake2b => blake2b::implementation(),
            Algo::None => "none".into(),
            Algo::Cost { ns_per_sector } => {
                let c = cost_calibration(ns_per_sector);
                format!(
                    "synthetic: crc32c + {} dependent steps, {:.0} ns/sector achieved \
                     (asked {}, floor {:.0} ns{}); crc32c is {}",
                    c.steps,
                    c.achieved_ns,
                    cost::format_ns(ns_per_sector),
                    c.floor_ns,
                    if c.clamped {
                        ", clamped to the floor"
                    } else {
                        ""
                    },
                    crc32c::describe()
                )
            }
        }
    }
}

impl fmt::Display for Algo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.name())
    }
}

impl FromStr for Algo {
    type Err = String;

    /// Canonical names, the aliases `xxhash` (for xxhash64) and `blake2b-256`, and
    /// `cost:<time per sector>` (`cost:2us`, `cost:1500ns`).
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "xxhash" => Ok(Algo::Xxhash64),
            "blake2b-256" => Ok(Algo::Blake2b),
            _ => match s.strip_prefix("cost:") {
                Some(time) => Ok(Algo::Cost {
                    ns_per_sector: cost::parse_ns(time)?,
                }),
                None => Algo::ALL
                    .into_iter()
                    .find(|a| a.name() == s)
                    .ok_or_else(|| {
                        format!(
                            "unknown checksum '{s}' (expected crc32c, xxhash64, sha256, blake2b, \
                         none or cost:<time per sector>, e.g. cost:2us)"
                        )
                    }),
            },
        }
    }
}

#[cfg(test)]
fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crc(data: &[u8]) -> u32 {
        let mut out = [0u8; 4];
        Algo::Crc32c.digest(data, &mut out);
        u32::from_le_bytes(out)
    }

    #[test]
    fn crc32c_rfc3720_vectors() {
        for (what, data, want) in crc32c::known_answers() {
            assert_eq!(crc(&data), want, "{what}");
        }
    }

    #[test]
    fn every_algorithm_computes_its_own_function() {
        let data = b"abc";
        let sum = |a: Algo| {
            let mut out = vec![0u8; a.len()];
            a.digest(data, &mut out);
            hex(&out)
        };
        assert_eq!(sum(Algo::Crc32c), hex(&crc32c(data).to_le_bytes()));
        assert_eq!(
            sum(Algo::Xxhash64),
            hex(&0x44BC_2CF5_AD77_0999u64.to_le_bytes())
        );
        assert!(sum(Algo::Sha256).starts_with("ba7816bf"));
        assert!(sum(Algo::Blake2b).starts_with("bddd813c"));
        assert_eq!(sum(Algo::None), "");
        assert_eq!(sum(Algo::Cost { ns_per_sector: 500 }), sum(Algo::Crc32c));
    }

    #[test]
    fn sectors_are_checksummed_independently() {
        for algo in Algo::ALL
            .into_iter()
            .chain([Algo::Cost { ns_per_sector: 300 }])
        {
            let mut data = vec![0u8; 3 * SECTOR_SIZE];
            data[SECTOR_SIZE] = 1;
            let n = algo.len();
            let mut out = vec![0u8; 3 * n];
            algo.sectors(&data, &mut out);
            let mut first = vec![0u8; n];
            algo.digest(&[0u8; SECTOR_SIZE], &mut first);
            assert_eq!(out[..n], first[..], "{algo}");
            assert_eq!(out[..n], out[2 * n..], "{algo}");
            if n > 0 {
                assert_ne!(
                    out[..n],
                    out[n..2 * n],
                    "{algo}: a changed byte changes the sum"
                );
            }
        }
    }

    #[test]
    fn names_round_trip_fit_the_store_and_unknown_is_named() {
        let costs = [1, 999, 1_500, 2_000, 999_999, 9_999_999, MAX_COST_NS];
        let algos = Algo::ALL
            .into_iter()
            .chain(costs.map(|ns_per_sector| Algo::Cost { ns_per_sector }));
        for a in algos {
            let name = a.name();
            assert!(name.len() <= NAME_MAX, "{name}");
            assert_eq!(name.parse::<Algo>().unwrap(), a);
            assert_eq!(a.to_string(), name.as_str());
        }
        assert_eq!(
            Algo::Cost {
                ns_per_sector: 2000
            }
            .name(),
            "cost:2us"
        );
        assert_eq!(
            "cost:1500ns".parse(),
            Ok(Algo::Cost {
                ns_per_sector: 1500
            })
        );
        let err = "md5".parse::<Algo>().unwrap_err();
        assert!(err.contains("'md5'") && err.contains("blake2b"), "{err}");
        assert!("cost:2h".parse::<Algo>().unwrap_err().contains("cost:2h"));
    }

    #[test]
    fn aliases_read_as_the_canonical_algorithm() {
        assert_eq!("xxhash".parse(), Ok(Algo::Xxhash64));
        assert_eq!("blake2b-256".parse(), Ok(Algo::Blake2b));
        assert_eq!(Algo::Blake2b.name(), "blake2b");
    }

    #[test]
    fn every_algorithm_says_what_runs() {
        for a in Algo::ALL.into_iter().chain([Algo::Cost {
            ns_per_sector: 3_000,
        }]) {
            assert!(!a.implementation().is_empty(), "{a}");
        }
        let cost = Algo::Cost {
            ns_per_sector: 3_000,
        }
        .implementation();
        assert!(
            cost.contains("asked 3us") && cost.contains("crc32c is"),
            "{cost}"
        );
    }
}
