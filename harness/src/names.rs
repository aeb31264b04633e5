//! The names of csumbench's enums are serde's: the JSON, the command line and messages spell
//! them the same way because they all ask here.

use clap::builder::TypedValueParser;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// `value` as serde names it (a unit variant's name).
pub fn name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => panic!("not a unit variant: {other:?}"),
    }
}

/// The variant serde names `s`.
pub fn parse<T: DeserializeOwned>(s: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|e| e.to_string())
}

/// A clap parser accepting the names of `all`, and listing them in `--help`.
pub fn parser<T>(all: &'static [T]) -> impl clap::builder::TypedValueParser<Value = T>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    clap::builder::PossibleValuesParser::new(all.iter().map(name))
        .map(|s| parse(&s).expect("a listed name"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Topology;

    #[test]
    fn names_round_trip() {
        for t in Topology::ALL {
            assert_eq!(parse::<Topology>(&name(&t)).unwrap(), t);
        }
        assert_eq!(name(&Topology::Shared), "shared");
        assert!(parse::<Topology>("sideways").is_err());
    }
}
