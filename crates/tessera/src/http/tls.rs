//! The HTTPS listener's certificate: the configured one, or a self-signed one generated into
//! `data_dir/tls/` on first start, whose SHA-256 fingerprint is logged so that an
//! administrator can pin it or hand `cert.pem` to firewalls as their CA profile.

use anyhow::{Context, Result};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tessera_config::NodeConfig;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The TLS configuration and what to tell the administrator about it.
pub struct Loaded {
    pub config: Arc<rustls::ServerConfig>,
    pub cert_path: PathBuf,
    /// SHA-256 of the leaf certificate, `AB:CD:...` as `openssl x509 -fingerprint -sha256`.
    pub fingerprint: String,
    pub generated: bool,
}

pub fn load_or_generate(node: &NodeConfig, listen: SocketAddr) -> Result<Loaded> {
    let (cert_path, key_path, generated) = match (&node.http.tls_cert, &node.http.tls_key) {
        (Some(c), Some(k)) => (c.clone(), k.clone(), false),
        (None, None) => {
            let dir = node.data_dir.join("tls");
            let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
            let fresh = !c.exists() || !k.exists();
            if fresh {
                generate(&dir, &c, &k, &subject_names(node, listen))?;
            }
            (c, k, fresh)
        }
        _ => anyhow::bail!("[http] needs both tls_cert and tls_key, or neither"),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| anyhow::anyhow!("{}: {e}", cert_path.display()))?;
    let leaf = certs
        .first()
        .with_context(|| format!("{}: no certificate in the file", cert_path.display()))?;
    let fingerprint = fingerprint(leaf);
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", key_path.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| {
            format!(
                "{} and {} do not make a usable certificate and key",
                cert_path.display(),
                key_path.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Loaded {
        config: Arc::new(config),
        cert_path,
        fingerprint,
        generated,
    })
}

pub fn fingerprint(der: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(der);
    d.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The names a client may use to reach this node: `localhost`, the host name, the listen
/// address (or, when listening on every address, loopback and the host's resolved addresses)
/// and whatever `[http] names` adds.
fn subject_names(node: &NodeConfig, listen: SocketAddr) -> Vec<String> {
    let mut names = vec!["localhost".to_owned()];
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let mut addrs: Vec<IpAddr> = Vec::new();
    if !host.is_empty() && host != "localhost" {
        names.push(host.clone());
        if listen.ip().is_unspecified() {
            addrs.extend(
                (host.as_str(), 0)
                    .to_socket_addrs()
                    .into_iter()
                    .flatten()
                    .map(|a| a.ip()),
            );
        }
    }
    if listen.ip().is_unspecified() {
        addrs.push(IpAddr::from([127, 0, 0, 1]));
        addrs.push(IpAddr::from(std::net::Ipv6Addr::LOCALHOST));
    } else {
        addrs.push(listen.ip());
    }
    names.extend(node.http.names.iter().cloned());
    names.extend(addrs.iter().map(IpAddr::to_string));
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

fn generate(dir: &Path, cert: &Path, key: &Path, names: &[String]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    tessera_store::create_private_dir(dir).with_context(|| dir.display().to_string())?;
    let mut params = rcgen::CertificateParams::new(names.to_vec())
        .context("building the self-signed certificate")?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!(
            "tessera {}",
            names.get(1).map_or("localhost", String::as_str)
        ),
    );
    let year = 1970 + (crate::server::unix_now() / 31_556_952) as i32;
    // Two years: long enough that firewalls holding it as their CA profile do not break often.
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + 2, 12, 31);
    let key_pair = rcgen::KeyPair::generate().context("generating the TLS key")?;
    let issued = params
        .self_signed(&key_pair)
        .context("signing the self-signed certificate")?;
    // The key first, private from the start; the certificate after, so that a crash between
    // the two leaves no certificate without its key.
    let tmp = key.with_extension("pem.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| tmp.display().to_string())?;
    f.write_all(key_pair.serialize_pem().as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, key)?;
    std::fs::write(cert, issued.pem()).with_context(|| cert.display().to_string())?;
    Ok(())
}
