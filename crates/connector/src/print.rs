//! The canonical Junos-style text (SPEC §8): four-space indentation, one statement per line,
//! values quoted only where the syntax needs it, comments dropped. What it prints parses back
//! to the same tree or configuration, and printing that again gives the same text.

use crate::config::{ConnectMethod, Connection, ConnectorConfig, IpQuery, Server};
use crate::lexer::is_delimiter;
use crate::tree::{Arg, Node};

/// A value as it must be written: bare if the lexer reads it back as one word, else quoted.
pub fn quote_if_needed(s: &str) -> String {
    let bare = !s.is_empty()
        && !s.starts_with('#')
        && !s.starts_with("/*")
        && !s
            .chars()
            .any(|c| is_delimiter(c) || c.is_control() || c == '\\' || c == '\u{feff}');
    if bare { s.to_owned() } else { quote(s) }
}

/// `"s"` with `\`, `"`, newline, tab and carriage return escaped.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[derive(Debug, Default)]
struct Out {
    text: String,
    depth: usize,
}

impl Out {
    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.text.push_str("    ");
        }
    }

    /// `head {` and one level deeper.
    fn open(&mut self, head: &str) {
        self.indent();
        self.text.push_str(head);
        self.text.push_str(" {\n");
        self.depth += 1;
    }

    fn close(&mut self) {
        self.depth = self.depth.saturating_sub(1);
        self.indent();
        self.text.push_str("}\n");
    }

    /// `head;`
    fn stmt(&mut self, head: &str) {
        self.stmt_with(head, "");
    }

    /// `head;` followed by a trailing comment.
    fn stmt_with(&mut self, head: &str, comment: &str) {
        self.indent();
        self.text.push_str(head);
        self.text.push(';');
        self.text.push_str(comment);
        self.text.push('\n');
    }
}

/// The statement tree in canonical form, `inactive:` prefixes kept. An empty block prints as
/// `name { }` so that it stays distinct from `name;`.
pub fn render_tree(nodes: &[Node]) -> String {
    let mut out = Out::default();
    tree(&mut out, nodes);
    out.text
}

fn tree(out: &mut Out, nodes: &[Node]) {
    for node in nodes {
        let mut head = String::new();
        if node.inactive.is_some() {
            head.push_str("inactive: ");
        }
        // A name came from an unquoted word, so it prints as it was.
        head.push_str(&node.name.text);
        for arg in &node.args {
            head.push(' ');
            match arg {
                Arg::Value(w) => head.push_str(&quote_if_needed(&w.text)),
                Arg::List { items, .. } => {
                    head.push('[');
                    for w in items {
                        head.push(' ');
                        head.push_str(&quote_if_needed(&w.text));
                    }
                    head.push_str(" ]");
                }
            }
        }
        match &node.block {
            None => out.stmt(&head),
            Some(kids) if kids.is_empty() => {
                out.indent();
                out.text.push_str(&head);
                out.text.push_str(" { }\n");
            }
            Some(kids) => {
                out.open(&head);
                tree(out, kids);
                out.close();
            }
        }
    }
}

/// The configuration in canonical Junos style, like `show configuration`: the statements whose
/// value differs from the default, in the order of SPEC §8. The client secret is printed (it
/// must survive a round trip) in quotes with Junos' `## SECRET-DATA` marker.
pub fn render(config: &ConnectorConfig) -> String {
    let mut out = Out::default();
    out.open("services");
    out.open("user-identification");
    out.open("identity-management");
    connection(&mut out, &config.connection);
    let b = &config.batch_query;
    let defaults = crate::config::BatchQuery::default();
    if *b != defaults {
        out.open("batch-query");
        if b.items_per_batch != defaults.items_per_batch {
            out.stmt(&format!("items-per-batch {}", b.items_per_batch));
        }
        if b.query_interval != defaults.query_interval {
            out.stmt(&format!("query-interval {}", b.query_interval));
        }
        out.close();
    }
    match config.ip_query {
        IpQuery::Enabled {
            query_delay_time: 0,
        } => {}
        IpQuery::Enabled { query_delay_time } => {
            out.open("ip-query");
            out.stmt(&format!("query-delay-time {query_delay_time}"));
            out.close();
        }
        IpQuery::Disabled => out.stmt("no-ip-query"),
    }
    for (name, minutes) in [
        (
            "authentication-entry-timeout",
            config.authentication_entry_timeout,
        ),
        (
            "invalid-authentication-entry-timeout",
            config.invalid_authentication_entry_timeout,
        ),
    ] {
        if minutes != ConnectorConfig::DEFAULT_ENTRY_TIMEOUT {
            out.stmt(&format!("{name} {minutes}"));
        }
    }
    if let Some(domain) = &config.filter.domain {
        out.open("filter");
        out.stmt(&format!("domain {}", quote_if_needed(domain)));
        out.close();
    }
    out.close();
    out.close();
    out.close();
    if !config.ca_profiles.is_empty() {
        out.open("security");
        out.open("pki");
        for p in &config.ca_profiles {
            out.open(&format!("ca-profile {}", quote_if_needed(&p.name)));
            out.stmt(&format!("ca-identity {}", quote_if_needed(&p.ca_identity)));
            out.stmt(&format!("certificate-file {}", quote(&p.certificate_file)));
            out.close();
        }
        out.close();
        out.close();
    }
    out.text
}

fn connection(out: &mut Out, c: &Connection) {
    out.open("connection");
    if c.connect_method != ConnectMethod::Https {
        out.stmt(&format!("connect-method {}", c.connect_method));
    }
    if c.port != Connection::DEFAULT_PORT {
        out.stmt(&format!("port {}", c.port));
    }
    if c.token_api != Connection::DEFAULT_TOKEN_API {
        out.stmt(&format!("token-api {}", quote_if_needed(&c.token_api)));
    }
    if c.query_api != Connection::DEFAULT_QUERY_API {
        out.stmt(&format!("query-api {}", quote_if_needed(&c.query_api)));
    }
    server(out, "primary", &c.primary);
    if let Some(s) = &c.secondary {
        server(out, "secondary", s);
    }
    out.close();
}

fn server(out: &mut Out, role: &str, s: &Server) {
    out.open(role);
    out.stmt(&format!("address {}", s.address));
    out.stmt(&format!("client-id {}", quote_if_needed(&s.client_id)));
    out.stmt_with(
        &format!("client-secret {}", quote(s.client_secret.expose())),
        " ## SECRET-DATA",
    );
    let optional = [
        ("ca-profile", &s.ca_profile),
        ("interface", &s.interface),
        ("routing-instance", &s.routing_instance),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            out.stmt(&format!("{name} {}", quote_if_needed(v)));
        }
    }
    if let Some(source) = &s.source {
        out.stmt(&format!("source {source}"));
    }
    out.close();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{parse_tree, same_tree};

    #[test]
    fn quoting() {
        assert_eq!(quote_if_needed("abc"), "abc");
        assert_eq!(quote_if_needed("/api/v1/x"), "/api/v1/x");
        assert_eq!(quote_if_needed("a#b"), "a#b");
        assert_eq!(quote_if_needed(""), "\"\"");
        assert_eq!(quote_if_needed("a b"), "\"a b\"");
        assert_eq!(quote_if_needed("#a"), "\"#a\"");
        assert_eq!(quote_if_needed("/*a"), "\"/*a\"");
        assert_eq!(quote_if_needed("a;"), "\"a;\"");
        assert_eq!(quote_if_needed("a\\b\"c\n"), r#""a\\b\"c\n""#);
    }

    #[test]
    fn tree_round_trip_and_idempotence() {
        let src = "a b \"c d\" [ e \"f g\" ] {\n  inactive: h;\n  i { }\n  j \"\" \"x\\\\y\";\n}\n/* c */ k;";
        let t = parse_tree(src).unwrap();
        let printed = render_tree(&t);
        assert_eq!(
            printed,
            "a b \"c d\" [ e \"f g\" ] {\n    inactive: h;\n    i { }\n    j \"\" \"x\\\\y\";\n}\nk;\n"
        );
        let again = parse_tree(&printed).unwrap();
        assert!(same_tree(&t, &again));
        assert_eq!(render_tree(&again), printed);
    }
}
