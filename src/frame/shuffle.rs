//! Hash and range shuffles: every input partition is split into `n` pieces (by a fixed-seed
//! hash of the key columns, or by sorted boundaries), and output partition `j` concatenates
//! piece `j` of every input, in input order.
//!
//! Each piece is its own task result — a spillable `DataFrame` in the store — so a shuffle of
//! data bigger than memory spills pieces to disk like any other value instead of holding all
//! of them: the split task yields a `Vec` of pieces, consumed immediately by `n` tiny tasks
//! that each keep one piece, and the output task of partition `j` reads only its pieces.

use std::sync::Arc;

use polars::polars_utils::aliases::{PlSeedableRandomStateQuality, SeedableFromU64SeedExt};
use polars::prelude::*;

use super::task::{df_task, next_op, pl, take_df, task, Node};
use super::{concat, Frame};
use crate::error::Result;
use crate::graph::Value;
use crate::spill::codec::Spill;
use crate::spill::SizeOf;

/// Pieces of one partition, before they are unpacked into separate store values.
#[derive(Clone)]
pub(crate) struct Pieces(pub(crate) Vec<DataFrame>);

impl SizeOf for Pieces {
    fn size_of(&self) -> usize {
        self.0.iter().map(|d| d.size_of()).sum()
    }
}

/// Pieces spill like frames: a count, then each piece's length and Arrow IPC bytes.
impl Spill for Pieces {
    fn tag() -> &'static str {
        "brisk-frame-pieces"
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(&(self.0.len() as u64).to_le_bytes());
        for d in &self.0 {
            let at = out.len();
            out.extend_from_slice(&0u64.to_le_bytes());
            d.encode(out)?;
            let n = (out.len() - at - 8) as u64;
            out[at..at + 8].copy_from_slice(&n.to_le_bytes());
        }
        Ok(())
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        let bad = || crate::Error::internal("shuffle pieces: truncated spill data");
        let word = |at: usize| -> Result<u64> {
            let b = bytes.get(at..at + 8).ok_or_else(bad)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Ok(u64::from_le_bytes(a))
        };
        let n = word(0)? as usize;
        let mut at = 8;
        let mut out = Vec::with_capacity(n.min(1 << 20));
        for _ in 0..n {
            let len = word(at)? as usize;
            at += 8;
            let body = bytes.get(at..at + len).ok_or_else(bad)?;
            out.push(DataFrame::decode(body)?);
            at += len;
        }
        Ok(Pieces(out))
    }
}

/// Fixed-seed row hashes of `keys` (the same value hashes the same in every partition).
pub(crate) fn key_hashes(df: &DataFrame, keys: &[PlSmallStr]) -> PolarsResult<UInt64Chunked> {
    let mut k = df.select(keys.iter().cloned())?;
    k.hash_rows(Some(PlSeedableRandomStateQuality::seed_from_u64(
        0x5eed_b415,
    )))
}

/// Splits rows by `assign[i]` in `0..n`, keeping row order within each piece.
pub(crate) fn split_by(df: &DataFrame, assign: &[u32], n: usize) -> PolarsResult<Vec<DataFrame>> {
    let mut idx: Vec<Vec<IdxSize>> = vec![Vec::new(); n];
    for (row, &a) in assign.iter().enumerate() {
        idx[a as usize].push(row as IdxSize);
    }
    idx.into_iter()
        .map(|rows| {
            let ca = IdxCa::from_vec("".into(), rows);
            own_strings(df.take(&ca)?)
        })
        .collect()
}

/// Gives every string and binary column of `df` buffers of its own.
///
/// A gather keeps the source's string buffers and only picks views into them, so each of the
/// `n` pieces of a split would keep the **whole** input partition's strings alive until the
/// last piece is consumed or spilled: a shuffle would pin every input's strings at once, far
/// beyond what the store counts for the pieces. Copying each piece's own strings out costs
/// one pass over them and lets the input go as soon as it is split.
pub(crate) fn own_strings(df: DataFrame) -> PolarsResult<DataFrame> {
    let shares = |c: &Column| matches!(c.dtype(), DataType::String | DataType::Binary);
    if !df.columns().iter().any(shares) {
        return Ok(df);
    }
    let height = df.height();
    let columns = df
        .into_columns()
        .into_iter()
        .map(|c| {
            if let Ok(ca) = c.str() {
                StringChunked::from_chunk_iter(
                    c.name().clone(),
                    ca.downcast_iter().map(|a| a.deshare()),
                )
                .into_column()
            } else if let Ok(ca) = c.binary() {
                BinaryChunked::from_chunk_iter(
                    c.name().clone(),
                    ca.downcast_iter().map(|a| a.deshare()),
                )
                .into_column()
            } else {
                c
            }
        })
        .collect();
    DataFrame::new(height, columns)
}

/// Splits `df` into `n` pieces by the hash of `keys`.
pub(crate) fn hash_split(
    df: &DataFrame,
    keys: &[PlSmallStr],
    n: usize,
) -> PolarsResult<Vec<DataFrame>> {
    if n == 1 {
        return Ok(vec![df.clone()]);
    }
    let h = key_hashes(df, keys)?;
    let assign: Vec<u32> = h
        .into_no_null_iter()
        .map(|h| (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as u32 % n as u32)
        .collect();
    split_by(df, &assign, n)
}

/// Shuffles `inputs` into `n` outputs: `split(df)` yields the `n` pieces of one input.
/// Returns, per output `j`, the piece nodes of every input in input order.
pub(crate) fn shuffle_pieces(
    inputs: &[Arc<Node>],
    n: usize,
    split: Arc<dyn Fn(DataFrame) -> Result<Vec<DataFrame>> + Send + Sync>,
) -> Vec<Vec<Arc<Node>>> {
    shuffle_pieces_with(inputs, None, n, Arc::new(move |df, _, _| split(df)))
}

/// A split of input `i` that may read one extra graph value (e.g. sort boundaries).
pub(crate) type SplitWith =
    Arc<dyn Fn(DataFrame, usize, Option<&Value>) -> Result<Vec<DataFrame>> + Send + Sync>;

/// Like [`shuffle_pieces`], with `side` (when given) as a further input of every split task:
/// `split(df, i, side_value)`.
pub(crate) fn shuffle_pieces_with(
    inputs: &[Arc<Node>],
    side: Option<Arc<Node>>,
    n: usize,
    split: SplitWith,
) -> Vec<Vec<Arc<Node>>> {
    let id = next_op();
    let mut outs: Vec<Vec<Arc<Node>>> = vec![Vec::with_capacity(inputs.len()); n];
    for (i, input) in inputs.iter().enumerate() {
        let split = Arc::clone(&split);
        let mut deps = vec![input.clone()];
        deps.extend(side.clone());
        let pieces = task("shuffle-split", &[id, i as i64], deps, move |inputs| {
            let df = take_df(&mut inputs[0])?;
            Ok(Value::spillable(Pieces(split(df, i, inputs.get(1))?)))
        });
        for (j, out) in outs.iter_mut().enumerate() {
            out.push(df_task(
                "shuffle-piece",
                &[id, i as i64, j as i64],
                vec![pieces.clone()],
                move |inputs| {
                    let p = inputs[0]
                        .downcast_ref::<Pieces>()
                        .ok_or_else(|| crate::Error::internal("shuffle piece input"))?;
                    Ok(p.0.get(j).cloned().unwrap_or_default())
                },
            ));
        }
    }
    outs
}

/// Concatenates each output's pieces: the shuffled partitions.
pub(crate) fn gather_pieces(outs: Vec<Vec<Arc<Node>>>, schema: &SchemaRef) -> Vec<Arc<Node>> {
    let id = next_op();
    outs.into_iter()
        .enumerate()
        .map(|(j, pieces)| {
            let schema = schema.clone();
            df_task("shuffle-concat", &[id, j as i64], pieces, move |inputs| {
                let dfs = inputs.iter_mut().map(take_df).collect::<Result<Vec<_>>>()?;
                concat(dfs, &schema)
            })
        })
        .collect()
}

impl Frame {
    /// Repartitions by the hash of `keys` into `n` partitions: rows with equal keys end in the
    /// same partition. The pieces live in the store and spill under memory pressure.
    pub fn shuffle<S: AsRef<str>>(&self, keys: &[S], n: usize) -> Result<Frame> {
        let cols: Vec<&str> = keys.iter().map(|k| k.as_ref()).collect();
        self.check_columns(&cols, "shuffle")?;
        let keys: Vec<PlSmallStr> = cols.iter().map(|c| PlSmallStr::from(*c)).collect();
        let n = n.max(1);
        let nodes = self.nodes();
        let outs = shuffle_pieces(
            &nodes,
            n,
            Arc::new(move |df| hash_split(&df, &keys, n).map_err(pl("hash shuffle split"))),
        );
        Ok(Frame::of_nodes(
            gather_pieces(outs, &self.schema),
            self.schema.clone(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spill::SizeOf;

    #[test]
    fn pieces_own_their_strings_and_count_their_views() {
        let n = 10_000;
        let long: Vec<String> = (0..n).map(|i| format!("{i:040}")).collect();
        let df = DataFrame::new(
            n,
            vec![
                Column::new("k".into(), (0..n as i64).collect::<Vec<_>>()),
                Column::new("s".into(), long),
            ],
        )
        .unwrap();
        let whole = df.size_of();
        // 16-byte views and 40 bytes of text per row, plus the keys.
        assert!(whole >= n * (16 + 40 + 8), "{whole}");
        let assign: Vec<u32> = (0..n as u32).map(|i| i % 4).collect();
        let pieces = split_by(&df, &assign, 4).unwrap();
        let sum: usize = pieces.iter().map(|p| p.size_of()).sum();
        // Each piece counts only its own strings: the four add up to about the whole.
        assert!(sum < whole + whole / 10, "pieces {sum} vs whole {whole}");
        for p in &pieces {
            assert_eq!(p.height(), n / 4);
            let buffers: usize = p
                .column("s")
                .unwrap()
                .str()
                .unwrap()
                .downcast_iter()
                .flat_map(|a| a.data_buffers().iter().map(|b| b.len()))
                .sum();
            assert!(
                buffers <= n / 4 * 40 + 1024,
                "piece keeps {buffers} bytes of strings"
            );
        }
        let back = concat(pieces, &df.schema().clone()).unwrap();
        assert_eq!(back.height(), n);
    }
}
