//! Lazy task nodes: how `delayed` calls and the array collection hold a graph before it is
//! built. Each node owns its key, op, annotations and `Arc`s of the nodes it depends on;
//! [`add_nodes`] adds a set of roots and everything below them to a [`Graph`], dependencies
//! first, each key once.

use std::sync::Arc;

use crate::error::Result;
use crate::graph::{Annotations, Graph, Key, Op};

/// A task not yet in a graph: what to run and on which other nodes' results.
#[doc(hidden)]
pub struct Node {
    pub(crate) key: Key,
    pub(crate) op: Op,
    pub(crate) deps: Vec<Arc<Node>>,
    pub(crate) annotations: Option<Box<Annotations>>,
}

impl Node {
    /// A node without annotations.
    pub(crate) fn new(key: Key, op: Op, deps: Vec<Arc<Node>>) -> Node {
        Node {
            key,
            op,
            deps,
            annotations: None,
        }
    }
}

impl Drop for Node {
    // A chain of a million calls would otherwise drop recursively and overflow the stack.
    fn drop(&mut self) {
        let mut stack = std::mem::take(&mut self.deps);
        while let Some(node) = stack.pop() {
            if let Some(mut inner) = Arc::into_inner(node) {
                stack.append(&mut inner.deps);
            }
        }
    }
}

/// Adds `roots` and everything they depend on, dependencies first, skipping keys already there.
pub(crate) fn add_nodes(roots: &[Arc<Node>], graph: &mut Graph) -> Result<()> {
    for root in roots {
        if graph.contains(&root.key) {
            continue;
        }
        // Iterative post-order: (node, next dependency to visit).
        let mut stack: Vec<(&Node, usize)> = vec![(root, 0)];
        while let Some((node, i)) = stack.last_mut() {
            if let Some(dep) = node.deps.get(*i) {
                *i += 1;
                if !graph.contains(&dep.key) {
                    stack.push((dep, 0));
                }
                continue;
            }
            let node: &Node = node;
            stack.pop();
            if graph.contains(&node.key) {
                continue; // reached twice through a diamond before being added
            }
            let id = graph.add_task(
                node.key.clone(),
                node.op.clone(),
                node.deps.iter().map(|d| &d.key),
            )?;
            if let Some(a) = &node.annotations {
                graph.annotate(id, (**a).clone());
            }
        }
    }
    Ok(())
}
