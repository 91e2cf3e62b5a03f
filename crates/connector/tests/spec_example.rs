//! The example of SPEC §8, committed verbatim as `tests/data/spec-example.conf`.
//!
//! Verbatim, its `secondary { ...same statements... }` line is a placeholder, not a statement,
//! and the parser says so at that line. `spec-example-complete.conf` is the same file with
//! that one line filled in; it parses to exactly the values the example shows.

use std::net::{IpAddr, Ipv4Addr};

use tessera_connector::{
    Address, BatchQuery, CaProfile, ClientSecret, ConnectMethod, Connection, ConnectorConfig,
    Filter, IpQuery, Problem, Role, Server, SyntaxErrorKind, check, parse, parse_tree, render,
    render_tree, same_tree,
};

const VERBATIM: &str = include_str!("data/spec-example.conf");
const COMPLETE: &str = include_str!("data/spec-example-complete.conf");

#[test]
fn verbatim_example_stops_at_the_placeholder_line() {
    let report = check(VERBATIM);
    assert_eq!(report.diagnostics.len(), 1);
    let d = &report.diagnostics[0];
    assert_eq!((d.line, d.col), (18, 51));
    assert_eq!(
        d.problem,
        Problem::Syntax(SyntaxErrorKind::Unterminated {
            statement: "...same".into(),
            found: "`}`".into()
        })
    );
    assert_eq!(
        d.to_string(),
        "18:51: error: expected `;` or `{` to end the statement `...same`, found `}`"
    );
    assert!(parse(VERBATIM).is_err());
}

#[test]
fn complete_file_differs_from_the_spec_only_in_the_placeholder_line() {
    let differing: Vec<usize> = VERBATIM
        .lines()
        .zip(COMPLETE.lines())
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(differing, [18]);
    assert_eq!(VERBATIM.lines().count(), COMPLETE.lines().count());
}

fn expected() -> ConnectorConfig {
    ConnectorConfig {
        connection: Connection {
            connect_method: ConnectMethod::Https,
            port: 8443,
            token_api: "/api/v1/oauth/token".into(),
            query_api: "/api/v1/identities".into(),
            primary: Server {
                address: Address::Ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 20))),
                client_id: "srx-1".into(),
                client_secret: ClientSecret::new("..."),
                ca_profile: Some("tessera-ca".into()),
                interface: Some("eth1".into()),
                routing_instance: Some("blue".into()),
                source: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
            },
            secondary: Some(Server {
                address: Address::Host("tessera-2.example.com".into()),
                client_id: "srx-1".into(),
                client_secret: ClientSecret::new("..."),
                ca_profile: Some("tessera-ca".into()),
                interface: None,
                routing_instance: None,
                source: None,
            }),
        },
        batch_query: BatchQuery {
            items_per_batch: 200,
            query_interval: 5,
        },
        ip_query: IpQuery::Enabled {
            query_delay_time: 0,
        },
        authentication_entry_timeout: 30,
        invalid_authentication_entry_timeout: 30,
        filter: Filter {
            domain: Some("example.com".into()),
        },
        ca_profiles: vec![CaProfile {
            name: "tessera-ca".into(),
            ca_identity: "tessera-ca".into(),
            certificate_file: "/etc/tessera/ca.pem".into(),
        }],
    }
}

#[test]
fn complete_example_parses_to_the_values_shown() {
    let parsed = parse(COMPLETE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed.config, expected());
    assert_eq!(parsed.warnings, []);
    let c = &parsed.config;
    let profile = c.ca_profile_for(&c.connection.primary).unwrap();
    assert_eq!(
        profile.certificate_path(),
        std::path::Path::new("/etc/tessera/ca.pem")
    );
    let roles: Vec<Role> = c.servers().map(|(r, _)| r).collect();
    assert_eq!(roles, [Role::Primary, Role::Secondary]);
    assert_eq!(
        c.authentication_entry_ttl(),
        Some(std::time::Duration::from_secs(30 * 60))
    );
}

#[test]
fn debug_output_never_shows_the_secret() {
    let mut config = expected();
    config.connection.primary.client_secret = ClientSecret::new("hunter2-very-secret");
    let debug = format!("{config:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("<redacted>"));
}

const CANONICAL: &str = r#"services {
    user-identification {
        identity-management {
            connection {
                port 8443;
                primary {
                    address 192.0.2.20;
                    client-id srx-1;
                    client-secret "..."; ## SECRET-DATA
                    ca-profile tessera-ca;
                    interface eth1;
                    routing-instance blue;
                    source 192.0.2.1;
                }
                secondary {
                    address tessera-2.example.com;
                    client-id srx-1;
                    client-secret "..."; ## SECRET-DATA
                    ca-profile tessera-ca;
                }
            }
            filter {
                domain example.com;
            }
        }
    }
}
security {
    pki {
        ca-profile tessera-ca {
            ca-identity tessera-ca;
            certificate-file "/etc/tessera/ca.pem";
        }
    }
}
"#;

#[test]
fn render_is_canonical_round_trips_and_is_idempotent() {
    let config = parse(COMPLETE).unwrap().config;
    let printed = render(&config);
    assert_eq!(printed, CANONICAL);
    let again = parse(&printed).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.config, config);
    assert_eq!(again.warnings, []);
    assert_eq!(render(&again.config), printed);
}

const CANONICAL_TREE: &str = r#"services {
    user-identification {
        identity-management {
            connection {
                connect-method https;
                port 8443;
                token-api /api/v1/oauth/token;
                query-api /api/v1/identities;
                primary {
                    address 192.0.2.20;
                    client-id srx-1;
                    client-secret ...;
                    ca-profile tessera-ca;
                    interface eth1;
                    routing-instance blue;
                    source 192.0.2.1;
                }
                secondary {
                    address tessera-2.example.com;
                    client-id srx-1;
                    client-secret ...;
                    ca-profile tessera-ca;
                }
            }
            batch-query {
                items-per-batch 200;
                query-interval 5;
            }
            ip-query {
                query-delay-time 0;
            }
            authentication-entry-timeout 30;
            invalid-authentication-entry-timeout 30;
            filter {
                domain example.com;
            }
        }
    }
}
security {
    pki {
        ca-profile tessera-ca {
            ca-identity tessera-ca;
            certificate-file /etc/tessera/ca.pem;
        }
    }
}
"#;

#[test]
fn tree_printer_keeps_every_statement_and_drops_comments() {
    let tree = parse_tree(COMPLETE).unwrap();
    let printed = render_tree(&tree);
    assert_eq!(printed, CANONICAL_TREE);
    let again = parse_tree(&printed).unwrap();
    assert!(same_tree(&tree, &again));
    assert_eq!(render_tree(&again), printed);
    assert_eq!(parse(&printed).unwrap().config, expected());
}
