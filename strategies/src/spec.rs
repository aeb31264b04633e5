//! Strategy spec strings: `NAME[:key=value,...]`.

use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("strategy spec without a name: expected NAME[:key=value,...]")]
    Empty,
    #[error("unknown strategy '{0}' (see `harness list`)")]
    UnknownStrategy(String),
    #[error("strategy '{strategy}': {}", malformed(.item))]
    Malformed { strategy: String, item: String },
    #[error("strategy '{strategy}': knob '{knob}' given twice")]
    Duplicate { strategy: String, knob: String },
    #[error("strategy '{strategy}': unknown knob '{knob}' (known: {known})")]
    UnknownKnob {
        strategy: String,
        knob: String,
        known: String,
    },
    #[error("strategy '{strategy}': knob '{knob}={value}': {why}")]
    BadValue {
        strategy: String,
        knob: String,
        value: String,
        why: String,
    },
}

fn malformed(item: &str) -> String {
    if item.trim().is_empty() {
        "empty knob (a stray ',' or ':'), expected key=value".into()
    } else {
        format!("malformed knob '{item}', expected key=value")
    }
}

/// A parsed spec: a backend name and its knobs, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub name: String,
    pub knobs: BTreeMap<String, String>,
}

impl Spec {
    pub fn parse(text: &str) -> Result<Spec, SpecError> {
        let text = text.trim();
        let (name, rest) = match text.split_once(':') {
            Some((n, r)) => (n.trim(), Some(r)),
            None => (text, None),
        };
        if name.is_empty() {
            return Err(SpecError::Empty);
        }
        let mut knobs = BTreeMap::new();
        for item in rest.into_iter().flat_map(|r| r.split(',')) {
            let malformed = || SpecError::Malformed {
                strategy: name.to_string(),
                item: item.to_string(),
            };
            let (k, v) = item.split_once('=').ok_or_else(malformed)?;
            let (k, v) = (k.trim(), v.trim());
            if k.is_empty() || v.is_empty() {
                return Err(malformed());
            }
            if knobs.insert(k.to_string(), v.to_string()).is_some() {
                return Err(SpecError::Duplicate {
                    strategy: name.to_string(),
                    knob: k.to_string(),
                });
            }
        }
        Ok(Spec {
            name: name.to_string(),
            knobs,
        })
    }
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        for (i, (k, v)) in self.knobs.iter().enumerate() {
            write!(f, "{}{k}={v}", if i == 0 { ':' } else { ',' })?;
        }
        Ok(())
    }
}

/// The knob values a backend is built with: every declared knob, defaults filled in.
/// Accessors parse on demand and name the knob in their error.
#[derive(Debug, Clone)]
pub struct Knobs {
    strategy: String,
    values: BTreeMap<String, String>,
}

impl Knobs {
    pub(crate) fn new(strategy: &str, values: BTreeMap<String, String>) -> Self {
        Knobs {
            strategy: strategy.to_string(),
            values,
        }
    }

    fn raw(&self, knob: &str) -> &str {
        self.values
            .get(knob)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("backend read undeclared knob '{knob}'"))
    }

    fn bad(&self, knob: &str, why: impl Into<String>) -> SpecError {
        SpecError::BadValue {
            strategy: self.strategy.clone(),
            knob: knob.to_string(),
            value: self.raw(knob).to_string(),
            why: why.into(),
        }
    }

    /// A count in `min..=max`; `auto` is not accepted here (defaults are resolved first).
    pub fn count(&self, knob: &str, min: usize, max: usize) -> Result<usize, SpecError> {
        let range = || self.bad(knob, format!("must be between {min} and {max}"));
        let v: usize = self
            .raw(knob)
            .parse()
            .map_err(|e: std::num::ParseIntError| match e.kind() {
                std::num::IntErrorKind::PosOverflow => range(),
                _ => self.bad(knob, "expected a whole number"),
            })?;
        if v < min || v > max {
            return Err(range());
        }
        Ok(v)
    }

    pub fn flag(&self, knob: &str) -> Result<bool, SpecError> {
        match self.raw(knob) {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(self.bad(knob, "expected 0 or 1")),
        }
    }

    /// The canonical spec, every knob spelled out, numbers as [`Knobs::count`] reads them
    /// (`max_workers=+04` is `max_workers=4`): one configuration, one name.
    pub fn spec_string(&self) -> String {
        Spec {
            name: self.strategy.clone(),
            knobs: self
                .values
                .iter()
                .map(|(k, v)| (k.clone(), canonical_number(v)))
                .collect(),
        }
        .to_string()
    }
}

/// A decimal number without its `+` and leading zeros; anything else as given.
fn canonical_number(value: &str) -> String {
    let digits = value.strip_prefix('+').unwrap_or(value);
    match digits.parse::<u128>() {
        Ok(n) if digits.bytes().all(|b| b.is_ascii_digit()) => n.to_string(),
        _ => value.to_string(),
    }
}
