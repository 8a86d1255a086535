//! Criterion benches of scheduler overhead: the same no-op graphs as `brisk bench overhead`
//! (independent tasks under a fan-in-32 tree, a chain, a binary tree), timed end to end from
//! the first graph call to the result. Compare with `benches/dask_overhead.py`.

use brisk::bench::overhead::{self, Shape};
use brisk::Runtime;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn overhead_shapes(c: &mut Criterion) {
    brisk::bench::keep_freed_pages();
    let rt = Runtime::builder().threads(2).build().expect("runtime");
    let mut group = c.benchmark_group("overhead");
    group.sample_size(10);
    for shape in [Shape::Independent, Shape::Chain, Shape::Tree] {
        for fuse in [true, false] {
            let n = 100_000;
            let tasks = overhead::build(shape, n).expect("graph").0.len();
            group.throughput(Throughput::Elements(tasks as u64));
            let name = if fuse {
                shape.to_string()
            } else {
                format!("{shape}-nofuse")
            };
            group.bench_with_input(BenchmarkId::new(name, n), &n, |b, &n| {
                b.iter(|| overhead::run(&rt, shape, n, fuse).expect("run"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, overhead_shapes);
criterion_main!(benches);
