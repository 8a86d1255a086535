//! Reading and writing arrays: `.npy` files and directories of blocks.
//!
//! - [`Array::to_npy`] creates the file at its full size with a NumPy (version 1.0) header,
//!   then every block task writes its block straight into place with positioned writes: for
//!   each run of elements that is contiguous in the C-ordered file (a block that spans the
//!   trailing axes is one run). Nothing but the block being written is in memory, so arrays
//!   bigger than RAM can be stored.
//! - [`from_npy`] reads only the header up front. Every block task memory-maps the byte range
//!   its block covers (memmap2), copies its runs out and unmaps, so nothing stays mapped or
//!   resident between tasks. The element type must match the file's `descr`, otherwise the
//!   error names both; Fortran-ordered files are refused.
//! - [`Array::to_dir`] / [`from_dir`] store every block as its own `.npy` file (`i_j.npy`) plus
//!   `meta.json` with the shape, chunks and dtype, so the same chunks come back.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ndarray::{ArrayD, IxDyn};

use super::{
    block_value, fmt_shape, fresh, grid_indices, offsets, task, Array, Chunks, Elem, NodeRef,
};
use crate::error::{Error, Result};
use crate::graph::{Graph, Key, Value};
use crate::sched::{ComputeOptions, Runtime};

/// NumPy's `descr` for an element type.
pub fn descr<T: Elem>() -> &'static str {
    match T::DTYPE {
        "float64" => "<f8",
        "float32" => "<f4",
        "int64" => "<i8",
        "int32" => "<i4",
        "uint8" => "|u1",
        _ => "|b1",
    }
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::io(format!("{what} {}", path.display()), e)
}

/// Malformed content of `path` (a `.npy` header, `meta.json`); no line number applies.
fn bad_file(path: &Path, message: impl Into<String>) -> Error {
    Error::parse(path.display().to_string(), 0, message)
}

/// The bytes of a version 1.0 `.npy` header for `shape`.
fn header_bytes<T: Elem>(shape: &[usize]) -> Vec<u8> {
    let shape_txt = match shape {
        [] => "()".to_string(),
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape_txt}, }}",
        descr::<T>()
    );
    let unpadded = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    dict.push('\n');
    let mut out = Vec::with_capacity(10 + dict.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// A parsed `.npy` header.
#[derive(Clone, Debug)]
pub struct NpyHeader {
    /// The element type code, e.g. `<f8`.
    pub descr: String,
    /// Whether the data is in Fortran order.
    pub fortran_order: bool,
    /// The array's shape.
    pub shape: Vec<usize>,
    /// Byte offset of the data.
    pub data_offset: usize,
}

/// Reads and parses the header of a `.npy` file.
///
/// # Errors
/// When the file cannot be read or is not a `.npy` file.
pub fn read_header(path: &Path) -> Result<NpyHeader> {
    let f = File::open(path).map_err(|e| io_err("cannot open", path, e))?;
    let mut pre = [0u8; 12];
    f.read_exact_at(&mut pre[..10], 0)
        .map_err(|e| io_err("cannot read the header of", path, e))?;
    if &pre[..6] != b"\x93NUMPY" {
        return Err(bad_file(path, "not a .npy file (no \\x93NUMPY magic)"));
    }
    let (len, start) = if pre[6] == 1 {
        (u16::from_le_bytes([pre[8], pre[9]]) as usize, 10)
    } else {
        f.read_exact_at(&mut pre[10..12], 10)
            .map_err(|e| io_err("cannot read the header of", path, e))?;
        (
            u32::from_le_bytes([pre[8], pre[9], pre[10], pre[11]]) as usize,
            12,
        )
    };
    let mut dict = vec![0u8; len];
    f.read_exact_at(&mut dict, start as u64)
        .map_err(|e| io_err("cannot read the header of", path, e))?;
    let text = String::from_utf8_lossy(&dict).to_string();
    let bad = || bad_file(path, format!("malformed .npy header {text:?}"));
    let field = |name: &str| -> Option<usize> {
        text.find(&format!("'{name}'"))
            .map(|i| i + name.len() + 2)
            .and_then(|i| text[i..].find(':').map(|j| i + j + 1))
    };
    let d = field("descr").ok_or_else(bad)?;
    let q0 = text[d..].find('\'').ok_or_else(bad)? + d + 1;
    let q1 = text[q0..].find('\'').ok_or_else(bad)? + q0;
    let descr = text[q0..q1].to_string();
    let fo = field("fortran_order").ok_or_else(bad)?;
    let fortran_order = text[fo..].trim_start().starts_with("True");
    let sh = field("shape").ok_or_else(bad)?;
    let p0 = text[sh..].find('(').ok_or_else(bad)? + sh + 1;
    let p1 = text[p0..].find(')').ok_or_else(bad)? + p0;
    let shape = text[p0..p1]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| bad()))
        .collect::<Result<Vec<_>>>()?;
    Ok(NpyHeader {
        descr,
        fortran_order,
        shape,
        data_offset: start + len,
    })
}

/// The runs of a block in a C-ordered file: (element offset in the file, element offset in
/// the block, length).
fn runs(shape: &[usize], start: &[usize], bshape: &[usize]) -> Vec<(usize, usize, usize)> {
    let nd = shape.len();
    if nd == 0 {
        return vec![(0, 0, 1)];
    }
    if bshape.contains(&0) {
        return Vec::new();
    }
    // Smallest k such that the block covers every axis after k.
    let mut k = nd - 1;
    while k > 0 && bshape[k] == shape[k] {
        k -= 1;
    }
    let run: usize = bshape[k..].iter().product();
    let gstr = super::grid_strides(shape);
    let outer: Vec<usize> = bshape[..k].to_vec();
    let mut out = Vec::new();
    for (n, idx) in grid_indices(&outer).iter().enumerate() {
        let mut off = start[k] * gstr[k];
        for a in 0..k {
            off += (start[a] + idx[a]) * gstr[a];
        }
        out.push((off, n * run, run));
    }
    out
}

fn to_bytes<T: Elem>(x: &[T]) -> Vec<u8> {
    let mut v = Vec::with_capacity(x.len() * T::WIDTH);
    for &e in x {
        e.put(&mut v);
    }
    v
}

fn from_bytes<T: Elem>(b: &[u8], out: &mut Vec<T>) -> Result<()> {
    T::get_all(b, out)
}

impl<T: Elem> Array<T> {
    /// Writes the array to a `.npy` file, block by block (see the [module docs](self)).
    pub fn to_npy(&self, rt: &Runtime, path: impl AsRef<Path>) -> Result<()> {
        self.to_npy_with(rt, path, &ComputeOptions::default())
    }

    /// [`to_npy`](Self::to_npy) with compute options (progress bar, cancellation).
    pub fn to_npy_with(
        &self,
        rt: &Runtime,
        path: impl AsRef<Path>,
        options: &ComputeOptions,
    ) -> Result<()> {
        if let Some(e) = &self.err {
            return Err(super::copy_err(e));
        }
        let path = path.as_ref().to_path_buf();
        let header = header_bytes::<T>(&self.shape);
        let hlen = header.len();
        {
            let mut f = File::create(&path).map_err(|e| io_err("cannot create", &path, e))?;
            f.write_all(&header)
                .map_err(|e| io_err("cannot write", &path, e))?;
            f.set_len((hlen + self.nbytes()) as u64)
                .map_err(|e| io_err("cannot size", &path, e))?;
        }
        let name = fresh("to_npy");
        let nb = self.numblocks();
        let offs: Vec<Vec<usize>> = self.chunks.iter().map(|c| offsets(c)).collect();
        let path = Arc::new(path);
        let nodes: Vec<NodeRef> = grid_indices(&nb)
            .iter()
            .map(|idx| {
                let start: Vec<usize> = idx.iter().enumerate().map(|(a, &i)| offs[a][i]).collect();
                let shape = self.shape.clone();
                let path = Arc::clone(&path);
                task(&name, idx, vec![Arc::clone(self.node(idx))], move |inp| {
                    let b = super::borrow_block::<T>(&inp[0])?.as_standard_layout();

                    let data = b.as_slice().unwrap_or(&[]);
                    let f = std::fs::OpenOptions::new()
                        .write(true)
                        .open(&*path)
                        .map_err(|e| io_err("cannot open", &path, e))?;
                    // Encoded in pieces through one small buffer (no second copy of the block).
                    const PIECE: usize = 1 << 16;
                    let mut bytes = Vec::with_capacity(PIECE * T::WIDTH);
                    for (foff, boff, len) in runs(&shape, &start, b.shape()) {
                        let mut done = 0;
                        while done < len {
                            let n = PIECE.min(len - done);
                            bytes.clear();
                            for &e in &data[boff + done..boff + done + n] {
                                e.put(&mut bytes);
                            }
                            f.write_all_at(&bytes, (hlen + (foff + done) * T::WIDTH) as u64)
                                .map_err(|e| io_err("cannot write", &path, e))?;
                            done += n;
                        }
                    }
                    Ok(Value::unit())
                })
            })
            .collect();
        let mut graph = Graph::new();
        super::add_nodes(&nodes, &mut graph)?;
        let keys: Vec<Key> = nodes.iter().map(|n| n.key.clone()).collect();
        rt.compute_graph_with(graph, &keys, options)?;
        Ok(())
    }

    /// Writes every block to `dir/i_j.npy` plus `dir/meta.json` (shape, chunks, dtype).
    pub fn to_dir(&self, rt: &Runtime, dir: impl AsRef<Path>) -> Result<()> {
        if let Some(e) = &self.err {
            return Err(super::copy_err(e));
        }
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| io_err("cannot create", &dir, e))?;
        let meta = serde_json::json!({
            "shape": self.shape,
            "chunks": self.chunks,
            "dtype": T::DTYPE,
        });
        let mpath = dir.join("meta.json");
        std::fs::write(&mpath, meta.to_string()).map_err(|e| io_err("cannot write", &mpath, e))?;
        let name = fresh("to_dir");
        let nb = self.numblocks();
        let dir = Arc::new(dir);
        let nodes: Vec<NodeRef> = grid_indices(&nb)
            .iter()
            .map(|idx| {
                let path = dir.join(block_file(idx));
                task(&name, idx, vec![Arc::clone(self.node(idx))], move |inp| {
                    let b = super::borrow_block::<T>(&inp[0])?.as_standard_layout();

                    let mut bytes = header_bytes::<T>(b.shape());
                    bytes.extend(to_bytes(b.as_slice().unwrap_or(&[])));
                    std::fs::write(&path, bytes).map_err(|e| io_err("cannot write", &path, e))?;
                    Ok(Value::unit())
                })
            })
            .collect();
        let mut graph = Graph::new();
        super::add_nodes(&nodes, &mut graph)?;
        let keys: Vec<Key> = nodes.iter().map(|n| n.key.clone()).collect();
        rt.compute_graph(graph, &keys)?;
        Ok(())
    }
}

fn block_file(idx: &[usize]) -> String {
    let parts: Vec<String> = idx.iter().map(usize::to_string).collect();
    if parts.is_empty() {
        "block.npy".into()
    } else {
        format!("{}.npy", parts.join("_"))
    }
}

fn check_descr<T: Elem>(h: &NpyHeader, path: &Path) -> Result<()> {
    if h.descr != descr::<T>() {
        return Err(bad_file(
            path,
            format!(
                "holds elements of type {:?}, but the array was asked for {} ({:?})",
                h.descr,
                T::DTYPE,
                descr::<T>()
            ),
        ));
    }
    if h.fortran_order {
        return Err(bad_file(
            path,
            "in Fortran order, which from_npy does not read",
        ));
    }
    Ok(())
}

/// Reads a `.npy` file lazily in blocks (see the [module docs](self)). Only the header is
/// read now.
///
/// # Errors
/// When the header cannot be read, the element type differs, or the chunks do not fit.
pub fn from_npy<T: Elem>(path: impl AsRef<Path>, chunks: impl Into<Chunks>) -> Result<Array<T>> {
    let path: PathBuf = path.as_ref().to_path_buf();
    let h = read_header(&path)?;
    check_descr::<T>(&h, &path)?;
    let len = std::fs::metadata(&path)
        .map_err(|e| io_err("cannot stat", &path, e))?
        .len() as usize;
    let need = h.data_offset + h.shape.iter().product::<usize>() * T::WIDTH;
    if len < need {
        return Err(bad_file(
            &path,
            format!(
                "{len} bytes, but a header of shape {} needs {need}",
                fmt_shape(&h.shape)
            ),
        ));
    }
    let shape = h.shape.clone();
    let chunks = chunks.into().normalize(&shape, T::WIDTH)?;
    let name = fresh("from_npy");
    let nb: Vec<usize> = chunks.iter().map(Vec::len).collect();
    let offs: Vec<Vec<usize>> = chunks.iter().map(|c| offsets(c)).collect();
    let path = Arc::new(path);
    let data_offset = h.data_offset;
    let blocks = grid_indices(&nb)
        .iter()
        .map(|idx| {
            let start: Vec<usize> = idx.iter().enumerate().map(|(a, &i)| offs[a][i]).collect();
            let bshape: Vec<usize> = idx.iter().zip(&chunks).map(|(&i, c)| c[i]).collect();
            let shape = shape.clone();
            let path = Arc::clone(&path);
            task(&name, idx, Vec::new(), move |_| {
                let rs = runs(&shape, &start, &bshape);
                let n: usize = bshape.iter().product();
                let mut data: Vec<T> = Vec::with_capacity(n);
                if let (Some(first), Some(last)) = (rs.first(), rs.last()) {
                    let lo = data_offset + first.0 * T::WIDTH;
                    let hi = data_offset + (last.0 + last.2) * T::WIDTH;
                    let f = File::open(&*path).map_err(|e| io_err("cannot open", &path, e))?;
                    // SAFETY: the mapping is read-only and private to this task; the file is
                    // not expected to be truncated while the computation reads it (as for any
                    // memory-mapped reader). It is unmapped before the task returns.
                    let map = unsafe {
                        memmap2::MmapOptions::new()
                            .offset(lo as u64)
                            .len(hi - lo)
                            .map(&f)
                    }
                    .map_err(|e| io_err("cannot map", &path, e))?;
                    for (foff, _, len) in &rs {
                        let a = data_offset + foff * T::WIDTH - lo;
                        from_bytes(&map[a..a + len * T::WIDTH], &mut data)?;
                    }
                }
                let b = ArrayD::from_shape_vec(IxDyn(&bshape), data)
                    .map_err(|e| Error::internal(format!("from_npy block: {e}")))?;
                Ok(block_value(b))
            })
        })
        .collect();
    Ok(Array::from_parts(shape, chunks, blocks))
}

/// Reads an array written by [`Array::to_dir`], with its chunks.
///
/// # Errors
/// When `meta.json` is missing or malformed or the element type differs.
pub fn from_dir<T: Elem>(dir: impl AsRef<Path>) -> Result<Array<T>> {
    let dir = dir.as_ref().to_path_buf();
    let mpath = dir.join("meta.json");
    let text = std::fs::read_to_string(&mpath).map_err(|e| io_err("cannot read", &mpath, e))?;
    let meta: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::parse(mpath.display().to_string(), e.line() as u64, e.to_string()))?;
    let dtype = meta["dtype"].as_str().unwrap_or("");
    if dtype != T::DTYPE {
        return Err(bad_file(
            &mpath,
            format!("{dtype} blocks, but the array was asked for {}", T::DTYPE),
        ));
    }
    let shape: Vec<usize> = serde_json::from_value(meta["shape"].clone())
        .map_err(|e| bad_file(&mpath, format!("bad shape: {e}")))?;
    let chunks: Vec<Vec<usize>> = serde_json::from_value(meta["chunks"].clone())
        .map_err(|e| bad_file(&mpath, format!("bad chunks: {e}")))?;
    let chunks = Chunks::Explicit(chunks).normalize(&shape, T::WIDTH)?;
    let name = fresh("from_dir");
    let nb: Vec<usize> = chunks.iter().map(Vec::len).collect();
    let blocks = grid_indices(&nb)
        .iter()
        .map(|idx| {
            let path = dir.join(block_file(idx));
            let bshape: Vec<usize> = idx.iter().zip(&chunks).map(|(&i, c)| c[i]).collect();
            task(&name, idx, Vec::new(), move |_| {
                let h = read_header(&path)?;
                check_descr::<T>(&h, &path)?;
                if h.shape != bshape {
                    return Err(bad_file(
                        &path,
                        format!(
                            "block of shape {}, expected {}",
                            fmt_shape(&h.shape),
                            fmt_shape(&bshape)
                        ),
                    ));
                }
                let bytes = std::fs::read(&path).map_err(|e| io_err("cannot read", &path, e))?;
                let mut data: Vec<T> = Vec::with_capacity(bshape.iter().product());
                from_bytes(&bytes[h.data_offset.min(bytes.len())..], &mut data)?;
                let b = ArrayD::from_shape_vec(IxDyn(&bshape), data)
                    .map_err(|e| bad_file(&path, e.to_string()))?;
                Ok(block_value(b))
            })
        })
        .collect();
    Ok(Array::from_parts(shape, chunks, blocks))
}
