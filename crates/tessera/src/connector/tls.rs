//! TLS for the connector's HTTPS client: the server certificate is verified against exactly
//! the certificates of the server's `ca-profile` (`security pki ca-profile NAME
//! certificate-file`), host name or IP address SAN included; without a `ca-profile` it is not
//! verified at all, as Junos does, and the driver warns about it.

use anyhow::{Context, Result, bail};
use std::sync::Arc;
use tessera_connector::CaProfile;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;

/// The rustls client configuration for one server: verified against `ca` when given.
pub fn client_config(ca: Option<&CaProfile>) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let config = match ca {
        Some(profile) => builder
            .with_root_certificates(root_store(profile)?)
            .with_no_client_auth(),
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(tessera_store::UnverifiedServer::new(
                provider.signature_verification_algorithms,
            )))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// Exactly the certificates of the profile's `certificate-file`, nothing from the system.
fn root_store(profile: &CaProfile) -> Result<rustls::RootCertStore> {
    let path = profile.certificate_path();
    let what = || {
        format!(
            "ca-profile {}: certificate-file {}",
            profile.name,
            path.display()
        )
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| anyhow::anyhow!("{}: {e}", what()))?;
    if certs.is_empty() {
        bail!("{}: no PEM certificate in the file", what());
    }
    let mut roots = rustls::RootCertStore::empty();
    for (i, cert) in certs.into_iter().enumerate() {
        roots
            .add(cert)
            .with_context(|| format!("{}: certificate {} is not usable", what(), i + 1))?;
    }
    Ok(roots)
}
