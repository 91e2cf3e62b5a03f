//! PostgreSQL-only behaviour of the storage (the rest is the conformance suite's): TLS to the
//! database with libpq's sslmodes, nodes migrating together, and the password kept out of
//! every message.

#[path = "support/temp_pg.rs"]
mod temp_pg;

use std::sync::Arc;
use temp_pg::TempPg;
use tessera_store::{MasterKey, Storage, StorageOptions};

fn key() -> MasterKey {
    MasterKey::from_bytes(&[5; 32])
}

/// A CA, and a certificate for `localhost`/127.0.0.1 signed by it: (ca_pem, cert_pem, key_pem).
fn certificates() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "tessera test database CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server =
        rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let server_cert = server.signed_by(&server_key, &issuer).unwrap();
    (ca_cert.pem(), server_cert.pem(), server_key.serialize_pem())
}

fn options(pg: &TempPg, db: &str, sslmode: &str, ca: Option<&std::path::Path>) -> StorageOptions {
    StorageOptions {
        url: pg
            .url(db)
            .replace("sslmode=disable", &format!("sslmode={sslmode}")),
        password_file: Some(pg.password_file().to_owned()),
        ca_file: ca.map(ToOwned::to_owned),
        pool_size: Some(2),
        ..StorageOptions::default()
    }
}

#[test]
fn tls_to_the_database_follows_sslmode() {
    let (ca, cert, server_key) = certificates();
    let pg = TempPg::start_with_tls(&cert, &server_key);
    let db = pg.database("tls");
    let dir = std::env::temp_dir().join(format!("tessera-pg-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &ca).unwrap();
    let (other_ca, _, _) = certificates();
    let other_ca_file = dir.join("other-ca.pem");
    std::fs::write(&other_ca_file, &other_ca).unwrap();

    // The server's certificate verifies against the right CA, name and all.
    let s = Storage::open(&options(&pg, &db, "verify-full", Some(&ca_file)), key()).unwrap();
    drop(s);
    // The connection really is encrypted: PostgreSQL says so for the session the pool keeps.
    let live = Storage::open(&options(&pg, &db, "verify-ca", Some(&ca_file)), key()).unwrap();
    let encrypted: u32 = pg
        .psql(
            &db,
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE s.ssl AND a.application_name = 'tessera'",
        )
        .parse()
        .unwrap();
    assert!(encrypted >= 1, "no encrypted tessera session");
    drop(live);

    // Another CA: refused, saying why, for verify-ca and verify-full alike.
    for mode in ["verify-ca", "verify-full"] {
        let e = Storage::open(&options(&pg, &db, mode, Some(&other_ca_file)), key()).unwrap_err();
        let text = e.to_string();
        assert!(
            text.to_lowercase().contains("certificate") || text.contains("tls"),
            "{mode}: {text}"
        );
    }
    // require without a CA file encrypts without verifying (libpq's meaning).
    Storage::open(&options(&pg, &db, "require", None), key()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn require_refuses_a_server_without_tls() {
    let pg = TempPg::shared();
    let db = pg.database("notls");
    let e = Storage::open(&options(pg, &db, "require", None), key()).unwrap_err();
    assert!(
        matches!(e, tessera_engine::StoreError::Unavailable(_)),
        "{e}"
    );
    // prefer falls back to plain text on a server without TLS.
    Storage::open(&options(pg, &db, "prefer", None), key()).unwrap();
}

#[test]
fn nodes_starting_together_migrate_once() {
    let pg = TempPg::shared();
    let db = pg.database("migrate");
    let opts = Arc::new(options(pg, &db, "disable", None));
    let nodes: Vec<_> = (0..6)
        .map(|_| {
            let opts = Arc::clone(&opts);
            std::thread::spawn(move || Storage::open(&opts, key()).map(|s| s.schema_version()))
        })
        .collect();
    for n in nodes {
        let version = n.join().unwrap().expect("every node opens").unwrap();
        assert!(version >= 1);
    }
    let applied = pg.psql(
        &db,
        "SELECT count(*), count(DISTINCT version) FROM schema_migrations",
    );
    let (all, distinct) = applied.split_once('|').unwrap();
    assert_eq!(all, distinct, "a migration recorded twice: {applied}");
    assert_eq!(
        pg.psql(
            &db,
            "SELECT count(*) FROM store_info WHERE key = 'key_check'"
        ),
        "1"
    );
}

#[test]
fn the_password_is_in_no_message() {
    let pg = TempPg::shared();
    let db = pg.database("secret");
    let dir = std::env::temp_dir().join(format!("tessera-pg-pw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A wrong password in the file, and one in the URL: neither may appear anywhere.
    let wrong = dir.join("wrong");
    std::fs::write(&wrong, "not-the-password-4711\n").unwrap();
    let mut opts = options(pg, &db, "disable", None);
    opts.password_file = Some(wrong);
    let e = Storage::open(&opts, key()).unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(!text.contains("not-the-password-4711"), "{text}");
    assert!(text.contains("password authentication failed"), "{text}");

    let in_url = StorageOptions {
        url: pg.url_with_password(&db),
        ..StorageOptions::default()
    };
    let s = Storage::open(&in_url, key()).unwrap();
    let shown = format!("{} {s:?} {in_url:?}", s.describe());
    assert!(!shown.contains(temp_pg::PG_PASSWORD), "{shown}");
    let bad_db = StorageOptions {
        url: pg.url_with_password("no_such_database"),
        ..StorageOptions::default()
    };
    let e = Storage::open(&bad_db, key()).unwrap_err();
    assert!(!format!("{e} {e:?}").contains(temp_pg::PG_PASSWORD), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
