//! The strategy instances of one case, and how they are shared between roles.

use std::sync::Arc;

use strategies::{PoolStats, Strategy};

/// Whether csum-side and endio-side work share one strategy instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Topology {
    /// Each kind of work gets its own pool: checksums, data endio, metadata endio (as btrfs
    /// has separate workers, and later separate workqueues, for each).
    Separate,
    /// One pool for everything: the configuration the 2008 patch warns can deadlock.
    Shared,
}

impl Topology {
    pub const ALL: [Topology; 2] = [Topology::Separate, Topology::Shared];
}

/// The strategy instances of one case, by role.
pub struct Pools {
    pub csum: Arc<dyn Strategy>,
    pub endio: Arc<dyn Strategy>,
    pub meta: Arc<dyn Strategy>,
}

impl Pools {
    pub fn build(spec: &str, topology: Topology) -> Result<Pools, strategies::SpecError> {
        let csum = strategies::build(spec)?;
        Ok(match topology {
            Topology::Shared => Pools {
                endio: csum.clone(),
                meta: csum.clone(),
                csum,
            },
            Topology::Separate => Pools {
                endio: strategies::build(spec)?,
                meta: strategies::build(spec)?,
                csum,
            },
        })
    }

    /// Each distinct instance once, with the roles it serves.
    pub fn roles(&self) -> Vec<(&'static str, &Arc<dyn Strategy>)> {
        if Arc::ptr_eq(&self.csum, &self.endio) {
            vec![("shared", &self.csum)]
        } else {
            vec![
                ("csum", &self.csum),
                ("endio", &self.endio),
                ("meta_endio", &self.meta),
            ]
        }
    }

    pub fn stats(&self) -> Vec<(String, PoolStats)> {
        self.roles()
            .into_iter()
            .map(|(role, s)| (role.to_string(), s.stats()))
            .collect()
    }
}
