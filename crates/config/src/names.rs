//! Names of things an administrator creates: users, administrators, RADIUS clients, methods,
//! directories, couriers and identity-API clients.
//!
//! A name is shown in the console and put into URLs (`/api/v1/admin/users/NAME`), so it must
//! not be able to change what a URL points at: [`check_name`] is the one rule every creation
//! path applies, and [`path_segment`] is the one encoding every URL builder uses.
//!
//! Names created before this rule existed still load and serve: the rule is applied when a
//! name is created (added, imported, or new in a saved draft), never when stored data is read.

use std::fmt;

/// Longest name accepted, in bytes: one RADIUS attribute (RFC 2865 §5), which a user name
/// must fit in.
pub const MAX_NAME_BYTES: usize = 253;

/// Characters that change the meaning of a URL path (`/ ? # %`) or that browsers treat as
/// a path separator (`\`).
const URL_CHARACTERS: &[char] = &['/', '?', '#', '%', '\\'];

/// Why a name was refused: which field, which name, which rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} {}: {rule}", Shown(.name))]
pub struct NameError {
    /// What the name is for, as the administrator knows it, e.g. `user name`.
    pub field: String,
    pub name: String,
    pub rule: String,
}

/// A name in an error message: quoted with escapes (no control character reaches a terminal
/// or a log), and cut short when long.
struct Shown<'a>(&'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 40;
        if self.0.chars().count() > SHOWN {
            let head: String = self.0.chars().take(SHOWN).collect();
            write!(f, "{head:?}…")
        } else {
            write!(f, "{:?}", self.0)
        }
    }
}

/// Invisible characters that make two different names look alike, or reorder how a name is
/// displayed (Unicode format characters: soft hyphen, zero-width and bidirectional controls,
/// the byte-order mark), and the line and paragraph separators.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// Check a new name. `field` names what it is for in the message (e.g. `client name`).
///
/// A name is 1 to [`MAX_NAME_BYTES`] bytes, is not `.` or `..`, does not begin or end with
/// white space, and has none of `/ ? # % \`, control characters or invisible characters.
/// Everything else is allowed: spaces, `@` (e-mail-like directory users), `+ & '`, letters of
/// any script.
pub fn check_name(field: &str, name: &str) -> Result<(), NameError> {
    let refuse = |rule: String| {
        Err(NameError {
            field: field.to_owned(),
            name: name.to_owned(),
            rule,
        })
    };
    if name.is_empty() {
        return refuse("must not be empty".into());
    }
    if name.len() > MAX_NAME_BYTES {
        return refuse(format!(
            "must be at most {MAX_NAME_BYTES} bytes (it has {})",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return refuse("must not be \".\" or \"..\"".into());
    }
    if let Some(c) = name.chars().find(|c| URL_CHARACTERS.contains(c)) {
        return refuse(format!(
            "must not contain {c:?} (names appear in URLs: / ? # % \\ are not allowed)"
        ));
    }
    if let Some(c) = name.chars().find(|&c| c.is_control() || invisible(c)) {
        return refuse(format!(
            "must not contain control or invisible characters (found U+{:04X})",
            u32::from(c)
        ));
    }
    if name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace) {
        return refuse("must not begin or end with white space".into());
    }
    Ok(())
}

/// `name` as one URL path segment: every byte but RFC 3986 §2.3 unreserved characters
/// percent-encoded, so the segment decodes to exactly `name` and never splits, ends or
/// escapes the path.
///
/// `None` for `.` and `..` (names from before [`check_name`]): URL parsers resolve those
/// segments, encoded or not (WHATWG URL: `%2e%2e` is `..`), so no URL can address them.
pub fn path_segment(name: &str) -> Option<String> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    if name == "." || name == ".." {
        return None;
    }
    let mut out = String::with_capacity(name.len() * 3);
    for &b in name.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_pass() {
        for n in [
            "bob",
            "ann lee",
            "a+b",
            "tom&jerry",
            "o'brien",
            "josé",
            "eve@example.com",
            "vpn-users_2.0",
            "...",
            ".hidden",
            "a..b",
            "日本",
            &"x".repeat(MAX_NAME_BYTES),
        ] {
            assert_eq!(check_name("user name", n), Ok(()), "{n:?}");
        }
    }

    #[test]
    fn names_that_break_urls_are_refused_with_field_and_rule() {
        for (n, rule) in [
            ("", "must not be empty"),
            (".", "\".\" or \"..\""),
            ("..", "\".\" or \"..\""),
            ("../clients/gw", "'/'"),
            ("victim?x", "'?'"),
            ("a#b", "'#'"),
            ("100%", "'%'"),
            ("%2e%2e", "'%'"),
            ("DOMAIN\\user", "'\\\\'"),
            ("tab\there", "U+0009"),
            ("nl\nx", "U+000A"),
            ("del\u{7f}", "U+007F"),
            ("c1\u{85}", "U+0085"),
            ("gw\u{202e}txt", "U+202E"),
            ("zero\u{200b}width", "U+200B"),
            (" gw", "white space"),
            ("gw ", "white space"),
        ] {
            let e = check_name("client name", n).expect_err(n);
            let msg = e.to_string();
            assert!(msg.starts_with("client name "), "{msg}");
            assert!(msg.contains(rule), "{n:?}: {msg}");
            assert!(
                !msg.chars().any(char::is_control),
                "control characters are escaped: {msg:?}"
            );
        }
        let long = "é".repeat(127);
        let msg = check_name("user name", &long).unwrap_err().to_string();
        assert!(msg.contains("at most 253 bytes (it has 254)"), "{msg}");
        assert!(msg.len() < 200, "a long name is cut short: {msg}");
    }

    #[test]
    fn path_segments_decode_to_exactly_the_name() {
        assert_eq!(
            path_segment("../clients/gw").as_deref(),
            Some("..%2Fclients%2Fgw")
        );
        assert_eq!(path_segment("victim?x").as_deref(), Some("victim%3Fx"));
        assert_eq!(path_segment("a#b%2F\\").as_deref(), Some("a%23b%252F%5C"));
        assert_eq!(
            path_segment("ann lee+o'brien&josé@x").as_deref(),
            Some("ann%20lee%2Bo%27brien%26jos%C3%A9%40x")
        );
        assert_eq!(path_segment("A-z_0.9~").as_deref(), Some("A-z_0.9~"));
        assert_eq!(path_segment("..."), Some("...".into()));
        assert_eq!(path_segment("."), None);
        assert_eq!(path_segment(".."), None);
    }
}
