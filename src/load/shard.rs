//! Shards: one run split over several kmsload processes (machines, pods, Slurm tasks).
//!
//! Shard `I` of `N` takes exactly the attempts of the unsharded run whose number `k` is
//! `I mod N`, with the same seed: attempt `k` has the same intended start, client, product,
//! skew and fault decision in whichever shard runs it, so the shards together are the
//! unsharded run attempt for attempt. A closed model's clients are split the same way
//! (`clients / N`, the first `clients mod N` shards one more).
//!
//! Where the shard comes from, first match wins: `--shard I/N`; `KMSLOAD_SHARD=I/N`;
//! `JOB_COMPLETION_INDEX` (a Kubernetes Indexed Job) with `--shards N`;
//! `SLURM_ARRAY_TASK_ID` with `SLURM_ARRAY_TASK_COUNT` (a Slurm job array; the index counts
//! from `SLURM_ARRAY_TASK_MIN`, so `--array=1-4` is shards 0..3).

use std::fmt;

/// One shard of a run: `index` of `count`. `Shard::WHOLE` (0 of 1) is an unsharded run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    /// 0-based index, below `count`.
    pub index: u32,
    /// Number of shards in the run, at least 1.
    pub count: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Self::WHOLE
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The command-line overrides of a run (`--target`, `--confirm-target`, `--rate`,
/// `--duration`, `--attempts`, `--events`, `--source-address`), kept in summary.json's `shard.overrides` so that
/// `kmsload merge` judges the merged result by the plan the shards ran, not by the bare
/// scenario file. The seed and the output directory are recorded elsewhere.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RunOverrides {
    /// `--target`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `--confirm-target`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirm_target: Option<String>,
    /// `--rate`, arrivals per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// `--duration`, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    /// `--attempts`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u64>,
    /// `--events`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<crate::record::EventsMode>,
    /// `--source-address` (may differ between the shards of one run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_addresses: Option<Vec<String>>,
}

impl RunOverrides {
    /// True when `self` and `other` ask for the same run: everything but the source
    /// addresses, which each shard may choose.
    pub fn same_run(&self, other: &Self) -> bool {
        Self {
            source_addresses: None,
            ..self.clone()
        } == Self {
            source_addresses: None,
            ..other.clone()
        }
    }
}

/// The largest number of shards accepted (a typo guard, far above any real deployment).
pub const MAX_SHARDS: u32 = 10_000;

impl Shard {
    /// The whole run: shard 0 of 1.
    pub const WHOLE: Self = Self { index: 0, count: 1 };

    /// A shard, checked: `count` in 1..=[`MAX_SHARDS`], `index < count`.
    ///
    /// # Errors
    /// A sentence naming the problem.
    pub fn new(index: u32, count: u32) -> Result<Self, String> {
        if count == 0 || count > MAX_SHARDS {
            return Err(format!(
                "the number of shards must be 1 to {MAX_SHARDS}, not {count}"
            ));
        }
        if index >= count {
            return Err(format!(
                "shard index {index} is out of range for {count} shards (indexes count from 0: 0 to {})",
                count - 1
            ));
        }
        Ok(Self { index, count })
    }

    /// Parses `I/N`.
    ///
    /// # Errors
    /// A sentence naming the problem and the expected form.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not a shard: write I/N, e.g. 0/4 for the first of four");
        let (i, n) = text.trim().split_once('/').ok_or_else(bad)?;
        let i = i.trim().parse().map_err(|_| bad())?;
        let n = n.trim().parse().map_err(|_| bad())?;
        Self::new(i, n)
    }

    /// Whether the run is split at all.
    pub fn is_sharded(self) -> bool {
        self.count > 1
    }

    /// Whether attempt `k` of the unsharded run belongs to this shard.
    pub fn takes(self, k: u64) -> bool {
        k % u64::from(self.count) == u64::from(self.index)
    }

    /// The attempt numbers of this shard below `limit`, in order.
    pub fn attempts(self, limit: u64) -> impl Iterator<Item = u64> {
        (u64::from(self.index)..limit).step_by(self.count as usize)
    }

    /// This shard's part of `clients` closed-model clients.
    pub fn clients(self, clients: u32) -> u32 {
        clients / self.count + u32::from(self.index < clients % self.count)
    }

    /// The shard from the flags and the environment (see the module docs), `None` when
    /// nothing names one. `env` looks a variable up (`std::env::var` in the binary).
    ///
    /// # Errors
    /// A sentence naming the flag or variable at fault and what to write instead.
    pub fn from_sources(
        shard: Option<&str>,
        shards: Option<u32>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, String> {
        if let Some(text) = shard {
            if shards.is_some() {
                return Err("--shard I/N and --shards N are exclusive: --shards is for \
                            JOB_COMPLETION_INDEX (a Kubernetes Indexed Job)"
                    .into());
            }
            return Self::parse(text)
                .map(Some)
                .map_err(|e| format!("--shard: {e}"));
        }
        if let Some(text) = env("KMSLOAD_SHARD").filter(|t| !t.trim().is_empty()) {
            return Self::parse(&text)
                .map(Some)
                .map_err(|e| format!("KMSLOAD_SHARD: {e}"));
        }
        if let Some(count) = shards {
            let index = env("JOB_COMPLETION_INDEX").ok_or_else(|| {
                "--shards N takes the shard's index from JOB_COMPLETION_INDEX, which is not set \
                 (it is set in the pods of a Kubernetes Indexed Job); elsewhere use --shard I/N"
                    .to_owned()
            })?;
            let index = index
                .trim()
                .parse()
                .map_err(|_| format!("JOB_COMPLETION_INDEX=`{index}` is not a number"))?;
            return Self::new(index, count)
                .map(Some)
                .map_err(|e| format!("JOB_COMPLETION_INDEX with --shards {count}: {e}"));
        }
        if let Some(id) = env("SLURM_ARRAY_TASK_ID") {
            let number = |name: &str, text: &str| -> Result<u32, String> {
                text.trim()
                    .parse()
                    .map_err(|_| format!("{name}=`{text}` is not a number"))
            };
            let id = number("SLURM_ARRAY_TASK_ID", &id)?;
            let count = env("SLURM_ARRAY_TASK_COUNT").ok_or_else(|| {
                "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not: run under \
                 sbatch --array, or give --shard I/N"
                    .to_owned()
            })?;
            let count = number("SLURM_ARRAY_TASK_COUNT", &count)?;
            let min = match env("SLURM_ARRAY_TASK_MIN") {
                Some(m) => number("SLURM_ARRAY_TASK_MIN", &m)?,
                None => 0,
            };
            if let Some(step) = env("SLURM_ARRAY_TASK_STEP")
                && number("SLURM_ARRAY_TASK_STEP", &step)? != 1
            {
                return Err(format!(
                    "the job array has step {step}: submit a contiguous array \
                         (--array=0-{}), or give --shard I/N",
                    count.saturating_sub(1)
                ));
            }
            return Self::new(id.saturating_sub(min), count)
                .map(Some)
                .map_err(|e| {
                    format!("SLURM_ARRAY_TASK_ID {id} of SLURM_ARRAY_TASK_COUNT {count}: {e}")
                });
        }
        Ok(None)
    }
}

/// The run id when none is given: the scenario's name, the seed and, with a common start,
/// its time (`smoke-s1-20261206T100000Z`). Without `--start-at` two runs of the same scenario
/// and seed share it: give `--run-id` to tell them apart.
pub fn default_run_id(
    scenario: &str,
    seed: u64,
    start_at: Option<std::time::SystemTime>,
) -> String {
    match start_at {
        Some(t) => {
            let stamp: String = humantime::format_rfc3339_seconds(t)
                .to_string()
                .chars()
                .filter(|c| !matches!(c, '-' | ':'))
                .collect();
            format!("{scenario}-s{seed}-{stamp}")
        }
        None => format!("{scenario}-s{seed}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn run_ids_name_scenario_seed_and_start() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_551_200);
        assert_eq!(
            default_run_id("smoke", 7, Some(t)),
            "smoke-s7-20261206T100000Z"
        );
        assert_eq!(default_run_id("smoke", 7, None), "smoke-s7");
    }

    #[test]
    fn parses_and_checks() {
        assert_eq!(Shard::parse("2/4"), Ok(Shard { index: 2, count: 4 }));
        assert_eq!(Shard::parse(" 0 / 1 "), Ok(Shard::WHOLE));
        for bad in ["4/4", "1/0", "x/2", "1", "1/2/3", "-1/2", "0/10001"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        assert!(Shard::parse("4/4").unwrap_err().contains("0 to 3"));
    }

    #[test]
    fn sources_in_order() {
        let none = env(&[]);
        assert_eq!(Shard::from_sources(None, None, &none), Ok(None));
        assert_eq!(
            Shard::from_sources(Some("1/3"), None, &env(&[("KMSLOAD_SHARD", "2/3")])),
            Ok(Some(Shard { index: 1, count: 3 }))
        );
        assert_eq!(
            Shard::from_sources(None, None, &env(&[("KMSLOAD_SHARD", "2/3")])),
            Ok(Some(Shard { index: 2, count: 3 }))
        );
        let k8s = env(&[("JOB_COMPLETION_INDEX", "3")]);
        assert_eq!(
            Shard::from_sources(None, Some(4), &k8s),
            Ok(Some(Shard { index: 3, count: 4 }))
        );
        // Without --shards the index alone says nothing.
        assert_eq!(Shard::from_sources(None, None, &k8s), Ok(None));
        assert!(
            Shard::from_sources(None, Some(4), &none)
                .unwrap_err()
                .contains("JOB_COMPLETION_INDEX")
        );
        assert!(Shard::from_sources(None, Some(3), &k8s).is_err());
        assert!(Shard::from_sources(Some("0/2"), Some(2), &none).is_err());
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_STEP", "1"),
        ]);
        assert_eq!(
            Shard::from_sources(None, None, &slurm),
            Ok(Some(Shard { index: 2, count: 4 }))
        );
        let stepped = env(&[
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
        ]);
        assert!(Shard::from_sources(None, None, &stepped).is_err());
        assert!(Shard::from_sources(None, None, &env(&[("SLURM_ARRAY_TASK_ID", "0")])).is_err());
    }

    proptest! {
        /// Every attempt and every client lands in exactly one shard.
        #[test]
        fn shards_partition_attempts_and_clients(n in 1u32..12, limit in 0u64..200, clients in 0u32..100) {
            let shards: Vec<Shard> = (0..n).map(|i| Shard::new(i, n).unwrap()).collect();
            let mut all: Vec<u64> = shards.iter().flat_map(|s| s.attempts(limit)).collect();
            all.sort_unstable();
            prop_assert_eq!(all, (0..limit).collect::<Vec<_>>());
            for k in 0..limit {
                prop_assert_eq!(shards.iter().filter(|s| s.takes(k)).count(), 1);
            }
            prop_assert_eq!(shards.iter().map(|s| s.clients(clients)).sum::<u32>(), clients);
            let most = shards.iter().map(|s| s.clients(clients)).max().unwrap();
            let least = shards.iter().map(|s| s.clients(clients)).min().unwrap();
            prop_assert!(most - least <= 1);
        }
    }
}
