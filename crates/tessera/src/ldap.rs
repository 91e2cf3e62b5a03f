//! `kind = "ldap"` and `kind = "ad"` directories (SPEC §5) over ldap3: search the user with the
//! service account and `user_filter`, then bind as the user to check the password.
//!
//! I/O only; filter escaping and DN handling are `tessera_engine::directory`. Every operation
//! runs under the directory's `timeout`, so a directory that is down, slow or refusing gives a
//! clear error, never a hang.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tessera_config::Directory as DirectoryConfig;
use tessera_engine::challenge::{Authn, BoxFuture, Directory, DirectoryUser, Gate, ServiceError};
use tessera_engine::directory as dir;
use tokio_rustls::rustls;
use tracing::debug;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry};

/// Default per-operation timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Service-account connections kept for searches.
const POOL: usize = 4;

pub struct LdapDirectory {
    cfg: DirectoryConfig,
    timeout: Duration,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// Idle connections bound as the service account.
    pool: Mutex<Vec<Ldap>>,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Unavailable(format!("{what}: {e}"))
}

impl LdapDirectory {
    pub fn new(cfg: DirectoryConfig) -> Result<LdapDirectory, String> {
        let tls = match &cfg.ca_file {
            None => None,
            Some(path) => Some(Arc::new(client_tls(path)?)),
        };
        Ok(LdapDirectory {
            timeout: cfg.timeout.map_or(DEFAULT_TIMEOUT, |t| t.to_std()),
            cfg,
            tls,
            pool: Mutex::new(Vec::new()),
        })
    }

    fn settings(&self) -> LdapConnSettings {
        let mut s = LdapConnSettings::new()
            .set_conn_timeout(self.timeout)
            .set_starttls(self.cfg.starttls == Some(true));
        if let Some(tls) = &self.tls {
            s = s.set_config(Arc::clone(tls));
        }
        s
    }

    /// A new connection (TCP, TLS or StartTLS as configured), not yet bound.
    async fn connect(&self) -> Result<Ldap, ServiceError> {
        let (conn, mut ldap) = LdapConnAsync::with_settings(self.settings(), &self.cfg.url)
            .await
            .map_err(|e| unavailable(&format!("connecting to {}", self.cfg.url), e))?;
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                debug!(error = %e, "LDAP connection ended");
            }
        });
        ldap.with_timeout(self.timeout);
        Ok(ldap)
    }

    /// A connection bound as the service account (or anonymous), from the pool if one waits;
    /// `true` when it came from the pool.
    async fn service(&self) -> Result<(Ldap, bool), ServiceError> {
        if let Some(l) = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok((l, true));
        }
        let mut ldap = self.connect().await?;
        if let (Some(dn), Some(pw)) = (&self.cfg.bind_dn, &self.cfg.bind_password) {
            let pw = std::str::from_utf8(pw.expose())
                .map_err(|_| ServiceError::Unavailable("bind_password is not UTF-8".into()))?;
            ldap.with_timeout(self.timeout);
            ldap.simple_bind(dn, pw)
                .await
                .and_then(|r| r.success())
                .map_err(|e| unavailable("service account bind", e))?;
        }
        Ok((ldap, false))
    }

    fn give_back(&self, ldap: Ldap) {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < POOL {
            pool.push(ldap);
        }
    }

    /// Run a search on a service connection. A pooled connection may have died since it was
    /// used (the directory restarted): its failure is retried once on a fresh connection.
    async fn search(&self, filter: &str, attrs: &[&str]) -> Result<Vec<SearchEntry>, ServiceError> {
        let mut last = None;
        for _ in 0..2 {
            let (mut ldap, pooled) = self.service().await?;
            ldap.with_timeout(self.timeout);
            match ldap
                .search(&self.cfg.base_dn, Scope::Subtree, filter, attrs.to_vec())
                .await
                .and_then(|r| r.success())
            {
                Ok((entries, _)) => {
                    self.give_back(ldap);
                    return Ok(entries.into_iter().map(SearchEntry::construct).collect());
                }
                Err(e) => {
                    last = Some(unavailable("search", e));
                    if !pooled {
                        break;
                    }
                }
            }
        }
        Err(last.unwrap_or_else(|| ServiceError::Unavailable("search failed".into())))
    }

    /// Find the user's entry: exactly one, or none.
    async fn find(&self, user: &str) -> Result<Option<SearchEntry>, ServiceError> {
        let filter = dir::user_filter(self.cfg.user_filter.as_deref(), &self.cfg.kind, user);
        let name_attr = dir::name_attribute(self.cfg.user_filter.as_deref(), &self.cfg.kind);
        let attrs = [
            name_attr.as_str(),
            self.cfg.email_attribute.as_deref().unwrap_or("mail"),
            self.cfg.phone_attribute.as_deref().unwrap_or("mobile"),
            self.cfg.group_attribute.as_deref().unwrap_or("memberOf"),
        ];
        let mut entries = self.search(&filter, &attrs).await?;
        match entries.len() {
            1 => Ok(entries.pop()),
            0 => Ok(None),
            n => {
                tracing::warn!(user = ?user, matches = n, filter = %filter, "user_filter matches more than one entry; refusing");
                Ok(None)
            }
        }
    }

    /// Groups: the group attribute's values (DNs → names), and on AD the nested groups
    /// through the in-chain matching rule.
    async fn groups(&self, entry: &SearchEntry) -> Vec<String> {
        let attr = self.cfg.group_attribute.as_deref().unwrap_or("memberOf");
        let mut groups: Vec<String> = attr_values(entry, attr)
            .iter()
            .map(|dn| dir::group_name(dn))
            .collect();
        if dir::is_ad(&self.cfg.kind) {
            match self.nested_groups(&entry.dn).await {
                Ok(nested) => groups.extend(nested),
                Err(e) => debug!(error = %e, "nested group lookup failed; direct groups only"),
            }
        }
        groups.sort();
        groups.dedup();
        groups
    }

    async fn nested_groups(&self, user_dn: &str) -> Result<Vec<String>, ServiceError> {
        let entries = self
            .search(&dir::nested_groups_filter(user_dn), &["cn"])
            .await?;
        Ok(entries.iter().map(|e| dir::group_name(&e.dn)).collect())
    }

    /// The directory's spelling of the user's name (the naming attribute of the filter).
    fn canonical_name(&self, asked: &str, entry: &SearchEntry) -> String {
        let name_attr = dir::name_attribute(self.cfg.user_filter.as_deref(), &self.cfg.kind);
        attr_values(entry, &name_attr)
            .first()
            .cloned()
            .unwrap_or_else(|| asked.to_owned())
    }

    async fn to_user(&self, asked: &str, entry: &SearchEntry) -> DirectoryUser {
        let first = |a: &str| attr_values(entry, a).first().cloned();
        DirectoryUser {
            name: self.canonical_name(asked, entry),
            email: first(self.cfg.email_attribute.as_deref().unwrap_or("mail")),
            phone: first(self.cfg.phone_attribute.as_deref().unwrap_or("mobile")),
            groups: self.groups(entry).await,
        }
    }

    async fn authenticate_inner(
        &self,
        user: &str,
        password: &[u8],
        gate: &dyn Gate,
    ) -> Result<Authn, ServiceError> {
        if user.is_empty() {
            return Ok(Authn::Rejected { user: None });
        }
        let Some(entry) = self.find(user).await? else {
            return Ok(Authn::Rejected { user: None });
        };
        // The lock of the directory's spelling of the name decides before any bind, and a
        // wrong password counts on that name.
        let canonical = self.canonical_name(user, &entry);
        if !gate.open(&canonical).await {
            return Ok(Authn::Refused);
        }
        let wrong = || Authn::Rejected {
            user: Some(canonical.clone()),
        };
        // RFC 4513 §5.1.2: a simple bind with an empty password is an *unauthenticated* bind
        // that many servers answer with success. Never let one through as a login.
        let Ok(password) = std::str::from_utf8(password) else {
            return Ok(wrong());
        };
        if password.is_empty() {
            return Ok(wrong());
        }
        let mut ldap = self.connect().await?;
        ldap.with_timeout(self.timeout);
        let bound = ldap.simple_bind(&entry.dn, password).await;
        let _ = ldap.unbind().await;
        match bound {
            Ok(r) if r.rc == 0 => Ok(Authn::Accepted(self.to_user(user, &entry).await)),
            // 49 invalidCredentials (and the like): a wrong password.
            Ok(r) if r.rc == 49 || r.rc == 53 || r.rc == 50 => Ok(wrong()),
            Ok(r) => Err(ServiceError::Unavailable(format!(
                "user bind answered {} {}",
                r.rc, r.text
            ))),
            Err(e) => Err(unavailable("user bind", e)),
        }
    }
}

fn attr_values<'e>(entry: &'e SearchEntry, name: &str) -> &'e [String] {
    entry
        .attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map_or(&[], |(_, v)| v.as_slice())
}

impl Directory for LdapDirectory {
    fn authenticate<'a>(
        &'a self,
        user: &'a str,
        password: &'a [u8],
        gate: &'a dyn Gate,
    ) -> BoxFuture<'a, Result<Authn, ServiceError>> {
        Box::pin(async move {
            // The whole exchange, not just each operation, is bounded.
            tokio::time::timeout(
                self.timeout * 3,
                self.authenticate_inner(user, password, gate),
            )
            .await
            .unwrap_or_else(|_| {
                Err(ServiceError::Unavailable(format!(
                    "{} did not answer within {:?}",
                    self.cfg.url,
                    self.timeout * 3
                )))
            })
        })
    }

    fn lookup<'a>(
        &'a self,
        user: &'a str,
    ) -> BoxFuture<'a, Result<Option<DirectoryUser>, ServiceError>> {
        Box::pin(async move {
            let work = async {
                match self.find(user).await? {
                    Some(entry) => Ok(Some(self.to_user(user, &entry).await)),
                    None => Ok(None),
                }
            };
            tokio::time::timeout(self.timeout * 2, work)
                .await
                .unwrap_or_else(|_| Err(ServiceError::Unavailable("lookup timed out".into())))
        })
    }
}

/// TLS for ldaps:// and StartTLS, trusting exactly the certificates in `ca_file`.
fn client_tls(ca_file: &std::path::Path) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_file)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", ca_file.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in the file", ca_file.display()));
    }
    for c in certs {
        roots
            .add(c)
            .map_err(|e| format!("{}: {e}", ca_file.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
