//! LDAP text handling for `[[directory]]` (SPEC §5), pure: filter escaping (RFC 4515 §3),
//! the user filter, and group names from DNs (RFC 4514).

/// Escape a value for an LDAP search filter (RFC 4515 §3): `*`, `(`, `)`, `\` and NUL become
/// `\2a`, `\28`, `\29`, `\5c`, `\00`, so a user name can never change the filter's structure.
pub fn escape_filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// Is this directory Active Directory flavoured (`kind = "ad"`)?
pub fn is_ad(kind: &str) -> bool {
    kind.eq_ignore_ascii_case("ad")
}

/// The user filter with `{user}` replaced by the escaped name. Defaults:
/// `(sAMAccountName={user})` for AD, `(uid={user})` otherwise.
pub fn user_filter(template: Option<&str>, kind: &str, user: &str) -> String {
    let template = template.unwrap_or(if is_ad(kind) {
        "(sAMAccountName={user})"
    } else {
        "(uid={user})"
    });
    template.replace("{user}", &escape_filter_value(user))
}

/// The attribute that holds the canonical user name: the one the filter compares with
/// `{user}` when it is a simple `(attr={user})`, else the kind's default.
pub fn name_attribute(template: Option<&str>, kind: &str) -> String {
    let from_filter = template.and_then(|t| {
        let inner = t.strip_prefix('(')?.strip_suffix(')')?;
        let (attr, value) = inner.split_once('=')?;
        let simple = value == "{user}"
            && !attr.is_empty()
            && attr.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        simple.then(|| attr.to_owned())
    });
    from_filter.unwrap_or_else(|| {
        if is_ad(kind) {
            "sAMAccountName".into()
        } else {
            "uid".into()
        }
    })
}

/// The filter that finds every group a user is in, directly or through nesting, on Active
/// Directory: LDAP_MATCHING_RULE_IN_CHAIN (1.2.840.113556.1.4.1941) on `member`.
pub fn nested_groups_filter(user_dn: &str) -> String {
    format!(
        "(member:1.2.840.113556.1.4.1941:={})",
        escape_filter_value(user_dn)
    )
}

/// A group's name from its DN: the value of the first RDN (`CN=VPN Users,OU=Groups,...` →
/// `VPN Users`), with RFC 4514 escapes undone. A value that is not a DN is kept as is.
pub fn group_name(dn: &str) -> String {
    let first = split_rdn(dn);
    match first.split_once('=') {
        Some((_, v)) => unescape_dn_value(v.trim()),
        None => dn.to_owned(),
    }
}

/// The first RDN of a DN: up to the first `,` or `+` that is not escaped.
fn split_rdn(dn: &str) -> &str {
    let b = dn.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b',' | b'+' => return &dn[..i],
            _ => i += 1,
        }
    }
    dn
}

fn unescape_dn_value(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(byte) => {
                    out.push(byte);
                    i += 3;
                }
                None => {
                    out.push(b[i + 1]);
                    i += 2;
                }
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_metacharacters_are_escaped() {
        assert_eq!(escape_filter_value("a*"), "a\\2a");
        assert_eq!(
            escape_filter_value("*)(uid=*))(|(uid=*"),
            "\\2a\\29\\28uid=\\2a\\29\\29\\28|\\28uid=\\2a"
        );
        assert_eq!(escape_filter_value("a\\b\0"), "a\\5cb\\00");
        assert_eq!(escape_filter_value("Åsa Öberg"), "Åsa Öberg");
        assert_eq!(
            user_filter(None, "ldap", "x)(uid=*"),
            "(uid=x\\29\\28uid=\\2a)"
        );
        assert_eq!(
            user_filter(Some("(&(objectClass=person)(cn={user}))"), "ldap", "*"),
            "(&(objectClass=person)(cn=\\2a))"
        );
        assert_eq!(user_filter(None, "ad", "bob"), "(sAMAccountName=bob)");
    }

    #[test]
    fn the_name_attribute_follows_a_simple_filter() {
        assert_eq!(name_attribute(Some("(uid={user})"), "ldap"), "uid");
        assert_eq!(
            name_attribute(Some("(sAMAccountName={user})"), "ad"),
            "sAMAccountName"
        );
        assert_eq!(
            name_attribute(Some("(&(objectClass=user)(cn={user}))"), "ad"),
            "sAMAccountName"
        );
        assert_eq!(name_attribute(None, "ldap"), "uid");
    }

    #[test]
    fn group_names_come_from_the_first_rdn() {
        assert_eq!(
            group_name("CN=VPN Users,OU=Groups,DC=example,DC=com"),
            "VPN Users"
        );
        assert_eq!(group_name("cn=a\\,b,ou=g,dc=x"), "a,b");
        assert_eq!(group_name("cn=caf\\c3\\a9,dc=x"), "café");
        assert_eq!(group_name("vpn-users"), "vpn-users");
        assert_eq!(
            nested_groups_filter("CN=Bob (IT),DC=x"),
            "(member:1.2.840.113556.1.4.1941:=CN=Bob \\28IT\\29,DC=x)"
        );
    }
}
