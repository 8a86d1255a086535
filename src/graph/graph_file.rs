//! Loader for the JSON task-graph format of `shared/data/order-graphs`.
//!
//! A graph file holds task *shapes* only — keys and dependencies, no functions or data:
//!
//! ```json
//! {"name": "...", "tasks": [{"key": "('x', 0)", "deps": ["..."]}, ...],
//!  "dask_max_pressure": 3, "dask_mean_pressure": 1.5, "n_tasks": 2}
//! ```
//!
//! Task `i` gets id `i` (file order), dependencies are deduplicated (first occurrence kept; Dask
//! treats them as sets), and every problem — malformed JSON, a duplicate key, a dependency on
//! an unknown key, a wrong `n_tasks`, a dependency cycle — is an [`ErrorKind::Input`] error that
//! names the file and the key at fault, because these files are what `brisk order` and the
//! ordering tests are fed. Key strings are kept so that [`GraphFile::tie_by_key`] can break
//! ties the way Dask does (`str(key)` comparison, which is codepoint order, as Rust's `str::cmp`).

use std::cmp::Ordering;
use std::path::Path;

use rustc_hash::FxHashMap;
use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};
use crate::graph::csr::Csr;

/// One task graph read from a JSON graph file.
#[derive(Debug, Clone)]
pub struct GraphFile {
    /// The graph's name: the JSON `name` field, else the file stem ([`GraphFile::load`]) or
    /// the name given for errors ([`GraphFile::from_json_str`]).
    pub name: String,
    /// Task keys; task `i` has key `keys[i]`.
    pub keys: Vec<String>,
    /// Dependencies per task, deduplicated.
    pub deps: Csr,
    /// Dask's maximum pressure on this graph, when the file records it.
    pub dask_max_pressure: Option<u64>,
    /// Dask's mean pressure on this graph, when the file records it.
    pub dask_mean_pressure: Option<f64>,
}

#[derive(Deserialize)]
struct RawGraph {
    #[serde(default)]
    name: Option<String>,
    tasks: Vec<RawTask>,
    #[serde(default)]
    dask_max_pressure: Option<u64>,
    #[serde(default)]
    dask_mean_pressure: Option<f64>,
    #[serde(default)]
    n_tasks: Option<u64>,
}

#[derive(Deserialize)]
struct RawTask {
    key: String,
    #[serde(default)]
    deps: Vec<String>,
}

fn input_error(file: &str, msg: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Input(format!("graph file {file}: {msg}")))
}

impl GraphFile {
    /// Reads and parses a graph file; errors name the file.
    pub fn load(path: &Path) -> Result<GraphFile> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            Error::new(ErrorKind::Io {
                context: format!("reading graph file {}", path.display()),
                source,
            })
        })?;
        // Without a `name` field, a loaded graph is named after its file.
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        parse(&path.display().to_string(), &text, stem)
    }

    /// Parses a graph from JSON text; `name_for_errors` (usually the path) prefixes every error
    /// message and is the graph's name when the JSON has none.
    pub fn from_json_str(name_for_errors: &str, text: &str) -> Result<GraphFile> {
        parse(name_for_errors, text, name_for_errors.to_string())
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when the graph has no tasks.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The dependents per task (the transpose of `deps`).
    pub fn dependents(&self) -> Csr {
        self.deps.transpose(self.keys.len())
    }

    /// A tie-break for [`crate::graph::order::order`] that compares key strings, like Dask's
    /// final `str(key)` sort-key component.
    pub fn tie_by_key(&self) -> impl Fn(u32, u32) -> Ordering + '_ {
        move |a, b| self.keys[a as usize].cmp(&self.keys[b as usize])
    }
}

/// Parses graph JSON; `name_for_errors` prefixes errors, `default_name` names a graph whose JSON
/// has no `name`.
fn parse(name_for_errors: &str, text: &str, default_name: String) -> Result<GraphFile> {
    let raw: RawGraph = serde_json::from_str(text)
        .map_err(|e| input_error(name_for_errors, format_args!("invalid JSON: {e}")))?;
    let n = raw.tasks.len();
    if n >= u32::MAX as usize {
        return Err(input_error(
            name_for_errors,
            format_args!("{n} tasks is more than brisk's u32 task ids allow"),
        ));
    }
    if let Some(expected) = raw.n_tasks {
        if expected != n as u64 {
            return Err(input_error(
                name_for_errors,
                format_args!("n_tasks is {expected} but the file lists {n} tasks"),
            ));
        }
    }

    let mut index: FxHashMap<&str, u32> = FxHashMap::default();
    index.reserve(n);
    for (i, task) in raw.tasks.iter().enumerate() {
        if index.insert(task.key.as_str(), i as u32).is_some() {
            return Err(input_error(
                name_for_errors,
                format_args!("key {} is defined twice", task.key),
            ));
        }
    }

    let edges = raw.tasks.iter().map(|t| t.deps.len()).sum();
    let mut deps = Csr::with_capacity(n, edges);
    let mut row: Vec<u32> = Vec::new();
    for task in &raw.tasks {
        row.clear();
        for dep in &task.deps {
            let Some(&d) = index.get(dep.as_str()) else {
                return Err(input_error(
                    name_for_errors,
                    format_args!(
                        "task {} depends on {dep}, which is not in the graph",
                        task.key
                    ),
                ));
            };
            // Dask's dependencies are sets: a repeated dependency counts once.
            if !row.contains(&d) {
                row.push(d);
            }
        }
        deps.push_row(row.iter().copied());
    }
    drop(index);

    let keys: Vec<String> = raw.tasks.into_iter().map(|t| t.key).collect();
    if let Some(on_cycle) = deps
        .find_cycle(&deps.transpose(deps.len()))
        .and_then(|c| c.first().copied())
    {
        return Err(input_error(
            name_for_errors,
            format_args!("dependency cycle through task {}", keys[on_cycle as usize]),
        ));
    }
    Ok(GraphFile {
        name: raw.name.unwrap_or(default_name),
        keys,
        deps,
        dask_max_pressure: raw.dask_max_pressure,
        dask_mean_pressure: raw.dask_mean_pressure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(r: Result<GraphFile>) -> String {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parses_and_dedups() {
        let g = GraphFile::from_json_str(
            "g.json",
            r#"{"name": "g", "tasks": [{"key": "a", "deps": []}, {"key": "b", "deps": ["a", "a"]}],
               "dask_max_pressure": 1, "dask_mean_pressure": 0.5, "n_tasks": 2}"#,
        )
        .unwrap();
        assert_eq!(g.name, "g");
        assert_eq!(g.keys, vec!["a", "b"]);
        assert_eq!(g.deps.row(1), &[0]);
        assert_eq!(g.dask_max_pressure, Some(1));
        assert_eq!(g.dask_mean_pressure, Some(0.5));
        assert_eq!(g.dependents().row(0), &[1]);
        let tie = g.tie_by_key();
        assert_eq!(tie(0, 1), Ordering::Less);
    }

    #[test]
    fn optional_fields_may_be_missing() {
        let g = GraphFile::from_json_str("x.json", r#"{"tasks": [{"key": "a"}]}"#).unwrap();
        assert_eq!(g.name, "x.json");
        assert_eq!(g.dask_max_pressure, None);
        assert!(g.deps.row(0).is_empty());
    }

    #[test]
    fn unknown_dependency_names_file_and_key() {
        let msg = message(GraphFile::from_json_str(
            "bad.json",
            r#"{"tasks": [{"key": "a", "deps": ["zz"]}]}"#,
        ));
        assert!(msg.contains("bad.json"), "{msg}");
        assert!(msg.contains("task a depends on zz"), "{msg}");
    }

    #[test]
    fn duplicate_key_is_named() {
        let msg = message(GraphFile::from_json_str(
            "dup.json",
            r#"{"tasks": [{"key": "a"}, {"key": "a"}]}"#,
        ));
        assert!(
            msg.contains("dup.json") && msg.contains("key a is defined twice"),
            "{msg}"
        );
    }

    #[test]
    fn bad_json_and_count_mismatch() {
        let msg = message(GraphFile::from_json_str("j.json", "{"));
        assert!(
            msg.contains("j.json") && msg.contains("invalid JSON"),
            "{msg}"
        );
        let msg = message(GraphFile::from_json_str(
            "n.json",
            r#"{"tasks": [{"key": "a"}], "n_tasks": 3}"#,
        ));
        assert!(msg.contains("n_tasks is 3"), "{msg}");
    }

    #[test]
    fn cycle_is_reported() {
        let msg = message(GraphFile::from_json_str(
            "c.json",
            r#"{"tasks": [{"key": "r"}, {"key": "a", "deps": ["r", "b"]},
                          {"key": "b", "deps": ["a"]}, {"key": "after", "deps": ["b"]}]}"#,
        ));
        assert!(msg.contains("c.json") && msg.contains("cycle"), "{msg}");
        assert!(msg.contains("task a") || msg.contains("task b"), "{msg}");
    }

    #[test]
    fn missing_file_is_an_io_error_naming_the_path() {
        let err = GraphFile::load(Path::new("/nonexistent/graph.json")).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Io { .. }));
        assert!(err.to_string().contains("/nonexistent/graph.json"));
    }
}
