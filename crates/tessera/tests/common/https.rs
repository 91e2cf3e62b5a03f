//! curl against a running `tessera serve` over HTTPS, verifying it by name against the
//! generated certificate.

use super::{Tessera, run_with_timeout, totp};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// One HTTP answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
    /// RFC 6749 §5.2 / RFC 6750 error code.
    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
}

/// curl against one running server, trusting only its generated certificate.
pub struct Api {
    pub base: String,
    pub cacert: PathBuf,
    /// Extra curl arguments for every request (e.g. a cookie jar).
    pub extra: Vec<String>,
}

impl Api {
    pub fn new(t: &Tessera, port: u16) -> Api {
        Api {
            // A name, not an address: the certificate must carry it (and curl checks).
            base: format!("https://localhost:{port}"),
            cacert: t.path("data/tls/cert.pem"),
            extra: Vec::new(),
        }
    }

    pub fn curl(&self, path: &str, args: &[&str]) -> Resp {
        let mut c = Command::new("curl");
        c.arg("-sS")
            .arg("--cacert")
            .arg(&self.cacert)
            .arg("--resolve")
            .arg(format!(
                "localhost:{}:127.0.0.1",
                self.base.rsplit(':').next().unwrap_or_default()
            ))
            .arg("-D")
            .arg("-")
            .args(&self.extra)
            .args(args)
            .arg(format!("{}{}", self.base, path));
        let out = run_with_timeout(c, None);
        assert!(
            out.status.success(),
            "curl {path} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("UTF-8 answer");
        let (head, body) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no header/body split in {text:?}"));
        let status = head
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {head:?}"));
        Resp {
            status,
            headers: head.to_owned(),
            body: body.to_owned(),
        }
    }

    pub fn token_basic(&self, id: &str, secret: &str, form: &str) -> Resp {
        self.curl(
            "/api/v1/oauth/token",
            &["-u", &format!("{id}:{secret}"), "-d", form],
        )
    }

    pub fn token_post(&self, id: &str, secret: &str) -> Resp {
        self.curl(
            "/api/v1/oauth/token",
            &[
                "-d",
                "grant_type=client_credentials",
                "--data-urlencode",
                &format!("client_id={id}"),
                "--data-urlencode",
                &format!("client_secret={secret}"),
            ],
        )
    }

    /// A token for `id`, or panic.
    pub fn token(&self, id: &str, secret: &str) -> String {
        let r = self.token_basic(id, secret, "grant_type=client_credentials");
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["access_token"].as_str().unwrap().to_owned()
    }

    pub fn get(&self, path: &str, token: &str) -> Resp {
        self.curl(path, &["-H", &format!("Authorization: Bearer {token}")])
    }

    pub fn post_json(&self, path: &str, token: &str, body: &str) -> Resp {
        self.curl(
            path,
            &[
                "-H",
                &format!("Authorization: Bearer {token}"),
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                body,
            ],
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The admin API

/// `admin add` with the password `correct horse battery`; returns the TOTP seed from the printed otpauth URI.
pub fn add_admin(t: &Tessera, name: &str, role: &str) -> String {
    let out = t.cli(&[
        "admin",
        "add",
        name,
        "--password",
        "correct horse battery",
        "--role",
        role,
    ]);
    let at = out.find("secret=").expect("an otpauth URI") + "secret=".len();
    out[at..].split('&').next().unwrap().to_owned()
}

/// Log in (password + TOTP) into a fresh cookie jar; returns the API handle and CSRF token.
pub fn login(t: &Tessera, port: u16, name: &str, seed: &str, jar: &str) -> (Api, String) {
    let mut api = Api::new(t, port);
    let jar = t.path(jar).display().to_string();
    api.extra = vec!["-c".into(), jar.clone(), "-b".into(), jar];
    let otp = totp(seed, &["--totp"]);
    let r = api.curl(
        "/api/v1/admin/login",
        &[
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &format!(r#"{{"name":"{name}","password":"correct horse battery","otp":"{otp}"}}"#),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let cookie = r.header("set-cookie").expect("a session cookie");
    for attr in ["Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let csrf = r.json()["csrf_token"].as_str().unwrap().to_owned();
    (api, csrf)
}

pub fn post(api: &Api, path: &str, csrf: Option<&str>, body: &str) -> Resp {
    let mut args = vec![
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        body,
    ];
    let header;
    if let Some(c) = csrf {
        header = format!("X-CSRF-Token: {c}");
        args.extend(["-H", &header]);
    }
    api.curl(path, &args)
}
