//! Arrays bigger than the memory limit: an all-to-all rechunk goes through the store's spill
//! files and still gives the right answer; `.npy` round trips stream block by block.

use brisk::array::{self, random, All};
use brisk::Runtime;
use ndarray::Axis;

#[test]
fn all_to_all_rechunk_spills_and_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let rt = Runtime::builder()
        .threads(2)
        .memory_limit("4 MiB")
        .spill_dir(dir.path())
        .build()
        .unwrap();
    // 8 MiB of data in row blocks of 256 KiB, to column blocks.
    let x = random::uniform(&[1024, 1024], (32, 1024), 11).unwrap();
    let cols = x.rechunk((1024, 32));
    assert_eq!(cols.numblocks(), vec![1, 32]);
    let sums = rt.compute(&cols.sum(0)).unwrap();
    let stats = rt.memory_stats();
    assert!(stats.spill_count > 0, "nothing spilled: {stats:?}");
    // The same sums without the rechunk, on an unconstrained runtime.
    let free = Runtime::builder().threads(2).build().unwrap();
    let direct = free.compute(&x).unwrap().sum_axis(Axis(0));
    for (a, b) in sums.iter().zip(direct.iter()) {
        assert!((a - b).abs() < 1e-9, "{a} {b}");
    }
}

#[test]
fn npy_round_trip_of_an_array_bigger_than_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let rt = Runtime::builder()
        .threads(2)
        .memory_limit("2 MiB")
        .spill_dir(dir.path())
        .build()
        .unwrap();
    let x = random::uniform(&[600, 1000], (50, 1000), 3).unwrap(); // 4.8 MB
    let path = dir.path().join("x.npy");
    x.to_npy(&rt, &path).unwrap();
    let y = array::io::from_npy::<f64>(&path, (50, 1000)).unwrap();
    let a = rt.compute(&y.rechunk((600, 100)).mean(All)).unwrap();
    let b = rt.compute(&x.mean(All)).unwrap();
    assert!((a.sum() - b.sum()).abs() < 1e-12);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        128 + 600 * 1000 * 8
    );
}
