//! Administrative operations on the draft configuration, shared by the CLI, the admin API and
//! the console: one implementation of each, with one validation and one audit record.
//!
//! The store records the audit entry in the change's own transaction, as the actor of the
//! handle it is given (`Storage::acting_as`).

use crate::diff;
use anyhow::{Result, bail};
use tessera_config::SystemConfig;
use tessera_store::{Change, Storage};

fn now() -> u64 {
    crate::server::unix_now()
}

/// Check a document that is to replace the draft `old`: the way Publish will, and every name
/// it adds (names already in `old`, from before names were checked, are kept).
pub fn check(old: &SystemConfig, cfg: &SystemConfig) -> Result<(), Vec<tessera_config::Problem>> {
    let mut problems = tessera_engine::published::check_new_names(old, cfg);
    if let Err(more) = tessera_engine::compile(cfg, 0) {
        // One message per value: a refused name is not also reported by the compiler.
        let named: Vec<_> = problems.iter().map(|p| p.path.clone()).collect();
        problems.extend(more.into_iter().filter(|p| !named.contains(&p.path)));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// How `new` differs from `old`, secrets redacted: changed lines only (`+`/`-`), then a line
/// per changed secret (secrets print as `<set>`, so a change would not show otherwise).
pub fn draft_diff(old: &SystemConfig, new: &SystemConfig) -> Vec<String> {
    let d = diff::lines(&old.redacted().to_toml(), &new.redacted().to_toml());
    let mut changed: Vec<String> = d.into_iter().filter(|l| !l.starts_with("  ")).collect();
    for c in &new.clients {
        if let Some(o) = old.clients.iter().find(|o| o.name == c.name)
            && o.secret != c.secret
        {
            changed.push(format!("~ client {:?}: secret changed", c.name));
        }
    }
    for a in &new.api_clients {
        if let Some(o) = old.api_clients.iter().find(|o| o.client_id == a.client_id)
            && o.secret != a.secret
        {
            changed.push(format!("~ api_client {:?}: secret changed", a.client_id));
        }
    }
    for d in &new.directories {
        if let Some(o) = old.directories.iter().find(|o| o.name == d.name)
            && o.bind_password != d.bind_password
        {
            changed.push(format!("~ directory {:?}: bind_password changed", d.name));
        }
    }
    for c in &new.couriers {
        if let Some(o) = old.couriers.iter().find(|o| o.name == c.name)
            && o.password != c.password
        {
            changed.push(format!("~ courier {:?}: password changed", c.name));
        }
    }
    changed
}

/// Longest diff kept in an audit entry.
const AUDIT_DIFF_LINES: usize = 200;

/// Save `cfg` as the draft if it is valid and the draft has not moved since `base` (its
/// revision when read). The audit entry carries the redacted diff.
pub fn save_draft(
    store: &Storage,
    old: &SystemConfig,
    cfg: &SystemConfig,
    base: Option<i64>,
    action: &str,
    target: &str,
) -> Result<i64> {
    if let Err(problems) = check(old, cfg) {
        let lines: Vec<String> = problems.into_iter().map(|p| p.message).collect();
        bail!("{}", lines.join("\n"));
    }
    let mut lines = draft_diff(old, cfg);
    lines.truncate(AUDIT_DIFF_LINES);
    let change = Change::new(action, target).with(serde_json::json!({ "diff": lines }));
    Ok(store.set_draft(cfg, now(), change, base)?)
}

/// Apply `edit` to the current draft, check the result and save it, as `action` on `target`.
/// Two edits at once cannot lose one another: the save is refused if the draft moved.
pub fn edit_draft(
    store: &Storage,
    action: &str,
    target: &str,
    edit: impl FnOnce(&mut SystemConfig) -> Result<()>,
) -> Result<()> {
    let base = store.draft_revision()?;
    let old = store.draft()?;
    let mut cfg = old.clone();
    edit(&mut cfg)?;
    save_draft(store, &old, &cfg, Some(base), action, target)?;
    Ok(())
}

/// Make the draft live; returns the new version.
pub fn publish(store: &Storage) -> Result<i64> {
    Ok(store.publish(now(), |cfg, version| {
        tessera_engine::compile(cfg, version)
            .map(|_| ())
            .map_err(|problems| {
                tessera_store::AdminError::Invalid(
                    problems
                        .iter()
                        .map(|p| p.message.as_str())
                        .collect::<Vec<_>>()
                        .join("\n"),
                )
            })
    })?)
}

/// A token to enrol, as the CLI flags and the admin API give it.
#[derive(Debug)]
pub struct TokenSpec {
    pub user: String,
    /// totp | hotp | motp
    pub kind: String,
    /// Base32 seed (TOTP/HOTP) or the mOTP init-secret; generated when absent.
    pub secret: Option<String>,
    pub digits: u32,
    pub period: u64,
    /// sha1 | sha256 | sha512
    pub algorithm: String,
    pub counter: u64,
    pub pin: Option<tessera_config::Secret>,
}

/// What an enrolment hands out, once: the otpauth URI (TOTP/HOTP), the secret.
#[derive(Debug)]
pub struct Enrolled {
    pub id: i64,
    pub uri: Option<String>,
    pub secret: tessera_config::Secret,
}

pub fn random_bytes(n: usize) -> Result<Vec<u8>> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(b)
}

/// Enrol a token (SPEC §6 `token add`): validate, store sealed, and build the otpauth URI.
pub fn add_token(store: &Storage, t: TokenSpec) -> Result<Enrolled> {
    use tessera_config::Secret;
    use tessera_engine::TokenKind;
    use tessera_otp::{Algorithm, OathParams, OtpauthKind};
    let kind: TokenKind = t.kind.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let algorithm: Algorithm = t.algorithm.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let secret = match (kind, &t.secret) {
        (TokenKind::Motp, Some(s)) => Secret::new(s.as_bytes().to_vec()),
        (TokenKind::Motp, None) => Secret::new(
            random_bytes(8)?
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .into_bytes(),
        ),
        (_, Some(s)) => Secret::new(tessera_otp::base32_decode(s).map_err(|_| {
            anyhow::anyhow!("the secret must be base32 (RFC 4648), e.g. JBSWY3DPEHPK3PXP")
        })?),
        (_, None) => Secret::new(random_bytes(match algorithm {
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        })?),
    };
    let token = tessera_store::NewToken {
        kind,
        algorithm,
        digits: t.digits,
        period: t.period,
        secret: secret.clone(),
        pin: t.pin,
        counter: t.counter,
    };
    token.validate()?;
    let uri = match kind {
        TokenKind::Motp => None,
        k => Some(tessera_otp::otpauth_uri(
            match k {
                TokenKind::Hotp => OtpauthKind::Hotp { counter: t.counter },
                _ => OtpauthKind::Totp { period: t.period },
            },
            "tessera",
            &t.user,
            secret.expose(),
            OathParams {
                algorithm,
                digits: t.digits,
            },
        )),
    };
    let id = store.add_token(&t.user, token, now())?;
    Ok(Enrolled { id, uri, secret })
}

/// Secrets that come back as `<set>` (an edited export) keep their current value: an
/// administrator editing the redacted document does not erase what they could not see.
pub fn keep_redacted_secrets(old: &SystemConfig, new: &mut SystemConfig) {
    let set = |s: &tessera_config::Secret| s.expose() == b"<set>";
    for c in &mut new.clients {
        if let Some(s) = &c.secret
            && set(s)
        {
            c.secret = old
                .clients
                .iter()
                .find(|o| o.name == c.name)
                .and_then(|o| o.secret.clone());
        }
    }
    for a in &mut new.api_clients {
        if set(&a.secret)
            && let Some(o) = old.api_clients.iter().find(|o| o.client_id == a.client_id)
        {
            a.secret = o.secret.clone();
        }
    }
    for d in &mut new.directories {
        if let Some(s) = &d.bind_password
            && set(s)
        {
            d.bind_password = old
                .directories
                .iter()
                .find(|o| o.name == d.name)
                .and_then(|o| o.bind_password.clone());
        }
    }
    for c in &mut new.couriers {
        if let Some(s) = &c.password
            && set(s)
        {
            c.password = old
                .couriers
                .iter()
                .find(|o| o.name == c.name)
                .and_then(|o| o.password.clone());
        }
    }
}

/// Add a RADIUS client to the draft.
pub fn add_client(store: &Storage, c: tessera_config::Client) -> Result<()> {
    let name = c.name.clone();
    edit_draft(store, "client.add", &name, |cfg| {
        if cfg.clients.iter().any(|x| x.name == c.name) {
            bail!("a client named {:?} already exists in the draft", c.name);
        }
        cfg.clients.push(c);
        Ok(())
    })
}

/// Add an authentication method to the draft.
pub fn add_method(store: &Storage, m: tessera_config::Method) -> Result<()> {
    let name = m.name.clone();
    edit_draft(store, "method.add", &name, |cfg| {
        if cfg.methods.iter().any(|x| x.name == m.name) {
            bail!("a method named {:?} already exists in the draft", m.name);
        }
        cfg.methods.push(m);
        Ok(())
    })
}

/// Remove a `client`, `method`, `directory`, `courier` or `api_client` from the draft.
pub fn remove_named(store: &Storage, what: &str, name: &str) -> Result<()> {
    edit_draft(
        store,
        &format!("{}.remove", what.replace('_', "")),
        name,
        |cfg| {
            let before = (
                cfg.clients.len(),
                cfg.methods.len(),
                cfg.directories.len(),
                cfg.couriers.len(),
                cfg.api_clients.len(),
            );
            match what {
                "client" => cfg.clients.retain(|x| x.name != name),
                "method" => cfg.methods.retain(|x| x.name != name),
                "directory" => cfg.directories.retain(|x| x.name != name),
                "courier" => cfg.couriers.retain(|x| x.name != name),
                "api_client" => cfg.api_clients.retain(|x| x.client_id != name),
                _ => bail!("cannot remove a {what}"),
            }
            let after = (
                cfg.clients.len(),
                cfg.methods.len(),
                cfg.directories.len(),
                cfg.couriers.len(),
                cfg.api_clients.len(),
            );
            if before == after {
                bail!("no {what} named {name:?} in the draft");
            }
            Ok(())
        },
    )
}

/// 256 random bits, base64url: a generated api_client secret.
pub fn generate_api_secret() -> Result<tessera_config::Secret> {
    Ok(tessera_config::Secret::new(
        data_encoding::BASE64URL_NOPAD
            .encode(&random_bytes(32)?)
            .into_bytes(),
    ))
}

/// Add an identity-API client to the draft; returns its secret (generated unless given).
pub fn add_api_client(
    store: &Storage,
    client_id: &str,
    scopes: Vec<String>,
    token_lifetime: Option<tessera_config::Duration>,
    secret: Option<tessera_config::Secret>,
) -> Result<tessera_config::Secret> {
    let secret = match secret {
        Some(s) => s,
        None => generate_api_secret()?,
    };
    edit_draft(store, "apiclient.add", client_id, |cfg| {
        if cfg.api_clients.iter().any(|a| a.client_id == client_id) {
            bail!("an api client {client_id:?} already exists in the draft");
        }
        cfg.api_clients.push(tessera_config::ApiClient {
            client_id: client_id.to_owned(),
            secret: secret.clone(),
            scopes,
            token_lifetime,
        });
        Ok(())
    })?;
    Ok(secret)
}

/// Give an identity-API client a new generated secret (its tokens stop working on publish).
pub fn rotate_api_client(store: &Storage, client_id: &str) -> Result<tessera_config::Secret> {
    let secret = generate_api_secret()?;
    edit_draft(store, "apiclient.rotate", client_id, |cfg| {
        let a = cfg
            .api_clients
            .iter_mut()
            .find(|a| a.client_id == client_id)
            .ok_or_else(|| anyhow::anyhow!("no api client {client_id:?} in the draft"))?;
        a.secret = secret.clone();
        Ok(())
    })?;
    Ok(secret)
}

/// Shortest local password accepted.
pub const MIN_PASSWORD: usize = 8;

fn hash_local_password(p: &tessera_config::Secret) -> Result<String> {
    if p.expose().len() < MIN_PASSWORD {
        bail!("the password must be at least {MIN_PASSWORD} characters");
    }
    tessera_store::hash_password(p.expose()).map_err(|e| anyhow::anyhow!(e))
}

/// Set a user's local password.
pub fn set_password(store: &Storage, name: &str, password: tessera_config::Secret) -> Result<()> {
    Ok(store.set_password_hash(name, Some(hash_local_password(&password)?))?)
}

/// Add a user (with a local password, stored as an argon2id hash).
pub fn add_user(
    store: &Storage,
    name: &str,
    password: Option<tessera_config::Secret>,
    email: Option<String>,
    phone: Option<String>,
) -> Result<i64> {
    // The name first: a refused name costs no argon2 hash.
    tessera_store::validate_user_name(name)?;
    let password_hash = password.as_ref().map(hash_local_password).transpose()?;
    Ok(store.add_user(
        tessera_store::NewUser {
            name: name.to_owned(),
            email,
            phone,
            password_hash,
        },
        now(),
    )?)
}
