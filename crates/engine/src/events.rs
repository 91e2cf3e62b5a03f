//! The body of `POST /api/v1/events` (SPEC §7): logon and logoff events from another source,
//! decoded and checked into identity changes. Pure: the HTTP shell hands in the body, the
//! authenticated API client and `now`, and commits what comes out (all of it or nothing).
//!
//! The types are also the OpenAPI schema of the request (with the `openapi` feature).

use crate::accounting::{IdentityEvent, Source, split_domain};
use serde::Deserialize;
use std::net::IpAddr;

/// Logon and logoff events from another source, applied together or not at all.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EventsRequest {
    /// 1 to 1000 events, applied in order.
    pub events: Vec<Event>,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// `logon` or `logoff`.
    pub state: String,
    pub ip: String,
    /// Required for logon; for logoff, only that user's logon ends.
    pub user: Option<String>,
    /// When absent, taken from `DOMAIN\user` or `user@domain`.
    pub domain: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    pub session_id: Option<String>,
}

/// Most events in one request.
pub const MAX_EVENTS: usize = 1000;
/// Most groups in one logon.
pub const MAX_GROUPS: usize = 256;
/// Longest user, domain, group or session id, in bytes.
pub const MAX_TEXT: usize = 256;

/// Why an events body was refused; nothing of it is applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EventsError {
    #[error("the body is not a valid events document: {0}")]
    Json(String),
    #[error("send 1 to {MAX_EVENTS} events, not {0}")]
    Count(usize),
    #[error("events[{index}]: {message}")]
    Event { index: usize, message: String },
}

/// Decode and check an events body posted by API client `client`: every event or none.
pub fn decode_events(
    body: &[u8],
    client: &str,
    now: u64,
) -> Result<Vec<IdentityEvent>, EventsError> {
    let req: EventsRequest =
        serde_json::from_slice(body).map_err(|e| EventsError::Json(e.to_string()))?;
    if req.events.is_empty() || req.events.len() > MAX_EVENTS {
        return Err(EventsError::Count(req.events.len()));
    }
    req.events
        .into_iter()
        .enumerate()
        .map(|(index, e)| {
            to_change(e, client, now).map_err(|message| EventsError::Event { index, message })
        })
        .collect()
}

fn text_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_TEXT && !s.chars().any(char::is_control)
}

/// One event as an identity change.
fn to_change(e: Event, client: &str, now: u64) -> Result<IdentityEvent, String> {
    let ip: IpAddr =
        e.ip.parse()
            .map_err(|_| format!("ip {:?} is not an IPv4 or IPv6 address", e.ip))?;
    if let Some(u) = &e.user
        && !text_ok(u)
    {
        return Err("user must be 1 to 256 characters without control characters".into());
    }
    match e.state.as_str() {
        "logon" => {
            let name = e.user.ok_or("a logon needs a user")?;
            let (user, split) = split_domain(&name);
            let domain = e.domain.or(split);
            if e.groups.len() > MAX_GROUPS || !e.groups.iter().all(|g| text_ok(g)) {
                return Err(format!(
                    "groups: at most {MAX_GROUPS} names of 1 to 256 characters"
                ));
            }
            if !domain.as_deref().is_none_or(text_ok)
                || !e.session_id.as_deref().is_none_or(text_ok)
            {
                return Err("domain and session_id must be 1 to 256 characters".into());
            }
            Ok(IdentityEvent::Logon {
                ip,
                user,
                domain,
                groups: e.groups,
                source: Source::Api,
                session_id: e.session_id.unwrap_or_default(),
                client: client.to_owned(),
                now,
            })
        }
        "logoff" => Ok(IdentityEvent::Release {
            ip,
            user: e.user.map(|u| split_domain(&u).0),
            now,
        }),
        other => Err(format!("state {other:?} must be logon or logoff")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_applied_whole_or_refused_with_the_event_named() {
        let body = br#"{"events":[
            {"state":"logon","ip":"10.8.0.5","user":"EXAMPLE\\alice","groups":["vpn"]},
            {"state":"logoff","ip":"10.8.0.6","user":"bob@example.com"}]}"#;
        let changes = decode_events(body, "feeder", 7).unwrap();
        assert_eq!(
            changes,
            vec![
                IdentityEvent::Logon {
                    ip: "10.8.0.5".parse().unwrap(),
                    user: "alice".into(),
                    domain: Some("EXAMPLE".into()),
                    groups: vec!["vpn".into()],
                    source: Source::Api,
                    session_id: String::new(),
                    client: "feeder".into(),
                    now: 7,
                },
                IdentityEvent::Release {
                    ip: "10.8.0.6".parse().unwrap(),
                    user: Some("bob".into()),
                    now: 7,
                },
            ]
        );
        let bad = br#"{"events":[{"state":"logoff","ip":"10.0.0.1"},{"state":"logon","ip":"nope","user":"a"}]}"#;
        let e = decode_events(bad, "feeder", 7).unwrap_err();
        assert_eq!(
            e.to_string(),
            "events[1]: ip \"nope\" is not an IPv4 or IPv6 address"
        );
        assert_eq!(
            decode_events(br#"{"events":[]}"#, "f", 0),
            Err(EventsError::Count(0))
        );
        assert!(matches!(
            decode_events(br#"{"events":[],"extra":1}"#, "f", 0),
            Err(EventsError::Json(_))
        ));
    }
}
