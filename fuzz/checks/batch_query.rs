//! The property of the `batch_query` fuzz target, shared with the stable replay test
//! (`crates/engine/tests/fuzz_corpus.rs`): the batch query's parameters as the server reads
//! them (`form_urlencoded` over the raw query, then `identity::parse_batch_query`), and the
//! cursor and RFC 3339 decoders on their own.
//!
//! Input: the query string (what follows `?`).

use tessera_engine::identity::{
    self, BatchQuery, MAX_LIMIT, MIN_LIMIT, QueryError, Start, decode_cursor, encode_cursor,
    format_rfc3339, parse_rfc3339,
};

/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the times four-digit years can write.
const FIRST: i64 = -62_167_219_200;
const LAST: i64 = 253_402_300_799;

/// A cursor that decodes is one this server issued: it encodes back to the same text.
fn cursor_property(text: &str) -> Option<i64> {
    let seq = decode_cursor(text)?;
    assert!(seq >= 0, "{text:?} decodes to {seq}");
    assert_eq!(encode_cursor(seq), text, "cursor {text:?} is not canonical");
    Some(seq)
}

/// A time that parses is a real instant; written back in UTC it parses to the same instant.
fn time_property(text: &str) -> Option<i64> {
    let t = parse_rfc3339(text)?;
    // Four-digit years and offsets of at most a day.
    assert!(
        (FIRST - 86_400..=LAST + 86_400).contains(&t),
        "{text:?} -> {t}"
    );
    if (FIRST..=LAST).contains(&t) {
        let printed = format_rfc3339(t);
        assert_eq!(parse_rfc3339(&printed), Some(t), "{text:?} -> {printed:?}");
    }
    Some(t)
}

/// Runs the property on one input; returns whether the query was accepted.
pub fn check(data: &[u8]) -> bool {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(data).into_owned().collect();
    let text = String::from_utf8_lossy(data);
    cursor_property(&text);
    time_property(&text);
    for (_, v) in &pairs {
        cursor_property(v);
        time_property(v);
    }
    let value = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match identity::parse_batch_query(&pairs) {
        Ok(BatchQuery {
            start,
            limit,
            domain,
        }) => {
            for (i, (k, _)) in pairs.iter().enumerate() {
                assert!(["cursor", "since", "limit", "domain"].contains(&k.as_str()));
                assert!(!pairs[..i].iter().any(|(j, _)| j == k), "{k:?} twice");
            }
            assert!((MIN_LIMIT..=MAX_LIMIT).contains(&limit));
            assert_eq!(domain.as_deref(), value("domain").filter(|d| !d.is_empty()));
            match start {
                Start::After(seq) => {
                    assert!(value("since").is_none());
                    match value("cursor") {
                        Some(c) => assert_eq!(cursor_property(c), Some(seq)),
                        None => assert_eq!(seq, 0),
                    }
                }
                Start::Since(t) => {
                    assert!(value("cursor").is_none());
                    assert_eq!(value("since").and_then(time_property), Some(t));
                }
            }
            true
        }
        Err(e) => {
            // Every refusal names what to fix.
            let said = e.to_string();
            assert!(!said.is_empty());
            match e {
                QueryError::Repeated(k) | QueryError::Unknown(k) => {
                    assert!(pairs.iter().any(|(j, _)| *j == k))
                }
                QueryError::Cursor(c) => assert!(decode_cursor(&c).is_none()),
                QueryError::Since(s) => assert!(parse_rfc3339(&s).is_none()),
                QueryError::Limit(_) | QueryError::CursorAndSince => {}
            }
            false
        }
    }
}
