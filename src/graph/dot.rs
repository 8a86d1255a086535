//! A Graphviz (DOT) rendering of a task graph, colored by execution order.
//!
//! [`render_dot`] writes a `digraph` with one node per task, labeled with its key and op, and
//! one edge per dependency, drawn from the dependency to the task that consumes it. Like Dask's
//! `visualize(color="order")`, nodes can be filled along a color ramp by their priority (the
//! static order the scheduler prefers): blue for tasks that run first, through cyan, green and
//! yellow, to red for tasks that run last, with the number shown in the label. That makes the
//! scheduler's strategy visible: a good order finishes one branch (one hue) before starting the
//! next, instead of painting the whole bottom row blue.
//!
//! The layout is bottom-to-top (`rankdir=BT`): inputs at the bottom, final results at the top.
//! Render with `dot -Tsvg graph.dot -o graph.svg`.
//!
//! The output is deterministic: nodes in task-id order as `n0`, `n1`, …, edges in the order of
//! each task's dependency list, duplicates dropped. Labels escape quotes, backslashes and line
//! breaks, so any key is safe.
//!
//! Graphviz's layout gets slow and unreadable beyond a few thousand nodes
//! ([`LARGE_GRAPH_NODES`]); the function still renders graphs of any size (the caller decides),
//! but for big graphs render a small slice of the computation, or cull it first.

use std::fmt::Write as _;

use crate::error::{Error, Result};
use crate::graph::{Csr, Key};

/// Above about this many nodes Graphviz takes minutes to lay a graph out and the picture is no
/// longer readable. [`render_dot`] does not refuse larger graphs; callers may warn.
pub const LARGE_GRAPH_NODES: usize = 5_000;

/// Hue (HSV, 0..1) of the earliest task: blue.
const HUE_FIRST: f64 = 2.0 / 3.0;
/// Hue of the last task: red.
const HUE_LAST: f64 = 0.0;
/// Saturation and value of the fill, light enough for black text to stay readable.
const SATURATION: f64 = 0.45;
const VALUE: f64 = 0.97;

/// Renders a task graph as a Graphviz `digraph`.
///
/// * `keys[i]`, `ops[i]`: key and op name of task `i` (the label shows both; an empty op is
///   left out).
/// * `deps.row(i)`: the tasks task `i` depends on; each gives an edge `dep -> i`.
/// * `priority`: the run order of each task (lower runs earlier), e.g. the static order; when
///   given, nodes are filled from blue (earliest) to red (latest) and the label shows `#p`.
///   Values are spread over the ramp by their range, so they need not be dense.
///
/// Graphs beyond [`LARGE_GRAPH_NODES`] nodes are rendered too, but Graphviz struggles with them.
///
/// # Errors
///
/// [`ErrorKind::Input`](crate::ErrorKind::Input) if `ops`, `deps` or `priority` do not have
/// one entry per key, or a dependency is not a valid task index.
///
/// ```
/// use brisk::Key;
/// use brisk::graph::Csr;
/// use brisk::graph::dot::render_dot;
///
/// let keys = [Key::from(("load", 0)), Key::from(("load", 1)), Key::from("total")];
/// let ops = ["load", "load", "sum"];
/// let deps = Csr::from_rows([vec![], vec![], vec![0, 1]]);
/// let dot = render_dot(&keys, &ops, &deps, Some(&[0, 1, 2]))?;
/// assert!(dot.starts_with("digraph"));
/// assert!(dot.contains("n0 -> n2;") && dot.contains("n1 -> n2;"));
/// assert!(dot.contains(r#"label="(\"load\", 0)\nload\n#0""#));
/// assert!(render_dot(&keys, &ops[..2], &deps, None).is_err());
/// # Ok::<(), brisk::Error>(())
/// ```
pub fn render_dot(
    keys: &[Key],
    ops: &[&str],
    deps: &Csr,
    priority: Option<&[u32]>,
) -> Result<String> {
    let n = keys.len();
    let per_key = |what: &str, len: usize| {
        if len == n {
            Ok(())
        } else {
            Err(Error::input(format!(
                "render_dot: {len} {what} for {n} keys (need one per key)"
            )))
        }
    };
    per_key("ops", ops.len())?;
    per_key("dependency rows", deps.len())?;
    if let Some(p) = priority {
        per_key("priorities", p.len())?;
    }
    if let Some((task, dep)) = deps.target_out_of_range(n) {
        return Err(Error::input(format!(
            "render_dot: task {task} depends on task {dep}, but there are only {n} tasks"
        )));
    }
    let range = priority.and_then(|p| Some((*p.iter().min()?, *p.iter().max()?)));

    let mut out = String::with_capacity(128 + n * 80 + deps.num_edges() * 16);
    out.push_str("digraph brisk {\n");
    out.push_str("  graph [rankdir=BT, fontname=\"Helvetica\"");
    if priority.is_some() {
        out.push_str(", labelloc=t, label=\"fill: run order (#n), blue = first, red = last\"");
    }
    out.push_str("];\n");
    out.push_str(
        "  node [shape=box, style=\"rounded,filled\", fillcolor=\"#eeeeee\", \
         fontname=\"Helvetica\", fontsize=10];\n",
    );
    out.push_str("  edge [arrowsize=0.6];\n");

    let mut key_text = String::new();
    for (i, (key, op)) in keys.iter().zip(ops).enumerate() {
        key_text.clear();
        let _ = write!(key_text, "{key}");
        let _ = write!(out, "  n{i} [label=\"");
        escape_into(&mut out, &key_text);
        if !op.is_empty() {
            out.push_str("\\n");
            escape_into(&mut out, op);
        }
        if let (Some(p), Some((lo, hi))) = (priority, range) {
            let p = p[i];
            let _ = write!(out, "\\n#{p}\", fillcolor=\"{}\"", ramp(p, lo, hi));
        } else {
            out.push('"');
        }
        out.push_str("];\n");
    }

    // `seen[d] == i + 1` when the edge d -> i was already written: drops duplicate dependencies
    // in O(1) each.
    let mut seen = vec![0u32; n];
    for i in 0..n {
        let stamp = i as u32 + 1;
        for &d in deps.row(i as u32) {
            let du = d as usize;
            if seen[du] == stamp {
                continue;
            }
            seen[du] = stamp;
            let _ = writeln!(out, "  n{d} -> n{i};");
        }
    }
    out.push_str("}\n");
    Ok(out)
}

/// The fill of priority `p` on a `lo..=hi` range, as a Graphviz HSV color `"h s v"`.
fn ramp(p: u32, lo: u32, hi: u32) -> String {
    let t = if hi > lo {
        f64::from(p - lo) / f64::from(hi - lo)
    } else {
        0.0
    };
    let hue = HUE_FIRST + (HUE_LAST - HUE_FIRST) * t;
    format!("{hue:.3} {SATURATION:.3} {VALUE:.3}")
}

/// Appends `s` escaped for a DOT double-quoted string: `"` and `\` get a backslash, line breaks
/// become `\n` (a centered line break for Graphviz), other control characters a space.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Diamond: a, b <- a, c <- a, d <- b, c.
    fn diamond() -> (Vec<Key>, Vec<&'static str>, Csr) {
        let keys = vec![
            Key::from("a"),
            Key::from(("b", 0)),
            Key::from(("b", 1)),
            Key::from("d"),
        ];
        let ops = vec!["load", "inc", "inc", "add"];
        let deps = Csr::from_rows([vec![], vec![0], vec![0], vec![1, 2]]);
        (keys, ops, deps)
    }

    #[test]
    fn every_node_and_edge() {
        let (keys, ops, deps) = diamond();
        let dot = render_dot(&keys, &ops, &deps, None).unwrap();
        assert!(dot.starts_with("digraph brisk {\n"));
        assert!(dot.ends_with("}\n"));
        assert!(dot.contains("n0 [label=\"a\\nload\"];"), "{dot}");
        assert!(
            dot.contains("n1 [label=\"(\\\"b\\\", 0)\\ninc\"];"),
            "{dot}"
        );
        assert!(
            dot.contains("n2 [label=\"(\\\"b\\\", 1)\\ninc\"];"),
            "{dot}"
        );
        assert!(dot.contains("n3 [label=\"d\\nadd\"];"), "{dot}");
        let edges: Vec<&str> = dot.lines().filter(|l| l.contains("->")).collect();
        assert_eq!(
            edges,
            vec!["  n0 -> n1;", "  n0 -> n2;", "  n1 -> n3;", "  n2 -> n3;"]
        );
        // No color ramp without priorities.
        assert!(!dot.contains("0.667"));
        assert_eq!(dot.matches('{').count(), 1);
        assert_eq!(dot.matches('}').count(), 1);
    }

    #[test]
    fn priority_colors_and_labels() {
        let (keys, ops, deps) = diamond();
        let dot = render_dot(&keys, &ops, &deps, Some(&[10, 11, 13, 12])).unwrap();
        assert!(
            dot.contains("#10\", fillcolor=\"0.667 0.450 0.970\""),
            "{dot}"
        );
        assert!(
            dot.contains("#13\", fillcolor=\"0.000 0.450 0.970\""),
            "{dot}"
        );
        assert!(
            dot.contains("#11\", fillcolor=\"0.444 0.450 0.970\""),
            "{dot}"
        );
        assert!(dot.contains("blue = first"));
        // One node per line, each with a fill.
        assert_eq!(dot.matches("fillcolor=\"0.").count(), 4);
    }

    #[test]
    fn single_priority_value_is_first_color() {
        let keys = vec![Key::from("only")];
        let deps = Csr::from_rows([Vec::<u32>::new()]);
        let dot = render_dot(&keys, &["f"], &deps, Some(&[5])).unwrap();
        assert!(dot.contains("fillcolor=\"0.667 0.450 0.970\""), "{dot}");
    }

    #[test]
    fn escapes_quotes_backslashes_and_newlines() {
        let keys = vec![Key::from("say \"hi\"\\now\nnext")];
        let deps = Csr::from_rows([Vec::<u32>::new()]);
        let dot = render_dot(&keys, &["op\"x"], &deps, None).unwrap();
        assert!(
            dot.contains(r#"n0 [label="say \"hi\"\\now\nnext\nop\"x"];"#),
            "{dot}"
        );
        // Every quote inside the label is escaped: an unescaped quote count per node line is 2.
        let line = dot.lines().find(|l| l.starts_with("  n0 [")).unwrap();
        let mut unescaped = 0;
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => unescaped += 1,
                _ => {}
            }
        }
        assert_eq!(unescaped, 2, "{line}");
    }

    #[test]
    fn duplicate_dependencies_give_one_edge_and_empty_ops_are_omitted() {
        let keys = vec![Key::from("x"), Key::from("y")];
        let deps = Csr::from_rows([vec![], vec![0, 0, 0]]);
        let dot = render_dot(&keys, &["", ""], &deps, None).unwrap();
        assert_eq!(dot.matches("n0 -> n1;").count(), 1);
        assert!(dot.contains("n0 [label=\"x\"];"));
    }

    #[test]
    fn empty_graph() {
        let dot = render_dot(&[], &[], &Csr::new(), Some(&[])).unwrap();
        assert!(dot.starts_with("digraph brisk {"));
        assert!(!dot.contains(" n0"));
    }

    #[test]
    fn large_graph_still_renders() {
        let n = LARGE_GRAPH_NODES + 10;
        let name: std::sync::Arc<str> = "chunk".into();
        let keys: Vec<Key> = (0..n as i64).map(|i| Key::indexed(&name, &[i])).collect();
        let ops = vec!["f"; n];
        let deps = Csr::from_rows((0..n as u32).map(|i| if i == 0 { vec![] } else { vec![i - 1] }));
        let order: Vec<u32> = (0..n as u32).collect();
        let dot = render_dot(&keys, &ops, &deps, Some(&order)).unwrap();
        assert_eq!(dot.matches(" -> ").count(), n - 1);
        assert!(dot.contains(&format!("n{} [", n - 1)));
    }

    #[test]
    fn bad_dependency_is_an_error() {
        let keys = vec![Key::from("x")];
        let deps = Csr::from_rows([vec![9]]);
        let err = render_dot(&keys, &["f"], &deps, None).unwrap_err();
        assert!(matches!(err.kind(), crate::ErrorKind::Input(_)), "{err}");
        assert!(
            err.to_string()
                .contains("task 0 depends on task 9, but there are only 1 tasks"),
            "{err}"
        );
    }

    #[test]
    fn mismatched_arguments_are_errors() {
        let (keys, ops, deps) = diamond();
        let err = render_dot(&keys, &["f"], &deps, None).unwrap_err();
        assert!(err.to_string().contains("1 ops for 4 keys"), "{err}");
        let err = render_dot(&keys, &ops, &Csr::new(), None).unwrap_err();
        assert!(
            err.to_string().contains("0 dependency rows for 4 keys"),
            "{err}"
        );
        let err = render_dot(&keys, &ops, &deps, Some(&[0, 1])).unwrap_err();
        assert!(err.to_string().contains("2 priorities for 4 keys"), "{err}");
    }
}
