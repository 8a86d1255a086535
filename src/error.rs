//! The one error type of brisk.
//!
//! Every fallible operation in the crate returns [`Result<T>`]. Errors name the thing at fault:
//! the task key and op for task failures, the keys on a cycle, the missing dependency, the file
//! and line of bad input. [`ErrorKind`] is `#[non_exhaustive]` so that new failure modes can be
//! added without breaking callers who match on it.

use std::fmt;
use std::sync::Arc;

/// A boxed error from user code (a task's own error type).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with brisk's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, with the names needed to find it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A task returned an error or panicked (after its retries were used up).
    #[error("{}{message}{}", task_head(.key, .op, *.attempts), consumers_note(.consumers))]
    TaskFailed {
        /// Key of the failing task.
        key: String,
        /// Name of the op the task ran.
        op: String,
        /// The task's own error message, or the panic payload.
        message: String,
        /// Whether the task panicked rather than returning `Err`.
        panicked: bool,
        /// How many times the task was run.
        attempts: u32,
        /// Keys of tasks that would have consumed the result (first few).
        consumers: Vec<String>,
        /// The original error, when the task returned one.
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
    /// The computation was cancelled through its [`CancelToken`](crate::CancelToken).
    #[error("computation cancelled")]
    Cancelled,
    /// The graph has a cycle; the keys on it are listed in order, first key repeated at the end.
    #[error("dependency cycle: {}", .keys.join(" -> "))]
    Cycle {
        /// Keys on the cycle, `a -> b -> c -> a`.
        keys: Vec<String>,
    },
    /// A task depends on a key that is not in the graph.
    #[error("task {key} depends on {missing}, which is not in the graph")]
    MissingDependency {
        /// The task whose dependency is missing.
        key: String,
        /// The missing key.
        missing: String,
    },
    /// Two tasks were added with the same key.
    #[error("key {key} is defined twice in the graph")]
    DuplicateKey {
        /// The duplicated key.
        key: String,
    },
    /// A requested key is not in the graph.
    #[error("requested key {key} is not in the graph")]
    UnknownKey {
        /// The key asked for.
        key: String,
    },
    /// A value had a different type than the code reading it expected.
    #[error("value of {key} has type {found}, expected {expected}")]
    TypeMismatch {
        /// Key of the value.
        key: String,
        /// The type the reader asked for.
        expected: &'static str,
        /// The type stored.
        found: &'static str,
    },
    /// A named op is not registered in this process.
    #[error("op `{name}` is not registered in this process")]
    UnknownOp {
        /// The op name.
        name: String,
    },
    /// Encoding or decoding a value or op parameters failed.
    #[error("cannot encode or decode {what}: {message}")]
    Codec {
        /// What was being encoded or decoded.
        what: String,
        /// The codec's message.
        message: String,
    },
    /// A configuration value is invalid (a builder option, a CLI flag, a size string).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Input data is malformed (a graph file, a data file); the message names file and place.
    #[error("invalid input: {0}")]
    Input(String),
    /// A task needs more resources of a kind than the runtime has in total.
    #[error(
        "task {key} needs {needed} of resource `{resource}`, but the runtime has only {capacity}"
    )]
    ResourceUnavailable {
        /// The task.
        key: String,
        /// The resource name.
        resource: String,
        /// Units the task asks for.
        needed: u32,
        /// Units the runtime was built with.
        capacity: u32,
    },
    /// Memory limit exceeded in a way spilling cannot fix.
    #[error("memory limit: {0}")]
    Memory(String),
    /// A task's inputs plus output do not fit in the memory limit: spilling other values
    /// cannot make room for it.
    #[error(
        "task {key} needs {} ({} of inputs{}), more than the memory limit of {}; \
         raise `memory_limit` or split the work into smaller blocks",
        show_bytes(*bytes), show_bytes(*inputs),
        output.map(|o| format!(" and {} of output", show_bytes(o))).unwrap_or_default(),
        show_bytes(*limit)
    )]
    TaskTooLarge {
        /// The task's key.
        key: String,
        /// Inputs plus output (when known), in bytes.
        bytes: u64,
        /// Bytes of its inputs.
        inputs: u64,
        /// Bytes of its output, when the check ran after the task.
        output: Option<u64>,
        /// The runtime's memory limit.
        limit: u64,
    },
    /// An I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What brisk was doing (`writing spill file /tmp/…`).
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Polars reported an error.
    #[error("{context}: {source}")]
    Polars {
        /// What brisk was doing.
        context: String,
        /// The polars error.
        #[source]
        source: polars::prelude::PolarsError,
    },
    /// A shape, chunking or axis mismatch in an array operation, found while the graph is built.
    #[error("shape error: {0}")]
    Shape(String),
    /// A frame column is missing, has the wrong type, or an expression over it cannot be
    /// computed as asked; found while the graph is built.
    #[error("column `{column}`: {message}")]
    Column {
        /// The column (or expression) at fault.
        column: String,
        /// What is wrong with it, and what to do instead.
        message: String,
    },
    /// Malformed data in an input file, with the file and the 1-based line (`file: message`
    /// when the line is not known).
    #[error("{}: {message}", file_place(.file, *.line))]
    Parse {
        /// The file.
        file: String,
        /// The 1-based line number (0 when the place within the file is not known).
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// A bug in brisk: an invariant did not hold. Please report it.
    #[error("internal error (a bug in brisk, please report it): {0}")]
    Internal(String),
}

/// `task KEY (op `OP`) failed[ after N attempts]: `, or nothing for an error raised outside a
/// task (the scheduler fills in key and op for errors a task returns).
fn task_head(key: &str, op: &str, attempts: u32) -> String {
    if key.is_empty() {
        return String::new();
    }
    let attempts = if attempts > 1 {
        format!(" after {attempts} attempts")
    } else {
        String::new()
    };
    format!("task {key} (op `{op}`) failed{attempts}: ")
}

/// `file:line`, or `file` when the line is not known (0).
fn file_place(file: &str, line: u64) -> String {
    if line == 0 {
        file.to_string()
    } else {
        format!("{file}:{line}")
    }
}

fn consumers_note(consumers: &[String]) -> String {
    if consumers.is_empty() {
        String::new()
    } else {
        format!(" (needed by {})", consumers.join(", "))
    }
}

/// brisk's error: an [`ErrorKind`] plus the context it was raised in.
pub struct Error {
    kind: Box<ErrorKind>,
    context: Vec<String>,
}

impl Error {
    /// An error of the given kind.
    pub fn new(kind: ErrorKind) -> Self {
        Error {
            kind: Box::new(kind),
            context: Vec::new(),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Adds a line of context (outermost last), e.g. `"while computing array sum"`.
    pub fn context(mut self, what: impl Into<String>) -> Self {
        self.context.push(what.into());
        self
    }

    /// True when the computation was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(*self.kind, ErrorKind::Cancelled)
    }

    /// True when a task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(*self.kind, ErrorKind::TaskFailed { panicked: true, .. })
    }

    /// The key of the failing task, for task failures.
    pub fn failed_key(&self) -> Option<&str> {
        match &*self.kind {
            ErrorKind::TaskFailed { key, .. } if !key.is_empty() => Some(key),
            _ => None,
        }
    }

    /// An invalid configuration value (a builder option, a CLI flag, a size string).
    pub fn config(msg: impl Into<String>) -> Self {
        Error::new(ErrorKind::Config(msg.into()))
    }

    /// A shape, chunking or axis mismatch found while an array graph is built.
    pub fn shape(msg: impl Into<String>) -> Self {
        Error::new(ErrorKind::Shape(msg.into()))
    }

    /// A frame column (or an expression over it) that cannot be used as asked.
    pub fn column(column: impl Into<String>, message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Column {
            column: column.into(),
            message: message.into(),
        })
    }

    /// Malformed input at `file:line` (1-based; 0 when the line is not known).
    pub fn parse(file: impl Into<String>, line: u64, message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Parse {
            file: file.into(),
            line,
            message: message.into(),
        })
    }

    /// An I/O error while doing `context` (which should name the path).
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::new(ErrorKind::Io {
            context: context.into(),
            source,
        })
    }

    /// Malformed input that is not a line of a file (a graph file's structure, an argument).
    pub fn input(msg: impl Into<String>) -> Self {
        Error::new(ErrorKind::Input(msg.into()))
    }

    pub(crate) fn internal(msg: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal(msg.into()))
    }

    /// Wraps any user error as the message of a task failure (the scheduler fills in key and op).
    pub fn user(err: impl Into<BoxError>) -> Self {
        let err: BoxError = err.into();
        Error::new(ErrorKind::TaskFailed {
            key: String::new(),
            op: String::new(),
            message: err.to_string(),
            panicked: false,
            attempts: 1,
            consumers: Vec::new(),
            source: Some(Arc::from(err)),
        })
    }

    /// A plain message as a task's error, for ops that fail without an error value of their own.
    pub fn msg(message: impl Into<String>) -> Self {
        Error::user(message.into())
    }

    /// An equivalent copy (errors are not `Clone`: an I/O error is copied as its kind and
    /// message), for errors held in shared places and handed out more than once: a failed
    /// array's, a future's.
    pub(crate) fn duplicate(&self) -> Error {
        let kind = match &*self.kind {
            ErrorKind::TaskFailed {
                key,
                op,
                message,
                panicked,
                attempts,
                consumers,
                source,
            } => ErrorKind::TaskFailed {
                key: key.clone(),
                op: op.clone(),
                message: message.clone(),
                panicked: *panicked,
                attempts: *attempts,
                consumers: consumers.clone(),
                source: source.clone(),
            },
            ErrorKind::Cancelled => ErrorKind::Cancelled,
            ErrorKind::Cycle { keys } => ErrorKind::Cycle { keys: keys.clone() },
            ErrorKind::MissingDependency { key, missing } => ErrorKind::MissingDependency {
                key: key.clone(),
                missing: missing.clone(),
            },
            ErrorKind::DuplicateKey { key } => ErrorKind::DuplicateKey { key: key.clone() },
            ErrorKind::UnknownKey { key } => ErrorKind::UnknownKey { key: key.clone() },
            ErrorKind::TypeMismatch {
                key,
                expected,
                found,
            } => ErrorKind::TypeMismatch {
                key: key.clone(),
                expected,
                found,
            },
            ErrorKind::UnknownOp { name } => ErrorKind::UnknownOp { name: name.clone() },
            ErrorKind::Codec { what, message } => ErrorKind::Codec {
                what: what.clone(),
                message: message.clone(),
            },
            ErrorKind::Config(m) => ErrorKind::Config(m.clone()),
            ErrorKind::Input(m) => ErrorKind::Input(m.clone()),
            ErrorKind::ResourceUnavailable {
                key,
                resource,
                needed,
                capacity,
            } => ErrorKind::ResourceUnavailable {
                key: key.clone(),
                resource: resource.clone(),
                needed: *needed,
                capacity: *capacity,
            },
            ErrorKind::Memory(m) => ErrorKind::Memory(m.clone()),
            ErrorKind::TaskTooLarge {
                key,
                bytes,
                inputs,
                output,
                limit,
            } => ErrorKind::TaskTooLarge {
                key: key.clone(),
                bytes: *bytes,
                inputs: *inputs,
                output: *output,
                limit: *limit,
            },
            ErrorKind::Io { context, source } => ErrorKind::Io {
                context: context.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            ErrorKind::Polars { context, source } => ErrorKind::Polars {
                context: context.clone(),
                source: source.clone(),
            },
            ErrorKind::Shape(m) => ErrorKind::Shape(m.clone()),
            ErrorKind::Column { column, message } => ErrorKind::Column {
                column: column.clone(),
                message: message.clone(),
            },
            ErrorKind::Parse {
                file,
                line,
                message,
            } => ErrorKind::Parse {
                file: file.clone(),
                line: *line,
                message: message.clone(),
            },
            ErrorKind::Internal(m) => ErrorKind::Internal(m.clone()),
        };
        Error {
            kind: Box::new(kind),
            context: self.context.clone(),
        }
    }

    pub(crate) fn into_kind(self) -> ErrorKind {
        *self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        for line in &self.context {
            write!(f, "\n  while {line}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Debug is what `unwrap()` and `main() -> Result` print: keep it readable.
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.kind)
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error::new(kind)
    }
}

impl From<std::io::Error> for Error {
    /// An I/O error with no better context; prefer [`Error::io`], which names the path.
    fn from(source: std::io::Error) -> Self {
        Error::io("I/O", source)
    }
}

impl From<polars::prelude::PolarsError> for Error {
    fn from(source: polars::prelude::PolarsError) -> Self {
        Error::new(ErrorKind::Polars {
            context: "polars".into(),
            source,
        })
    }
}

/// The text of a panic's payload (`panic!` with a literal or a formatted message), prefixed
/// with `panicked`, as task failures report it.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = payload.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".to_string()
    }
}

/// `1234567890` as `"1234567890 bytes (1.15 GiB)"`: exact for matching, readable for people.
pub(crate) fn show_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{bytes} bytes ({value:.2} {})", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycle_message_lists_keys() {
        let e = Error::new(ErrorKind::Cycle {
            keys: vec!["a".into(), "b".into(), "c".into(), "a".into()],
        });
        assert_eq!(e.to_string(), "dependency cycle: a -> b -> c -> a");
    }

    #[test]
    fn task_failure_names_key_op_and_consumers() {
        let e = Error::new(ErrorKind::TaskFailed {
            key: "(\"load\", 3)".into(),
            op: "load".into(),
            message: "file not found".into(),
            panicked: false,
            attempts: 3,
            consumers: vec!["sum".into()],
            source: None,
        })
        .context("computing total");
        assert_eq!(
            e.to_string(),
            "task (\"load\", 3) (op `load`) failed after 3 attempts: file not found (needed by sum)\n  while computing total"
        );
        assert_eq!(e.failed_key(), Some("(\"load\", 3)"));
    }

    #[test]
    fn an_error_outside_a_task_has_no_empty_key_or_op() {
        let e = Error::msg("operands could not be broadcast");
        assert_eq!(e.to_string(), "operands could not be broadcast");
        assert_eq!(e.failed_key(), None);
        let e = Error::shape("operands could not be broadcast: (3,) and (4,)");
        assert!(matches!(e.kind(), ErrorKind::Shape(_)));
        assert_eq!(
            e.to_string(),
            "shape error: operands could not be broadcast: (3,) and (4,)"
        );
        let e = Error::parse("a.csv", 7, "expected 3 fields, found 2");
        assert_eq!(e.to_string(), "a.csv:7: expected 3 fields, found 2");
        let e = Error::parse("x.npy", 0, "not a .npy file");
        assert_eq!(e.to_string(), "x.npy: not a .npy file");
        let io: Error = std::io::Error::from(std::io::ErrorKind::NotFound).into();
        assert!(matches!(io.kind(), ErrorKind::Io { .. }));
    }

    #[test]
    fn a_duplicate_keeps_kind_message_and_context() {
        let e = Error::shape("operands could not be broadcast: (3,) and (4,)").context("adding");
        let d = e.duplicate();
        assert!(matches!(d.kind(), ErrorKind::Shape(_)));
        assert_eq!(d.to_string(), e.to_string());
        let io = Error::io(
            "reading /tmp/x.npy",
            std::io::Error::from(std::io::ErrorKind::NotFound),
        );
        let d = io.duplicate();
        assert!(
            matches!(d.kind(), ErrorKind::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
        );
        assert_eq!(d.to_string(), io.to_string());
    }
}
