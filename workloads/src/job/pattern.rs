//! The options that shape where a job's I/Os go, as fio reads them: `rw=MODE:N` (fio's
//! `ddir_seq_add` for sequential modes, `ddir_seq_nr` for random ones), `rw_sequencer`,
//! `norandommap`, `random_generator`, `random_distribution` and `percentage_random`.
//! [`IoPattern`](crate::offsets::IoPattern) does what they say.

use serde::Serialize;

use super::values::{alternatives, int, percent, size};
use super::{JobSpec, PerDir, RwMode};
use crate::engine::Op;
use crate::units::KbBase;

/// fio's `rw_sequencer`: what the I/Os between two random offsets of `rw=randread:N` do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sequencer {
    /// Go on from the previous I/O.
    #[default]
    Sequential,
    /// Repeat the previous I/O's offset.
    Identical,
}

impl Sequencer {
    pub fn names() -> Vec<&'static str> {
        vec!["sequential", "identical"]
    }

    pub fn parse(key: &str, value: &str) -> Result<Sequencer, String> {
        match value.trim() {
            "sequential" => Ok(Sequencer::Sequential),
            "identical" => Ok(Sequencer::Identical),
            v => Err(format!("{key}={v}: expected sequential or identical")),
        }
    }
}

/// fio's `random_generator`. csumbench draws from its own generator whichever is named; the
/// difference that matters is fio's: `lfsr` never repeats a block within a pass, even
/// without the random map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Generator {
    #[default]
    Tausworthe,
    Lfsr,
    Tausworthe64,
}

impl Generator {
    pub fn names() -> Vec<&'static str> {
        vec!["tausworthe", "lfsr", "tausworthe64"]
    }

    /// fio's LFSR, which never draws a block twice in a pass.
    pub fn is_lfsr(self) -> bool {
        self == Generator::Lfsr
    }

    pub fn parse(key: &str, value: &str) -> Result<Generator, String> {
        match value.trim() {
            "tausworthe" => Ok(Generator::Tausworthe),
            "lfsr" => Ok(Generator::Lfsr),
            "tausworthe64" => Ok(Generator::Tausworthe64),
            v => Err(format!(
                "{key}={v}: expected {}",
                alternatives(&Self::names())
            )),
        }
    }
}

/// One zone of `random_distribution=zoned` (`size` in percent of the region) or
/// `zoned_abs` (`size` in bytes): the share of I/Os that fall in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Zone {
    pub access: u32,
    pub size: u64,
}

/// fio's `random_distribution`: how random offsets spread over the region. `center` (0 to
/// 1) moves the hot spot; without it fio places it at random.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    /// Every block alike (fio's `random`).
    Uniform,
    Zipf {
        theta: f64,
        center: Option<f64>,
    },
    Pareto {
        h: f64,
        center: Option<f64>,
    },
    /// fio's `normal`: `sigma` in percent of the region.
    Normal {
        sigma: f64,
        center: Option<f64>,
    },
    Zoned(PerDir<Vec<Zone>>),
    ZonedAbs(PerDir<Vec<Zone>>),
}

/// The random options of a job.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Random {
    /// fio's random map (on unless `norandommap`): each block once per pass.
    pub map: bool,
    pub generator: Generator,
    pub distribution: Distribution,
    /// fio's `percentage_random`: the share of a random job's I/Os that are random, per
    /// direction; the others go on from the direction's previous I/O.
    pub percentage: PerDir<u32>,
}

impl Default for Random {
    fn default() -> Self {
        Random {
            map: true,
            generator: Generator::default(),
            distribution: Distribution::Uniform,
            percentage: PerDir::both(100),
        }
    }
}

impl Random {
    /// fio keeps a random map only for uniform offsets (fio's `fixup_options`).
    pub fn uses_map(&self) -> bool {
        self.map && self.distribution == Distribution::Uniform
    }
}

/// `rw=MODE[:N]`: the mode, and fio's postfix, which is the bytes to skip after each I/O of a
/// sequential mode (negative: go backwards) or how many I/Os of a random mode share one
/// random offset.
pub(crate) fn set_rw(j: &mut JobSpec, key: &str, value: &str) -> Result<(), String> {
    let (mode, postfix) = match value.split_once(':') {
        Some((m, p)) => (m, Some(p.trim())),
        None => (value, None),
    };
    let rw = RwMode::parse(key, mode)?;
    let (mut skip, mut run) = (0, 1);
    match postfix {
        None => {}
        Some(p) if rw.is_random() => {
            run = int(key, p, 1, i64::from(u32::MAX))
                .map_err(|e| format!("{e} (I/Os per random offset)"))? as u32;
        }
        Some(p) => skip = signed_size(key, p, j.kb_base)?,
    }
    (j.rw, j.seq_skip, j.rand_run) = (rw, skip, run);
    Ok(())
}

/// A size that may be negative (`rw=read:-8k` reads backwards).
fn signed_size(key: &str, text: &str, kb: KbBase) -> Result<i64, String> {
    let (sign, magnitude) = match text.strip_prefix('-') {
        Some(m) => (-1, m),
        None => (1, text),
    };
    let bytes = size(key, magnitude, kb)?;
    i64::try_from(bytes)
        .map(|b| sign * b)
        .map_err(|_| format!("{key}={text}: too large a skip"))
}

/// `random_distribution=NAME[:VALUE[:CENTER]]`, or `zoned:`/`zoned_abs:` with zones.
pub(crate) fn distribution(key: &str, value: &str, kb: KbBase) -> Result<Distribution, String> {
    let v = value.trim();
    if let Some(zones) = v.strip_prefix("zoned_abs:") {
        return zoned(key, zones, true, kb).map(Distribution::ZonedAbs);
    }
    if let Some(zones) = v.strip_prefix("zoned:") {
        return zoned(key, zones, false, kb).map(Distribution::Zoned);
    }
    let mut parts = v.splitn(3, ':');
    let name = parts.next().unwrap_or_default();
    let number = |text: Option<&str>, default: f64| -> Result<f64, String> {
        text.map_or(Ok(default), |t| {
            t.trim()
                .parse::<f64>()
                .map_err(|_| format!("{key}={v}: '{t}' is not a number"))
        })
    };
    let (value, center) = (parts.next(), parts.next());
    let center = match center {
        None => None,
        Some(c) => match number(Some(c), 0.0)? {
            c if (0.0..=1.0).contains(&c) => Some(c),
            _ => return Err(format!("{key}={v}: the center is from 0 to 1")),
        },
    };
    let bad = |why: &str| Err(format!("{key}={v}: {why}"));
    match name {
        "random" if value.is_none() => Ok(Distribution::Uniform),
        "zipf" => {
            let theta = number(value, 1.1)?;
            if !theta.is_finite() || theta <= 0.0 || theta == 1.0 {
                return bad("zipf's theta must be more than 0, and not 1");
            }
            Ok(Distribution::Zipf { theta, center })
        }
        "pareto" => match number(value, 0.2)? {
            h if h > 0.0 && h < 1.0 => Ok(Distribution::Pareto { h, center }),
            _ => bad("pareto's h is between 0 and 1"),
        },
        "normal" => match number(value, 0.0)? {
            sigma if (0.0..100.0).contains(&sigma) => Ok(Distribution::Normal { sigma, center }),
            _ => bad("normal's deviation is a percentage, from 0 to below 100"),
        },
        _ => bad(
            "expected random, zipf[:THETA], pareto[:H], normal[:SIGMA] (each with an optional \
             :CENTER), zoned:ACCESS/SIZE:... or zoned_abs:ACCESS/SIZE:...",
        ),
    }
}

/// The zones of `zoned` (sizes in percent) or `zoned_abs` (sizes in bytes), per direction,
/// settled as fio settles them (`zone_split_ddir`): the accesses must add up to 100; a
/// zone without an access share or a size gets an equal part of what the others leave.
fn zoned(key: &str, text: &str, absolute: bool, kb: KbBase) -> Result<PerDir<Vec<Zone>>, String> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let (read, write) = match parts[..] {
        [both] => (both, both),
        [read, write] | [read, write, _] => (read, if write.is_empty() { read } else { write }),
        _ => {
            return Err(format!(
                "{key}={text}: expected zones, or read zones,write zones"
            ))
        }
    };
    Ok(PerDir {
        read: zones(key, read, absolute, kb)?,
        write: zones(key, write, absolute, kb)?,
    })
}

fn zones(key: &str, text: &str, absolute: bool, kb: KbBase) -> Result<Vec<Zone>, String> {
    let mut given: Vec<(Option<u32>, Option<u64>)> = Vec::new();
    for zone in text.split(':').take_while(|z| !z.is_empty()) {
        let (access, zone_size) = match zone.split_once('/') {
            Some((a, s)) => (a, Some(s.trim())),
            None => (zone, None),
        };
        let access = percent(key, access)?;
        let zone_size = match zone_size {
            // fio reads an empty size as none given (`zoned:50/5:30/15:20/`).
            None | Some("") => None,
            Some(s) if absolute => Some(size(key, s, kb)?),
            Some(s) => Some(u64::from(percent(key, s)?)).filter(|&p| p > 0),
        };
        given.push(((access > 0).then_some(access), zone_size));
    }
    let access: u32 = given.iter().filter_map(|(a, _)| *a).sum();
    let sizes: u64 = given.iter().filter_map(|(_, s)| *s).sum();
    if access > 100 || (!absolute && sizes > 100) {
        return Err(format!(
            "{key}={text}: the zones' percentages add up to more than 100"
        ));
    }
    let share = |missing: usize, left: u64| match (missing, given.len()) {
        (1, 1) => 100,
        (0, _) => 0,
        (m, _) => left / m as u64,
    };
    let missing_access = given.iter().filter(|(a, _)| a.is_none()).count();
    let access_rest = share(missing_access, 100 - u64::from(access)) as u32;
    let missing_size = given.iter().filter(|(_, s)| s.is_none()).count();
    let size_rest = if absolute {
        0
    } else {
        share(missing_size, 100 - sizes)
    };
    let zones: Vec<Zone> = given
        .into_iter()
        .map(|(a, s)| Zone {
            access: a.unwrap_or(access_rest),
            size: s.unwrap_or(size_rest),
        })
        .collect();
    if zones.iter().map(|z| z.access).sum::<u32>() != 100 {
        return Err(format!(
            "{key}={text}: the zones' access percentages must add up to 100"
        ));
    }
    Ok(zones)
}

/// `percentage_random=R[,W]`, or its inverse `percentage_sequential`.
pub(crate) fn percentages(key: &str, value: &str, inverse: bool) -> Result<PerDir<u32>, String> {
    let parts: Vec<&str> = value.split(',').map(str::trim).collect();
    let one = |p: &str| percent(key, p).map(|p| if inverse { 100 - p } else { p });
    match parts[..] {
        [both] => Ok(PerDir::both(one(both)?)),
        [read, write] | [read, write, _] => Ok(PerDir {
            read: one(read)?,
            write: one(write)?,
        }),
        _ => Err(format!("{key}={value}: expected R or R,W")),
    }
}

impl Distribution {
    /// The zones for one direction, if the distribution has zones.
    pub fn zones(&self, op: Op) -> Option<(&[Zone], bool)> {
        match self {
            Distribution::Zoned(z) => Some((z.of(op), false)),
            Distribution::ZonedAbs(z) => Some((z.of(op), true)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(v: &str) -> Result<Distribution, String> {
        distribution("random_distribution", v, KbBase::Compat)
    }

    #[test]
    fn rw_postfixes_are_skips_or_runs_by_mode() {
        let mut j = JobSpec::default();
        set_rw(&mut j, "rw", "read:8k").unwrap();
        assert_eq!((j.rw, j.seq_skip, j.rand_run), (RwMode::Read, 8192, 1));
        set_rw(&mut j, "rw", "write:-8k").unwrap();
        assert_eq!(j.seq_skip, -8192, "backwards");
        set_rw(&mut j, "rw", "randread:8").unwrap();
        assert_eq!((j.rw, j.seq_skip, j.rand_run), (RwMode::RandRead, 0, 8));
        set_rw(&mut j, "rw", "randrw").unwrap();
        assert_eq!(j.rand_run, 1, "a new rw= resets the postfix, as in fio");
        assert!(set_rw(&mut j, "rw", "randread:0").is_err());
        assert!(set_rw(&mut j, "rw", "read:x").unwrap_err().contains("rw=x"));
    }

    #[test]
    fn distributions_take_fios_defaults_and_ranges() {
        assert_eq!(dist("random"), Ok(Distribution::Uniform));
        assert_eq!(
            dist("zipf"),
            Ok(Distribution::Zipf {
                theta: 1.1,
                center: None
            })
        );
        assert_eq!(
            dist("zipf:1.2:0.5"),
            Ok(Distribution::Zipf {
                theta: 1.2,
                center: Some(0.5)
            })
        );
        assert_eq!(
            dist("pareto"),
            Ok(Distribution::Pareto {
                h: 0.2,
                center: None
            })
        );
        assert_eq!(
            dist("normal:5"),
            Ok(Distribution::Normal {
                sigma: 5.0,
                center: None
            })
        );
        for bad in [
            "zipf:1",
            "pareto:1.5",
            "normal:100",
            "zipf:1.2:2",
            "gamma",
            "random:3",
        ] {
            assert!(dist(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn zones_add_up_as_fio_settles_them() {
        let Distribution::Zoned(z) = dist("zoned:60/10:30/20:8/30:2/40").unwrap() else {
            panic!()
        };
        let got: Vec<(u32, u64)> = z.read.iter().map(|z| (z.access, z.size)).collect();
        assert_eq!(got, vec![(60, 10), (30, 20), (8, 30), (2, 40)]);
        assert_eq!(z.read, z.write);
        let Distribution::Zoned(z) = dist("zoned:50/10:50,100/50").unwrap() else {
            panic!()
        };
        assert_eq!(
            z.read[1],
            Zone {
                access: 50,
                size: 90
            },
            "the size left over"
        );
        assert_eq!(
            z.write,
            vec![Zone {
                access: 100,
                size: 50
            }]
        );
        let Distribution::ZonedAbs(z) = dist("zoned_abs:60/1m:40/4m").unwrap() else {
            panic!()
        };
        assert_eq!(
            z.read[1],
            Zone {
                access: 40,
                size: 4 << 20
            }
        );
        let Distribution::Zoned(z) = dist("zoned:50/5:30/15:20/").unwrap() else {
            panic!()
        };
        assert_eq!(
            z.read[2],
            Zone {
                access: 20,
                size: 80
            },
            "fio's rand-zones.fio"
        );
        assert!(dist("zoned:60/10:30/20")
            .unwrap_err()
            .contains("add up to 100"));
        assert!(dist("zoned:60/80:40/80")
            .unwrap_err()
            .contains("more than 100"));
    }

    #[test]
    fn percentage_random_per_direction_and_its_inverse() {
        assert_eq!(percentages("p", "30", false), Ok(PerDir::both(30)));
        assert_eq!(
            percentages("p", "30,60", false),
            Ok(PerDir {
                read: 30,
                write: 60
            })
        );
        assert_eq!(percentages("p", "30", true), Ok(PerDir::both(70)));
        assert!(percentages("p", "101", false).is_err());
    }
}
