//! Where a strategy's throughput ratio to the baseline crosses 1 along the cost axis.
//!
//! A series is one strategy at one submitter count, its points sorted by checksum cost.
//! A point is *sure* of its side when its verdict says so (`faster` or `slower`: the whole
//! interval clears the noise band); the others are within noise. The series crosses
//! between two neighbouring sure points on opposite sides, and only there: the point
//! estimates of the unsure points between them wobble around 1 without meaning much.
//!
//! The crossing is where the point estimate goes through 1 between those two sure points,
//! interpolated linearly in (log cost, log ratio), as costs and ratios both vary
//! multiplicatively; where it goes through 1 several times (an odd number) on the way,
//! the middle one. Its 95 % interval inverts the points' own intervals: it starts where
//! the sure point below's bound comes up to 1 towards the next point, and ends where the
//! sure point above's bound left 1 after the point before it. Each end rests on one
//! pointwise 95 % bound, so the interval is conservative rather than exact, and with few
//! points it is as coarse as their spacing.

use serde::Serialize;

/// Which side of 1 a ratio is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Above,
    Below,
}

/// One point of a series: its cost, its ratio with the 95 % interval (NaN without one),
/// and the side its verdict is sure of.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub cost_ns: f64,
    pub ratio: f64,
    pub lo: f64,
    pub hi: f64,
    pub sure: Option<Side>,
}

/// Which way the ratio goes through 1 as the cost grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From below 1 to above: the candidate wins above the crossing.
    Rises,
    /// From above 1 to below: the baseline wins above the crossing.
    Falls,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Crossing {
    pub direction: Direction,
    pub cost_ns: f64,
    pub ci_lo_ns: f64,
    pub ci_hi_ns: f64,
}

/// How a series lies against 1.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// Sure points on both sides: every crossing, in cost order.
    Crosses(Vec<Crossing>),
    /// Every sure point (`sure` of them) on one side. Below: that side stops being sure at
    /// `edge_ns`, where the last sure point's interval comes up to 1 towards the next;
    /// above: it starts being sure there. `None` where it holds to that end of the range.
    OneSide {
        side: Side,
        sure: usize,
        edge_ns: Option<f64>,
    },
    /// No point is sure of its side.
    Unsure,
    /// No point has a ratio.
    Empty,
}

/// A point in log space: log cost, and the log ratio with its bounds.
#[derive(Debug, Clone, Copy)]
struct Log {
    x: f64,
    y: f64,
    lo: f64,
    hi: f64,
}

impl Log {
    fn of(s: &Sample) -> Log {
        Log {
            x: s.cost_ns.ln(),
            y: s.ratio.ln(),
            lo: s.lo.ln(),
            hi: s.hi.ln(),
        }
    }
}

/// Where the line from (x0, v0) to (x1, v1) goes through 0 (its ends on either side of
/// it); `nan_at` where an end is NaN (the sure point's own cost: the wider choice).
fn zero_between(x0: f64, v0: f64, x1: f64, v1: f64, nan_at: f64) -> f64 {
    if !(v0.is_finite() && v1.is_finite()) || v1 == v0 {
        return nan_at;
    }
    x0 + (0.0 - v0) / (v1 - v0) * (x1 - x0)
}

/// Which of a point's values a line is drawn through.
type Pick = fn(&Log) -> f64;

/// Where a bound of `p[i]` and `p[j]` (neighbours) goes through 1, as a cost.
fn bound_edge(p: &[Log], i: usize, j: usize, bound: Pick, sure_at: usize) -> f64 {
    zero_between(p[i].x, bound(&p[i]), p[j].x, bound(&p[j]), p[sure_at].x).exp()
}

/// The crossing between sure points `i` and `j` (i < j) on opposite sides.
fn crossing(p: &[Log], i: usize, j: usize, below_first: bool) -> Crossing {
    let turns: Vec<usize> = (i..j)
        .filter(|&k| (p[k].y > 0.0) != (p[k + 1].y > 0.0))
        .collect();
    let k = turns[turns.len() / 2];
    let at = zero_between(p[k].x, p[k].y, p[k + 1].x, p[k + 1].y, p[k].x).exp();
    // Below 1 first: the lower end is where i's upper bound reaches 1, the upper end where
    // j's lower bound does; falling, the other way round.
    let (from_i, to_j): (Pick, Pick) = if below_first {
        (|l| l.hi, |l| l.lo)
    } else {
        (|l| l.lo, |l| l.hi)
    };
    Crossing {
        direction: if below_first {
            Direction::Rises
        } else {
            Direction::Falls
        },
        cost_ns: at,
        ci_lo_ns: bound_edge(p, i, i + 1, from_i, i),
        ci_hi_ns: bound_edge(p, j - 1, j, to_j, j),
    }
}

/// Where a one-sided series stops (below) or starts (above) being sure.
fn one_side(p: &[Log], sure: &[(usize, Side)]) -> Shape {
    let side = sure[0].1;
    let edge_ns = match side {
        Side::Below => {
            let last = sure[sure.len() - 1].0;
            (last + 1 < p.len()).then(|| bound_edge(p, last, last + 1, |l| l.hi, last))
        }
        Side::Above => {
            let first = sure[0].0;
            (first > 0).then(|| bound_edge(p, first - 1, first, |l| l.lo, first))
        }
    };
    Shape::OneSide {
        side,
        sure: sure.len(),
        edge_ns,
    }
}

/// How `samples` (sorted by cost) lie against 1, and every crossing. Points without a
/// ratio are left out.
pub fn analyse(samples: &[Sample]) -> Shape {
    let usable: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.cost_ns > 0.0 && s.ratio > 0.0 && s.ratio.is_finite())
        .collect();
    if usable.is_empty() {
        return Shape::Empty;
    }
    let logs: Vec<Log> = usable.iter().map(|s| Log::of(s)).collect();
    let sure: Vec<(usize, Side)> = usable
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.sure.map(|side| (i, side)))
        .collect();
    let crossings: Vec<Crossing> = sure
        .windows(2)
        .filter(|w| w[0].1 != w[1].1)
        .map(|w| crossing(&logs, w[0].0, w[1].0, w[0].1 == Side::Below))
        .collect();
    match (sure.is_empty(), crossings.is_empty()) {
        (true, _) => Shape::Unsure,
        (false, true) => one_side(&logs, &sure),
        (false, false) => Shape::Crosses(crossings),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{verdict, Polarity, Verdict, DEFAULT_NOISE_THRESHOLD};

    /// A point whose interval is ratio × [1 - spread, 1 + spread], sure of its side as
    /// the compare's verdict would be.
    fn at(cost_ns: f64, ratio: f64, spread: f64) -> Sample {
        let (lo, hi) = (ratio * (1.0 - spread), ratio * (1.0 + spread));
        let sure = match verdict(lo, hi, Polarity::HigherIsFaster, DEFAULT_NOISE_THRESHOLD) {
            Verdict::Faster => Some(Side::Above),
            Verdict::Slower => Some(Side::Below),
            _ => None,
        };
        Sample {
            cost_ns,
            ratio,
            lo,
            hi,
            sure,
        }
    }

    /// Where ln v goes through 0 between (c0, v0) and (c1, v1), on log cost: the answer
    /// worked by hand, for the tests to compare with.
    fn log_zero(c0: f64, v0: f64, c1: f64, v1: f64) -> f64 {
        let t = -v0.ln() / (v1.ln() - v0.ln());
        (c0.ln() + t * (c1.ln() - c0.ln())).exp()
    }

    fn close(a: f64, b: f64) {
        assert!((a / b - 1.0).abs() < 1e-9, "{a} vs {b}");
    }

    fn crossings(shape: Shape) -> Vec<Crossing> {
        match shape {
            Shape::Crosses(c) => c,
            other => panic!("expected crossings: {other:?}"),
        }
    }

    #[test]
    fn a_symmetric_crossing_is_at_the_geometric_midpoint() {
        // 0.5 at 100 ns, 2.0 at 1000 ns: ln ratio goes -ln 2 .. +ln 2, so it is 0 halfway
        // along log cost, at √(100 · 1000).
        let c = crossings(analyse(&[at(100.0, 0.5, 0.1), at(1000.0, 2.0, 0.1)]))[0];
        assert_eq!(c.direction, Direction::Rises);
        close(c.cost_ns, 1000f64.sqrt() * 10.0);
        // The interval: where the upper bound (0.55 → 2.2) and the lower one (0.45 → 1.8)
        // go through 1 on the same segment.
        close(c.ci_lo_ns, log_zero(100.0, 0.55, 1000.0, 2.2));
        close(c.ci_hi_ns, log_zero(100.0, 0.45, 1000.0, 1.8));
        assert!(c.ci_lo_ns < c.cost_ns && c.cost_ns < c.ci_hi_ns);
    }

    #[test]
    fn the_interval_reaches_from_sure_point_to_sure_point() {
        // 0.8 [0.72, 0.88] is surely below; 0.95 [0.85, 1.05] and 1.1 [0.99, 1.21] are
        // within noise; 1.5 [1.35, 1.65] is surely above.
        let s = [
            at(100.0, 0.8, 0.1),
            at(200.0, 0.95, 0.1),
            at(400.0, 1.1, 0.1),
            at(800.0, 1.5, 0.1),
        ];
        let c = crossings(analyse(&s))[0];
        close(c.cost_ns, log_zero(200.0, 0.95, 400.0, 1.1));
        close(c.ci_lo_ns, log_zero(100.0, 0.88, 200.0, 1.045));
        close(c.ci_hi_ns, log_zero(400.0, 0.99, 800.0, 1.35));
    }

    #[test]
    fn wobbles_between_sure_points_give_the_middle_crossing() {
        // Through 1 three times between the sure ends: 0.5 → 1.01 → 0.99 → 1.02 → 2.
        let s = [
            at(100.0, 0.5, 0.1),
            at(200.0, 1.01, 0.1),
            at(400.0, 0.99, 0.1),
            at(800.0, 1.02, 0.1),
            at(1600.0, 2.0, 0.1),
        ];
        let all = crossings(analyse(&s));
        assert_eq!(all.len(), 1);
        close(all[0].cost_ns, log_zero(200.0, 1.01, 400.0, 0.99));
        // Unsure points that cross 1 between two sure points on one side cross nothing.
        let s = [
            at(100.0, 0.5, 0.1),
            at(200.0, 1.05, 0.1),
            at(400.0, 0.95, 0.1),
            at(800.0, 0.6, 0.1),
        ];
        assert_eq!(
            analyse(&s),
            Shape::OneSide {
                side: Side::Below,
                sure: 2,
                edge_ns: None
            }
        );
    }

    #[test]
    fn a_falling_ratio_mirrors_a_rising_one() {
        let rising = crossings(analyse(&[at(100.0, 0.5, 0.1), at(1000.0, 2.0, 0.1)]))[0];
        let inverse = |cost_ns: f64, ratio: f64| Sample {
            cost_ns,
            ratio: 1.0 / ratio,
            lo: 1.0 / (ratio * 1.1),
            hi: 1.0 / (ratio * 0.9),
            sure: Some(if ratio < 1.0 {
                Side::Above
            } else {
                Side::Below
            }),
        };
        let falling = crossings(analyse(&[inverse(100.0, 0.5), inverse(1000.0, 2.0)]))[0];
        assert_eq!(falling.direction, Direction::Falls);
        close(falling.cost_ns, rising.cost_ns);
        close(falling.ci_lo_ns, rising.ci_lo_ns);
        close(falling.ci_hi_ns, rising.ci_hi_ns);
    }

    #[test]
    fn one_side_says_where_it_stops_or_starts_being_sure() {
        // Inline surely wins at 100 ns, not at 1000 ns: sure up to where 0.55 → 1.17
        // (the upper bounds) reaches 1.
        assert_eq!(
            analyse(&[at(100.0, 0.5, 0.1), at(1000.0, 0.9, 0.3)]),
            Shape::OneSide {
                side: Side::Below,
                sure: 1,
                edge_ns: Some(log_zero(100.0, 0.55, 1000.0, 1.17))
            }
        );
        // The pool surely wins from where 0.855 → 1.35 (the lower bounds) reaches 1.
        let Shape::OneSide { side, edge_ns, .. } =
            analyse(&[at(100.0, 0.95, 0.1), at(1000.0, 1.5, 0.1)])
        else {
            panic!("one side")
        };
        assert_eq!(side, Side::Above);
        close(edge_ns.unwrap(), log_zero(100.0, 0.855, 1000.0, 1.35));
        // Sure everywhere: no edge.
        assert_eq!(
            analyse(&[at(100.0, 2.0, 0.1), at(1000.0, 3.0, 0.1)]),
            Shape::OneSide {
                side: Side::Above,
                sure: 2,
                edge_ns: None
            }
        );
    }

    #[test]
    fn nothing_sure_or_nothing_measured_is_said_as_such() {
        assert_eq!(analyse(&[at(100.0, 1.2, 0.5)]), Shape::Unsure);
        assert_eq!(analyse(&[]), Shape::Empty);
        // A point without a ratio (no pair) is left out, never read as a crossing.
        let none = Sample {
            cost_ns: 500.0,
            ratio: f64::NAN,
            lo: f64::NAN,
            hi: f64::NAN,
            sure: None,
        };
        assert_eq!(analyse(&[none]), Shape::Empty);
        assert_eq!(
            analyse(&[at(100.0, 0.5, 0.1), none, at(1000.0, 0.6, 0.1)]),
            Shape::OneSide {
                side: Side::Below,
                sure: 2,
                edge_ns: None
            }
        );
    }

    #[test]
    fn each_crossing_lies_between_its_own_sure_points() {
        // Up between 200 and 400, down between 800 and 1600.
        let s = [
            at(100.0, 0.5, 0.1),
            at(200.0, 0.9, 0.2),
            at(400.0, 1.2, 0.2),
            at(800.0, 1.5, 0.1),
            at(1600.0, 0.7, 0.1),
        ];
        let c = crossings(analyse(&s));
        assert_eq!(c.len(), 2);
        assert_eq!(
            (c[0].direction, c[1].direction),
            (Direction::Rises, Direction::Falls)
        );
        close(c[0].cost_ns, log_zero(200.0, 0.9, 400.0, 1.2));
        close(c[0].ci_lo_ns, log_zero(100.0, 0.55, 200.0, 1.08));
        close(c[0].ci_hi_ns, log_zero(400.0, 0.96, 800.0, 1.35));
        close(c[1].cost_ns, log_zero(800.0, 1.5, 1600.0, 0.7));
        // Falling, the lower end is where 800's lower bound (1.35 → 0.63) reaches 1, the
        // upper end where 1600's upper bound (1.65 → 0.77) does.
        close(c[1].ci_lo_ns, log_zero(800.0, 1.35, 1600.0, 0.63));
        close(c[1].ci_hi_ns, log_zero(800.0, 1.65, 1600.0, 0.77));
    }
}
