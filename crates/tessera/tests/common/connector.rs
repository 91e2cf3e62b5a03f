//! `tessera connector run` driven from a test: started with a configuration file, asked with
//! `connector show ... --format json`, its log collected, SIGTERM on drop. Used by the
//! connector's own tests and the cluster tests.

use super::{BIN, run_with_timeout};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A port free on both 127.0.0.2 and 127.0.0.3 (the connection's `port` is shared).
pub fn port_free_on_both() -> u16 {
    for _ in 0..50 {
        let a = TcpListener::bind("127.0.0.2:0").expect("binding 127.0.0.2");
        let port = a.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.3", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free on both 127.0.0.2 and 127.0.0.3");
}

/// A running `tessera connector run`, its log collected; SIGTERM on drop.
pub struct Connector {
    config: PathBuf,
    /// Command prefix (e.g. `ip netns exec NS`), if any.
    prefix: Vec<String>,
    child: Child,
    log: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Connector {
    pub fn start(config: &Path, extra: &[&str]) -> Connector {
        Connector::start_in(&[], config, extra)
    }

    pub fn start_in(prefix: &[&str], config: &Path, extra: &[&str]) -> Connector {
        let mut cmd = command(prefix);
        cmd.args(["connector", "run", "--config"])
            .arg(config)
            .args(extra)
            .env("TESSERA_LOG", "info,tessera::connector=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawning the connector");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let reader = std::thread::spawn({
            let log = Arc::clone(&log);
            move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        let c = Connector {
            config: config.to_owned(),
            prefix: prefix.iter().map(|s| s.to_string()).collect(),
            child,
            log,
            reader: Some(reader),
        };
        c.wait_for("the control socket", Duration::from_secs(10), |c| {
            c.try_show(&["status"]).is_some()
        });
        c
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `tessera connector ARGS --config FILE`, its output whatever the status.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let prefix: Vec<&str> = self.prefix.iter().map(String::as_str).collect();
        let mut c = command(&prefix);
        c.arg("connector")
            .args(args)
            .arg("--config")
            .arg(&self.config);
        run_with_timeout(c, None)
    }

    pub fn try_show(&self, what: &[&str]) -> Option<Value> {
        let mut args = vec!["show"];
        args.extend(what);
        args.extend(["--format", "json"]);
        let out = self.cli(&args);
        if !out.status.success() {
            return None;
        }
        Some(serde_json::from_slice(&out.stdout).expect("show --format json prints JSON"))
    }

    #[track_caller]
    pub fn show(&self, what: &[&str]) -> Value {
        let mut args = vec!["show"];
        args.extend(what);
        let out = self.cli(&[&args[..], &["--format", "json"]].concat());
        assert!(
            out.status.success(),
            "show {what:?} failed: {}\n--- connector log ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    #[track_caller]
    pub fn show_text(&self, what: &[&str]) -> String {
        let mut args = vec!["show"];
        args.extend(what);
        let out = self.cli(&args);
        assert!(
            out.status.success(),
            "show {what:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn status(&self) -> Value {
        self.show(&["status"])
    }

    /// The authentication table's entries by IP: (user, groups, server).
    pub fn table(&self) -> Vec<(String, String, Vec<String>, String)> {
        self.show(&["authentication-table"])["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["ip"].as_str().unwrap().to_owned(),
                    e["user"].as_str().unwrap_or("-").to_owned(),
                    e["groups"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|g| g.as_str().unwrap().to_owned())
                        .collect(),
                    e["server"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    pub fn has(&self, ip: &str, user: &str, server: &str) -> bool {
        self.table()
            .iter()
            .any(|(i, u, _, s)| i == ip && u == user && s == server)
    }

    /// Polls `ok` every 100 ms until it holds; panics with the connector's log after `limit`.
    #[track_caller]
    pub fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        ok: impl Fn(&Connector) -> bool,
    ) -> Duration {
        let start = Instant::now();
        loop {
            if ok(self) {
                return start.elapsed();
            }
            if start.elapsed() > limit {
                panic!(
                    "not within {limit:?}: {what}\n--- connector log ---\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Connector {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        if std::thread::panicking() {
            eprintln!("--- connector log ---\n{}", self.log());
        }
    }
}

/// `tessera` (behind `prefix`, e.g. `ip netns exec NS`), with no node configuration at all.
pub fn command(prefix: &[&str]) -> Command {
    let mut c = match prefix.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(BIN);
            c
        }
        None => Command::new(BIN),
    };
    c.env_remove("TESSERA_DATA_DIR")
        .env_remove("TESSERA_HTTP_LISTEN")
        .env("TESSERA_LOG", "info");
    c
}

pub fn in_use(status: &Value) -> String {
    status["server_in_use"]
        .as_str()
        .unwrap_or("none")
        .to_owned()
}

pub fn server<'a>(status: &'a Value, role: &str) -> &'a Value {
    status["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["server"] == role)
        .unwrap_or_else(|| panic!("no {role} in {status}"))
}

/// `program` behind `prefix` (e.g. `ip netns exec NS`).
pub fn behind(prefix: &[&str], program: &str) -> Command {
    match prefix.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// curl against one server by address, verifying it against `cacert`; returns (status, JSON
/// body, `null` when the body is not JSON).
pub fn curl(prefix: &[&str], base: &str, cacert: &Path, path: &str, args: &[&str]) -> (u16, Value) {
    let mut c = behind(prefix, "curl");
    c.arg("-sS")
        .arg("--cacert")
        .arg(cacert)
        .arg("-w")
        .arg("\n%{http_code}")
        .args(args)
        .arg(format!("{base}{path}"));
    let out = run_with_timeout(c, None);
    assert!(
        out.status.success(),
        "curl {base}{path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (
        code.parse().unwrap(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}
