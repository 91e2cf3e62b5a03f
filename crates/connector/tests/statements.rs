//! Every statement of the SPEC §8 hierarchy: its default, a value it accepts (with the range
//! boundaries), what the typed configuration holds, the warnings, and the round trip
//! parse → render → parse for each configuration.

use std::net::IpAddr;
use std::time::Duration;

use tessera_connector::{
    Address, ConnectMethod, ConnectorConfig, Diagnostic, IpQuery, Problem, check, parse, render,
};

/// A valid file with `conn` added to `connection`, `server` to `primary`, `im` to
/// `identity-management` and `top` at the end.
fn file(conn: &str, server: &str, im: &str, top: &str) -> String {
    format!(
        "services {{
    user-identification {{
        identity-management {{
            connection {{
                {conn}
                primary {{
                    address 192.0.2.20;
                    client-id srx-1;
                    client-secret \"s3cret\";
                    ca-profile tessera-ca;
                    {server}
                }}
            }}
            {im}
        }}
    }}
}}
security {{ pki {{ ca-profile tessera-ca {{ ca-identity tessera-ca; certificate-file \"/etc/tessera/ca.pem\"; }} }} }}
{top}
"
    )
}

/// Parses, insists on no error, and checks the round trip on the way.
fn ok(text: &str) -> (ConnectorConfig, Vec<Diagnostic>) {
    let parsed = parse(text).unwrap_or_else(|e| panic!("{text}\n{e}"));
    round_trip(&parsed.config);
    (parsed.config, parsed.warnings)
}

fn config(text: &str) -> ConnectorConfig {
    let (config, warnings) = ok(text);
    assert_eq!(warnings, [], "{text}");
    config
}

fn round_trip(config: &ConnectorConfig) {
    let printed = render(config);
    let again = parse(&printed).unwrap_or_else(|e| panic!("{printed}\n{e}"));
    assert_eq!(&again.config, config, "{printed}");
    assert_eq!(render(&again.config), printed);
}

/// The one error the text gives.
fn error(text: &str) -> Diagnostic {
    let report = check(text);
    let errors: Vec<_> = report.errors().cloned().collect();
    assert_eq!(errors.len(), 1, "{text}\n{errors:?}");
    errors.into_iter().next().unwrap()
}

#[test]
fn minimal_file_gets_every_default() {
    let c = config(&file("", "", "", ""));
    assert_eq!(c.connection.connect_method, ConnectMethod::Https);
    assert_eq!(c.connection.port, 443);
    assert_eq!(c.connection.token_api, "/api/v1/oauth/token");
    assert_eq!(c.connection.query_api, "/api/v1/identities");
    assert_eq!(c.connection.secondary, None);
    assert_eq!(c.batch_query.items_per_batch, 200);
    assert_eq!(c.batch_query.query_interval, 5);
    assert_eq!(
        c.ip_query,
        IpQuery::Enabled {
            query_delay_time: 0
        }
    );
    assert_eq!(c.authentication_entry_timeout, 30);
    assert_eq!(c.invalid_authentication_entry_timeout, 30);
    assert_eq!(c.filter.domain, None);
    let p = &c.connection.primary;
    assert_eq!(p.address, Address::Ip("192.0.2.20".parse().unwrap()));
    assert_eq!(p.client_id, "srx-1");
    assert_eq!(p.client_secret.expose(), "s3cret");
    assert_eq!(p.ca_profile.as_deref(), Some("tessera-ca"));
    assert_eq!(
        (&p.interface, &p.routing_instance, &p.source),
        (&None, &None, &None)
    );
    assert_eq!(c.ca_profiles.len(), 1);
    assert_eq!(c.ca_profiles[0].ca_identity, "tessera-ca");
}

#[test]
fn connection_statements() {
    let c = config(&file(
        "connect-method https; port 8443; token-api /oauth2/token; query-api \"/v2/ids\";",
        "",
        "",
        "",
    ));
    assert_eq!(c.connection.connect_method, ConnectMethod::Https);
    assert_eq!(c.connection.port, 8443);
    assert_eq!(c.connection.token_api, "/oauth2/token");
    assert_eq!(c.connection.query_api, "/v2/ids");
    for port in [1u16, 65535] {
        assert_eq!(
            config(&file(&format!("port {port};"), "", "", ""))
                .connection
                .port,
            port
        );
    }
}

#[test]
fn connect_method_http_warns_about_cleartext_instead_of_verification() {
    let (c, warnings) = ok(&file("connect-method http;", "", "", ""));
    assert_eq!(c.connection.connect_method, ConnectMethod::Http);
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].problem, Problem::Cleartext);
    assert_eq!((warnings[0].line, warnings[0].col), (5, 32));
}

#[test]
fn server_statements() {
    let c = config(&file(
        "",
        "interface eth1; routing-instance vrf-blue; source 192.0.2.1;",
        "",
        "",
    ));
    let p = &c.connection.primary;
    assert_eq!(p.interface.as_deref(), Some("eth1"));
    assert_eq!(p.routing_instance.as_deref(), Some("vrf-blue"));
    assert_eq!(p.source, Some("192.0.2.1".parse::<IpAddr>().unwrap()));
}

#[test]
fn addresses_ipv4_ipv6_and_host_names() {
    for (written, expected) in [
        ("192.0.2.20", Address::Ip("192.0.2.20".parse().unwrap())),
        ("2001:db8::20", Address::Ip("2001:db8::20".parse().unwrap())),
        (
            "\"2001:DB8:0:0::20\"",
            Address::Ip("2001:db8::20".parse().unwrap()),
        ),
        ("tessera", Address::Host("tessera".into())),
        ("id-1.Example.COM", Address::Host("id-1.Example.COM".into())),
    ] {
        let text = file("", "", "", "").replace("192.0.2.20", written);
        assert_eq!(
            config(&text).connection.primary.address,
            expected,
            "{written}"
        );
    }
    let text = file("", "source 2001:db8::1;", "", "").replace("192.0.2.20", "2001:db8::20");
    assert_eq!(
        config(&text).connection.primary.source,
        Some("2001:db8::1".parse().unwrap())
    );
    // A host name says nothing about the family, so any source goes.
    let text = file("", "source 2001:db8::1;", "", "").replace("192.0.2.20", "tessera.example");
    config(&text);
}

#[test]
fn secondary_server() {
    let secondary = "secondary {
                    address 2001:db8::21;
                    client-id srx-2;
                    client-secret \"other secret\";
                    ca-profile tessera-ca;
                    interface eth2;
                    routing-instance red;
                    source 2001:db8::1;
                }";
    let text = file("", "", "", "").replace(
        "            }\n            \n",
        &format!("                {secondary}\n            }}\n"),
    );
    let c = config(&text);
    let s = c.connection.secondary.as_ref().unwrap();
    assert_eq!(s.address, Address::Ip("2001:db8::21".parse().unwrap()));
    assert_eq!(s.client_id, "srx-2");
    assert_eq!(s.client_secret.expose(), "other secret");
    assert_eq!(s.interface.as_deref(), Some("eth2"));
    assert_eq!(s.routing_instance.as_deref(), Some("red"));
    assert_eq!(c.servers().count(), 2);
}

#[test]
fn batch_query_statements_and_ranges() {
    for (items, interval) in [(100, 1), (1000, 60), (350, 17)] {
        let c = config(&file(
            "",
            "",
            &format!("batch-query {{ items-per-batch {items}; query-interval {interval}; }}"),
            "",
        ));
        assert_eq!(c.batch_query.items_per_batch, items);
        assert_eq!(c.batch_query.query_interval, interval);
    }
    for (bad, range) in [
        ("items-per-batch 99", "100..1000"),
        ("items-per-batch 1001", "100..1000"),
        ("query-interval 0", "1..60 (seconds)"),
        ("query-interval 61", "1..60 (seconds)"),
    ] {
        let e = error(&file("", "", &format!("batch-query {{ {bad}; }}"), ""));
        assert!(
            matches!(e.problem, Problem::OutOfRange { range: r, .. } if r == range),
            "{bad}: {e}"
        );
    }
}

#[test]
fn ip_query_and_no_ip_query() {
    for delay in [0, 1, 60] {
        let c = config(&file(
            "",
            "",
            &format!("ip-query {{ query-delay-time {delay}; }}"),
            "",
        ));
        assert_eq!(
            c.ip_query,
            IpQuery::Enabled {
                query_delay_time: delay
            }
        );
    }
    // An empty container, in both spellings.
    for empty in ["ip-query;", "ip-query { }"] {
        assert_eq!(
            config(&file("", "", empty, "")).ip_query,
            IpQuery::Enabled {
                query_delay_time: 0
            }
        );
    }
    assert_eq!(
        config(&file("", "", "no-ip-query;", "")).ip_query,
        IpQuery::Disabled
    );
    let e = error(&file("", "", "ip-query { query-delay-time 61; }", ""));
    assert!(matches!(e.problem, Problem::OutOfRange { .. }), "{e}");
}

#[test]
fn entry_timeouts() {
    for minutes in [0u32, 10, 720, 1440] {
        let c = config(&file(
            "",
            "",
            &format!(
                "authentication-entry-timeout {minutes}; invalid-authentication-entry-timeout {minutes};"
            ),
            "",
        ));
        assert_eq!(c.authentication_entry_timeout, minutes);
        assert_eq!(c.invalid_authentication_entry_timeout, minutes);
        let ttl = (minutes > 0).then(|| Duration::from_secs(u64::from(minutes) * 60));
        assert_eq!(c.authentication_entry_ttl(), ttl);
        assert_eq!(c.invalid_authentication_entry_ttl(), ttl);
    }
    for minutes in [1, 9, 1441, 100_000] {
        for statement in [
            "authentication-entry-timeout",
            "invalid-authentication-entry-timeout",
        ] {
            let e = error(&file("", "", &format!("{statement} {minutes};"), ""));
            assert!(matches!(e.problem, Problem::OutOfRange { .. }), "{e}");
        }
    }
}

#[test]
fn filter_domain() {
    let c = config(&file("", "", "filter { domain corp.example.com; }", ""));
    assert_eq!(c.filter.domain.as_deref(), Some("corp.example.com"));
}

#[test]
fn several_ca_profiles() {
    // Two `security` blocks are a duplicate; a second profile goes into the first block.
    let text = file(
        "",
        "",
        "",
        "security { pki { ca-profile other { ca-identity other-ca; certificate-file x.pem; } } }",
    );
    let e = error(&text);
    assert_eq!((e.line, e.col), (19, 1));
    assert!(matches!(e.problem, Problem::Duplicate { .. }), "{e}");
    let text = file("", "", "", "").replace(
        "} } }\n",
        "} ca-profile other { ca-identity other-ca; certificate-file \"/etc/ssl/other ca.pem\"; } } }\n",
    );
    let c = config(&text.replace("ca-profile tessera-ca;", "ca-profile other;"));
    assert_eq!(c.ca_profiles.len(), 2);
    let other = c.ca_profile_for(&c.connection.primary).unwrap();
    assert_eq!(other.name, "other");
    assert_eq!(other.ca_identity, "other-ca");
    assert_eq!(other.certificate_file, "/etc/ssl/other ca.pem");
}

#[test]
fn server_without_ca_profile_is_a_warning() {
    let text = file("", "", "", "").replace("                    ca-profile tessera-ca;\n", "");
    let (c, warnings) = ok(&text);
    assert_eq!(c.connection.primary.ca_profile, None);
    assert_eq!(warnings.len(), 1);
    assert_eq!((warnings[0].line, warnings[0].col), (6, 17));
    assert_eq!(
        warnings[0].to_string(),
        "6:17: warning: `primary` has no `ca-profile`: the server certificate will not be verified"
    );
}

#[test]
fn inactive_statements_are_ignored_with_a_warning() {
    let text = file(
        "inactive: port 8443;",
        "inactive: interface eth9;",
        "inactive: filter { domain example.com; }",
        "",
    );
    let (c, warnings) = ok(&text);
    assert_eq!(c.connection.port, 443);
    assert_eq!(c.connection.primary.interface, None);
    assert_eq!(c.filter.domain, None);
    let shown: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "5:17: warning: inactive statement `port` is ignored",
            "11:21: warning: inactive statement `interface` is ignored",
            "14:13: warning: inactive statement `filter` is ignored",
        ]
    );
    // What is inside an inactive block is not checked.
    let text = file(
        "",
        "",
        "inactive: filter { domain \"not a domain\"; bogus; }",
        "",
    );
    assert_eq!(ok(&text).1.len(), 1);
}

#[test]
fn comments_quotes_and_layout_do_not_matter() {
    let plain = config(&file(
        "port 8443;",
        "",
        "filter { domain example.com; }",
        "",
    ));
    let text = "# leading comment\n/* block\n   comment */ services { user-identification {\n\
        identity-management { connection { port /* inline */ \"8443\"; primary { address\n\
        \"192.0.2.20\"; client-id \"srx-1\"; client-secret \"s3cret\"; # trailing\n\
        ca-profile \"tessera-ca\"; } } filter { domain example.com; } } } }\r\n\
        security{pki{ca-profile tessera-ca{ca-identity tessera-ca;certificate-file \"/etc/tessera/ca.pem\";}}}";
    assert_eq!(config(text), plain);
    let crlf = file("port 8443;", "", "filter { domain example.com; }", "").replace('\n', "\r\n");
    assert_eq!(config(&crlf), plain);
}

#[test]
fn secrets_with_special_characters_round_trip() {
    for secret in [
        r#"a\"b"#,
        r"back\\slash",
        r"tab\there",
        "semi;colon {brace} [x] #hash /*c*/",
        "ünïcödé",
    ] {
        let text = file("", "", "", "").replace("\"s3cret\"", &format!("\"{secret}\""));
        let c = config(&text);
        let printed = render(&c);
        assert!(printed.contains("## SECRET-DATA"));
        assert_eq!(
            parse(&printed)
                .unwrap()
                .config
                .connection
                .primary
                .client_secret,
            c.connection.primary.client_secret
        );
    }
}

#[test]
fn active_directory_access_is_rejected_beside_identity_management() {
    let text = file("", "", "", "").replace(
        "    user-identification {\n",
        "    user-identification {\n        active-directory-access { domain example.com { user { name x; } } }\n",
    );
    let e = error(&text);
    assert_eq!((e.line, e.col), (3, 9));
    assert_eq!(
        e.problem,
        Problem::ActiveDirectoryBeside {
            identity_management: tessera_connector::Pos { line: 4, col: 9 }
        }
    );
}

#[test]
fn errors_carry_their_position_in_display() {
    let e = error(&file("port 0;", "", "", ""));
    assert_eq!(
        e.to_string(),
        "5:22: error: `port` value 0 is out of range: expected 1..65535"
    );
    assert_eq!(
        e.with_origin("/etc/tessera/connector.conf").to_string(),
        "/etc/tessera/connector.conf:5:22: error: `port` value 0 is out of range: expected 1..65535"
    );
    let err = parse(&file("port 0; retry 3;", "", "", "")).unwrap_err();
    assert_eq!(err.errors.len(), 2);
    assert_eq!(
        err.to_string(),
        "5:22: error: `port` value 0 is out of range: expected 1..65535\n\
         5:25: error: unknown statement `retry` in `connection`: expected one of `connect-method`, `port`, `token-api`, `query-api`, `primary`, `secondary`"
    );
}
