//! Which user a RADIUS User-Name stands for: `DOMAIN\user` and `user@realm` (SPEC §3), under
//! the policy's `realm` handling. One function for every method kind.

use crate::accounting::split_domain;
use tessera_config::{Policy, RealmHandling};

/// The user name `name` maps to under `policy`, or `None` when the policy refuses it
/// (`realm = "require"` and no listed realm).
pub fn user_for(name: &str, policy: &Policy) -> Option<String> {
    let (bare, domain) = split_domain(name);
    let listed = |d: &str| {
        policy
            .realms
            .iter()
            .any(|r| r.trim().eq_ignore_ascii_case(d))
    };
    match (policy.realm, domain) {
        (RealmHandling::Keep, _) => Some(name.to_owned()),
        (RealmHandling::Strip, None) => Some(bare),
        (RealmHandling::Strip, Some(d)) if policy.realms.is_empty() || listed(&d) => Some(bare),
        (RealmHandling::Strip, Some(_)) => Some(name.to_owned()),
        (RealmHandling::Require, Some(d)) if listed(&d) => Some(bare),
        (RealmHandling::Require, _) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(realm: RealmHandling, realms: &[&str]) -> Policy {
        Policy {
            realm,
            realms: realms.iter().map(|r| r.to_string()).collect(),
            ..Policy::default()
        }
    }

    #[test]
    fn strip_maps_both_forms_to_the_bare_name() {
        let p = policy(RealmHandling::Strip, &[]);
        assert_eq!(user_for("alice", &p).as_deref(), Some("alice"));
        assert_eq!(user_for("CORP\\alice", &p).as_deref(), Some("alice"));
        assert_eq!(user_for("alice@example.com", &p).as_deref(), Some("alice"));
    }

    #[test]
    fn strip_with_a_list_strips_only_listed_realms() {
        let p = policy(RealmHandling::Strip, &["example.com", "CORP"]);
        assert_eq!(user_for("corp\\alice", &p).as_deref(), Some("alice"));
        assert_eq!(user_for("alice@EXAMPLE.com", &p).as_deref(), Some("alice"));
        assert_eq!(
            user_for("alice@elsewhere.org", &p).as_deref(),
            Some("alice@elsewhere.org")
        );
    }

    #[test]
    fn keep_uses_the_name_as_sent() {
        let p = policy(RealmHandling::Keep, &[]);
        assert_eq!(
            user_for("alice@example.com", &p).as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(user_for("CORP\\alice", &p).as_deref(), Some("CORP\\alice"));
    }

    #[test]
    fn require_refuses_bare_and_unlisted_names() {
        let p = policy(RealmHandling::Require, &["example.com"]);
        assert_eq!(user_for("alice@example.com", &p).as_deref(), Some("alice"));
        assert_eq!(user_for("alice", &p), None);
        assert_eq!(user_for("alice@other.com", &p), None);
        assert_eq!(user_for("OTHER\\alice", &p), None);
    }
}
