//! Compressed sparse rows: the adjacency lists of a graph in two flat vectors.
//!
//! `row(i)` is `targets[offsets[i]..offsets[i + 1]]`. A million-task graph's dependencies are
//! one allocation instead of a million small vectors, and walking them is a linear scan.

/// Adjacency lists in compressed sparse row form, with `u32` ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Csr {
    offsets: Vec<u32>,
    targets: Vec<u32>,
}

impl Csr {
    /// An empty adjacency with no rows.
    pub fn new() -> Self {
        Csr {
            offsets: vec![0],
            targets: Vec::new(),
        }
    }

    /// Room for `rows` rows and `edges` targets.
    pub fn with_capacity(rows: usize, edges: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Csr {
            offsets,
            targets: Vec::with_capacity(edges),
        }
    }

    /// Builds from an offsets vector (`len + 1` entries, starting at 0, non-decreasing, ending
    /// at `targets.len()`) and the flat targets.
    pub fn from_raw(offsets: Vec<u32>, targets: Vec<u32>) -> Self {
        debug_assert_eq!(offsets.first(), Some(&0));
        debug_assert_eq!(offsets.last().copied(), Some(targets.len() as u32));
        Csr { offsets, targets }
    }

    /// Builds from per-row lists.
    pub fn from_rows<I, R>(rows: I) -> Self
    where
        I: IntoIterator<Item = R>,
        R: IntoIterator<Item = u32>,
    {
        let mut csr = Csr::new();
        for row in rows {
            csr.push_row(row);
        }
        csr
    }

    /// Appends one row.
    pub fn push_row(&mut self, row: impl IntoIterator<Item = u32>) {
        self.targets.extend(row);
        self.offsets.push(self.targets.len() as u32);
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total number of targets over all rows.
    pub fn num_edges(&self) -> usize {
        self.targets.len()
    }

    /// The targets of row `i`.
    #[inline]
    pub fn row(&self, i: u32) -> &[u32] {
        let i = i as usize;
        &self.targets[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    /// The length of row `i`.
    #[inline]
    pub fn row_len(&self, i: u32) -> usize {
        let i = i as usize;
        (self.offsets[i + 1] - self.offsets[i]) as usize
    }

    /// The first `(row, target)` whose target is not below `n`: a row naming a node that does
    /// not exist.
    pub(crate) fn target_out_of_range(&self, n: usize) -> Option<(u32, u32)> {
        let bad = self.targets.iter().position(|&t| t as usize >= n)?;
        // The row holding flat position `bad`: the last offset at or below it.
        let row = self.offsets.partition_point(|&o| o as usize <= bad) - 1;
        Some((row as u32, self.targets[bad]))
    }

    /// The reverse adjacency over `n` nodes: `j` is in `t.row(i)` for every `i` in `self.row(j)`.
    /// Rows of the result are in increasing order of `j`.
    pub fn transpose(&self, n: usize) -> Csr {
        let mut counts = vec![0u32; n + 1];
        for &t in &self.targets {
            counts[t as usize + 1] += 1;
        }
        for i in 0..n {
            counts[i + 1] += counts[i];
        }
        let offsets = counts.clone();
        let mut fill = counts;
        let mut targets = vec![0u32; self.targets.len()];
        for j in 0..self.len() as u32 {
            for &t in self.row(j) {
                let slot = &mut fill[t as usize];
                targets[*slot as usize] = j;
                *slot += 1;
            }
        }
        Csr { offsets, targets }
    }

    /// True when some row names the same target twice. Linear: a per-target stamp of the
    /// last row that named it, plus one (`n` is the number of possible targets). The stamps
    /// start at zero, allocated zeroed: only targets of rows longer than one are touched.
    pub fn has_repeated_targets(&self, n: usize) -> bool {
        let mut stamp = vec![0u32; n];
        (0..self.len() as u32).any(|i| {
            let row = self.row(i);
            row.len() > 1
                && row.iter().any(|&t| {
                    let seen = stamp[t as usize] == i + 1;
                    stamp[t as usize] = i + 1;
                    seen
                })
        })
    }

    /// A copy with duplicate targets removed from each row (first occurrence kept). Linear in
    /// the number of targets, whatever the row lengths (`n` as for
    /// [`has_repeated_targets`](Self::has_repeated_targets)).
    pub fn dedup_rows(&self, n: usize) -> Csr {
        let mut out = Csr::with_capacity(self.len(), self.targets.len());
        let mut stamp = vec![u32::MAX; n];
        for i in 0..self.len() as u32 {
            let row = self.row(i);
            out.targets.extend(row.iter().copied().filter(|&t| {
                let fresh = stamp[t as usize] != i;
                stamp[t as usize] = i;
                fresh
            }));
            out.offsets.push(out.targets.len() as u32);
        }
        out
    }

    /// The tasks of one dependency cycle, each depending on the next and the last on the
    /// first, or `None` when the graph (rows = dependencies, `dependents` its transpose) is
    /// acyclic. Kahn's sweep leaves exactly the tasks on or downstream of cycles; each of them
    /// has an unfinished dependency, so following those must revisit a task.
    pub fn find_cycle(&self, dependents: &Csr) -> Option<Vec<u32>> {
        let n = self.len();
        let mut missing: Vec<u32> = (0..n as u32).map(|i| self.row_len(i) as u32).collect();
        let mut ready: Vec<u32> = (0..n as u32)
            .filter(|&i| missing[i as usize] == 0)
            .collect();
        let mut done = 0usize;
        while let Some(t) = ready.pop() {
            done += 1;
            for &c in dependents.row(t) {
                missing[c as usize] -= 1;
                if missing[c as usize] == 0 {
                    ready.push(c);
                }
            }
        }
        if done == n {
            return None;
        }
        let mut position = vec![u32::MAX; n];
        let mut path: Vec<u32> = Vec::new();
        let mut t = (0..n as u32).find(|&i| missing[i as usize] > 0)?;
        loop {
            if position[t as usize] != u32::MAX {
                return Some(path.split_off(position[t as usize] as usize));
            }
            position[t as usize] = path.len() as u32;
            path.push(t);
            t = *self.row(t).iter().find(|&&d| missing[d as usize] > 0)?;
        }
    }

    /// The flat targets vector.
    pub fn targets(&self) -> &[u32] {
        &self.targets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_roundtrip() {
        // 0 <- 1, 0 <- 2, 1 <- 2
        let deps = Csr::from_rows([vec![], vec![0], vec![0, 1]]);
        let dependents = deps.transpose(3);
        assert_eq!(dependents.row(0), &[1, 2]);
        assert_eq!(dependents.row(1), &[2]);
        assert!(dependents.row(2).is_empty());
        assert_eq!(dependents.transpose(3), deps);
    }

    #[test]
    fn dedup() {
        let deps = Csr::from_rows([vec![], vec![0, 0], vec![1, 0, 1]]);
        assert!(deps.has_repeated_targets(3));
        let d = deps.dedup_rows(3);
        assert_eq!(d.row(1), &[0]);
        assert_eq!(d.row(2), &[1, 0]);
        assert!(!d.has_repeated_targets(3));
    }

    #[test]
    fn long_rows_dedup_in_linear_time() {
        // One row naming 200k targets twice each: quadratic scans would take minutes.
        let n = 200_000u32;
        let row: Vec<u32> = (0..n).chain(0..n).collect();
        let deps = Csr::from_rows([row]);
        assert!(deps.has_repeated_targets(n as usize));
        assert_eq!(deps.dedup_rows(n as usize).row_len(0), n as usize);
    }

    #[test]
    fn finds_a_cycle() {
        // 0 <- 1 <- 2 <- 1 (1 and 2 form a cycle), 3 depends on 2.
        let deps = Csr::from_rows([vec![], vec![0, 2], vec![1], vec![2]]);
        let cycle = deps.find_cycle(&deps.transpose(4)).unwrap();
        let mut sorted = cycle.clone();
        sorted.sort();
        assert_eq!(sorted, [1, 2]);
        let acyclic = Csr::from_rows([vec![], vec![0], vec![0, 1]]);
        assert_eq!(acyclic.find_cycle(&acyclic.transpose(3)), None);
    }
}
