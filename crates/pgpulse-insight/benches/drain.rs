//! Cost of `Insight::drain_patterns` with 5,000 active (fingerprint,
//! database, user) entries of 20 executions each: the whole drain (moving the
//! period accumulators out under the registry lock, then percentiles and
//! histogram serialization outside it). The lock is held for a fraction of
//! this; the figure bounds how long the aggregator can wait on a drain.

use std::time::{Duration, SystemTime};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use pgpulse_insight::{Insight, InsightConfig, Session, StatementEvent};

const KEYS: u64 = 5_000;
const CALLS: u64 = 20;

fn fill(insight: &Insight) {
    let r = insight.recorder();
    let session = Session::new("appdb", "app", "api");
    for k in 0..KEYS {
        for c in 0..CALLS {
            let text = format!("SELECT * FROM t{k} WHERE id = {c}");
            let us = 100 + (k * 37 + c * 1_013) % 20_000;
            let e = StatementEvent::new(
                session.clone(),
                text,
                SystemTime::now(),
                Duration::from_micros(us),
            );
            while !r.record(e.clone()) {
                insight.flush().expect("flush");
            }
        }
    }
    insight.flush().expect("flush");
}

fn bench(c: &mut Criterion) {
    let insight = Insight::start(InsightConfig {
        log_sample_rate: 0.0,
        ..InsightConfig::default()
    })
    .expect("start");
    let mut g = c.benchmark_group("drain");
    g.sample_size(10);
    g.bench_function("drain_patterns/5000 keys x 20 calls", |b| {
        b.iter_batched(
            || fill(&insight),
            |()| {
                let rows = insight.drain_patterns();
                assert_eq!(rows.len() as u64, KEYS);
                rows
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
    insight.shutdown();
}

criterion_group!(benches, bench);
criterion_main!(benches);
