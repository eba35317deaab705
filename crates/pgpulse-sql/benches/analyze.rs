//! Benchmarks over `tests/corpus.sql`: the hot path (normalize +
//! fingerprint, statements under 300 bytes), the cold full analysis and a
//! memo hit. Each iteration processes the whole corpus; divide by the
//! element count (criterion prints it as throughput) for the per-statement
//! time.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pgpulse_sql::{Analyzer, analyze, fingerprint, normalize};

fn corpus() -> Vec<&'static str> {
    include_str!("../tests/corpus.sql")
        .split("\n-- @@\n")
        .map(str::trim)
        .filter(|e| !normalize(e).text.is_empty())
        .collect()
}

fn hot_path(c: &mut Criterion) {
    let short: Vec<&str> = corpus().into_iter().filter(|e| e.len() < 300).collect();
    let mut g = c.benchmark_group("hot");
    g.throughput(Throughput::Elements(short.len() as u64));
    g.bench_function("normalize_under_300b", |b| {
        b.iter(|| {
            for s in &short {
                black_box(normalize(black_box(s)));
            }
        });
    });
    g.bench_function("fingerprint_under_300b", |b| {
        b.iter(|| {
            for s in &short {
                black_box(fingerprint(black_box(s)));
            }
        });
    });
    g.finish();
}

fn cold_and_memo(c: &mut Criterion) {
    let all = corpus();
    let mut g = c.benchmark_group("analyze");
    g.throughput(Throughput::Elements(all.len() as u64));
    g.sample_size(20);
    g.bench_function("cold_corpus", |b| {
        b.iter(|| {
            for s in &all {
                black_box(analyze(black_box(s)));
            }
        });
    });
    let memo = Analyzer::default();
    for s in &all {
        memo.analyze(s);
    }
    g.bench_function("memo_hit_corpus", |b| {
        b.iter(|| {
            for s in &all {
                black_box(memo.analyze(black_box(s)));
            }
        });
    });
    g.finish();
}

criterion_group!(benches, hot_path, cold_and_memo);
criterion_main!(benches);
