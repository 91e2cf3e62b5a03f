//! Tokens of the Junos curly-brace syntax (SPEC §8): words, quoted strings, `{ } ; [ ]`,
//! with `#` line comments and `/* */` block comments skipped.

use crate::diag::{SyntaxError, SyntaxErrorKind};
use crate::tree::Pos;

/// One token and where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) kind: Tok,
    pub(crate) pos: Pos,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Tok {
    /// An unquoted word: anything up to white space or one of `{ } ; " [ ]`.
    Word(String),
    /// A `"..."` string with its escapes resolved.
    Quoted(String),
    LBrace,
    RBrace,
    Semi,
    LBracket,
    RBracket,
    Eof,
}

impl Tok {
    /// How an error message names this token.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("`{}`", shorten(w)),
            Tok::Quoted(s) => format!("the quoted string \"{}\"", shorten(s).escape_debug()),
            Tok::LBrace => "`{`".to_owned(),
            Tok::RBrace => "`}`".to_owned(),
            Tok::Semi => "`;`".to_owned(),
            Tok::LBracket => "`[`".to_owned(),
            Tok::RBracket => "`]`".to_owned(),
            Tok::Eof => "the end of the file".to_owned(),
        }
    }
}

/// Long values are cut in messages so one bad line cannot flood a terminal.
pub(crate) fn shorten(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push('…');
        t
    }
}

/// Characters that end an unquoted word.
pub(crate) fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || matches!(c, '{' | '}' | ';' | '"' | '[' | ']')
}

/// Control characters and a byte-order mark past the start cannot be seen in an editor; in a
/// word they are an error rather than part of a name nobody can type.
fn is_invisible(c: char) -> bool {
    c.is_control() || c == '\u{feff}'
}

#[derive(Debug)]
pub(crate) struct Lexer<'a> {
    src: &'a str,
    /// Byte offset of the next character; always on a character boundary.
    at: usize,
    line: usize,
    col: usize,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        let mut lx = Lexer {
            src,
            at: 0,
            line: 1,
            col: 1,
        };
        // A byte-order mark some editors write is not part of the configuration.
        if lx.peek() == Some('\u{feff}') {
            lx.at = '\u{feff}'.len_utf8();
        }
        lx
    }

    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
        }
    }

    fn rest(&self) -> &'a str {
        self.src.get(self.at..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn starts_with(&self, s: &str) -> bool {
        self.rest().starts_with(s)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn error(pos: Pos, kind: SyntaxErrorKind) -> SyntaxError {
        SyntaxError {
            line: pos.line,
            col: pos.col,
            kind,
        }
    }

    /// Skips white space and comments.
    fn skip_trivia(&mut self) -> Result<(), SyntaxError> {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('#') => {
                    while let Some(c) = self.bump() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                Some('/') if self.starts_with("/*") => {
                    let start = self.pos();
                    self.bump();
                    self.bump();
                    loop {
                        if self.starts_with("*/") {
                            self.bump();
                            self.bump();
                            break;
                        }
                        if self.bump().is_none() {
                            return Err(Self::error(start, SyntaxErrorKind::UnterminatedComment));
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// The next token; `Tok::Eof` at the end (and on every call after it).
    pub(crate) fn next_token(&mut self) -> Result<Token, SyntaxError> {
        self.skip_trivia()?;
        let pos = self.pos();
        let Some(c) = self.peek() else {
            return Ok(Token {
                kind: Tok::Eof,
                pos,
            });
        };
        let single = match c {
            '{' => Some(Tok::LBrace),
            '}' => Some(Tok::RBrace),
            ';' => Some(Tok::Semi),
            '[' => Some(Tok::LBracket),
            ']' => Some(Tok::RBracket),
            _ => None,
        };
        if let Some(kind) = single {
            self.bump();
            return Ok(Token { kind, pos });
        }
        if c == '"' {
            self.bump();
            return self.quoted(pos);
        }
        if is_invisible(c) {
            return Err(Self::error(pos, SyntaxErrorKind::UnexpectedChar { ch: c }));
        }
        let mut word = String::new();
        while let Some(c) = self.peek() {
            if is_delimiter(c) {
                break;
            }
            if is_invisible(c) {
                return Err(Self::error(
                    self.pos(),
                    SyntaxErrorKind::UnexpectedChar { ch: c },
                ));
            }
            word.push(c);
            self.bump();
        }
        Ok(Token {
            kind: Tok::Word(word),
            pos,
        })
    }

    /// The rest of a quoted string whose opening `"` was at `open`.
    fn quoted(&mut self, open: Pos) -> Result<Token, SyntaxError> {
        let mut s = String::new();
        loop {
            let here = self.pos();
            match self.bump() {
                None => return Err(Self::error(open, SyntaxErrorKind::UnterminatedString)),
                Some('"') => {
                    return Ok(Token {
                        kind: Tok::Quoted(s),
                        pos: open,
                    });
                }
                Some('\\') => match self.bump() {
                    None => return Err(Self::error(open, SyntaxErrorKind::UnterminatedString)),
                    Some('\\') => s.push('\\'),
                    Some('"') => s.push('"'),
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    Some('r') => s.push('\r'),
                    Some(ch) => return Err(Self::error(here, SyntaxErrorKind::BadEscape { ch })),
                },
                Some(c) => s.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Result<Vec<Tok>, SyntaxError> {
        let mut lx = Lexer::new(src);
        let mut out = Vec::new();
        loop {
            let t = lx.next_token()?;
            if t.kind == Tok::Eof {
                return Ok(out);
            }
            out.push(t.kind);
        }
    }

    fn word(s: &str) -> Tok {
        Tok::Word(s.to_owned())
    }

    #[test]
    fn words_punctuation_and_comments() {
        let toks = kinds("a /* x { */ b;# c {\n d{e}[f \"g h\"]").unwrap();
        assert_eq!(
            toks,
            vec![
                word("a"),
                word("b"),
                Tok::Semi,
                word("d"),
                Tok::LBrace,
                word("e"),
                Tok::RBrace,
                Tok::LBracket,
                word("f"),
                Tok::Quoted("g h".to_owned()),
                Tok::RBracket,
            ]
        );
    }

    #[test]
    fn comment_markers_inside_words_are_part_of_the_word() {
        assert_eq!(
            kinds("/api/v1/*x a#b").unwrap(),
            vec![word("/api/v1/*x"), word("a#b")]
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(
            kinds(r#""a\"b\\c\nd\te\rf""#).unwrap(),
            vec![Tok::Quoted("a\"b\\c\nd\te\rf".to_owned())]
        );
        let e = kinds("x \"ab\\qc\"").unwrap_err();
        assert_eq!((e.line, e.col), (1, 6));
        assert_eq!(e.kind, SyntaxErrorKind::BadEscape { ch: 'q' });
    }

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let mut lx = Lexer::new("\u{feff}é a\n\t  b");
        let a = lx.next_token().unwrap();
        let b = lx.next_token().unwrap();
        let c = lx.next_token().unwrap();
        assert_eq!(a.pos, Pos { line: 1, col: 1 });
        assert_eq!(b.pos, Pos { line: 1, col: 3 });
        assert_eq!(c.pos, Pos { line: 2, col: 4 });
    }

    #[test]
    fn unterminated_things_point_at_their_start() {
        let e = kinds("a\n  \"abc").unwrap_err();
        assert_eq!(
            (e.line, e.col, e.kind),
            (2, 3, SyntaxErrorKind::UnterminatedString)
        );
        let e = kinds("a\n  /* abc *").unwrap_err();
        assert_eq!(
            (e.line, e.col, e.kind),
            (2, 3, SyntaxErrorKind::UnterminatedComment)
        );
        let e = kinds("\"abc\\").unwrap_err();
        assert_eq!(
            (e.line, e.col, e.kind),
            (1, 1, SyntaxErrorKind::UnterminatedString)
        );
    }

    #[test]
    fn control_characters_outside_strings_are_errors() {
        let e = kinds("ab\u{1}c").unwrap_err();
        assert_eq!((e.line, e.col), (1, 3));
        assert_eq!(e.kind, SyntaxErrorKind::UnexpectedChar { ch: '\u{1}' });
        assert_eq!(
            kinds("\"a\u{1}b\"").unwrap(),
            vec![Tok::Quoted("a\u{1}b".to_owned())]
        );
    }
}
