//! tessera's configuration: the per-process node file and the published system document.
//!
//! Both are TOML read with `deny_unknown_fields`. Every error an administrator sees names the
//! file, line and column it came from, whether the TOML was malformed or a value was wrong.
#![forbid(unsafe_code)]

mod cidr;
mod duration;
mod names;
mod node;
mod secret;
mod system;

pub use cidr::{Cidr, CidrError};
pub use duration::{Duration, DurationError};
pub use names::{MAX_NAME_BYTES, NameError, check_name, path_segment};
pub use node::{
    HttpSection, Listener, NodeConfig, RadiusSection, StorageSection, TlsFiles, redact_url,
};
pub use secret::Secret;
pub use system::{
    ApiClient, AttrValue, Client, Courier, Directory, IdentitySettings, Method, MethodKind, Policy,
    Radius11, RealmHandling, Replies, SystemConfig, Transport,
};

use std::fmt;
use std::path::{Path, PathBuf};

/// A position in a configuration source, 1-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    /// Turn a byte offset into a 1-based line and column (columns count characters).
    pub fn from_offset(src: &str, offset: usize) -> Position {
        let offset = offset.min(src.len());
        let before = &src[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = src[line_start..offset].chars().count() + 1;
        Position { line, column }
    }
}

/// An error in a configuration document.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{origin}:{}:{}: {message}", .at.line, .at.column)]
    At {
        origin: String,
        at: Position,
        message: String,
    },
    #[error("{origin}: {message}")]
    Whole { origin: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One step of a path into a TOML document, for pointing at the value a check rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

impl From<&str> for PathSeg {
    fn from(k: &str) -> Self {
        PathSeg::Key(k.to_owned())
    }
}
impl From<usize> for PathSeg {
    fn from(i: usize) -> Self {
        PathSeg::Index(i)
    }
}

/// A semantic problem found after parsing, with the path of the offending value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub path: Vec<PathSeg>,
    pub message: String,
}

impl Problem {
    pub fn new(path: Vec<PathSeg>, message: impl Into<String>) -> Self {
        Problem {
            path,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Parse `src` as `T`, turning TOML and type errors into `origin:line:col: message`.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    src: &str,
    origin: &str,
) -> Result<T, ConfigError> {
    toml::from_str(src).map_err(|e| {
        let message = e.message().trim_end().to_owned();
        match e.span() {
            Some(span) => ConfigError::At {
                origin: origin.to_owned(),
                at: Position::from_offset(src, span.start),
                message,
            },
            None => ConfigError::Whole {
                origin: origin.to_owned(),
                message,
            },
        }
    })
}

/// Find where the value at `path` starts in `src`, for error messages.
pub fn locate(src: &str, path: &[PathSeg]) -> Option<Position> {
    use toml::de::{DeTable, DeValue};
    fn in_table<'a, 'i>(t: &'a DeTable<'i>, key: &str) -> Option<&'a toml::Spanned<DeValue<'i>>> {
        t.iter().find(|(k, _)| k.get_ref() == key).map(|(_, v)| v)
    }
    let root = DeTable::parse(src).ok()?;
    let mut offset = None;
    let mut cur: Option<&toml::Spanned<DeValue<'_>>> = None;
    for seg in path {
        let next = match (seg, cur) {
            (PathSeg::Key(k), None) => in_table(root.get_ref(), k),
            (PathSeg::Key(k), Some(v)) => v.get_ref().as_table().and_then(|t| in_table(t, k)),
            (PathSeg::Index(i), Some(v)) => v.get_ref().as_array().and_then(|a| a.get(*i)),
            (PathSeg::Index(_), None) => None,
        };
        match next {
            Some(v) => {
                offset = Some(v.span().start);
                cur = Some(v);
            }
            None => break,
        }
    }
    offset.map(|o| Position::from_offset(src, o))
}

/// Turn a [`Problem`] into a [`ConfigError`] pointing into `src`.
pub fn problem_error(src: &str, origin: &str, p: &Problem) -> ConfigError {
    match locate(src, &p.path) {
        Some(at) => ConfigError::At {
            origin: origin.to_owned(),
            at,
            message: p.message.clone(),
        },
        None => ConfigError::Whole {
            origin: origin.to_owned(),
            message: p.message.clone(),
        },
    }
}

/// Read a file to a string, with the path in the error.
pub fn read_file(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source,
    })
}
