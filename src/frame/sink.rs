//! Sinks: write one file per partition, in parallel, without collecting the frame.
//!
//! `to_parquet(dir)` / `to_csv(dir)` make one task per partition that computes the partition
//! (fused with its source and pending ops) and writes `dir/part-00000.parquet`, … ; the tasks'
//! results are row counts, summed by one final task, so no partition outlives its write.
//! (`compute` and `persist` are on [`Frame`](super::Frame) itself.)

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::*;

use super::task::{next_op, pl, take, task};
use super::{Frame, Lazy};
use crate::error::{Error, Result};
use crate::graph::Value;

#[derive(Clone, Copy)]
enum Format {
    Parquet,
    Csv,
}

impl Frame {
    /// Writes each partition to `dir/part-NNNNN.parquet` (creating `dir`); computes to the
    /// number of rows written.
    pub fn to_parquet(&self, dir: impl AsRef<Path>) -> Result<Lazy<u64>> {
        self.write(dir.as_ref(), Format::Parquet)
    }

    /// Writes each partition to `dir/part-NNNNN.csv` with a header (creating `dir`); computes
    /// to the number of rows written.
    pub fn to_csv(&self, dir: impl AsRef<Path>) -> Result<Lazy<u64>> {
        self.write(dir.as_ref(), Format::Csv)
    }

    fn write(&self, dir: &Path, format: Format) -> Result<Lazy<u64>> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let dir: Arc<PathBuf> = Arc::new(dir.to_path_buf());
        let writes = self.consume(
            "write",
            None,
            Arc::new(move |mut df, i| {
                let ext = match format {
                    Format::Parquet => "parquet",
                    Format::Csv => "csv",
                };
                let path = dir.join(format!("part-{i:05}.{ext}"));
                let file = File::create(&path)
                    .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
                let mut w = BufWriter::new(file);
                let what = format!("writing {}", path.display());
                match format {
                    Format::Parquet => {
                        ParquetWriter::new(&mut w)
                            .set_parallel(false)
                            .finish(&mut df)
                            .map_err(pl(what))?;
                    }
                    Format::Csv => {
                        CsvWriter::new(&mut w)
                            .include_header(true)
                            .finish(&mut df)
                            .map_err(pl(what))?;
                    }
                }
                Ok(Value::new(df.height() as u64))
            }),
        );
        Ok(Lazy::new(task(
            "write-total",
            &[next_op()],
            writes,
            |ins| {
                let mut n = 0u64;
                for v in ins.iter_mut() {
                    n += take::<u64>(v)?;
                }
                Ok(Value::new(n))
            },
        )))
    }
}
