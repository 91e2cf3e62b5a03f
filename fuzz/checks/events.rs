//! The property of the `events` fuzz target, shared with the stable replay test
//! (`crates/engine/tests/fuzz_corpus.rs`): the `POST /api/v1/events` body as the server decodes
//! and checks it (`events::decode_events`).
//!
//! Input: the request body.

use tessera_engine::accounting::{IdentityEvent, Source};
use tessera_engine::events::{EventsError, MAX_EVENTS, MAX_GROUPS, MAX_TEXT, decode_events};

const CLIENT: &str = "feeder";
const NOW: u64 = 1_795_420_800;

fn text_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_TEXT && !s.chars().any(char::is_control)
}

/// Runs the property on one input; returns whether the body was accepted.
pub fn check(data: &[u8]) -> bool {
    let decoded = decode_events(data, CLIENT, NOW);
    let changes = match decoded {
        Ok(changes) => changes,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            match e {
                EventsError::Count(n) => assert!(n == 0 || n > MAX_EVENTS),
                EventsError::Event { index, .. } => assert!(index < MAX_EVENTS),
                EventsError::Json(_) => {}
            }
            return false;
        }
    };
    assert!((1..=MAX_EVENTS).contains(&changes.len()));
    for c in &changes {
        match c {
            IdentityEvent::Logon {
                user,
                domain,
                groups,
                source,
                session_id,
                client,
                now,
                ..
            } => {
                assert!(text_ok(user), "{user:?}");
                assert!(domain.as_deref().is_none_or(text_ok), "{domain:?}");
                assert!(groups.len() <= MAX_GROUPS && groups.iter().all(|g| text_ok(g)));
                assert!(session_id.is_empty() || text_ok(session_id));
                assert_eq!((client.as_str(), *now, *source), (CLIENT, NOW, Source::Api));
            }
            IdentityEvent::Release { user, now, .. } => {
                assert!(user.as_deref().is_none_or(text_ok), "{user:?}");
                assert_eq!(*now, NOW);
            }
            other => panic!("an API client cannot post {other:?}"),
        }
    }
    true
}
