//! Errors and warnings of the Junos-style configuration (SPEC §8): every one names a line and
//! a column (1-based) and says what was wrong or expected.

use std::fmt;

use crate::tree::Pos;

/// A syntax error: the file is not a well-formed statement tree. Parsing stops at the first.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{col}: {kind}")]
pub struct SyntaxError {
    pub line: usize,
    pub col: usize,
    pub kind: SyntaxErrorKind,
}

impl SyntaxError {
    pub fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
        }
    }
}

/// What made the text malformed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxErrorKind {
    #[error("unterminated quoted string: expected a closing `\"` before the end of the file")]
    UnterminatedString,
    #[error("unterminated comment: expected `*/` before the end of the file")]
    UnterminatedComment,
    #[error(
        "unknown escape `\\{}` in a quoted string: expected one of \\\\ \\\" \\n \\t \\r",
        .ch.escape_debug()
    )]
    BadEscape { ch: char },
    #[error(
        "unexpected character {}: expected a word, a quoted string, `{{`, `}}`, `;` or `[`",
        .ch.escape_unicode()
    )]
    UnexpectedChar { ch: char },
    #[error("expected {expected}, found {found}")]
    Expected {
        expected: &'static str,
        found: String,
    },
    #[error("expected `;` or `{{` to end the statement `{statement}`, found {found}")]
    Unterminated { statement: String, found: String },
    #[error(
        "the block `{name}` opened here is never closed: expected `}}` before the end of the file"
    )]
    UnclosedBlock { name: String },
    #[error("unexpected `}}`: no block is open here")]
    UnmatchedClose,
    #[error("empty list `[ ]`: expected at least one value")]
    EmptyList,
    #[error("blocks are nested more than {max} deep")]
    TooDeep { max: usize },
}

/// Whether a diagnostic stops the configuration from being used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// A value in a message: in backticks, or `""` when empty.
fn code(s: &str) -> String {
    if s.is_empty() {
        "\"\"".to_owned()
    } else {
        format!("`{s}`")
    }
}

fn one_of(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the commit check found (SPEC §8 `check`). The position is in the [`Diagnostic`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error(transparent)]
    Syntax(SyntaxErrorKind),
    #[error("unknown statement `{name}` in {within}: expected one of {}", one_of(.expected))]
    UnknownStatement {
        name: String,
        within: String,
        expected: &'static [&'static str],
    },
    #[error("`{statement}` needs a value: expected `{statement} {what}`")]
    MissingValue {
        statement: &'static str,
        what: &'static str,
    },
    #[error("`{statement}` takes one value, found also {found} (missing `;`?)")]
    ExtraValue {
        statement: &'static str,
        found: String,
    },
    #[error("`{statement}` takes no value, found {found}")]
    UnexpectedValue {
        statement: &'static str,
        found: String,
    },
    #[error("`{statement}` takes a single value, not a list `[ ... ]`")]
    ListNotAllowed { statement: &'static str },
    #[error("`{statement}` is a statement ending in `;`, not a block `{{ ... }}`")]
    BlockNotAllowed { statement: &'static str },
    #[error("`{statement}` expects a number, found `{found}`")]
    NotANumber {
        statement: &'static str,
        found: String,
    },
    #[error("`{statement}` value {found} is out of range: expected {range}")]
    OutOfRange {
        statement: &'static str,
        found: String,
        range: &'static str,
    },
    #[error("`{statement}` must be {expected}, found {}", code(.found))]
    InvalidValue {
        statement: &'static str,
        found: String,
        expected: &'static str,
    },
    #[error("duplicate `{statement}`: already configured at {first}; only one is allowed")]
    Duplicate { statement: String, first: Pos },
    #[error("missing `{statement}` in {within}")]
    Missing {
        statement: &'static str,
        within: String,
    },
    #[error(
        "ca-profile `{name}` is not defined: expected `security {{ pki {{ ca-profile {name} {{ ... }} }} }}`"
    )]
    UndefinedCaProfile { name: String },
    #[error("`secondary` is configured without a `primary`")]
    SecondaryWithoutPrimary,
    #[error(
        "`active-directory-access` cannot be configured beside `identity-management` (at {identity_management})"
    )]
    ActiveDirectoryBeside { identity_management: Pos },
    #[error("`active-directory-access` is not supported: configure `identity-management`")]
    ActiveDirectoryUnsupported,
    #[error("`ip-query` (at {ip_query}) and `no-ip-query` cannot both be configured")]
    IpQueryConflict { ip_query: Pos },
    #[error(
        "`source` {source_address} is {source_family} but `address` {address} is {address_family}"
    )]
    SourceFamily {
        source_address: String,
        source_family: &'static str,
        address: String,
        address_family: &'static str,
    },
    // Warnings.
    #[error("inactive statement `{statement}` is ignored")]
    Inactive { statement: String },
    #[error("`{server}` has no `ca-profile`: the server certificate will not be verified")]
    NotVerified { server: &'static str },
    #[error("`connect-method http`: the client secret and access tokens travel unencrypted")]
    Cleartext,
}

impl Problem {
    /// Warnings leave the configuration usable; everything else is an error.
    pub fn severity(&self) -> Severity {
        match self {
            Problem::Inactive { .. } | Problem::NotVerified { .. } | Problem::Cleartext => {
                Severity::Warning
            }
            _ => Severity::Error,
        }
    }
}

/// One error or warning of the commit check, at a 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{col}: {}: {problem}", self.severity())]
pub struct Diagnostic {
    pub line: usize,
    pub col: usize,
    pub problem: Problem,
}

impl Diagnostic {
    pub fn new(pos: Pos, problem: Problem) -> Self {
        Diagnostic {
            line: pos.line,
            col: pos.col,
            problem,
        }
    }

    pub fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
        }
    }

    pub fn severity(&self) -> Severity {
        self.problem.severity()
    }

    pub fn is_error(&self) -> bool {
        self.severity() == Severity::Error
    }

    /// Displays as `ORIGIN:LINE:COL: error: ...`, the form compilers use, with the file name
    /// (or any other origin) in front.
    pub fn with_origin<'a>(&'a self, origin: &'a str) -> impl fmt::Display + 'a {
        struct WithOrigin<'a>(&'a str, &'a Diagnostic);
        impl fmt::Display for WithOrigin<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}:{}", self.0, self.1)
            }
        }
        WithOrigin(origin, self)
    }
}

impl From<SyntaxError> for Diagnostic {
    fn from(e: SyntaxError) -> Self {
        Diagnostic {
            line: e.line,
            col: e.col,
            problem: Problem::Syntax(e.kind),
        }
    }
}

/// The configuration was rejected: the errors of the commit check, one per line when shown.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", .errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ParseError {
    /// Never empty; sorted by position.
    pub errors: Vec<Diagnostic>,
}
