//! The property of the `system_toml` fuzz target, shared with the stable replay test
//! (`crates/engine/tests/fuzz_corpus.rs`): the system document import as `tessera config
//! import` and `PUT /api/v1/admin/config` run it (`tessera_config::parse_toml`, then
//! `tessera_engine::compile`, with every problem located in the text).
//!
//! Input: the TOML document.

use std::net::IpAddr;
use tessera_config::{ConfigError, SystemConfig, parse_toml, problem_error};

const ORIGIN: &str = "system.toml";

/// An error points into the text it came from.
fn position_property(src: &str, e: &ConfigError) {
    let said = e.to_string();
    assert!(said.starts_with(ORIGIN), "{said}");
    if let ConfigError::At { at, .. } = e {
        let lines = src.split('\n').count();
        assert!(at.line >= 1 && at.line <= lines, "{said}");
        let line = src.split('\n').nth(at.line - 1).unwrap_or("");
        assert!(
            at.column >= 1 && at.column <= line.chars().count() + 1,
            "{said}"
        );
    }
}

/// Runs the property on one input; returns whether the document compiled.
pub fn check(data: &[u8]) -> bool {
    // Both import paths read text: a file as UTF-8, a JSON string.
    let Ok(src) = std::str::from_utf8(data) else {
        return false;
    };
    let cfg: SystemConfig = match parse_toml(src, ORIGIN) {
        Ok(cfg) => cfg,
        Err(e) => {
            position_property(src, &e);
            return false;
        }
    };
    // Export then import gives the same document, with and without its secrets.
    for doc in [cfg.clone(), cfg.redacted()] {
        let printed = doc.to_toml();
        let back: SystemConfig = parse_toml(&printed, "export")
            .unwrap_or_else(|e| panic!("an exported document does not import: {e}\n{printed}"));
        assert!(back == doc, "export changed the document:\n{printed}");
        assert_eq!(back.to_toml(), printed, "export is not stable");
    }
    let published = match tessera_engine::compile(&cfg, 1) {
        Ok(p) => p,
        Err(problems) => {
            assert!(!problems.is_empty());
            for p in &problems {
                assert!(!p.message.is_empty());
                position_property(src, &problem_error(src, ORIGIN, p));
            }
            return false;
        }
    };
    // Everything the document defines is there, and every client is found by its address.
    assert_eq!(published.clients().len(), cfg.clients.len());
    assert_eq!(published.api_clients().len(), cfg.api_clients.len());
    for m in &cfg.methods {
        assert!(published.method(&m.name).is_some(), "method {:?}", m.name);
    }
    for c in &cfg.clients {
        let net: tessera_config::Cidr = c.address.parse().expect("a published address parses");
        let addr: IpAddr = net.addr();
        let found = published
            .client_for(addr)
            .expect("a client is found by its address");
        assert!(found.network.contains(addr));
        assert!(
            found.network.prefix() >= net.prefix(),
            "a less specific client won"
        );
        assert!(!found.secret.is_empty());
    }
    true
}
