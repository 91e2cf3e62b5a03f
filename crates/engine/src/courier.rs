//! Courier message templates (SPEC §5 `[[courier]]`), pure: `{code}`, `{phone}`, `{email}`,
//! `{user}` (and `{password}` in HTTP headers) filled in one pass, each value escaped for
//! where it lands, so a value can neither break the JSON or form body nor inject another
//! placeholder.

/// How values are escaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escape {
    /// Inside a JSON string: `"`, `\` and control characters escaped.
    Json,
    /// `application/x-www-form-urlencoded` and URL query values: percent-encoded.
    Form,
    /// Plain text (e-mail bodies, headers): as is, but line breaks removed.
    Plain,
}

impl Escape {
    /// The escaping that fits a body of `content_type`.
    pub fn for_content_type(content_type: &str) -> Escape {
        let t = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if t == "application/json" || t.ends_with("+json") {
            Escape::Json
        } else if t == "application/x-www-form-urlencoded" {
            Escape::Form
        } else {
            Escape::Plain
        }
    }
}

fn escape(value: &str, how: Escape, out: &mut String) {
    match how {
        Escape::Json => {
            for c in value.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                    c => out.push(c),
                }
            }
        }
        Escape::Form => {
            for b in value.bytes() {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    out.push(b as char);
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        }
        Escape::Plain => out.extend(value.chars().filter(|c| *c != '\r' && *c != '\n')),
    }
}

/// Fill `template`'s `{name}` placeholders from `fields`; unknown `{...}` stay as written.
pub fn render(template: &str, how: Escape, fields: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let field = after
            .find('}')
            .map(|close| &after[..close])
            .and_then(|name| fields.iter().find(|(k, _)| *k == name).map(|f| (name, f.1)));
        match field {
            Some((name, value)) => {
                escape(value, how, &mut out);
                rest = &after[name.len() + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// How the SMTP courier's connection is protected, from its URL (SPEC §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// `smtps://`: TLS from the first byte.
    Implicit,
    /// `smtp://` (default): STARTTLS, refusing a server that does not offer it.
    Required,
    /// `smtp://...?tls=opportunistic`: STARTTLS when offered.
    Opportunistic,
    /// `smtp://...?tls=none`: plain text (a relay on the same host).
    None,
}

/// `smtp[s]://HOST[:PORT][?tls=required|opportunistic|none]`.
pub fn parse_smtp_url(url: &str) -> Result<(String, u16, SmtpTls), String> {
    let bad = || {
        format!("courier url {url:?}: expected smtp://HOST[:PORT][?tls=...] or smtps://HOST[:PORT]")
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    let (hostport, query) = rest.split_once('?').unwrap_or((rest, ""));
    let hostport = hostport.trim_end_matches('/');
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            (h.to_owned(), p.parse::<u16>().map_err(|_| bad())?)
        }
        _ => (hostport.to_owned(), 0),
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if host.is_empty() {
        return Err(bad());
    }
    let tls = match (scheme, query) {
        ("smtps", "") => SmtpTls::Implicit,
        ("smtp", "" | "tls=required") => SmtpTls::Required,
        ("smtp", "tls=opportunistic") => SmtpTls::Opportunistic,
        ("smtp", "tls=none") => SmtpTls::None,
        _ => return Err(bad()),
    };
    let port = match (port, tls) {
        (0, SmtpTls::Implicit) => 465,
        (0, _) => 587,
        (p, _) => p,
    };
    Ok((host, port, tls))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls() {
        assert_eq!(
            parse_smtp_url("smtp://mail.example.com:587").unwrap(),
            ("mail.example.com".into(), 587, SmtpTls::Required)
        );
        assert_eq!(
            parse_smtp_url("smtps://mail.example.com").unwrap(),
            ("mail.example.com".into(), 465, SmtpTls::Implicit)
        );
        assert_eq!(
            parse_smtp_url("smtp://127.0.0.1:2525?tls=none").unwrap(),
            ("127.0.0.1".into(), 2525, SmtpTls::None)
        );
        assert_eq!(
            parse_smtp_url("smtp://[::1]:25?tls=opportunistic").unwrap(),
            ("::1".into(), 25, SmtpTls::Opportunistic)
        );
        assert!(parse_smtp_url("smtps://h?tls=none").is_err());
        assert!(parse_smtp_url("http://h").is_err());
        assert!(parse_smtp_url("smtp://:25").is_err());
    }

    const F: &[(&str, &str)] = &[
        ("code", "123456"),
        ("phone", "+46 70 123"),
        ("user", "ev\"il\\{code}"),
    ];

    #[test]
    fn json_values_cannot_break_the_document() {
        let body = render(
            r#"{"to":"{phone}","text":"{user}: {code}"}"#,
            Escape::Json,
            F,
        );
        assert_eq!(
            body,
            r#"{"to":"+46 70 123","text":"ev\"il\\{code}: 123456"}"#
        );
    }

    #[test]
    fn form_values_are_percent_encoded() {
        let body = render("to={phone}&msg=Code+{code}&u={user}", Escape::Form, F);
        assert_eq!(
            body,
            "to=%2B46%2070%20123&msg=Code+123456&u=ev%22il%5C%7Bcode%7D"
        );
    }

    #[test]
    fn plain_text_keeps_values_on_one_line_and_unknown_braces() {
        let f = [("code", "1\r\n2"), ("user", "a")];
        assert_eq!(
            render("{code} {x} {user} {", Escape::Plain, &f),
            "12 {x} a {"
        );
        assert_eq!(
            Escape::for_content_type("application/json; charset=utf-8"),
            Escape::Json
        );
        assert_eq!(Escape::for_content_type("text/plain"), Escape::Plain);
    }
}
