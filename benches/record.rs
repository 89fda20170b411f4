//! Recorder and fleet costs: one `Recorder::record` per attempt (the runner's hot path),
//! merging two 100k-attempt recorders (shards), and one `Fleet::client` identity.
//!
//! Run with `cargo bench --bench record`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use kmsload::catalog::Application;
use kmsload::client::Outcome;
use kmsload::record::{AttemptRecord, Latencies, Recorder};
use kmsload::sim::{Fleet, FleetSpec, ProductWeight, SkewDist};
use kmsload::wire::base::Version;
use uuid::Uuid;

const EPID: &str = "03612-00206-568-579566-03-1033-17763.0000-2062020";

/// A realistic mix: mostly activated, some low-count and refused, a few faulted.
fn records(n: u64) -> Vec<AttemptRecord> {
    (0..n)
        .map(|a| {
            let (outcome, code, count) = match a % 20 {
                0 => (Outcome::Failed, 0x8007_274D, None),
                1 | 2 => (Outcome::NotActivated, 0xC004_F038, Some(12)),
                _ => (Outcome::Activated, 0, Some(50)),
            };
            let failed = outcome == Outcome::Failed;
            AttemptRecord {
                attempt: a,
                client_index: a,
                intended_start_us: a * 1000,
                cmid: Uuid::from_u64_pair(a.wrapping_mul(0x9E37_79B9_7F4A_7C15), a),
                product: (a % 4) as u16,
                protocol: Version::V6,
                latency: Latencies {
                    connect_us: Some(150 + a % 97),
                    bind_us: (!failed).then_some(300 + a % 311),
                    request_us: (!failed).then_some(900 + a % 1201),
                    total_us: Some(1500 + a % 2003),
                },
                outcome,
                code,
                cause: failed.then_some("connect refused"),
                fault: (a % 50 == 7).then_some("delay"),
                reported_count: count,
                pool: Application::Windows,
                required: 25,
                host: 0,
                epid: (!failed).then(|| EPID.to_owned()),
                hwid: (!failed).then_some([0x3A, 0x1C, 0x04, 0x96, 0x00, 0xB6, 0x00, 0x76]),
            }
        })
        .collect()
}

fn recorded(recs: &[AttemptRecord]) -> Recorder {
    let mut r = Recorder::new();
    for rec in recs {
        r.record(rec, rec.intended_start_us / 1_000_000);
    }
    r
}

fn bench_record(c: &mut Criterion) {
    let recs = records(4096);
    let mut r = recorded(&recs);
    let mut i = 0u64;
    c.bench_function("record/attempt", |b| {
        b.iter(|| {
            let rec = &recs[(i % 4096) as usize];
            // ~1000 attempts per second of run time, as a busy run would see.
            r.record(black_box(rec), i / 1000);
            i += 1;
        })
    });
    black_box(r.attempts());
}

fn bench_merge(c: &mut Criterion) {
    let all = records(200_000);
    let (a, b) = all.split_at(100_000);
    let (ra, rb) = (recorded(a), recorded(b));
    c.bench_function("record/merge_2x100k", |bench| {
        bench.iter_batched(
            || ra.clone(),
            |mut m| {
                m.merge(black_box(&rb));
                m
            },
            BatchSize::LargeInput,
        )
    });
    c.bench_function("record/summary_200k", |bench| {
        let mut m = ra.clone();
        m.merge(&rb);
        bench.iter(|| black_box(m.summary()))
    });
}

fn bench_fleet(c: &mut Criterion) {
    let mut spec = FleetSpec::new(
        1_000_000,
        (0..8)
            .map(|p| ProductWeight::new(p * 30, 1.0 + p as f64))
            .collect(),
    );
    spec.vm_fraction = 0.3;
    spec.skew = SkewDist::Normal {
        mean: 0.0,
        stddev: 300.0,
    };
    spec.domain = Some("corp.example.com".into());
    let fleet = Fleet::new(1, spec).expect("valid spec");
    let mut i = 0u64;
    c.bench_function("sim/client", |b| {
        b.iter(|| {
            i += 1;
            black_box(fleet.client(black_box(i)))
        })
    });
}

criterion_group!(benches, bench_record, bench_merge, bench_fleet);
criterion_main!(benches);
