//! The generic statement tree of a Junos-style file (SPEC §8), before any meaning is given
//! to the names: `name arg ... ;` or `name arg ... { statement ... }`.
//!
//! Grammar:
//! ```text
//! file      = statement* EOF
//! statement = [ "inactive:" ] WORD arg* ( ";" | "{" statement* "}" )
//! arg       = WORD | STRING | "[" ( WORD | STRING )+ "]"
//! ```

use crate::diag::{SyntaxError, SyntaxErrorKind};
use crate::lexer::{Lexer, Tok, Token};

/// Blocks nest at most this deep. The identity-management hierarchy needs six levels; the
/// limit keeps the recursive parser, printer and `Drop` far from the stack's end on hostile input.
pub const MAX_DEPTH: usize = 32;

/// A position in the source text: 1-based line and column (columns count characters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A word or quoted string and where it starts. Quoting is not kept: a value means the same
/// whether it was written `a` or `"a"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub pos: Pos,
}

/// One value after a statement's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    /// `value` or `"value"`.
    Value(Word),
    /// `[ a b c ]`; `pos` is the `[`. Never empty.
    List { pos: Pos, items: Vec<Word> },
}

impl Arg {
    pub fn pos(&self) -> Pos {
        match self {
            Arg::Value(w) => w.pos,
            Arg::List { pos, .. } => *pos,
        }
    }
}

/// One statement: `name args... ;` (a leaf, `block == None`) or `name args... { ... }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// The statement's name; never quoted in the source.
    pub name: Word,
    /// Where `inactive:` was written, if the statement is deactivated.
    pub inactive: Option<Pos>,
    pub args: Vec<Arg>,
    /// The statements between `{` and `}`; `None` for a statement ended by `;`.
    pub block: Option<Vec<Node>>,
}

impl Node {
    /// Where the statement starts (its `inactive:` prefix if it has one).
    pub fn pos(&self) -> Pos {
        self.inactive.unwrap_or(self.name.pos)
    }

    /// Equal apart from source positions: what a print → parse round trip preserves.
    pub fn same_as(&self, other: &Node) -> bool {
        fn words_eq(a: &[Word], b: &[Word]) -> bool {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.text == y.text)
        }
        let args_eq = self.args.len() == other.args.len()
            && self
                .args
                .iter()
                .zip(&other.args)
                .all(|(a, b)| match (a, b) {
                    (Arg::Value(x), Arg::Value(y)) => x.text == y.text,
                    (Arg::List { items: x, .. }, Arg::List { items: y, .. }) => words_eq(x, y),
                    _ => false,
                });
        self.name.text == other.name.text
            && self.inactive.is_some() == other.inactive.is_some()
            && args_eq
            && match (&self.block, &other.block) {
                (None, None) => true,
                (Some(a), Some(b)) => same_tree(a, b),
                _ => false,
            }
    }
}

/// [`Node::same_as`] over a list of statements.
pub fn same_tree(a: &[Node], b: &[Node]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_as(y))
}

/// Parses a whole file into its statement tree. Stops at the first syntax error, which names
/// the line and column and what was expected there.
pub fn parse_tree(src: &str) -> Result<Vec<Node>, SyntaxError> {
    let mut p = Parser {
        lexer: Lexer::new(src),
    };
    p.statements(0, None)
}

#[derive(Debug)]
struct Parser<'a> {
    lexer: Lexer<'a>,
}

fn err(pos: Pos, kind: SyntaxErrorKind) -> SyntaxError {
    SyntaxError {
        line: pos.line,
        col: pos.col,
        kind,
    }
}

impl Parser<'_> {
    fn next(&mut self) -> Result<Token, SyntaxError> {
        self.lexer.next_token()
    }

    /// Statements up to the end of the file (`open == None`) or up to the `}` closing the
    /// block `open` = (name, position of its `{`).
    fn statements(
        &mut self,
        depth: usize,
        open: Option<(&str, Pos)>,
    ) -> Result<Vec<Node>, SyntaxError> {
        let mut nodes = Vec::new();
        loop {
            let t = self.next()?;
            match t.kind {
                Tok::Eof => {
                    return match open {
                        None => Ok(nodes),
                        Some((name, brace)) => Err(err(
                            brace,
                            SyntaxErrorKind::UnclosedBlock {
                                name: crate::lexer::shorten(name),
                            },
                        )),
                    };
                }
                Tok::RBrace => {
                    return match open {
                        Some(_) => Ok(nodes),
                        None => Err(err(t.pos, SyntaxErrorKind::UnmatchedClose)),
                    };
                }
                Tok::Word(w) => nodes.push(self.statement(w, t.pos, depth)?),
                other => {
                    return Err(err(
                        t.pos,
                        SyntaxErrorKind::Expected {
                            expected: if open.is_some() {
                                "a statement name or `}`"
                            } else {
                                "a statement name"
                            },
                            found: other.describe(),
                        },
                    ));
                }
            }
        }
    }

    /// The rest of a statement whose first word `first` was at `pos`.
    fn statement(&mut self, first: String, pos: Pos, depth: usize) -> Result<Node, SyntaxError> {
        let (inactive, name) = if first == "inactive:" {
            let t = self.next()?;
            match t.kind {
                Tok::Word(w) if w != "inactive:" => (
                    Some(pos),
                    Word {
                        text: w,
                        pos: t.pos,
                    },
                ),
                other => {
                    return Err(err(
                        t.pos,
                        SyntaxErrorKind::Expected {
                            expected: "a statement name after `inactive:`",
                            found: other.describe(),
                        },
                    ));
                }
            }
        } else {
            (None, Word { text: first, pos })
        };
        let mut args = Vec::new();
        loop {
            let t = self.next()?;
            match t.kind {
                Tok::Word(text) | Tok::Quoted(text) => {
                    args.push(Arg::Value(Word { text, pos: t.pos }))
                }
                Tok::LBracket => args.push(self.list(t.pos)?),
                Tok::Semi => {
                    return Ok(Node {
                        name,
                        inactive,
                        args,
                        block: None,
                    });
                }
                Tok::LBrace => {
                    if depth + 1 > MAX_DEPTH {
                        return Err(err(t.pos, SyntaxErrorKind::TooDeep { max: MAX_DEPTH }));
                    }
                    let children = self.statements(depth + 1, Some((&name.text, t.pos)))?;
                    return Ok(Node {
                        name,
                        inactive,
                        args,
                        block: Some(children),
                    });
                }
                other => {
                    return Err(err(
                        t.pos,
                        SyntaxErrorKind::Unterminated {
                            statement: crate::lexer::shorten(&name.text),
                            found: other.describe(),
                        },
                    ));
                }
            }
        }
    }

    /// The rest of a `[ ... ]` list whose `[` was at `open`.
    fn list(&mut self, open: Pos) -> Result<Arg, SyntaxError> {
        let mut items = Vec::new();
        loop {
            let t = self.next()?;
            match t.kind {
                Tok::Word(text) | Tok::Quoted(text) => items.push(Word { text, pos: t.pos }),
                Tok::RBracket if items.is_empty() => {
                    return Err(err(open, SyntaxErrorKind::EmptyList));
                }
                Tok::RBracket => return Ok(Arg::List { pos: open, items }),
                other => {
                    return Err(err(
                        t.pos,
                        SyntaxErrorKind::Expected {
                            expected: "a value or `]`",
                            found: other.describe(),
                        },
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(args: &[Arg]) -> Vec<String> {
        args.iter()
            .map(|a| match a {
                Arg::Value(w) => w.text.clone(),
                Arg::List { items, .. } => format!(
                    "[{}]",
                    items
                        .iter()
                        .map(|w| w.text.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            })
            .collect()
    }

    #[test]
    fn leaves_blocks_lists_and_inactive() {
        let t = parse_tree("a b \"c d\";\ninactive: e [ f g ] {\n  h;\n  i { }\n}\n").unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].name.text, "a");
        assert_eq!(texts(&t[0].args), ["b", "c d"]);
        assert_eq!(t[0].block, None);
        assert_eq!(t[1].name.text, "e");
        assert_eq!(t[1].inactive, Some(Pos { line: 2, col: 1 }));
        assert_eq!(t[1].name.pos, Pos { line: 2, col: 11 });
        assert_eq!(t[1].pos(), Pos { line: 2, col: 1 });
        assert_eq!(texts(&t[1].args), ["[f,g]"]);
        let kids = t[1].block.as_deref().unwrap();
        assert_eq!(kids.len(), 2);
        assert_eq!(kids[0].block, None);
        assert_eq!(kids[1].block, Some(vec![]));
        assert_eq!(kids[1].name.pos, Pos { line: 4, col: 3 });
    }

    fn fails(src: &str) -> (usize, usize, SyntaxErrorKind) {
        let e = parse_tree(src).unwrap_err();
        (e.line, e.col, e.kind)
    }

    #[test]
    fn errors_name_the_place_and_what_was_expected() {
        assert_eq!(
            fails("a {\n  b 1\n}"),
            (
                3,
                1,
                SyntaxErrorKind::Unterminated {
                    statement: "b".into(),
                    found: "`}`".into()
                }
            )
        );
        assert_eq!(
            fails("a {\n  b { c; }\n"),
            (1, 3, SyntaxErrorKind::UnclosedBlock { name: "a".into() })
        );
        assert_eq!(fails("a;\n}"), (2, 1, SyntaxErrorKind::UnmatchedClose));
        assert_eq!(
            fails("a;\n;"),
            (
                2,
                1,
                SyntaxErrorKind::Expected {
                    expected: "a statement name",
                    found: "`;`".into()
                }
            )
        );
        assert_eq!(fails("a [ ];"), (1, 3, SyntaxErrorKind::EmptyList));
        assert_eq!(
            fails("a [ b ;"),
            (
                1,
                7,
                SyntaxErrorKind::Expected {
                    expected: "a value or `]`",
                    found: "`;`".into()
                }
            )
        );
        assert_eq!(
            fails("inactive: \"x\";"),
            (
                1,
                11,
                SyntaxErrorKind::Expected {
                    expected: "a statement name after `inactive:`",
                    found: "the quoted string \"x\"".into()
                }
            )
        );
        assert_eq!(
            fails("\"a\" b;"),
            (
                1,
                1,
                SyntaxErrorKind::Expected {
                    expected: "a statement name",
                    found: "the quoted string \"a\"".into()
                }
            )
        );
    }

    #[test]
    fn nesting_is_limited() {
        let ok = "a {".repeat(MAX_DEPTH) + &"}".repeat(MAX_DEPTH);
        assert!(parse_tree(&ok).is_ok());
        let deep = "a {".repeat(MAX_DEPTH + 1) + &"}".repeat(MAX_DEPTH + 1);
        let (line, col, kind) = fails(&deep);
        assert_eq!((line, col), (1, 3 * MAX_DEPTH + 3));
        assert_eq!(kind, SyntaxErrorKind::TooDeep { max: MAX_DEPTH });
    }
}
