//! The identity API's queries (SPEC §7), minus the HTTP: reading the batch query's parameters,
//! its opaque cursor, and RFC 3339 times.
//!
//! Every change to the identity table gets the next change number (`seq`); an entry carries
//! the number of its latest change. The batch query returns entries in change order, and its
//! cursor is the last change number returned, so a reader that resumes from it sees every
//! later change exactly once, however many entries arrive between its pages.

/// Smallest and largest page of the batch query.
pub const MIN_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;
/// Page size when the query names none (the connector's `items-per-batch` default).
pub const DEFAULT_LIMIT: usize = 200;

/// Where a batch query starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// After this change number (from a cursor; 0 for "from the beginning").
    After(i64),
    /// Entries updated at or after this time (unix seconds).
    Since(i64),
}

/// A batch query, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchQuery {
    pub start: Start,
    pub limit: usize,
    pub domain: Option<String>,
}

/// A query parameter that cannot be used, said so that the caller can fix it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("limit must be a number from {MIN_LIMIT} to {MAX_LIMIT}, not {0:?}")]
    Limit(String),
    #[error("cursor {0:?} was not issued by this server")]
    Cursor(String),
    #[error("since must be an RFC 3339 time such as 2026-11-23T08:00:00Z, not {0:?}")]
    Since(String),
    #[error("give either cursor or since, not both")]
    CursorAndSince,
    #[error("parameter {0:?} is given more than once")]
    Repeated(String),
    #[error("unknown parameter {0:?} (expected cursor, since, limit, domain)")]
    Unknown(String),
}

/// Read the batch query's parameters (`cursor`, `since`, `limit`, `domain`).
pub fn parse_batch_query(pairs: &[(String, String)]) -> Result<BatchQuery, QueryError> {
    let mut seen: Vec<&str> = Vec::new();
    let (mut cursor, mut since, mut limit, mut domain) = (None, None, None, None);
    for (k, v) in pairs {
        if seen.contains(&k.as_str()) {
            return Err(QueryError::Repeated(k.clone()));
        }
        seen.push(k);
        match k.as_str() {
            "cursor" => cursor = Some(decode_cursor(v).ok_or(QueryError::Cursor(v.clone()))?),
            "since" => since = Some(parse_rfc3339(v).ok_or(QueryError::Since(v.clone()))?),
            "limit" => {
                limit = Some(
                    v.parse::<usize>()
                        .ok()
                        .filter(|n| (MIN_LIMIT..=MAX_LIMIT).contains(n))
                        .ok_or(QueryError::Limit(v.clone()))?,
                )
            }
            "domain" => domain = Some(v.clone()).filter(|d| !d.is_empty()),
            _ => return Err(QueryError::Unknown(k.clone())),
        }
    }
    let start = match (cursor, since) {
        (Some(_), Some(_)) => return Err(QueryError::CursorAndSince),
        (Some(seq), None) => Start::After(seq),
        (None, Some(t)) => Start::Since(t),
        (None, None) => Start::After(0),
    };
    Ok(BatchQuery {
        start,
        limit: limit.unwrap_or(DEFAULT_LIMIT),
        domain,
    })
}

/// The cursor for "after change number `seq`". Opaque to clients; versioned so that its
/// meaning can change without misreading old ones.
pub fn encode_cursor(seq: i64) -> String {
    data_encoding::BASE64URL_NOPAD.encode(format!("v1:{seq}").as_bytes())
}

/// The change number of a cursor this server issued. Only the exact text [`encode_cursor`]
/// gives is one: `v1:+5`, `v1:05` or `v1:-0` were never issued, so they are refused, not
/// read as 5 or 0.
pub fn decode_cursor(cursor: &str) -> Option<i64> {
    let raw = data_encoding::BASE64URL_NOPAD
        .decode(cursor.as_bytes())
        .ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    text.strip_prefix("v1:")?
        .parse::<i64>()
        .ok()
        .filter(|&s| s >= 0 && encode_cursor(s) == cursor)
}

/// Unix seconds as RFC 3339 UTC (`2026-11-23T08:00:00Z`).
pub fn format_rfc3339(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// RFC 3339 `date-time` (§5.6) to unix seconds; fractions of a second are dropped.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 {
        return None;
    }
    if sec > 60 {
        return None;
    }
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        i += digits;
    }
    let offset = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] if rest.len() == 5 && rest[2] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    // A leap second counts as the last second of its minute.
    let sec = sec.min(59);
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the usual era-based conversion).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Result<BatchQuery, QueryError> {
        let v: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        parse_batch_query(&v)
    }

    #[test]
    fn rfc3339_round_trips_and_honours_offsets() {
        for t in [0, 951_782_400, 1_795_420_800, 4_102_444_799, -86_400] {
            assert_eq!(parse_rfc3339(&format_rfc3339(t)), Some(t), "{t}");
        }
        assert_eq!(
            parse_rfc3339("2026-11-23T09:00:00+01:00"),
            parse_rfc3339("2026-11-23T08:00:00Z")
        );
        assert_eq!(
            parse_rfc3339("2026-11-23T08:00:00.123456Z"),
            parse_rfc3339("2026-11-23T08:00:00Z")
        );
        assert_eq!(format_rfc3339(1_000_000_000), "2001-09-09T01:46:40Z");
        for bad in [
            "2026-02-29T00:00:00Z",
            "2026-11-23",
            "2026-11-23T24:00:00Z",
            "2026-11-23T08:00:00",
            "2026-11-23T08:00:00+0100",
            "x026-11-23T08:00:00Z",
            "2026-11-23T08:00:00.Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        assert!(parse_rfc3339("2024-02-29T00:00:00Z").is_some());
    }

    #[test]
    fn cursor_is_opaque_but_exact() {
        for s in [0, 1, 2500, i64::MAX] {
            assert_eq!(decode_cursor(&encode_cursor(s)), Some(s));
        }
        assert_eq!(decode_cursor("2500"), None);
        assert_eq!(decode_cursor(""), None);
        for never_issued in ["v1:-4", "v1:+5", "v1:05", "v1:-0", "v1: 5", "v2:5"] {
            let c = data_encoding::BASE64URL_NOPAD.encode(never_issued.as_bytes());
            assert_eq!(decode_cursor(&c), None, "{never_issued}");
        }
    }

    #[test]
    fn batch_parameters() {
        assert_eq!(
            q(&[]).unwrap(),
            BatchQuery {
                start: Start::After(0),
                limit: DEFAULT_LIMIT,
                domain: None
            }
        );
        let c = encode_cursor(42);
        let b = q(&[("cursor", &c), ("limit", "1000"), ("domain", "example.com")]).unwrap();
        assert_eq!(b.start, Start::After(42));
        assert_eq!(b.limit, 1000);
        assert_eq!(b.domain.as_deref(), Some("example.com"));
        assert_eq!(
            q(&[("since", "1970-01-01T00:01:40Z")]).unwrap().start,
            Start::Since(100)
        );
        assert!(matches!(q(&[("limit", "99")]), Err(QueryError::Limit(_))));
        assert!(matches!(q(&[("limit", "1001")]), Err(QueryError::Limit(_))));
        assert!(matches!(q(&[("limit", "ten")]), Err(QueryError::Limit(_))));
        assert!(matches!(
            q(&[("cursor", "zzz")]),
            Err(QueryError::Cursor(_))
        ));
        assert!(matches!(
            q(&[("cursor", &c), ("since", "2026-11-23T08:00:00Z")]),
            Err(QueryError::CursorAndSince)
        ));
        assert!(matches!(
            q(&[("limit", "100"), ("limit", "200")]),
            Err(QueryError::Repeated(_))
        ));
        assert!(matches!(q(&[("page", "2")]), Err(QueryError::Unknown(_))));
    }
}
