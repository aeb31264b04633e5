//! Block sizes, as fio's `bs`, `bsrange`, `bssplit` and `blockalign` set them: each per
//! direction (`R,W`; one value is both, a third one for trims is ignored), `bsrange` and
//! `bssplit` over `bs` (fio's `min_bs`/`max_bs`), a split's percentages settled as fio
//! settles them (`bssplit_ddir`).

use serde::Serialize;

use super::values::size;
use super::PerDir;
use crate::engine::Op;
use crate::units::KbBase;

/// One size of a `bssplit`, and its share of the I/Os in percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Split {
    pub bs: u64,
    pub percent: u32,
}

/// The block sizes of one direction: every I/O is `min` to `max` bytes, drawn by `split`
/// when there is one (fio's order: ascending share), else as fio draws from a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockSize<'a> {
    pub min: u64,
    pub max: u64,
    pub split: &'a [Split],
}

impl BlockSize<'_> {
    /// Every I/O has the same size.
    pub fn is_fixed(&self) -> bool {
        self.min == self.max
    }

    /// Every size an I/O may have that the job must check: the bounds and the split's.
    pub fn sizes(&self) -> impl Iterator<Item = u64> + '_ {
        [self.min, self.max]
            .into_iter()
            .chain(self.split.iter().map(|s| s.bs))
    }
}

/// The block-size options as given, per direction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Blocks {
    /// fio's `bs` (default 4k).
    #[serde(serialize_with = "compact")]
    pub bs: PerDir,
    /// fio's `bsrange`: `(min, max)`, over `bs`.
    pub range: PerDir<Option<(u64, u64)>>,
    /// fio's `bssplit`, over `bs` and `bsrange`.
    pub split: PerDir<Vec<Split>>,
    /// fio's `blockalign` (0: the direction's smallest block size). Random I/O only.
    #[serde(serialize_with = "compact")]
    pub align: PerDir,
}

/// A per-direction value as one value when both directions agree (as most jobs give it).
fn compact<S: serde::Serializer>(v: &PerDir, s: S) -> Result<S::Ok, S::Error> {
    if v.read == v.write {
        s.serialize_u64(v.read)
    } else {
        v.serialize(s)
    }
}

impl Blocks {
    pub fn new(bs: u64) -> Blocks {
        Blocks {
            bs: PerDir::both(bs),
            ..Blocks::default()
        }
    }

    /// The sizes of one direction's I/Os.
    pub fn of(&self, op: Op) -> BlockSize<'_> {
        let split = self.split.of(op);
        if let (Some(min), Some(max)) = (
            split.iter().map(|s| s.bs).min(),
            split.iter().map(|s| s.bs).max(),
        ) {
            return BlockSize { min, max, split };
        }
        let (min, max) = self
            .range
            .of(op)
            .unwrap_or((self.bs.get(op), self.bs.get(op)));
        BlockSize {
            min,
            max,
            split: &[],
        }
    }

    /// The alignment of one direction's random offsets: `blockalign`, else its smallest
    /// block size.
    pub fn align(&self, op: Op) -> u64 {
        match self.align.get(op) {
            0 => self.of(op).min,
            a => a,
        }
    }

    /// The option a direction's sizes come from, for messages.
    pub fn option(&self, op: Op) -> &'static str {
        match (self.split.of(op).is_empty(), self.range.of(op)) {
            (false, _) => "bssplit",
            (true, Some(_)) => "bsrange",
            (true, None) => "bs",
        }
    }
}

/// fio's per-direction lists, `R`, `R,W` or `R,W,T` (the trims' is ignored: csumbench issues
/// none): each given part, read then write, to `set`; one part is both directions.
fn each_direction(
    key: &str,
    value: &str,
    mut set: impl FnMut(Op, &str) -> Result<(), String>,
) -> Result<(), String> {
    let parts: Vec<&str> = value.split(',').map(str::trim).collect();
    match parts[..] {
        [both] => {
            set(Op::Read, both)?;
            set(Op::Write, both)
        }
        [read, write] | [read, write, _] => {
            for (op, part) in [(Op::Read, read), (Op::Write, write)] {
                if !part.is_empty() {
                    set(op, part)?;
                }
            }
            Ok(())
        }
        _ => Err(format!(
            "{key}={value}: expected R, R,W or R,W,T (one for reads, writes and trims)"
        )),
    }
}

/// `bs=R[,W]`.
pub(crate) fn set_bs(b: &mut Blocks, key: &str, value: &str, kb: KbBase) -> Result<(), String> {
    each_direction(key, value, |op, part| {
        *b.bs.of_mut(op) = super::values::sector_size(key, part, kb)?;
        Ok(())
    })
}

/// `blockalign=R[,W]`.
pub(crate) fn set_align(b: &mut Blocks, key: &str, value: &str, kb: KbBase) -> Result<(), String> {
    each_direction(key, value, |op, part| {
        *b.align.of_mut(op) = size(key, part, kb)?;
        Ok(())
    })
}

/// `bsrange=MIN-MAX[,MIN-MAX]` (or `:` between them); fio swaps a reversed range.
pub(crate) fn set_range(b: &mut Blocks, key: &str, value: &str, kb: KbBase) -> Result<(), String> {
    each_direction(key, value, |op, part| {
        let (lo, hi) = part
            .split_once('-')
            .or_else(|| part.split_once(':'))
            .ok_or_else(|| format!("{key}={value}: expected a range such as 4k-64k"))?;
        let (lo, hi) = (size(key, lo, kb)?, size(key, hi, kb)?);
        *b.range.of_mut(op) = Some((lo.min(hi), lo.max(hi)));
        Ok(())
    })
}

/// `bssplit=BS/PERCENT:BS/PERCENT...[,...]`.
pub(crate) fn set_split(b: &mut Blocks, key: &str, value: &str, kb: KbBase) -> Result<(), String> {
    each_direction(key, value, |op, part| {
        *b.split.of_mut(op) = split(key, part, kb)?;
        Ok(())
    })
}

/// One direction's split, settled as fio settles it: a size without a share (or with 0)
/// gets an equal part of what the others leave; shares above 100 are 100; sorted by share.
fn split(key: &str, text: &str, kb: KbBase) -> Result<Vec<Split>, String> {
    let mut entries: Vec<(u64, Option<u32>)> = Vec::new();
    for entry in text.split(':').take_while(|e| !e.is_empty()) {
        let (bs, percent) = match entry.split_once('/') {
            Some((bs, p)) => {
                let p: u32 = p.trim().parse().map_err(|_| {
                    format!("{key}={text}: '{p}' is not a percentage (expected e.g. 4k/30)")
                })?;
                (bs, (p > 0).then_some(p.min(100)))
            }
            None => (entry, None),
        };
        entries.push((size(key, bs, kb)?, percent));
    }
    let given: u32 = entries.iter().filter_map(|(_, p)| *p).sum();
    let missing = entries.iter().filter(|(_, p)| p.is_none()).count() as u32;
    if given > 100 && missing > 1 {
        return Err(format!(
            "{key}={text}: the percentages add up to more than 100"
        ));
    }
    let rest = match (missing, entries.len()) {
        (1, 1) => 100,
        (0, _) => 0,
        (m, _) => 100u32.saturating_sub(given) / m,
    };
    let mut split: Vec<Split> = entries
        .into_iter()
        .map(|(bs, p)| Split {
            bs,
            percent: p.unwrap_or(rest),
        })
        .collect();
    split.sort_by_key(|s| s.percent);
    Ok(split)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(set: &[(&str, &str)]) -> Result<Blocks, String> {
        let mut b = Blocks::new(4096);
        for (k, v) in set {
            let kb = KbBase::Compat;
            match *k {
                "bs" => set_bs(&mut b, k, v, kb)?,
                "bsrange" => set_range(&mut b, k, v, kb)?,
                "bssplit" => set_split(&mut b, k, v, kb)?,
                _ => set_align(&mut b, k, v, kb)?,
            }
        }
        Ok(b)
    }

    #[test]
    fn bs_is_per_direction_and_ranges_and_splits_override_it() {
        let b = blocks(&[("bs", "4k,64k")]).unwrap();
        assert_eq!(
            b.of(Op::Read),
            BlockSize {
                min: 4096,
                max: 4096,
                split: &[]
            }
        );
        assert_eq!(b.of(Op::Write).max, 65536);
        let b = blocks(&[("bs", ",8k")]).unwrap();
        assert_eq!(
            (b.bs.read, b.bs.write),
            (4096, 8192),
            "an empty part keeps its default"
        );
        let b = blocks(&[("bs", "8k,16k,32k")]).unwrap();
        assert_eq!(
            b.bs,
            PerDir {
                read: 8192,
                write: 16384
            },
            "the trims' part is ignored"
        );
        let b = blocks(&[("bsrange", "64k-4k"), ("bs", "16k")]).unwrap();
        assert_eq!(
            (b.of(Op::Write).min, b.of(Op::Write).max),
            (4096, 65536),
            "swapped"
        );
        assert_eq!(b.option(Op::Read), "bsrange");
        let b = blocks(&[("bsrange", "4k:8k,16k-32k")]).unwrap();
        assert_eq!(b.of(Op::Write).min, 16384);
        assert!(blocks(&[("bs", "1,2,3,4")]).is_err());
        assert!(blocks(&[("bsrange", "4k")])
            .unwrap_err()
            .contains("a range such as"));
    }

    #[test]
    fn splits_share_what_is_left_and_sort_by_share() {
        let b = blocks(&[("bssplit", "4k/10:64k/50:32k/40")]).unwrap();
        let shares: Vec<(u64, u32)> = b
            .split
            .read
            .iter()
            .map(|s| (s.bs >> 10, s.percent))
            .collect();
        assert_eq!(shares, vec![(4, 10), (32, 40), (64, 50)]);
        assert_eq!(b.of(Op::Write).max, 65536);
        assert_eq!(b.option(Op::Write), "bssplit");
        let b = blocks(&[("bssplit", "4k:8k:16k/40")]).unwrap();
        let shares: Vec<u32> = b.split.read.iter().map(|s| s.percent).collect();
        assert_eq!(shares, vec![30, 30, 40]);
        let b = blocks(&[("bssplit", "8k")]).unwrap();
        assert_eq!(
            b.split.read,
            vec![Split {
                bs: 8192,
                percent: 100
            }]
        );
        let b = blocks(&[("bssplit", "4k/0:8k/150")]).unwrap();
        assert_eq!(
            b.split.read[1],
            Split {
                bs: 8192,
                percent: 100
            },
            "capped as fio does"
        );
        let b = blocks(&[("bssplit", "4k/50:8k/50,64k")]).unwrap();
        assert_eq!((b.split.read.len(), b.of(Op::Write).min), (2, 65536));
        assert!(blocks(&[("bssplit", "4k/60:8k:16k:32k/60")]).is_err());
        assert!(blocks(&[("bssplit", "4k/x")])
            .unwrap_err()
            .contains("percentage"));
    }

    #[test]
    fn alignment_defaults_to_the_smallest_block() {
        let b = blocks(&[("bsrange", "8k-64k")]).unwrap();
        assert_eq!(b.align(Op::Read), 8192);
        let b = blocks(&[("blockalign", "4k")]).unwrap();
        assert_eq!(b.align(Op::Write), 4096);
    }
}
