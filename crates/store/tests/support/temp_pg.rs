//! A throw-away PostgreSQL cluster for tests: Debian's `postgresql` binaries (`initdb`,
//! `pg_ctl`), a data directory under the system's temp dir, TCP on a free loopback port only,
//! password authentication (scram-sha-256) for the superuser `tessera`. When the tests run as
//! root, the cluster runs as `nobody` (PostgreSQL refuses to run as root). Started once per test
//! binary ([`TempPg::shared`]); each test takes a database of its own ([`TempPg::database`]).
//!
//! Shared by the store's conformance suite and the cluster tests of the `tessera` crate
//! (`#[path]`-included there).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

pub const PG_PASSWORD: &str = "tessera-test-password";

#[derive(Debug)]
pub struct TempPg {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
    /// (uid, gid) the server runs as, when the tests run as root.
    run_as: Option<(u32, u32)>,
    password_file: PathBuf,
}

/// Where Debian puts the server binaries: the newest `/usr/lib/postgresql/N/bin`
/// (`TESSERA_PG_BIN` overrides).
fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("TESSERA_PG_BIN") {
        return d.into();
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b).expect(
        "PostgreSQL server binaries not found under /usr/lib/postgresql: run scripts/install-test-deps.sh",
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|v| v.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false)
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap().flatten() {
            chown_tree(&e.path(), uid, gid);
        }
    }
}

impl TempPg {
    /// The cluster of this test binary, started on first use. Statics are never dropped, so
    /// a watcher process stops it (and removes its directory) when the test binary exits,
    /// however it exits.
    pub fn shared() -> &'static TempPg {
        static PG: OnceLock<TempPg> = OnceLock::new();
        PG.get_or_init(TempPg::start)
    }

    /// Start a new cluster.
    pub fn start() -> TempPg {
        TempPg::start_with(None)
    }

    /// Start a new cluster that also speaks TLS with this certificate and key (PEM).
    pub fn start_with_tls(cert_pem: &str, key_pem: &str) -> TempPg {
        TempPg::start_with(Some((cert_pem, key_pem)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> TempPg {
        let bin = bin_dir();
        let dir =
            std::env::temp_dir().join(format!("tessera-pg-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let run_as = is_root().then_some((65534, 65534));
        let password_file = dir.join("pw");
        std::fs::write(&password_file, format!("{PG_PASSWORD}\n")).unwrap();
        if let Some((uid, gid)) = run_as {
            chown_tree(&dir, uid, gid);
        }
        let port = free_port();
        let pg = TempPg {
            dir,
            bin,
            port,
            run_as,
            password_file,
        };
        let data = pg.data_dir();
        pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "tessera",
                "--pwfile",
                pg.password_file.to_str().unwrap(),
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
        );
        let mut conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = ''\n\
             max_connections = 300\nfsync = on\nsynchronous_commit = on\n\
             log_min_messages = warning\nlogging_collector = off\n"
        );
        if let Some((cert, key)) = tls {
            use std::os::unix::fs::PermissionsExt;
            for (name, pem) in [("server.crt", cert), ("server.key", key)] {
                let path = data.join(name);
                std::fs::write(&path, pem).unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
                if let Some((uid, gid)) = pg.run_as {
                    chown_tree(&path, uid, gid);
                }
            }
            conf.push_str("ssl = on\n");
        }
        let auto = data.join("postgresql.auto.conf");
        let mut existing = std::fs::read_to_string(&auto).unwrap_or_default();
        existing.push_str(&conf);
        std::fs::write(&auto, existing).unwrap();
        if let Some((uid, gid)) = pg.run_as {
            chown_tree(&auto, uid, gid);
        }
        pg.pg_ctl_start();
        pg.watch_parent();
        pg
    }

    /// Stop the cluster and remove its directory once this process has gone. The watcher
    /// outlives this process by design (init reaps it), so it is never waited for.
    #[allow(clippy::zombie_processes)]
    fn watch_parent(&self) {
        let data = self.data_dir();
        let pg_ctl = self.bin.join("pg_ctl");
        let as_user = match self.run_as {
            Some((uid, gid)) => format!("setpriv --reuid={uid} --regid={gid} --clear-groups --"),
            None => String::new(),
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
             {as_user} '{pg_ctl}' -D '{data}' -m immediate -w stop >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            pg_ctl = pg_ctl.display(),
            data = data.display(),
            dir = self.dir.display(),
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh");
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The file holding the superuser's password (for `[storage] password_file`).
    pub fn password_file(&self) -> &Path {
        &self.password_file
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match self.run_as {
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.args([
                    format!("--reuid={uid}"),
                    format!("--regid={gid}"),
                    "--clear-groups".into(),
                    "--".into(),
                ])
                .arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn pg_ctl_start(&self) {
        let data = self.data_dir();
        let log = self.dir.join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "30",
                "start",
            ],
        );
    }

    /// Stop the server (fast shutdown: connections are cut, as in an outage).
    pub fn stop(&self) {
        let data = self.data_dir();
        self.run(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
        );
    }

    /// Start it again after [`TempPg::stop`].
    pub fn restart(&self) {
        self.pg_ctl_start();
    }

    /// A URL for database `db` (without the password: it is in [`TempPg::password_file`]).
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://tessera@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// The same URL with the password in it (for tools that take only a URL).
    pub fn url_with_password(&self, db: &str) -> String {
        format!(
            "postgres://tessera:{PG_PASSWORD}@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// Run SQL as the superuser on database `db` with psql; returns its unaligned output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let psql = self.bin.join("psql");
        let psql = if psql.exists() {
            psql
        } else {
            PathBuf::from("psql")
        };
        let out = Command::new(psql)
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "tessera",
                "-d",
                db,
                "-c",
                sql,
            ])
            .env("PGPASSWORD", PG_PASSWORD)
            .stdin(Stdio::null())
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A fresh, empty database with a name of its own; returns its name.
    pub fn database(&self, prefix: &str) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{}_{}",
            prefix
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect::<String>()
                .to_lowercase(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        name
    }
}

impl Drop for TempPg {
    fn drop(&mut self) {
        let data = self.data_dir();
        let _ = self
            .command("pg_ctl")
            .args([
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
