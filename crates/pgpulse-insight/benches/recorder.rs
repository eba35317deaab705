//! Cost of `Recorder::record_ref` on the proxy's hot path, alone and with two
//! threads contending for the queue. Target: ≤ 200 ns per call contended.
//!
//! Events are recorded in chunks that fit the queue; the aggregator is
//! flushed between chunks outside the timed region, so what is measured is
//! the accepted-event path (cached text and session, `try_send`), not the
//! cheaper drop path.
//!
//! Two clocks: wall time, and each recording thread's own CPU time. On a
//! 2-core machine two recording threads plus the aggregator are three busy
//! threads, so wall time also counts time spent descheduled; the CPU time is
//! the cost the proxy's threads actually pay.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime};

use cpu_time::ThreadTime;
use criterion::{Criterion, criterion_group, criterion_main};
use pgpulse_insight::{CacheOutcome, EventRef, Insight, InsightConfig};
use pgpulse_wire::frontend::Bind;

const TEXT: &str = "SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id \
                    WHERE o.customer_id = $1 AND o.status = $2 ORDER BY o.created_at DESC LIMIT 20";
const CHUNK: u64 = 50_000;

fn event<'a>(bind: &'a pgpulse_wire::Message) -> EventRef<'a> {
    EventRef {
        database: "appdb",
        user: "app",
        application_name: "api-server",
        text: TEXT,
        bind: Some(bind),
        started_at: SystemTime::now(),
        duration: Duration::from_micros(850),
        rows: 20,
        error: None,
        cache: CacheOutcome::Miss,
        normalized: None,
    }
}

fn timed(insight: &Insight, threads: usize, iters: u64, cpu: bool) -> Duration {
    let bind = Bind {
        portal: "",
        statement: "s1",
        param_formats: vec![],
        params: vec![Some(b"42".as_slice()), Some(b"open".as_slice())],
        result_formats: vec![],
    }
    .encode();
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(CHUNK);
        left -= n;
        let barrier = Arc::new(Barrier::new(threads));
        let worst = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    let (r, b, bind) = (insight.recorder(), barrier.clone(), bind.clone());
                    s.spawn(move || {
                        let e = event(&bind);
                        b.wait();
                        let (wall, own) = (Instant::now(), ThreadTime::now());
                        for _ in 0..n {
                            std::hint::black_box(r.record_ref(std::hint::black_box(&e)));
                        }
                        if cpu { own.elapsed() } else { wall.elapsed() }
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().ok())
                .max()
                .unwrap_or_default()
        });
        total += worst;
        insight.flush().expect("flush");
    }
    total
}

fn bench(c: &mut Criterion) {
    let config = InsightConfig {
        queue_capacity: 2 * CHUNK as usize + 16,
        ..InsightConfig::default()
    };
    let insight = Insight::start(config).expect("start");
    let mut g = c.benchmark_group("recorder");
    g.bench_function("record_ref/1 thread/wall", |b| {
        b.iter_custom(|n| timed(&insight, 1, n, false))
    });
    g.bench_function("record_ref/2 threads/wall", |b| {
        b.iter_custom(|n| timed(&insight, 2, n, false))
    });
    g.bench_function("record_ref/2 threads/thread cpu", |b| {
        b.iter_custom(|n| timed(&insight, 2, n, true))
    });
    g.finish();
    let counters = insight.counters();
    assert_eq!(
        counters.dropped, 0,
        "the bench must measure accepted events: {counters:?}"
    );
    insight.shutdown();
}

criterion_group!(benches, bench);
criterion_main!(benches);
