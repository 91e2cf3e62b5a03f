//! The identity API (SPEC §7) end to end: the real `tessera serve` over HTTPS, driven by curl
//! (a real TLS client that verifies the server against the generated certificate), RADIUS
//! accounting by FreeRADIUS radclient, and a third-party OAuth 2.0 library (Python authlib).

#[allow(dead_code)]
mod common;

use common::https::Api;
use common::*;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

const SECRET: &str = "testing123-identity";
const API_SECRET: &str = "srx-secret-0123456789abcdef";
const PROM_SECRET: &str = "prometheus-secret-0123456789";

/// A RADIUS client and method (for accounting), and three API clients: `srx-1` may read,
/// `feeder` may also write, `prometheus` may scrape /metrics.
fn setup(t: &Tessera, extra: &str) {
    let cfg = t.write_file(
        "system.toml",
        &format!(
            "[[method]]\nname = \"vpn\"\nkind = \"otp\"\n\n\
             [[client]]\nname = \"pulse\"\naddress = \"127.0.0.1/32\"\nsecret = \"{SECRET}\"\nmethod = \"vpn\"\n\n\
             [[api_client]]\nclient_id = \"srx-1\"\nsecret = \"{API_SECRET}\"\nscopes = [\"identity:read\"]\n\n\
             [[api_client]]\nclient_id = \"feeder\"\nsecret = \"{API_SECRET}-feeder\"\nscopes = [\"identity:read\", \"identity:write\"]\n\n\
             [[api_client]]\nclient_id = \"prometheus\"\nsecret = \"{PROM_SECRET}\"\nscopes = [\"metrics:read\"]\n\n{extra}"
        ),
    );
    t.cli(&["config", "import", cfg.to_str().unwrap()]);
    t.cli(&["publish"]);
}

/// Start the server; returns (accounting port, HTTPS API).
fn start(t: &mut Tessera) -> (u16, Api) {
    let ports = t.start_with(&["serve"], 3);
    let api = Api::new(t, ports[2]);
    (ports[1], api)
}

/// One Accounting-Request by radclient: one try, 3 s (a loaded CI machine can take more than
/// 1 s for a server's first write; a wrong secret still gets no answer).
fn acct(port: u16, secret: &str, lines: &[&str]) -> Reply {
    radclient(port, "acct", secret, &(lines.join("\n") + "\n"), 3.0)
}

/// SPEC Flow C through the API: radclient sends Start / Interim-Update / Stop; the IP query
/// and the batch query (through curl, verifying TLS) show logon, then logoff. An accounting
/// packet with a wrong authenticator changes nothing the API shows.
#[test]
fn accounting_appears_in_the_api_over_tls() {
    let mut t = Tessera::new("api-acct");
    setup(&t, "");
    let (acct_port, api) = start(&mut t);
    let token = api.token("srx-1", API_SECRET);

    let r = api.get("/api/v1/identities/10.8.0.5", &token);
    assert_eq!((r.status, r.error()), (404, "not_found".into()));

    let session = [
        "User-Name = \"EXAMPLE\\\\alice\"",
        "Acct-Session-Id = \"s-1\"",
        "Framed-IP-Address = 10.8.0.5",
    ];
    let with = |status: &'static str| {
        let mut l = vec![status];
        l.extend(session);
        l
    };
    let r = acct(acct_port, SECRET, &with("Acct-Status-Type = Start"));
    assert_eq!(
        r.code.as_deref(),
        Some("Accounting-Response"),
        "{}",
        r.transcript
    );

    let e = api.get("/api/v1/identities/10.8.0.5", &token);
    assert_eq!(e.status, 200, "{}", e.body);
    let e = e.json();
    assert_eq!(e["user"], "alice");
    assert_eq!(e["domain"], "EXAMPLE");
    assert_eq!(e["state"], "logon");
    assert_eq!(e["source"], "radius-accounting");
    assert_eq!(e["client"], "pulse");
    assert_eq!(e["session_id"], "s-1");
    assert_eq!(e["groups"], serde_json::json!([]));
    assert!(e["start_time"].as_str().unwrap().ends_with('Z'));

    let b = api.get("/api/v1/identities?limit=100", &token).json();
    assert_eq!(b["entries"].as_array().unwrap().len(), 1);
    assert_eq!(b["more"], false);
    let cursor = b["cursor"].as_str().unwrap().to_owned();

    // A wrong shared secret: dropped, and nothing new after the cursor.
    let r = acct(
        acct_port,
        "not-the-secret",
        &with("Acct-Status-Type = Stop"),
    );
    r.assert_no_reply();
    let b = api
        .get(&format!("/api/v1/identities?cursor={cursor}"), &token)
        .json();
    assert_eq!(b["entries"], serde_json::json!([]), "{b}");
    assert_eq!(
        b["cursor"],
        cursor.as_str(),
        "an empty page keeps the cursor"
    );

    let r = acct(
        acct_port,
        SECRET,
        &with("Acct-Status-Type = Interim-Update"),
    );
    assert_eq!(r.code.as_deref(), Some("Accounting-Response"));
    assert_eq!(
        api.get("/api/v1/identities/10.8.0.5", &token).json()["state"],
        "logon"
    );

    let r = acct(acct_port, SECRET, &with("Acct-Status-Type = Stop"));
    assert_eq!(r.code.as_deref(), Some("Accounting-Response"));
    let e = api.get("/api/v1/identities/10.8.0.5", &token).json();
    assert_eq!(e["state"], "logoff");
    assert_eq!(e["user"], "alice");

    // The batch query resumes after the first change and sees the latest state once.
    let b = api
        .get(&format!("/api/v1/identities?cursor={cursor}"), &token)
        .json();
    let entries = b["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{b}");
    assert_eq!(entries[0]["state"], "logoff");

    // IPv6 spelled two ways is one address; garbage is a clear 400.
    let r = api.get("/api/v1/identities/2001:db8:0:0::1", &token);
    assert_eq!(r.status, 404);
    let r = api.get("/api/v1/identities/10.8.0.300", &token);
    assert_eq!((r.status, r.error()), (400, "invalid_request".into()));
    let r = api.get("/api/v1/identities?limit=5000", &token);
    assert_eq!((r.status, r.error()), (400, "invalid_request".into()));
    assert!(
        r.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("100")
    );

    let health = api.curl("/healthz", &[]);
    assert_eq!(health.status, 200);
    let metrics = api
        .get("/metrics", &api.token("prometheus", PROM_SECRET))
        .body;
    assert!(
        metrics.contains("tessera_radius_accounting_total 3"),
        "{metrics}"
    );
    assert!(metrics.contains("tessera_radius_drops_total{reason=\"bad_authenticator\"} 1"));
    assert!(metrics.contains("tessera_identities{state=\"logoff\"} 1"));
    t.stop().assert_clean_exit();
}

/// RFC 6749 §4.4 and §5.2 at the token endpoint, RFC 6750 at the resources.
#[test]
fn token_endpoint_speaks_rfc_6749() {
    let mut t = Tessera::new("api-token");
    setup(
        &t,
        "[[api_client]]\nclient_id = \"brief\"\nsecret = \"brief-secret-0123456789\"\ntoken_lifetime = \"2s\"\n",
    );
    let (_, api) = start(&mut t);

    // Both client authentication methods work and answer RFC 6749 §5.1.
    let basic = api.token_basic("srx-1", API_SECRET, "grant_type=client_credentials");
    assert_eq!(basic.status, 200, "{}", basic.body);
    let j = basic.json();
    assert_eq!(j["token_type"], "Bearer");
    assert_eq!(j["expires_in"], 8 * 3600);
    assert_eq!(j["scope"], "identity:read");
    assert_eq!(basic.header("cache-control").as_deref(), Some("no-store"));
    let post = api.token_post("srx-1", API_SECRET);
    assert_eq!(post.status, 200, "{}", post.body);
    assert_ne!(post.json()["access_token"], j["access_token"]);

    // Wrong secret and unknown client: the same 401 invalid_client with a challenge.
    let wrong = api.token_basic("srx-1", "wrong-secret", "grant_type=client_credentials");
    let unknown = api.token_basic("nobody", API_SECRET, "grant_type=client_credentials");
    for r in [&wrong, &unknown] {
        assert_eq!(
            (r.status, r.error()),
            (401, "invalid_client".into()),
            "{}",
            r.body
        );
        assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
    }
    assert_eq!(wrong.body, unknown.body);
    let r = api.token_post("srx-1", "wrong-secret");
    assert_eq!((r.status, r.error()), (401, "invalid_client".into()));

    let r = api.token_basic("srx-1", API_SECRET, "grant_type=password");
    assert_eq!(
        (r.status, r.error()),
        (400, "unsupported_grant_type".into())
    );
    let r = api.token_basic("srx-1", API_SECRET, "scope=identity:read");
    assert_eq!((r.status, r.error()), (400, "invalid_request".into()));
    let r = api.curl(
        "/api/v1/oauth/token",
        &[
            "-u",
            &format!("srx-1:{API_SECRET}"),
            "-H",
            "Content-Type: application/json",
            "-d",
            "{\"grant_type\":\"client_credentials\"}",
        ],
    );
    assert_eq!((r.status, r.error()), (400, "invalid_request".into()));
    let r = api.token_basic(
        "srx-1",
        API_SECRET,
        "grant_type=client_credentials&grant_type=client_credentials",
    );
    assert_eq!((r.status, r.error()), (400, "invalid_request".into()));
    let r = api.token_basic(
        "srx-1",
        API_SECRET,
        "grant_type=client_credentials&scope=identity:write",
    );
    assert_eq!((r.status, r.error()), (400, "invalid_scope".into()));

    // A token works only for its own scope.
    let read = api.token("srx-1", API_SECRET);
    assert_eq!(api.get("/api/v1/identities", &read).status, 200);
    let r = api.post_json("/api/v1/events", &read, "{\"events\":[]}");
    assert_eq!((r.status, r.error()), (403, "insufficient_scope".into()));
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("insufficient_scope")
    );
    let feeder = api.token_basic(
        "feeder",
        &format!("{API_SECRET}-feeder"),
        "grant_type=client_credentials&scope=identity:write",
    );
    assert_eq!(feeder.json()["scope"], "identity:write");
    let write_only = feeder.json()["access_token"].as_str().unwrap().to_owned();
    let r = api.get("/api/v1/identities", &write_only);
    assert_eq!((r.status, r.error()), (403, "insufficient_scope".into()));

    // No token, a made-up token: 401 with a Bearer challenge.
    let r = api.curl("/api/v1/identities", &[]);
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    let r = api.get("/api/v1/identities", "tsr_made-up");
    assert_eq!((r.status, r.error()), (401, "invalid_token".into()));

    // Expired.
    let brief = api.token("brief", "brief-secret-0123456789");
    assert_eq!(api.get("/api/v1/identities", &brief).status, 200);
    std::thread::sleep(std::time::Duration::from_millis(3100));
    let r = api.get("/api/v1/identities", &brief);
    assert_eq!((r.status, r.error()), (401, "invalid_token".into()));
    assert!(r.body.contains("expired"), "{}", r.body);

    // Revoked: a rotated secret (once published) ends the old tokens; a removed client too.
    let rotated = t.cli(&["apiclient", "rotate", "srx-1"]);
    assert!(rotated.contains("client_secret:"));
    assert_eq!(
        api.get("/api/v1/identities", &read).status,
        200,
        "not before publish"
    );
    t.cli(&["publish"]);
    wait_for(|| api.get("/api/v1/identities", &read).status == 401);
    let r = api.get("/api/v1/identities", &read);
    assert_eq!(r.error(), "invalid_token");
    let feeder_token = api.token("feeder", &format!("{API_SECRET}-feeder"));
    t.cli(&["apiclient", "remove", "feeder"]);
    t.cli(&["publish"]);
    wait_for(|| api.get("/api/v1/identities", &feeder_token).status == 401);
    t.stop().assert_clean_exit();
}

/// `n` token requests with a wrong secret for `id`, from `source` (one curl, one connection):
/// their statuses.
fn guesses(api: &Api, source: &str, id: &str, n: usize) -> Vec<u16> {
    let port = api.base.rsplit(':').next().unwrap();
    let mut c = Command::new("curl");
    c.args(["-sS", "--cacert"])
        .arg(&api.cacert)
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .args(["--interface", source])
        .args(["-u", &format!("{id}:not-the-secret")])
        .args(["-d", "grant_type=client_credentials"])
        .args(["-w", "%{http_code}\n"]);
    for _ in 0..n {
        c.args(["-o", "/dev/null"])
            .arg(format!("{}/api/v1/oauth/token", api.base));
    }
    let out = run_with_timeout(c, None);
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// Guessing is throttled per (client id, source address) and per source address, never per
/// client id alone: while 127.0.0.2 fails srx-1's secret 100 times, the real srx-1 (from
/// 127.0.0.1) still gets its token. A made-up id gets exactly the answers a real one gets
/// (401 five times, then 429 with Retry-After), so the throttle tells no one which ids exist.
/// Before: 5 failures from anywhere locked the real client out, and only real ids were
/// counted per id (429 after 5 for them, after 20 for made-up ones).
#[test]
fn token_guessing_cannot_lock_out_the_real_client() {
    let mut t = Tessera::new("api-throttle");
    setup(&t, "");
    let (_, api) = start(&mut t);
    let known = guesses(&api, "127.0.0.2", "srx-1", 100);
    assert_eq!(known.len(), 100, "{known:?}");
    assert!(known[..5].iter().all(|&s| s == 401), "{known:?}");
    assert!(known[5..].iter().all(|&s| s == 429), "{known:?}");
    // The real client, from its own address, is not affected.
    api.token("srx-1", API_SECRET);
    let r = api.get("/api/v1/identities", &api.token("srx-1", API_SECRET));
    assert_eq!(r.status, 200, "{}", r.body);
    // Unknown ids: the same answers, the same bodies.
    let unknown = guesses(&api, "127.0.0.3", "ghost", 100);
    assert_eq!(unknown, known, "an unknown id is answered like a known one");
    let wrong = |source: &str, id: &str| {
        api.curl(
            "/api/v1/oauth/token",
            &[
                "--interface",
                source,
                "-u",
                &format!("{id}:not-the-secret"),
                "-d",
                "grant_type=client_credentials",
            ],
        )
    };
    let (a, b) = (wrong("127.0.0.4", "srx-1"), wrong("127.0.0.5", "ghost"));
    assert_eq!((a.status, &a.body), (b.status, &b.body));
    let (a, b) = (wrong("127.0.0.2", "srx-1"), wrong("127.0.0.3", "ghost"));
    assert_eq!((a.status, b.status), (429, 429));
    let wait: u64 = a.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait));
    // The guessing address is refused without a check, even with the right secret.
    let r = api.curl(
        "/api/v1/oauth/token",
        &[
            "--interface",
            "127.0.0.2",
            "-u",
            &format!("srx-1:{API_SECRET}"),
            "-d",
            "grant_type=client_credentials",
        ],
    );
    assert_eq!(r.status, 429, "{}", r.body);
    t.stop().assert_clean_exit();
}

/// An API client removed (and published) and then added again with the same secret does not
/// bring its old tokens back: they were revoked with the publish that removed it. Before:
/// tokens were checked only against the current secret's fingerprint, which is the same.
#[test]
fn a_client_added_again_does_not_revive_old_tokens() {
    let mut t = Tessera::new("api-readd");
    setup(&t, "");
    let (_, api) = start(&mut t);
    let old = api.token("srx-1", API_SECRET);
    assert_eq!(api.get("/api/v1/identities", &old).status, 200);
    t.cli(&["apiclient", "remove", "srx-1"]);
    t.cli(&["publish"]);
    wait_for(|| api.get("/api/v1/identities", &old).status == 401);
    t.cli(&["apiclient", "add", "srx-1", "--secret", API_SECRET]);
    t.cli(&["publish"]);
    wait_for(|| {
        api.token_basic("srx-1", API_SECRET, "grant_type=client_credentials")
            .status
            == 200
    });
    let fresh = api.token("srx-1", API_SECRET);
    assert_eq!(api.get("/api/v1/identities", &fresh).status, 200);
    let r = api.get("/api/v1/identities", &old);
    assert_eq!(
        (r.status, r.error()),
        (401, "invalid_token".into()),
        "{}",
        r.body
    );
    t.stop().assert_clean_exit();
}

/// `/metrics` is not public: it needs a token with scope `metrics:read` (or an administrator's
/// token); every HTTPS answer says `nosniff` and asks for HTTPS from now on (HSTS).
#[test]
fn metrics_need_a_token_and_answers_carry_security_headers() {
    let mut t = Tessera::new("api-metrics");
    setup(&t, "");
    let (_, api) = start(&mut t);
    let r = api.curl("/metrics", &[]);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(!r.body.contains("tessera_radius_requests_total"));
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    let reader = api.token("srx-1", API_SECRET);
    let r = api.get("/metrics", &reader);
    assert_eq!((r.status, r.error()), (403, "insufficient_scope".into()));
    let prom = api.token("prometheus", PROM_SECRET);
    let r = api.get("/metrics", &prom);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("tessera_radius_requests_total"));
    assert!(r.body.contains("tessera_http_connections "));
    // An administrator's token also reads them.
    t.cli(&["admin", "add", "ops", "--role", "auditor"]);
    let out = t.cli(&["admin", "token", "ops", "--label", "metrics"]);
    let admin_token = out.lines().find(|l| l.starts_with("tsa_")).unwrap();
    assert_eq!(api.get("/metrics", admin_token).status, 200);

    for r in [
        api.curl("/healthz", &[]),
        api.curl("/no/such/path", &[]),
        api.token_basic("srx-1", API_SECRET, "grant_type=client_credentials"),
        api.get("/metrics", &prom),
    ] {
        assert_eq!(
            r.header("x-content-type-options").as_deref(),
            Some("nosniff"),
            "{}",
            r.headers
        );
        assert!(
            r.header("strict-transport-security")
                .is_some_and(|v| v.starts_with("max-age=")),
            "{}",
            r.headers
        );
    }
    t.stop().assert_clean_exit();
}

fn wait_for(mut ok: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !ok() {
        assert!(
            std::time::Instant::now() < until,
            "condition not met within 5 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn logon_events(from: usize, n: usize) -> String {
    let events: Vec<Value> = (from..from + n)
        .map(|i| {
            serde_json::json!({
                "state": "logon",
                "ip": format!("10.{}.{}.{}", 100 + i / 65536, (i / 256) % 256, i % 256),
                "user": format!("user{i}@example.com"),
                "groups": ["vpn-users"],
                "session_id": format!("ev-{i}"),
            })
        })
        .collect();
    serde_json::json!({ "events": events }).to_string()
}

/// 2,500 entries read in pages of 1,000, then 200, while new entries arrive between pages:
/// every entry exactly once, in change order, and the new ones after the old.
#[test]
fn batch_query_resumes_exactly() {
    let mut t = Tessera::new("api-batch");
    setup(&t, "");
    let (_, api) = start(&mut t);
    let feeder = api.token("feeder", &format!("{API_SECRET}-feeder"));
    let reader = api.token("srx-1", API_SECRET);
    for chunk in 0..5 {
        let r = api.post_json("/api/v1/events", &feeder, &logon_events(chunk * 500, 500));
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["applied"], 500);
    }
    // A malformed event rejects the whole request and applies nothing.
    let mut bad: Value = serde_json::from_str(&logon_events(9000, 3)).unwrap();
    bad["events"][2]["ip"] = "not-an-ip".into();
    let r = api.post_json("/api/v1/events", &feeder, &bad.to_string());
    assert_eq!((r.status, r.error()), (400, "invalid_request".into()));
    assert!(r.body.contains("events[2]"), "{}", r.body);

    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut next_new = 2500;
    let mut pages = 0;
    loop {
        let limit = if pages == 0 { 1000 } else { 200 };
        let path = match &cursor {
            None => format!("/api/v1/identities?limit={limit}"),
            Some(c) => format!("/api/v1/identities?limit={limit}&cursor={c}"),
        };
        let b = api.get(&path, &reader);
        assert_eq!(b.status, 200, "{}", b.body);
        let b = b.json();
        let entries = b["entries"].as_array().unwrap();
        assert!(entries.len() <= limit);
        seen.extend(entries.iter().map(|e| e["ip"].as_str().unwrap().to_owned()));
        cursor = Some(b["cursor"].as_str().unwrap().to_owned());
        pages += 1;
        // New entries arrive between the first pages.
        if pages <= 3 {
            let r = api.post_json("/api/v1/events", &feeder, &logon_events(next_new, 10));
            assert_eq!(r.status, 200);
            next_new += 10;
        }
        if b["more"] == false {
            break;
        }
        assert_eq!(
            entries.len(),
            limit,
            "a page short of its limit must be the last"
        );
    }
    let expected: Vec<String> = (0..next_new)
        .map(|i| format!("10.{}.{}.{}", 100 + i / 65536, (i / 256) % 256, i % 256))
        .collect();
    assert_eq!(seen.len(), expected.len(), "every entry exactly once");
    assert_eq!(seen, expected, "in change order");
    assert_eq!(pages, 1 + 8, "1,000 then 200s: {pages} pages");

    // A logoff event ends the address; the next page holds just that change.
    let r = api.post_json(
        "/api/v1/events",
        &feeder,
        "{\"events\":[{\"state\":\"logoff\",\"ip\":\"10.100.0.7\"}]}",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let b = api
        .get(
            &format!("/api/v1/identities?cursor={}", cursor.unwrap()),
            &reader,
        )
        .json();
    assert_eq!(b["entries"].as_array().unwrap().len(), 1);
    assert_eq!(b["entries"][0]["ip"], "10.100.0.7");
    assert_eq!(b["entries"][0]["state"], "logoff");
    assert_eq!(b["entries"][0]["source"], "api");

    // The domain filter and `since`.
    let b = api
        .get("/api/v1/identities?domain=EXAMPLE.COM&limit=100", &reader)
        .json();
    assert_eq!(b["entries"].as_array().unwrap().len(), 100);
    assert_eq!(b["more"], true);
    let b = api
        .get("/api/v1/identities?domain=other.org", &reader)
        .json();
    assert_eq!(b["entries"], serde_json::json!([]));
    let b = api
        .get("/api/v1/identities?since=2999-01-01T00:00:00Z", &reader)
        .json();
    assert_eq!(b["entries"], serde_json::json!([]));
    t.stop().assert_clean_exit();
}

/// The committed OpenAPI document is the one the server serves, and every path in it is a
/// real route (the fallback answers "no such endpoint").
#[test]
fn openapi_document_is_committed_and_true() {
    let mut t = Tessera::new("api-openapi");
    setup(&t, "");
    let (_, api) = start(&mut t);
    let served = api.curl("/api/v1/openapi.json", &[]);
    assert_eq!(served.status, 200);
    let committed = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json"),
    )
    .expect("docs/openapi.json is committed");
    assert!(
        served.body == committed,
        "docs/openapi.json differs from what the server serves: run `tessera openapi > docs/openapi.json`"
    );
    let doc: Value = serde_json::from_str(&committed).unwrap();
    let token = api.token("feeder", &format!("{API_SECRET}-feeder"));
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{ip}", "192.0.2.1")
            .replace("{name}", "x")
            .replace("{id}", "1");
        for method in ops.as_object().unwrap().keys() {
            let r = match method.as_str() {
                "get" => api.get(&concrete, &token),
                "post" | "put" | "delete" => {
                    api.curl(&concrete, &["-X", &method.to_uppercase(), "-d", ""])
                }
                other => panic!("unexpected method {other} in the document"),
            };
            assert!(
                !r.body.contains("no such endpoint"),
                "{method} {path} is in the document but not served"
            );
        }
    }
    t.stop().assert_clean_exit();
}

/// A third-party OAuth 2.0 client library (Python authlib) obtains a token with each client
/// authentication method and queries the API with it.
#[test]
fn authlib_client_credentials() {
    let mut t = Tessera::new("api-authlib");
    setup(&t, "");
    let (acct_port, api) = start(&mut t);
    let r = acct(
        acct_port,
        SECRET,
        &[
            "Acct-Status-Type = Start",
            "User-Name = \"bob@example.com\"",
            "Acct-Session-Id = \"s-9\"",
            "Framed-IP-Address = 10.8.0.9",
        ],
    );
    assert_eq!(r.code.as_deref(), Some("Accounting-Response"));
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oauth_client.py");
    for method in ["client_secret_basic", "client_secret_post"] {
        let mut c = Command::new("python3");
        c.arg(&script)
            .arg(&api.base)
            .arg(&api.cacert)
            .arg("srx-1")
            .arg(API_SECRET)
            .arg(method)
            .arg("10.8.0.9");
        let out = run_with_timeout(c, None);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "authlib ({method}) failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_str(stdout.trim()).expect("the script prints JSON");
        assert_eq!(v["user"], "bob");
        assert_eq!(v["domain"], "example.com");
        assert_eq!(v["state"], "logon");
    }
    t.stop().assert_clean_exit();
}
