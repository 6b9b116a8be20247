//! `KeeperException`: a result code and, when known, the path it concerns.

use std::fmt;

use crate::proto::Code;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeeperError {
    pub code: Code,
    pub path: Option<String>,
}

impl KeeperError {
    pub fn new(code: Code) -> Self {
        KeeperError { code, path: None }
    }

    pub fn with_path(code: Code, path: &str) -> Self {
        KeeperError { code, path: Some(path.to_owned()) }
    }

    /// From a raw reply error code (unknown codes become SystemError).
    pub fn from_raw(err: i32, path: Option<&str>) -> Self {
        KeeperError { code: Code::from_i32(err).unwrap_or(Code::SystemError), path: path.map(str::to_owned) }
    }
}

/// `KeeperException.getMessage`: `KeeperErrorCode = NoNode for /a`.
impl fmt::Display for KeeperError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            // `KeeperException.getMessage`: an empty path is left out like a null one.
            Some(p) if !p.is_empty() => write!(f, "KeeperErrorCode = {} for {p}", self.code.message()),
            _ => write!(f, "KeeperErrorCode = {}", self.code.message()),
        }
    }
}

impl std::error::Error for KeeperError {}

pub type Result<T> = std::result::Result<T, KeeperError>;
