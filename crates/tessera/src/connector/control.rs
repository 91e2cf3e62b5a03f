//! The local control socket between `tessera connector run` and `show ...` / `ip-query`: a
//! Unix stream socket, mode 0600 from the moment it appears (it is bound inside a private
//! directory and renamed into place). One request per connection: a JSON line from the
//! client, one JSON document back, then the connection closes.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest request line the server reads.
pub const MAX_REQUEST: usize = 4096;

/// What the client asks.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Request {
    ShowStatus,
    ShowCounters,
    ShowAuthenticationTable,
    IpQuery { ip: IpAddr },
}

/// `--format`.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// One request on the wire.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(flatten)]
    pub request: Request,
    #[serde(default)]
    pub format: Format,
}

/// The answer on the wire: `output` to print, or `error` to report (non-zero exit).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The default socket: the configuration file's (absolute) path with `.sock` appended, so that `show`
/// with the same `--config` finds the `run` of that file, and two connectors with two files
/// do not collide.
pub fn default_path(config: &Path) -> PathBuf {
    // Absolute, so that `run` and `show` started in different directories agree.
    let config = std::fs::canonicalize(config).unwrap_or_else(|_| config.to_owned());
    let mut s = config.into_os_string();
    s.push(".sock");
    PathBuf::from(s)
}

/// The bound socket; removes its file when dropped.
#[derive(Debug)]
pub struct Bound {
    pub listener: UnixListener,
    path: PathBuf,
}

impl Drop for Bound {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds `path` with mode 0600. A socket left behind by a connector that is gone is
/// replaced; one a running connector answers on is an error.
pub fn bind(path: &Path) -> Result<Bound> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                bail!(
                    "control socket {}: another connector is running there (stop it, or give --socket)",
                    path.display()
                );
            }
            std::fs::remove_file(path)
                .with_context(|| format!("removing the stale socket {}", path.display()))?;
        }
        Ok(_) => bail!(
            "control socket {}: exists and is not a socket",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("control socket {}", path.display())),
    }
    if path.file_name().is_none() {
        bail!("control socket {}: not a file name", path.display());
    }
    // Bound in a directory only we can enter, made 0600 there, then renamed into place: no
    // moment at which someone else could connect. (A short name: socket paths are limited
    // to 107 bytes.)
    let private = path.with_file_name(format!(".tessera-ctl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&private);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .with_context(|| format!("creating {}", private.display()))?;
    let result = (|| -> Result<UnixListener> {
        let tmp = private.join("s");
        let listener =
            UnixListener::bind(&tmp).with_context(|| format!("binding {}", tmp.display()))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("moving the socket to {}", path.display()))?;
        Ok(listener)
    })();
    let _ = std::fs::remove_dir_all(&private);
    Ok(Bound {
        listener: result?,
        path: path.to_owned(),
    })
}

/// Sends one request to the running connector and returns what it answered.
pub fn ask(path: &Path, config: &Path, envelope: &Envelope, wait: Duration) -> Result<Reply> {
    let mut stream = UnixStream::connect(path).with_context(|| {
        format!(
            "cannot reach the connector at {}: is `tessera connector run --config {}` running?",
            path.display(),
            config.display()
        )
    })?;
    stream.set_read_timeout(Some(wait))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut line = serde_json::to_vec(envelope)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .with_context(|| format!("no answer from the connector at {}", path.display()))?;
    serde_json::from_slice(&answer).with_context(|| {
        format!(
            "the connector at {} answered something unreadable",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format() {
        let e = Envelope {
            request: Request::IpQuery {
                ip: "10.0.0.1".parse().unwrap(),
            },
            format: Format::Json,
        };
        let s = serde_json::to_string(&e).unwrap();
        assert_eq!(
            s,
            r#"{"command":"ip-query","ip":"10.0.0.1","format":"json"}"#
        );
        let back: Envelope = serde_json::from_str(r#"{"command":"show-status"}"#).unwrap();
        assert_eq!(back.request, Request::ShowStatus);
        assert_eq!(back.format, Format::Text);
    }

    #[test]
    fn socket_is_private_and_replaces_a_stale_one() {
        let dir = std::env::temp_dir().join(format!("tessera-ctl-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.sock");
        let b = bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(bind(&path).is_err(), "a live socket is not replaced");
        drop(b);
        assert!(!path.exists(), "removed when dropped");
        // Left behind by a connector that died: the file stays, nobody listens.
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let b = bind(&path).unwrap();
        assert!(UnixStream::connect(&path).is_ok());
        drop(b);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
