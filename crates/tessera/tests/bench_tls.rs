//! `tessera bench --transport tls` (issue 13) against the real `tessera serve` with a RadSec
//! listener on loopback: what an administrator sizing a RadSec deployment relies on — every
//! login counted, its reply verified, over RFC 6614 and RADIUS/1.1, and `--handshakes`
//! opening working connections. The PKI is made with rcgen when the test runs.

#[allow(dead_code)]
mod common;

use common::radsec::*;
use common::*;
use serde_json::Value;
use std::path::PathBuf;

const USERS: &str = "40";

/// A tessera with a TLS listener, bench's PIN+HOTP users, the TLS client `gw` (127.0.0.1,
/// default secret) and `gw-forbid` (127.0.0.21, never RADIUS/1.1).
struct Server {
    t: Tessera,
    tls: u16,
    /// --tls-cert, --tls-key, --tls-ca for `gw`, and the cert and key of `gw-forbid`.
    gw: [String; 3],
    forbid: [String; 2],
}

fn path(p: PathBuf) -> String {
    p.to_str().expect("UTF-8 path").to_owned()
}

fn server(name: &str) -> Server {
    let mut t = Tessera::new(name);
    let dir = t.path("");
    let files = pki().write(&dir);
    let gen_dir = path(t.path("gen"));
    t.cli(&[
        "bench",
        "--generate",
        &gen_dir,
        "--users",
        USERS,
        "--mode",
        "hotp",
    ]);
    t.cli(&["user", "import", &format!("{gen_dir}/tessera-users.csv")]);
    let doc = t.write_file(
        "system.toml",
        &format!(
            "[[method]]\nname = \"bench\"\nkind = \"pin-otp\"\n\n\
             [[client]]\nname = \"gw\"\naddress = \"127.0.0.1\"\ntransport = \"tls\"\n\
             tls_peer_name = \"{GW_NAME}\"\nmethod = \"bench\"\n\n\
             [[client]]\nname = \"gw-forbid\"\naddress = \"127.0.0.21\"\ntransport = \"tls\"\n\
             tls_peer_name = \"{FORBID_NAME}\"\nradius_1_1 = \"forbid\"\nmethod = \"bench\"\n"
        ),
    );
    t.cli(&["config", "import", &path(doc)]);
    t.cli(&["publish"]);
    let node = t.write_file(
        "node.toml",
        &format!(
            "[radius]\ntls_listen = [\"127.0.0.1:0\"]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n\
             tls_client_ca = \"{}\"\n",
            files.server_cert.display(),
            files.server_key.display(),
            files.ca.display()
        ),
    );
    // auth, acct, tls
    let ports = t.start_with(&["--config", &path(node), "serve"], 3);
    let (cert, key) = pki().gw.write(&dir, "gw");
    let (fcert, fkey) = pki().forbid.write(&dir, "forbid");
    Server {
        tls: ports[2],
        gw: [path(cert), path(key), path(files.ca.clone())],
        forbid: [path(fcert), path(fkey)],
        t,
    }
}

impl Server {
    /// `tessera bench --transport tls` as `gw` with more arguments: its exit status, its
    /// output, and its JSON result line.
    fn bench(&self, args: &[&str]) -> (bool, String, Option<Value>) {
        let target = format!("127.0.0.1:{}", self.tls);
        let mut all = vec![
            "bench",
            "--transport",
            "tls",
            "--target",
            &target,
            "--tls-cert",
            &self.gw[0],
            "--tls-key",
            &self.gw[1],
            "--tls-ca",
            &self.gw[2],
        ];
        all.extend_from_slice(args);
        let out = self.t.run(&all);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let text = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        let json = stdout
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).expect("the result line is JSON"));
        (out.status.success(), text, json)
    }

    #[track_caller]
    fn load(&self, args: &[&str]) -> Value {
        let mut all = vec![
            "--users",
            USERS,
            "--concurrency",
            "8",
            "--duration",
            "1",
            "--warmup",
            "0.3",
        ];
        all.extend_from_slice(args);
        let (ok, text, json) = self.bench(&all);
        assert!(ok, "tessera bench failed:\n{text}\n{}", self.t.log());
        json.unwrap_or_else(|| panic!("no result line:\n{text}"))
    }
}

fn n(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"))
}

#[test]
fn radsec_logins_are_pipelined_counted_and_verified() {
    let s = server("bench-tls-6614");
    let r = s.load(&["--connections", "2"]);
    assert_eq!(r["transport"], "tls");
    assert_eq!(r["radius_1_1"], false);
    assert!(n(&r, "accepts") > 20, "{r}");
    assert_eq!(n(&r, "accepts"), n(&r, "sent"), "{r}");
    assert_eq!((n(&r, "timeouts"), n(&r, "invalid")), (0, 0), "{r}");
    // Wrong passcodes: every reply a verified Access-Reject.
    let r = s.load(&["--connections", "1", "--wrong"]);
    assert!(n(&r, "rejects") > 20, "{r}");
    assert_eq!(n(&r, "rejects"), n(&r, "sent"), "{r}");
    assert_eq!(
        (n(&r, "accepts"), n(&r, "timeouts"), n(&r, "invalid")),
        (0, 0, 0),
        "{r}"
    );
}

#[test]
fn radius_1_1_logins_and_handshakes() {
    let s = server("bench-tls-v11");
    let r = s.load(&["--connections", "2", "--radius-1-1"]);
    assert_eq!(r["radius_1_1"], true);
    assert!(n(&r, "accepts") > 20, "{r}");
    assert_eq!(n(&r, "accepts"), n(&r, "sent"), "{r}");
    assert_eq!((n(&r, "timeouts"), n(&r, "invalid")), (0, 0), "{r}");
    assert!(
        s.t.log().contains("protocol=radius/1.1") || s.t.log().contains("protocol=\"radius/1.1\""),
        "the server saw no RADIUS/1.1 connection:\n{}",
        s.t.log()
    );
    for extra in [&[][..], &["--radius-1-1"][..]] {
        let mut args = vec!["--handshakes", "12", "--concurrency", "3"];
        args.extend_from_slice(extra);
        let (ok, text, json) = s.bench(&args);
        assert!(ok, "{text}");
        let r = json.expect("a result line");
        assert_eq!((n(&r, "completed"), n(&r, "failed")), (12, 0), "{text}");
    }
}

#[test]
fn radius_1_1_demanded_of_a_server_that_forbids_it_fails_the_run() {
    let s = server("bench-tls-forbid");
    let target = format!("127.0.0.1:{}", s.tls);
    let out = s.t.run(&[
        "bench",
        "--transport",
        "tls",
        "--radius-1-1",
        "--target",
        &target,
        "--source",
        "127.0.0.21",
        "--tls-cert",
        &s.forbid[0],
        "--tls-key",
        &s.forbid[1],
        "--tls-ca",
        &s.gw[2],
        "--users",
        USERS,
        "--concurrency",
        "4",
        "--duration",
        "1",
        "--warmup",
        "0",
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // RFC 9765: the server that will not speak RADIUS/1.1 answers an offer of it alone with
    // the no_application_protocol alert.
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("NoApplicationProtocol"), "{text}");
    // Without --radius-1-1 the same client gets RFC 6614.
    let out = s.t.run(&[
        "bench",
        "--transport",
        "tls",
        "--target",
        &target,
        "--source",
        "127.0.0.21",
        "--tls-cert",
        &s.forbid[0],
        "--tls-key",
        &s.forbid[1],
        "--tls-ca",
        &s.gw[2],
        "--handshakes",
        "3",
        "--concurrency",
        "1",
    ]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
