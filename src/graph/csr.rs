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

    /// A copy with duplicate targets removed from each row (first occurrence kept).
    pub fn dedup_rows(&self) -> Csr {
        let mut out = Csr::with_capacity(self.len(), self.targets.len());
        let mut row_buf: Vec<u32> = Vec::new();
        for i in 0..self.len() as u32 {
            let row = self.row(i);
            if row.len() <= 1 {
                out.push_row(row.iter().copied());
                continue;
            }
            row_buf.clear();
            for &t in row {
                if !row_buf.contains(&t) {
                    row_buf.push(t);
                }
            }
            out.push_row(row_buf.iter().copied());
        }
        out
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
        let d = deps.dedup_rows();
        assert_eq!(d.row(1), &[0]);
        assert_eq!(d.row(2), &[1, 0]);
    }
}
