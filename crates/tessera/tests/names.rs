//! Names that break out of URLs (issue 11, hole 8). Every creation path — CLI, admin API,
//! console, configuration import, user CSV import — refuses a name with `/ ? # % \`, control
//! or invisible characters, `.`/`..`, an empty or an over-long name, with a message naming the
//! field and the rule. Names stored before that rule still load and serve, and the console's
//! Remove button removes exactly the object it is next to, whatever its name (headless
//! Chromium, `console_names.mjs`).

#[allow(dead_code)]
mod common;

use common::https::{Api, Resp};
use common::*;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use tessera_config::{SystemConfig, check_name};

/// Names every creation path must refuse.
fn hostile() -> Vec<String> {
    [
        "../clients/gw",
        "victim?x",
        "victim#x",
        "100%",
        "%2e%2e",
        "..\\clients\\gw",
        "DOMAIN\\bob",
        ".",
        "..",
        "",
        "tab\there",
        "gw\u{202e}txt",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([format!("{}x", "a".repeat(253))])
    .collect()
}

/// Names that stay legal but need encoding in a URL.
const ENCODED: &[&str] = &[
    "ann lee",
    "a+b",
    "tom&jerry",
    "o'brien",
    "josé",
    "eve@example.com",
    "<img src=x onerror=alert(1)>",
];

/// The message `check_name` gives: what every path must show (CLI, API and console alike).
fn refusal(field: &str, name: &str) -> String {
    check_name(field, name)
        .expect_err("a hostile name passes check_name")
        .to_string()
}

#[track_caller]
fn assert_refused(stderr: &str, field: &str, name: &str) {
    let want = refusal(field, name);
    assert!(
        stderr.contains(&want),
        "refusing {name:?}: expected {want:?} in:\n{stderr}"
    );
}

fn user_names(t: &Tessera) -> BTreeSet<String> {
    let db = rusqlite::Connection::open(t.path("data/tessera.db")).expect("opening the database");
    let mut st = db.prepare("SELECT name FROM users").unwrap();
    st.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn draft(t: &Tessera) -> SystemConfig {
    tessera_config::parse_toml(&t.cli(&["config", "export"]), "export").unwrap()
}

// ---------------------------------------------------------------------------------------------
// The CLI: one test per creation path.

#[test]
fn cli_user_add_refuses_hostile_names() {
    let t = Tessera::new("names-user-add");
    for n in hostile() {
        let err = t.cli_fails(&["user", "add", &n]);
        assert_refused(&err, "user name", &n);
    }
    // `@` and names that only need encoding are users like any other.
    for n in ENCODED {
        t.cli(&["user", "add", n]);
    }
    let want: BTreeSet<String> = ENCODED.iter().map(|s| s.to_string()).collect();
    assert_eq!(user_names(&t), want);
}

#[test]
fn cli_user_import_refuses_hostile_names() {
    let t = Tessera::new("names-user-import");
    for n in hostile() {
        // Newline-free by construction; the CSV reader trims fields, as the store does.
        let csv = t.write_file("users.csv", &format!("user,email\nfine,\n{n},\n"));
        let err = t.cli_fails(&["user", "import", csv.to_str().unwrap()]);
        assert_refused(&err, "user name", n.trim());
        assert!(err.contains("users.csv:3:"), "the line is named: {err}");
    }
    assert!(user_names(&t).is_empty(), "nothing was imported");
}

#[test]
fn cli_admin_add_refuses_hostile_names() {
    let t = Tessera::new("names-admin-add");
    for n in hostile() {
        let err = t.cli_fails(&["admin", "add", &n, "--password", "correct horse battery"]);
        assert_refused(&err, "administrator name", n.trim());
    }
    assert_eq!(
        t.cli(&["admin", "list"]).lines().count(),
        1,
        "no administrator was added"
    );
}

#[test]
fn cli_client_add_refuses_hostile_names() {
    let t = Tessera::new("names-client-add");
    t.cli(&["method", "add", "vpn", "--kind", "otp"]);
    for n in hostile() {
        let err = t.cli_fails(&[
            "client",
            "add",
            &n,
            "--address",
            "127.0.0.1",
            "--secret",
            "testing123",
            "--method",
            "vpn",
        ]);
        assert_refused(&err, "client name", &n);
    }
    assert!(draft(&t).clients.is_empty());
}

#[test]
fn cli_method_add_refuses_hostile_names() {
    let t = Tessera::new("names-method-add");
    for n in hostile() {
        let err = t.cli_fails(&["method", "add", &n, "--kind", "otp"]);
        assert_refused(&err, "method name", &n);
    }
    assert!(draft(&t).methods.is_empty());
}

#[test]
fn cli_apiclient_add_refuses_hostile_names() {
    let t = Tessera::new("names-apiclient-add");
    for n in hostile() {
        let err = t.cli_fails(&["apiclient", "add", &n]);
        assert_refused(&err, "API client id", &n);
    }
    assert!(draft(&t).api_clients.is_empty());
}

/// A document with one object of `table` named `name` (and what it needs to be valid).
fn document(table: &str, name: &str) -> String {
    let q = toml::Value::String(name.to_owned()).to_string();
    let base = "[[method]]\nname = \"vpn\"\nkind = \"otp\"\n";
    match table {
        "client" => format!(
            "{base}[[client]]\nname = {q}\naddress = \"127.0.0.1\"\nsecret = \"testing123\"\nmethod = \"vpn\"\n"
        ),
        "method" => format!("{base}[[method]]\nname = {q}\nkind = \"otp\"\n"),
        "directory" => format!(
            "{base}[[directory]]\nname = {q}\nkind = \"ldap\"\nurl = \"ldap://127.0.0.1:389\"\nbase_dn = \"dc=example,dc=org\"\n"
        ),
        "courier" => format!(
            "{base}[[courier]]\nname = {q}\nkind = \"smtp\"\nurl = \"smtp://127.0.0.1:25\"\nfrom = \"tessera@example.org\"\n"
        ),
        "api_client" => {
            format!("{base}[[api_client]]\nclient_id = {q}\nsecret = \"0123456789abcdef0123\"\n")
        }
        _ => unreachable!(),
    }
}

const TABLES: &[(&str, &str)] = &[
    ("client", "client name"),
    ("method", "method name"),
    ("directory", "directory name"),
    ("courier", "courier name"),
    ("api_client", "API client id"),
];

#[test]
fn cli_config_import_refuses_hostile_names() {
    let t = Tessera::new("names-config-import");
    for (table, field) in TABLES {
        // The document is otherwise valid: it imports with a good name.
        let ok = t.write_file("ok.toml", &document(table, "fine-name"));
        t.cli(&["config", "import", ok.to_str().unwrap()]);
        for n in hostile() {
            let f = t.write_file("doc.toml", &document(table, &n));
            let err = t.cli_fails(&["config", "import", f.to_str().unwrap()]);
            assert_refused(&err, field, &n);
            // The error points into the file, at the name.
            let named = |l: &str| {
                let l = l.strip_prefix("client_id = ").or(l.strip_prefix("name = "));
                l.is_some_and(|v| v != "\"vpn\"")
            };
            let line = document(table, &n).lines().position(named).unwrap() + 1;
            assert!(
                err.contains(&format!("doc.toml:{line}:")),
                "{table} {n:?}: no position in {err}"
            );
        }
    }
    // What stayed is the last good import.
    assert_eq!(draft(&t).api_clients[0].client_id, "fine-name");
}

// ---------------------------------------------------------------------------------------------
// The admin API: every creation path, on one server.

fn bearer(api: &Api, method: &str, path: &str, token: &str, body: &str) -> Resp {
    api.curl(
        path,
        &[
            "-X",
            method,
            "-H",
            &format!("Authorization: Bearer {token}"),
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
        ],
    )
}

#[track_caller]
fn assert_api_refused(r: &Resp, field: &str, name: &str) {
    assert_eq!(r.status, 400, "{name:?}: {}", r.body);
    let msg = r.json()["error_description"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_refused(&msg, field, name);
}

#[test]
fn admin_api_refuses_hostile_names_on_every_creation_path() {
    let mut t = Tessera::new("names-api");
    t.cli(&[
        "admin",
        "add",
        "alice",
        "--password",
        "correct horse battery",
    ]);
    let out = t.cli(&["admin", "token", "alice", "--label", "names"]);
    let token = out
        .lines()
        .find(|l| l.starts_with("tsa_"))
        .unwrap()
        .to_owned();
    t.cli(&["method", "add", "vpn", "--kind", "otp"]);
    let https = t.start_with(&["serve"], 3)[2];
    let api = Api::new(&t, https);
    let json = |v: serde_json::Value| v.to_string();

    for n in hostile() {
        // POST /users
        let r = bearer(
            &api,
            "POST",
            "/api/v1/admin/users",
            &token,
            &json(serde_json::json!({ "name": n })),
        );
        assert_api_refused(&r, "user name", n.trim());
        // POST /clients
        let body = serde_json::json!({
            "name": n, "address": "127.0.0.1", "secret": "testing123", "method": "vpn"
        });
        let r = bearer(&api, "POST", "/api/v1/admin/clients", &token, &json(body));
        assert_api_refused(&r, "client name", &n);
        // POST /methods
        let body = serde_json::json!({ "name": n, "kind": "otp" });
        let r = bearer(&api, "POST", "/api/v1/admin/methods", &token, &json(body));
        assert_api_refused(&r, "method name", &n);
        // POST /apiclients
        let body = serde_json::json!({ "client_id": n });
        let r = bearer(
            &api,
            "POST",
            "/api/v1/admin/apiclients",
            &token,
            &json(body),
        );
        assert_api_refused(&r, "API client id", &n);
    }
    // PUT /config: every kind of name in a whole document.
    let revision = api
        .curl(
            "/api/v1/admin/config",
            &["-H", &format!("Authorization: Bearer {token}")],
        )
        .json()["revision"]
        .as_i64()
        .unwrap();
    for (table, field) in TABLES {
        for n in hostile() {
            let body = serde_json::json!({ "toml": document(table, &n), "revision": revision });
            let r = bearer(&api, "PUT", "/api/v1/admin/config", &token, &json(body));
            assert_api_refused(&r, field, &n);
        }
    }
    // Nothing was created; names that only need encoding are accepted, and an encoded path
    // segment reaches exactly that user.
    assert!(user_names(&t).is_empty());
    let d = draft(&t);
    assert_eq!(d.methods.len(), 1);
    assert!(d.clients.is_empty() && d.api_clients.is_empty());
    for n in ENCODED {
        let r = bearer(
            &api,
            "POST",
            "/api/v1/admin/users",
            &token,
            &json(serde_json::json!({ "name": n })),
        );
        assert_eq!(r.status, 200, "{n:?}: {}", r.body);
    }
    let r = bearer(&api, "DELETE", "/api/v1/admin/users/a%2Bb", &token, "");
    assert_eq!(r.status, 200, "{}", r.body);
    let r = bearer(
        &api,
        "DELETE",
        "/api/v1/admin/users/tom%26jerry",
        &token,
        "",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let left = user_names(&t);
    assert!(
        !left.contains("a+b") && !left.contains("tom&jerry"),
        "{left:?}"
    );
    assert_eq!(left.len(), ENCODED.len() - 2, "{left:?}");
    t.stop().assert_clean_exit();
}

// ---------------------------------------------------------------------------------------------
// An upgraded installation: hostile names stored before the rule, removed from the console.

const PASSWORD: &str = "correct horse battery";

/// Users stored before names were checked, as an older version wrote them.
const LEGACY_USERS: &[&str] = &[
    "../clients/gw",
    "..\\clients\\gw",
    "..%2Fclients%2Fgw",
    "victim?x",
    "victim#x",
    "%2e%2e",
    "..",
];

/// Write what an older version let administrators create: users by SQL, and a draft with
/// hostile object names, published, through the store (no name checks at that layer).
fn write_legacy(t: &Tessera) {
    let db = rusqlite::Connection::open(t.path("data/tessera.db")).unwrap();
    for n in LEGACY_USERS {
        db.execute(
            "INSERT INTO users (name, name_key, created_at) VALUES (?1, ?2, 0)",
            rusqlite::params![n, n.trim().to_lowercase()],
        )
        .unwrap();
    }
    drop(db);
    let data = t.path("data");
    let key = tessera_store::MasterKey::load_or_create(&data, None).unwrap();
    let store = tessera_store::Storage::sqlite(&data.join("tessera.db"), key).unwrap();
    let mut cfg = store.draft().unwrap();
    let legacy: SystemConfig = tessera_config::parse_toml(
        r#"
[[client]]
name = "../users/victim"
address = "127.0.0.2"
secret = "testing123-legacy"
method = "vpn"
[[method]]
name = "m#1"
kind = "otp"
[[directory]]
name = "corp?x"
kind = "ldap"
url = "ldap://127.0.0.1:389"
base_dn = "dc=example,dc=org"
[[courier]]
name = "sms#1"
kind = "smtp"
url = "smtp://127.0.0.1:25"
from = "tessera@example.org"
[[api_client]]
client_id = "reader?x"
secret = "0123456789abcdef0123"
"#,
        "legacy",
    )
    .unwrap();
    cfg.clients.extend(legacy.clients);
    cfg.methods.extend(legacy.methods);
    cfg.directories.extend(legacy.directories);
    cfg.couriers.extend(legacy.couriers);
    cfg.api_clients.extend(legacy.api_clients);
    // As valid as it ever was, apart from the names.
    tessera_engine::compile(&cfg, 1).expect("the legacy document compiles");
    store
        .set_draft(
            &cfg,
            unix_now(),
            tessera_store::Change::new("config.import", "legacy"),
            None,
        )
        .unwrap();
    store.publish(unix_now(), |_, _| Ok(())).unwrap();
}

#[test]
fn console_remove_buttons_remove_exactly_their_object() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let playwright = root.join("target/playwright/node_modules");
    assert!(
        playwright.join("playwright-core").exists(),
        "playwright-core is missing: run scripts/install-test-deps.sh"
    );
    let mut t = Tessera::new("console-names");
    let out = t.cli(&["admin", "add", "alice", "--password", PASSWORD]);
    let at = out.find("secret=").unwrap() + "secret=".len();
    let seed = out[at..].split('&').next().unwrap().to_owned();
    // Today's objects, some with names that need encoding.
    t.cli(&["method", "add", "vpn", "--kind", "otp"]);
    t.cli(&["method", "add", "m", "--kind", "otp"]);
    for (name, address) in [("gw", "127.0.0.1"), ("edge é+1 & co", "127.0.0.3")] {
        t.cli(&[
            "client",
            "add",
            name,
            "--address",
            address,
            "--secret",
            "testing123",
            "--method",
            "vpn",
        ]);
    }
    t.cli(&["apiclient", "add", "reader"]);
    let ok = t.write_file(
        "more.toml",
        &format!(
            "{}[[directory]]\nname = \"corp\"\nkind = \"ldap\"\nurl = \"ldap://127.0.0.1:389\"\nbase_dn = \"dc=example,dc=org\"\n\
             [[courier]]\nname = \"sms\"\nkind = \"smtp\"\nurl = \"smtp://127.0.0.1:25\"\nfrom = \"tessera@example.org\"\n",
            t.cli(&["config", "export", "--with-secrets"])
        ),
    );
    t.cli(&["config", "import", ok.to_str().unwrap()]);
    t.cli(&["user", "add", "victim"]);
    for n in ENCODED {
        t.cli(&["user", "add", n]);
    }
    t.cli(&["publish"]);
    // And yesterday's.
    write_legacy(&t);

    // The server loads and serves the published document with the old names.
    let ports = t.start_with(&["serve"], 3);
    let https = ports[2];
    let shots = root.join("target/console-screenshots");
    avoid_step_boundary(30, std::time::Duration::from_secs(5));
    let remove_users: Vec<&str> = LEGACY_USERS
        .iter()
        .filter(|n| **n != "..")
        .chain(ENCODED)
        .copied()
        .collect();
    let plan = serde_json::json!({
        "users": remove_users,
        "unaddressable_users": [".."],
        "clients": ["../users/victim", "edge é+1 & co"],
        "methods": ["m#1"],
        "directories": ["corp?x"],
        "couriers": ["sms#1"],
        "apiclients": ["reader?x"],
        "refused_user": "a/b",
    });
    let mut node = Command::new("node");
    node.arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/console_names.mjs"))
        .env("PLAYWRIGHT_DIR", &playwright)
        .env("BASE_URL", format!("https://127.0.0.1:{https}"))
        .env("ADMIN", "alice")
        .env("PASSWORD", PASSWORD)
        .env("TOTP_SEED", &seed)
        .env("PLAN", plan.to_string())
        .env("SHOTS", &shots);
    let out = run_browser(node);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_str(stdout.trim().lines().last().unwrap())
        .expect("the script prints JSON");

    // Each click removed its own object and nothing else.
    let left = user_names(&t);
    let want: BTreeSet<String> = ["victim", ".."].map(String::from).into();
    assert_eq!(left, want, "browser: {result}");
    let d = draft(&t);
    let names = |v: Vec<&str>| v.into_iter().map(String::from).collect::<Vec<_>>();
    assert_eq!(
        names(d.clients.iter().map(|c| c.name.as_str()).collect()),
        ["gw"]
    );
    assert_eq!(
        names(d.methods.iter().map(|m| m.name.as_str()).collect()),
        ["vpn", "m"]
    );
    assert_eq!(
        names(d.directories.iter().map(|x| x.name.as_str()).collect()),
        ["corp"]
    );
    assert_eq!(
        names(d.couriers.iter().map(|x| x.name.as_str()).collect()),
        ["sms"]
    );
    assert_eq!(
        names(d.api_clients.iter().map(|x| x.client_id.as_str()).collect()),
        ["reader"]
    );
    // `..` cannot be put in a URL: its button is disabled instead of aiming elsewhere.
    assert_eq!(result["disabled"], serde_json::json!([".."]), "{result}");
    // No name ran as markup, no removal failed.
    assert_eq!(result["dialogs"], serde_json::json!([]), "{result}");
    // The console's form shows the same refusal as the CLI, next to the field.
    assert_eq!(
        result["refused"].as_str().unwrap_or_default(),
        refusal("user name", "a/b"),
        "{result}"
    );
    assert_eq!(
        result["refused_field"], "true",
        "marked on the Name field: {result}"
    );
    let log = t.cli(&["audit", "--limit", "1000"]);
    assert!(
        log.lines()
            .filter(|l| l.contains("user.remove") && l.contains("console"))
            .count()
            == remove_users.len(),
        "one audited removal per click:\n{log}"
    );
    t.stop().assert_clean_exit();
}

/// Run the browser script, allowing it more time than a CLI command: a page load per click,
/// on a machine shared with other builds.
fn run_browser(mut cmd: Command) -> std::process::Output {
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting node");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    while child.try_wait().expect("waiting for node").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.wait_with_output().expect("node's output")
}
