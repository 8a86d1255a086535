//! `read_parquet`: one partition per row group, with column projection and a predicate
//! applied by the reading task.
//!
//! At graph-build time each file's footer is read to learn its schema (all files must agree)
//! and its row groups' row counts. A partition task opens the file and reads only its row
//! group's row range (`with_slice`, which skips the other row groups) and only the projected
//! columns: the ones given in [`ParquetOptions::columns`] narrowed further to those the query
//! reads. [`ParquetOptions::predicate`] filters rows inside the same task, right after they are
//! decoded, so unmatched rows never reach the store; row groups are not skipped by their
//! statistics.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::*;

use super::source_csv::expand_glob;
use super::task::pl;
use super::{Frame, Part, Source};
use crate::error::{Error, Result};

/// Options of [`read_parquet`].
#[derive(Clone, Debug, Default)]
pub struct ParquetOptions {
    /// Columns to read (default all).
    pub columns: Option<Vec<String>>,
    /// Rows to keep, applied as each row group is read.
    pub predicate: Option<Expr>,
}

impl ParquetOptions {
    /// Reads only these columns.
    pub fn columns<S: AsRef<str>>(mut self, cols: &[S]) -> Self {
        self.columns = Some(cols.iter().map(|c| c.as_ref().to_string()).collect());
        self
    }
    /// Keeps only rows where `predicate` holds.
    pub fn predicate(mut self, predicate: Expr) -> Self {
        self.predicate = Some(predicate);
        self
    }
}

fn open(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| Error::io(format!("read_parquet: opening {}", path.display()), e))
}

/// Reads the Parquet file(s) at `pattern` (a path or a glob), one partition per row group.
pub fn read_parquet(pattern: &str, options: ParquetOptions) -> Result<Frame> {
    let paths = expand_glob(pattern, "read_parquet")?;
    let mut parts: Vec<Part> = Vec::new();
    let mut schema: Option<SchemaRef> = None;
    let predicate = options.predicate.clone().map(Arc::new);
    for path in &paths {
        let mut reader = ParquetReader::new(open(path)?);
        let arrow = reader
            .schema()
            .map_err(pl(format!("reading the footer of {}", path.display())))?;
        let file_schema: Schema = Schema::from_arrow_schema(arrow.as_ref());
        match &schema {
            None => schema = Some(Arc::new(file_schema.clone())),
            Some(s) if s.as_ref() != &file_schema => {
                return Err(Error::input(format!(
                    "read_parquet: {} has schema {:?}, the first file {:?}",
                    path.display(),
                    file_schema,
                    s
                )))
            }
            _ => {}
        }
        let md = reader
            .get_metadata()
            .map_err(pl(format!("reading the footer of {}", path.display())))?
            .clone();
        let mut offset = 0usize;
        for rg in &md.row_groups {
            let rows = rg.num_rows();
            parts.push(Part::Source(Arc::new(RowGroup {
                path: path.clone(),
                offset,
                rows,
                columns: options.columns.clone(),
                predicate: predicate.clone(),
            })));
            offset += rows;
        }
    }
    let full =
        schema.ok_or_else(|| Error::input(format!("read_parquet: no file matches `{pattern}`")))?;
    if let Some(p) = &options.predicate {
        let p = p.clone();
        super::ops::check_lazy(&full, "read_parquet predicate", move |lf| lf.filter(p))?;
    }
    // The frame's schema: the chosen columns.
    let schema: SchemaRef = match &options.columns {
        None => full,
        Some(cols) => {
            let mut s = Schema::default();
            for c in cols {
                let dt = full.get(c.as_str()).ok_or_else(|| {
                    Error::config(format!("read_parquet: no column `{c}` in {pattern}"))
                })?;
                s.insert(c.as_str().into(), dt.clone());
            }
            Arc::new(s)
        }
    };
    Ok(Frame::from_parts(parts, schema))
}

struct RowGroup {
    path: PathBuf,
    offset: usize,
    rows: usize,
    columns: Option<Vec<String>>,
    predicate: Option<Arc<Expr>>,
}

impl Source for RowGroup {
    fn read(&self, columns: Option<&[PlSmallStr]>) -> Result<DataFrame> {
        // The query's projection, plus what the predicate reads.
        let mut cols: Option<Vec<String>> = match columns {
            Some(c) => Some(c.iter().map(|c| c.to_string()).collect()),
            None => self.columns.clone(),
        };
        let mut extra = Vec::new();
        if let (Some(c), Some(p)) = (&mut cols, &self.predicate) {
            if let Some(pc) = super::ops::expr_columns(p) {
                for n in pc {
                    if !c.iter().any(|x| x == n.as_str()) {
                        c.push(n.to_string());
                        extra.push(n.to_string());
                    }
                }
            }
        }
        let df = ParquetReader::new(open(&self.path)?)
            .with_columns(cols)
            .with_slice(Some((self.offset, self.rows)))
            .read_parallel(ParallelStrategy::None)
            .finish()
            .map_err(pl(format!(
                "reading rows {}..{} of {}",
                self.offset,
                self.offset + self.rows,
                self.path.display()
            )))?;
        let Some(p) = &self.predicate else {
            return Ok(df);
        };
        let mut lf = df.lazy().filter((**p).clone());
        if !extra.is_empty() {
            lf = lf.drop(Selector::ByName {
                names: extra.iter().map(|e| PlSmallStr::from(e.as_str())).collect(),
                strict: true,
            });
        }
        lf.collect().map_err(pl(format!(
            "filtering rows {}..{} of {}",
            self.offset,
            self.offset + self.rows,
            self.path.display()
        )))
    }
}
