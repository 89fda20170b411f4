//! Shards of a scenario's run: the runner's decisions for each shard, put together, are the
//! unsharded run's attempt for attempt.

use super::*;
use crate::load::{PlannedAttempt, Shard, planned_attempts};

/// A ramp with a skewed mixed fleet and faults in a window, so that every field of a
/// planned attempt varies from one attempt to the next.
const SCENARIO: &str = r#"
name = "shards"
seed = 11
[fleet]
size = 400
skew = { kind = "uniform", min = "-5h", max = "5h" }
products = [
  { product = "Windows 10/11 Pro", weight = 3 },
  { product = "Office LTSC Professional Plus 2021", weight = 1 },
  { product = "Windows 7 Professional", weight = 1 },
]
[load]
stages = [{ duration = "4s", rate = 300 }]
attempts = 500
[[faults]]
kind = "refuse"
probability = 0.3
window = ["1s", "3s"]
[[faults]]
kind = "reset"
probability = 0.2
"#;

fn plan(text: &str, shard: Shard) -> Plan {
    let mut plan = parse(text).unwrap();
    plan.load.shard = shard;
    plan
}

/// The attempts the runner would dispatch for `plan`, as it decides them.
fn planned(plan: &Plan) -> Vec<PlannedAttempt> {
    planned_attempts(&plan.job(), u64::MAX).unwrap()
}

#[test]
fn shards_together_are_the_unsharded_run_attempt_for_attempt() {
    let whole = planned(&plan(SCENARIO, Shard::WHOLE));
    assert!(whole.len() > 300, "{}", whole.len());
    // The plan really varies: several products, skews, faults and start times.
    assert!(whole.iter().any(|a| a.fault.is_some()));
    assert!(whole.iter().any(|a| a.fault.is_none()));
    assert!(whole.iter().any(|a| a.skew_secs != whole[0].skew_secs));
    assert!(whole.iter().any(|a| a.product != whole[0].product));
    for n in [2u32, 3, 4, 7] {
        let mut union: Vec<PlannedAttempt> = (0..n)
            .flat_map(|i| {
                let shard = Shard::new(i, n).unwrap();
                let part = planned(&plan(SCENARIO, shard));
                assert!(part.iter().all(|a| shard.takes(a.attempt)));
                part
            })
            .collect();
        union.sort_by_key(|a| a.attempt);
        assert_eq!(union, whole, "{n} shards");
    }
}

#[test]
fn closed_model_shards_split_the_clients() {
    let text = SCENARIO.replace(
        r#"stages = [{ duration = "4s", rate = 300 }]"#,
        "model = \"closed\"\nclients = 10",
    );
    let whole = planned(&plan(&text, Shard::WHOLE));
    assert_eq!(whole.len(), 500, "the attempts bound");
    let mut union: Vec<PlannedAttempt> = (0..4)
        .flat_map(|i| planned(&plan(&text, Shard::new(i, 4).unwrap())))
        .collect();
    union.sort_by_key(|a| a.attempt);
    assert_eq!(union, whole);
    let clients: Vec<u32> = (0..4)
        .map(|i| Shard::new(i, 4).unwrap().clients(10))
        .collect();
    assert_eq!(clients, [3, 3, 2, 2]);
}
