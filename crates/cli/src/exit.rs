//! Exit codes, and errors that carry one. Documented in docs/cli.md; scripts rely on them.

use std::fmt;

/// Why the process stops, as an exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 1: a verification ran and a check failed.
    VerificationFailed = 1,
    /// 2: bad command-line usage (clap's own code).
    Usage = 2,
    /// 3: an input (model, tensor, receipt, JSON) is malformed or doesn't fit the model.
    InvalidInput = 3,
    /// 4: the model or the requested profile can't run here (unsupported operator or type).
    Unsupported = 4,
    /// 5: a key or keystore is missing, unreadable, or its password is wrong.
    Key = 5,
    /// 6: a file could not be read or written.
    Io = 6,
    /// 70: a bug in vouch (EX_SOFTWARE).
    Internal = 70,
}

/// An error with the exit code it should produce.
pub struct CliError {
    /// The exit code.
    pub exit: Exit,
    /// What went wrong, with context.
    pub error: anyhow::Error,
}

impl fmt::Debug for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {:#}", self.exit, self.error)
    }
}

impl<E: Into<anyhow::Error>> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError {
            exit: Exit::Internal,
            error: e.into(),
        }
    }
}

/// Attaches an exit code (and context) to a result.
pub trait WithExit<T> {
    /// Fails with `exit`.
    fn exit(self, exit: Exit) -> Result<T, CliError>;
    /// Fails with `exit` and a context line.
    fn exit_ctx(self, exit: Exit, ctx: impl FnOnce() -> String) -> Result<T, CliError>;
}

impl<T, E: Into<anyhow::Error>> WithExit<T> for Result<T, E> {
    fn exit(self, exit: Exit) -> Result<T, CliError> {
        self.map_err(|e| CliError {
            exit,
            error: e.into(),
        })
    }
    fn exit_ctx(self, exit: Exit, ctx: impl FnOnce() -> String) -> Result<T, CliError> {
        self.map_err(|e| CliError {
            exit,
            error: e.into().context(ctx()),
        })
    }
}

/// Builds an error with an exit code.
pub fn fail(exit: Exit, msg: impl fmt::Display) -> CliError {
    CliError {
        exit,
        error: anyhow::anyhow!("{msg}"),
    }
}

/// The exit code an engine error deserves.
pub fn engine_exit(e: &vouch_engine::EngineError) -> Exit {
    use vouch_engine::EngineError as E;
    match e {
        E::UnsupportedOps(_)
        | E::UnsupportedType { .. }
        | E::ProfileUnavailable { .. }
        | E::ExternalData => Exit::Unsupported,
        E::Internal(_) | E::ProfileConflict { .. } => Exit::Internal,
        _ => Exit::InvalidInput,
    }
}

/// Converts an engine result, classifying its error.
pub fn engine<T>(
    r: Result<T, vouch_engine::EngineError>,
    ctx: impl FnOnce() -> String,
) -> Result<T, CliError> {
    r.map_err(|e| CliError {
        exit: engine_exit(&e),
        error: anyhow::Error::new(e).context(ctx()),
    })
}
