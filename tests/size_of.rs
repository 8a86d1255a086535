//! `#[derive(SizeOf)]` and the std impls: counts close to what a value really keeps allocated
//! (checked against a hand count and against an allocator that counts this thread's live
//! bytes), the field attributes, and a derived serde type that spills under a memory limit and
//! comes back equal.

use std::alloc::{GlobalAlloc, Layout, System};
use std::borrow::Cow;
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use brisk::prelude::*;
use brisk::spill::codec::Spill;

// ---------------------------------------------------------------------------------------------
// An allocator that counts the bytes the current thread holds, so a value's real heap can be
// measured while other tests allocate on other threads.

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn add_live(delta: isize) {
    let _ = LIVE.try_with(|l| l.set(l.get() + delta));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add_live(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add_live(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add_live(layout.size() as isize);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add_live(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The value `make` returns and the heap bytes it holds, measured by the allocator.
fn measured<T>(make: impl FnOnce() -> T) -> (T, usize) {
    let before = LIVE.with(Cell::get);
    let value = make();
    let after = LIVE.with(Cell::get);
    (value, (after - before) as usize)
}

fn assert_within(got: usize, want: usize, tolerance: f64, what: &str) {
    let diff = (got as f64 - want as f64).abs() / want as f64;
    assert!(
        diff <= tolerance,
        "{what}: counted {got}, expected {want} ({:.1}% off, allowed {:.0}%)",
        diff * 100.0,
        tolerance * 100.0
    );
}

/// A string whose capacity is exactly its length.
fn exact(s: String) -> String {
    s.into_boxed_str().into_string()
}

// ---------------------------------------------------------------------------------------------
// The derive

#[derive(SizeOf, Clone, Debug, PartialEq)]
struct Index {
    names: Vec<String>,
    counts: HashMap<String, u64>,
}

fn index(n: usize) -> Index {
    Index {
        names: (0..n).map(|i| exact(format!("name-{i:04}"))).collect(),
        counts: (0..n)
            .map(|i| (exact(format!("key-{i:04}")), i as u64))
            .collect(),
    }
}

#[test]
fn a_vec_of_strings_and_a_hash_map_count_within_ten_percent_of_a_hand_count() {
    let (ix, allocated) = measured(|| index(1000));
    assert_eq!(ix.names.capacity(), 1000);
    assert!(ix.names.iter().all(|s| s.capacity() == 9));
    // Hand count. The vector: 1000 slots of 24 bytes, each string 9 bytes ("name-0000").
    // The map: `collect` reserves 1000 entries, which takes 2048 buckets (hashbrown keeps at
    // most 7/8 of a power of two full); each bucket holds a (String, u64) of 32 bytes and one
    // control byte, plus 16 trailing control bytes; each key holds 8 bytes ("key-0000").
    let hand =
        std::mem::size_of::<Index>() + 1000 * 24 + 1000 * 9 + 2048 * (32 + 1) + 16 + 1000 * 8;
    let counted = ix.size_of();
    assert_within(counted, hand, 0.10, "derived size vs hand count");
    // And against what the allocator handed out for it.
    assert_within(
        counted - std::mem::size_of::<Index>(),
        allocated,
        0.10,
        "derived heap vs allocated bytes",
    );
    assert_eq!(ix.heap_size(), counted - std::mem::size_of::<Index>());
}

#[derive(SizeOf)]
enum Message {
    Empty,
    Text(String),
    Batch { ids: Vec<u32>, note: Option<String> },
}

#[test]
fn an_enum_counts_the_variant_it_holds() {
    let inline = std::mem::size_of::<Message>();
    assert_eq!(Message::Empty.size_of(), inline);
    assert_eq!(Message::Text(exact("hello".into())).size_of(), inline + 5);
    let batch = Message::Batch {
        ids: Vec::with_capacity(10),
        note: Some(exact("abc".into())),
    };
    assert_eq!(batch.size_of(), inline + 40 + 3);
}

#[derive(SizeOf)]
#[allow(dead_code)]
enum Never {}

#[derive(SizeOf)]
struct Unit;

#[derive(SizeOf)]
struct Pair<A, B>(A, B);

#[derive(SizeOf)]
struct Tagged<T> {
    values: Vec<T>,
    #[size_of(skip)]
    kind: PhantomData<fn() -> T>,
}

#[test]
fn generic_types_bound_their_parameters_by_size_of() {
    fn size<T: SizeOf>(t: &T) -> usize {
        t.size_of()
    }
    let p = Pair(exact("ab".into()), vec![1u16; 4]);
    assert_eq!(size(&p), 48 + 2 + 8);
    let t = Tagged {
        values: vec![exact("xyz".into())],
        kind: PhantomData,
    };
    assert_eq!(t.size_of(), std::mem::size_of_val(&t) + 24 + 3);
    assert_eq!(Unit.size_of(), 0);
    // An empty enum derives too (no value exists to ask).
    fn _never(n: &Never) -> usize {
        n.size_of()
    }
}

/// A type from "another crate", with no `SizeOf` impl.
struct Foreign {
    buffer: Vec<u8>,
}

fn foreign_heap(f: &Foreign) -> usize {
    f.buffer.capacity()
}

#[derive(SizeOf)]
#[allow(dead_code)]
struct Holder {
    #[size_of(skip)]
    shared: Arc<Vec<u64>>,
    #[size_of(with = "foreign_heap")]
    foreign: Foreign,
    own: Vec<u64>,
}

#[test]
fn skipped_fields_count_inline_bytes_only_and_with_names_the_heap_counter() {
    let h = Holder {
        shared: Arc::new(vec![0; 1000]),
        foreign: Foreign {
            buffer: Vec::with_capacity(100),
        },
        own: vec![0; 10],
    };
    assert_eq!(h.size_of(), std::mem::size_of::<Holder>() + 100 + 80);
}

#[derive(SizeOf)]
#[size_of(bound = "T: Clone + SizeOf")]
struct Bounded<T> {
    items: Vec<T>,
}

#[test]
fn an_explicit_bound_replaces_the_default_one() {
    let b = Bounded {
        items: vec![1u8, 2],
    };
    assert_eq!(b.size_of(), 24 + 2);
}

// ---------------------------------------------------------------------------------------------
// Spilling a derived serde type

#[derive(SizeOf, Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[size_of(spill = "postcard")]
struct Record {
    id: u64,
    names: Vec<String>,
    counts: HashMap<String, u64>,
}

/// Strings without spare capacity: the store checks (in debug builds) that a value read back
/// from disk weighs what it weighed when it left, and decoding allocates exact capacities.
fn record(i: u64) -> Record {
    Record {
        id: i,
        names: (0..400)
            .map(|j| exact(format!("record-{i}-name-{j}")))
            .collect(),
        counts: (0..100).map(|j| (exact(format!("k{j}")), i * j)).collect(),
    }
}

#[test]
fn a_derived_serde_type_names_a_postcard_codec() {
    let codec = Record::spill_codec().expect("a codec");
    assert_eq!(codec.tag, concat!("postcard:", module_path!(), "::Record"));
    let r = record(3);
    let mut bytes = Vec::new();
    r.encode(&mut bytes).expect("encode");
    assert_eq!(Record::decode(&bytes).expect("decode"), r);
    // Without the attribute the type stays in memory.
    assert!(Index::spill_codec().is_none());
}

#[derive(SizeOf, Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[size_of(spill = "postcard")]
struct Batch<T> {
    items: Vec<T>,
}

#[test]
fn a_generic_serde_type_spills_per_instantiation() {
    let codec = Batch::<String>::spill_codec().expect("a codec");
    assert_eq!(codec.tag, std::any::type_name::<Batch<String>>());
    assert_ne!(codec.tag, Batch::<u8>::spill_codec().expect("a codec").tag);
    let b = Batch {
        items: vec![exact("x".into()), exact("yz".into())],
    };
    let mut bytes = Vec::new();
    b.encode(&mut bytes).expect("encode");
    assert_eq!(Batch::<String>::decode(&bytes).expect("decode"), b);
    assert_eq!(b.size_of(), 24 + 2 * 24 + 3);
}

#[test]
fn delayed_results_of_a_derived_serde_type_spill_and_come_back_equal() {
    let one = record(0).size_of();
    let n = 24;
    let base = tempfile::tempdir().expect("temp dir");
    let rt = Runtime::builder()
        .threads(2)
        .memory_limit(6 * one)
        .spill_dir(base.path())
        .build()
        .expect("runtime");
    let make = delayed(record).name("make");
    let digest = delayed(|r: Record| r.names.iter().map(String::len).sum::<usize>()).name("digest");
    // Every record is held until every digest is known: more than the limit at once.
    let check = delayed(|r: Record, all: Vec<usize>| {
        assert_eq!(all.len(), 24);
        r
    })
    .name("check");
    let records: Vec<_> = (0..n).map(|i| make.call(i as u64)).collect();
    let digests: Vec<_> = records.iter().map(|r| digest.call(r)).collect();
    let checks: Vec<_> = records
        .iter()
        .map(|r| check.call((r, digests.clone())))
        .collect();
    let got: Vec<Record> = rt.compute(&checks).expect("compute");
    let want: Vec<Record> = (0..n).map(|i| record(i as u64)).collect();
    assert_eq!(got, want);
    let stats = rt.memory_stats();
    assert!(stats.spill_count > 0, "nothing spilled: {stats:?}");
    assert!(stats.unspill_count > 0, "nothing read back: {stats:?}");
}

// ---------------------------------------------------------------------------------------------
// std impls, measured against the allocator

#[test]
fn std_types_count_what_they_allocate() {
    let mut failures = Vec::new();
    let mut check = |what: &str, tolerance: f64, counted_and_allocated: (usize, usize)| {
        let (counted, allocated) = counted_and_allocated;
        let diff = (counted as f64 - allocated as f64).abs() / allocated.max(1) as f64;
        if diff > tolerance {
            failures.push(format!("{what}: counted {counted}, allocated {allocated}"));
        }
    };
    fn heap<T: SizeOf>(make: impl FnOnce() -> T) -> (usize, usize) {
        let (value, allocated) = measured(make);
        (value.heap_size(), allocated)
    }
    check("String", 0.0, heap(|| String::with_capacity(100)));
    check(
        "PathBuf",
        0.0,
        heap(|| PathBuf::from(exact("/some/where/data.csv".into()))),
    );
    check(
        "OsString",
        0.0,
        heap(|| OsString::from(exact("name".into()))),
    );
    check(
        "Vec<String>",
        0.0,
        heap(|| (0..50).map(|i| exact(format!("{i}-x"))).collect::<Vec<_>>()),
    );
    check(
        "VecDeque<String>",
        0.0,
        heap(|| {
            (0..50)
                .map(|i| exact(format!("{i}-x")))
                .collect::<VecDeque<_>>()
        }),
    );
    check("Box<str>", 0.0, heap(|| Box::<str>::from("hello")));
    check(
        "Box<[String]>",
        0.0,
        heap(|| vec![exact("a".into()), exact("bc".into())].into_boxed_slice()),
    );
    check("Box<Vec<u8>>", 0.0, heap(|| Box::new(vec![0u8; 10])));
    check("Arc<str>", 0.0, heap(|| Arc::<str>::from("shared")));
    check(
        "Arc<[u64]>",
        0.0,
        heap(|| Arc::<[u64]>::from(vec![1u64, 2, 3])),
    );
    check("Rc<String>", 0.0, heap(|| Rc::new(exact("rc".into()))));
    check("Option<String>", 0.0, heap(|| Some(exact("opt".into()))));
    check(
        "Cow<str> owned",
        0.0,
        heap(|| Cow::<str>::Owned(exact("cow".into()))),
    );
    check(
        "(String, Vec<u8>, u8)",
        0.0,
        heap(|| (exact("t".into()), vec![1u8, 2, 3], 7u8)),
    );
    check(
        "[String; 3]",
        0.0,
        heap(|| [exact("a".into()), exact("b".into()), exact("c".into())]),
    );
    check(
        "HashMap<u64, String>",
        0.0,
        heap(|| {
            (0..300u64)
                .map(|i| (i, exact(format!("{i}"))))
                .collect::<HashMap<_, _>>()
        }),
    );
    check(
        "HashSet<u32> grown",
        0.0,
        heap(|| {
            let mut s = HashSet::new();
            for i in 0..1000u32 {
                s.insert(i);
            }
            s
        }),
    );
    check(
        "HashMap with another hasher",
        0.0,
        heap(|| {
            let mut m: HashMap<u32, u32, std::hash::BuildHasherDefault<std::hash::DefaultHasher>> =
                HashMap::default();
            m.extend((0..20).map(|i| (i, i)));
            m
        }),
    );
    // B-tree nodes are estimated (two-thirds full), not read: a looser bound. A map built
    // from sorted data has full leaves, so it is overcounted by about half.
    check(
        "BTreeMap<u64, String> from sorted data",
        0.55,
        heap(|| {
            (0..2000u64)
                .map(|i| (i, exact(format!("{i}"))))
                .collect::<BTreeMap<_, _>>()
        }),
    );
    check(
        "BTreeSet<u64> random order",
        0.35,
        heap(|| {
            let mut s = BTreeSet::new();
            for i in 0..5000u64 {
                s.insert(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40);
            }
            s
        }),
    );
    assert!(failures.is_empty(), "{failures:#?}");
    let borrowed: Cow<'static, str> = Cow::Borrowed("static");
    assert_eq!(borrowed.heap_size(), 0);
    assert_eq!("static".size_of(), 16);
    let wide = (
        1u8, 2u16, 3u32, 4u64, 5i8, 6i16, 7i32, 8i64, 9f32, 10f64, 'c', true,
    );
    assert_eq!(wide.size_of(), std::mem::size_of_val(&wide));
}
