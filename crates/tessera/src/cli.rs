//! The administrative commands. Each validates its input completely before writing, and each
//! write is one transaction: bad input leaves nothing half-done.
//!
//! The argument types deliberately do not implement `Debug`: they hold `--secret` and `--pin`.

use crate::qr;
use anyhow::{Context, Result, anyhow, bail};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Subcommand};
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
use tessera_config::{
    Client, Method, MethodKind, NodeConfig, Radius11, Secret, SystemConfig, Transport,
};
use tessera_engine::TokenKind;
use tessera_otp::{Algorithm, OathParams, OtpauthKind};
use tessera_store::{MasterKey, NewToken, NewUser, Storage, StorageOptions, TokenInfo};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Where the node's state lives, from `[storage]`.
pub fn storage_options(node: &NodeConfig) -> StorageOptions {
    StorageOptions {
        url: node.storage_url(),
        user_cache: node.storage.user_cache,
        password_file: node.storage.password_file.clone(),
        ca_file: node.storage.ca_file.clone(),
        pool_size: node.storage.pool_size,
    }
}

pub fn open_store(node: &NodeConfig) -> Result<Storage> {
    let key_file = std::env::var_os("TESSERA_MASTER_KEY_FILE").map(PathBuf::from);
    let key = MasterKey::load_or_create(&node.data_dir, key_file.as_deref())?;
    // Changes made through the CLI are recorded as the operating-system user's.
    Ok(Storage::open(&storage_options(node), key)?.acting_as(tessera_store::Actor::cli()))
}

#[derive(Subcommand)]
pub enum StorageCmd {
    /// Create or upgrade the schema (`serve` does this too, under the same advisory lock) and
    /// print its version.
    Migrate,
    /// Copy this node's SQLite storage into an empty PostgreSQL database, everything included
    /// (users, tokens and what they spent, configuration, administrators, identities, audit
    /// log), in one transaction. Stop `serve` first; use the same master key on the new nodes.
    Copy {
        /// The destination: postgres://USER@HOST:PORT/DB[?sslmode=verify-full].
        #[arg(long, value_name = "URL")]
        to: String,
        /// A file whose first line is the destination's password.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// PEM CA certificates for the destination's TLS certificate.
        #[arg(long, value_name = "FILE")]
        ca_file: Option<PathBuf>,
    },
}

pub fn storage(store: &Storage, node: &NodeConfig, cmd: StorageCmd) -> Result<()> {
    match cmd {
        StorageCmd::Migrate => {
            out!(
                "{}: schema at version {}",
                store.describe(),
                store.schema_version()?
            );
        }
        StorageCmd::Copy {
            to,
            password_file,
            ca_file,
        } => {
            // No `serve` may accept codes from the SQLite file after the snapshot is taken:
            // they would not be spent on PostgreSQL.
            let _no_server = crate::server::lock_data_dir(&node.data_dir).map_err(|e| {
                anyhow::anyhow!("storage copy needs the SQLite node stopped: {e:#}")
            })?;
            let key_file = std::env::var_os("TESSERA_MASTER_KEY_FILE").map(PathBuf::from);
            let key = MasterKey::load_or_create(&node.data_dir, key_file.as_deref())?;
            let dest = Storage::open(
                &StorageOptions {
                    url: to,
                    password_file,
                    ca_file,
                    pool_size: Some(2),
                    ..StorageOptions::default()
                },
                key,
            )?
            .acting_as(store.actor().clone());
            let report = store.copy_to(&dest)?;
            for (table, rows) in &report.tables {
                out!("{table:<16} {rows:>8} rows");
            }
            out!("copied {} to {}", store.describe(), dest.describe());
        }
    }
    Ok(())
}

/// A secret from the command line, or from standard input when given as `-`.
fn secret_arg(value: &str, what: &str) -> Result<Secret> {
    if value != "-" {
        return Ok(Secret::new(value.as_bytes().to_vec()));
    }
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .with_context(|| format!("reading the {what} from standard input"))?;
    let v = line.trim_end_matches(['\r', '\n']);
    if v.is_empty() {
        bail!("the {what} read from standard input is empty");
    }
    Ok(Secret::new(v.as_bytes().to_vec()))
}

#[derive(Subcommand)]
pub enum ConfigCmd {
    /// Replace the draft with a TOML document (checked first; nothing changes if it is invalid).
    Import { file: PathBuf },
    /// Print the draft as TOML. Secrets print as "<set>" unless --with-secrets.
    Export {
        #[arg(long)]
        with_secrets: bool,
    },
    /// Show how the draft differs from the published configuration.
    Diff,
}

/// Check a document that is to replace the draft `old` (as `ops::check`), with errors
/// pointing into `src` when there is one.
fn check(old: &SystemConfig, cfg: &SystemConfig, src: Option<(&str, &str)>) -> Result<()> {
    if let Err(problems) = crate::ops::check(old, cfg) {
        let lines: Vec<String> = problems
            .iter()
            .map(|p| match src {
                Some((text, origin)) => tessera_config::problem_error(text, origin, p).to_string(),
                None => p.message.clone(),
            })
            .collect();
        bail!("{}", lines.join("\n"));
    }
    Ok(())
}

fn resolve_secret_files(cfg: &mut SystemConfig, base: &Path) -> Result<()> {
    for c in &mut cfg.clients {
        if let Some(f) = c.secret_file.take() {
            if c.secret.is_some() {
                bail!("client {:?}: give secret or secret_file, not both", c.name);
            }
            let path = if f.is_relative() { base.join(&f) } else { f };
            let text =
                zeroize::Zeroizing::new(std::fs::read_to_string(&path).with_context(|| {
                    format!("client {:?}: secret_file {}", c.name, path.display())
                })?);
            c.secret = Some(Secret::new(
                text.trim_end_matches(['\r', '\n']).as_bytes().to_vec(),
            ));
        }
    }
    Ok(())
}

pub fn config(store: &Storage, cmd: ConfigCmd) -> Result<()> {
    match cmd {
        ConfigCmd::Import { file } => {
            let origin = file.display().to_string();
            let text = tessera_config::read_file(&file)?;
            let mut cfg: SystemConfig = tessera_config::parse_toml(&text, &origin)?;
            resolve_secret_files(&mut cfg, file.parent().unwrap_or(Path::new(".")))?;
            let old = store.draft()?;
            check(&old, &cfg, Some((&text, &origin)))?;
            crate::ops::save_draft(store, &old, &cfg, None, "config.import", &origin)?;
            out!(
                "draft updated from {origin}; review with `tessera config diff`, make it live with `tessera publish`"
            );
        }
        ConfigCmd::Export { with_secrets } => {
            let cfg = store.draft()?;
            let cfg = if with_secrets { cfg } else { cfg.redacted() };
            out_part!("{}", cfg.to_toml());
        }
        ConfigCmd::Diff => {
            let published = store.published()?;
            let (version, old) = published.unwrap_or((0, SystemConfig::default()));
            let new = store.draft()?;
            let changed = crate::ops::draft_diff(&old, &new);
            if changed.is_empty() {
                out!("the draft is the same as published version {version}");
            } else {
                out!("--- published (version {version})\n+++ draft");
                for l in changed {
                    out!("{l}");
                }
            }
        }
    }
    Ok(())
}

pub fn publish(store: &Storage) -> Result<()> {
    let version = crate::ops::publish(store)?;
    out!("published version {version}; running servers pick it up within 2 seconds");
    Ok(())
}

#[derive(Subcommand)]
pub enum ClientCmd {
    /// Add a RADIUS client to the draft.
    Add {
        name: String,
        /// Address or CIDR its requests (or its TLS connections) come from.
        #[arg(long)]
        address: String,
        /// Shared secret, or - to read it from standard input. Required for udp clients; a tls
        /// client without one uses "radsec" (RFC 6614 §2.3).
        #[arg(long)]
        secret: Option<String>,
        /// Authentication method for its requests.
        #[arg(long)]
        method: String,
        /// Accept Access-Requests without Message-Authenticator (not recommended: BlastRADIUS).
        #[arg(long)]
        no_require_message_authenticator: bool,
        /// How it reaches the server: udp (RFC 2865) or tls (RadSec, RFC 6614).
        #[arg(long, default_value = "udp",
            value_parser = PossibleValuesParser::new(["udp", "tls"]).try_map(|s| s.parse::<Transport>()))]
        transport: Transport,
        /// tls clients (required): the name their certificate carries (a DNS subjectAltName,
        /// or the subject CN when it has none).
        #[arg(long, value_name = "NAME")]
        tls_peer_name: Option<String>,
        /// tls clients: whether connections may, must or must not use RADIUS/1.1 (RFC 9765).
        #[arg(long = "radius-1-1", default_value = "allow",
            value_parser = PossibleValuesParser::new(["allow", "require", "forbid"]).try_map(|s| s.parse::<Radius11>()))]
        radius_1_1: Radius11,
    },
}

pub fn client(store: &Storage, cmd: ClientCmd) -> Result<()> {
    match cmd {
        ClientCmd::Add {
            name,
            address,
            secret,
            method,
            no_require_message_authenticator,
            transport,
            tls_peer_name,
            radius_1_1,
        } => {
            let client = Client {
                name: name.clone(),
                address,
                secret: None,
                secret_file: None,
                method,
                require_message_authenticator: !no_require_message_authenticator,
                transport,
                tls_peer_name,
                radius_1_1,
            };
            let secret = secret
                .map(|s| secret_arg(&s, "shared secret"))
                .transpose()?;
            crate::ops::add_client(store, Client { secret, ..client })?;
            out!("client {name:?} added to the draft; run `tessera publish` to make it live");
        }
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum ApiClientCmd {
    /// Add an identity-API client to the draft and print its secret (shown only once).
    Add {
        client_id: String,
        /// Scope to grant (repeatable): identity:read (the default), identity:write,
        /// metrics:read (scrape /metrics).
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Access-token lifetime, e.g. 8h (the default) or 30m.
        #[arg(long, value_name = "DURATION")]
        token_lifetime: Option<String>,
        /// Use this secret (or - to read it from standard input) instead of generating one.
        #[arg(long)]
        secret: Option<String>,
    },
    /// Give a client a new generated secret; its tokens stop working once published.
    Rotate { client_id: String },
    /// Remove a client from the draft; its tokens stop working once published.
    Remove { client_id: String },
    /// List the draft's identity-API clients.
    List,
}

fn print_api_secret(client_id: &str, secret: &Secret) {
    out!("client_id:     {client_id}");
    out!(
        "client_secret: {}",
        String::from_utf8_lossy(secret.expose())
    );
    out!("(the secret is shown only this once; it is stored encrypted)");
    out!("run `tessera publish` to make the change live");
}

pub fn api_client(store: &Storage, cmd: ApiClientCmd) -> Result<()> {
    match cmd {
        ApiClientCmd::Add {
            client_id,
            scopes,
            token_lifetime,
            secret,
        } => {
            let given = secret
                .map(|s| secret_arg(&s, "client secret"))
                .transpose()?;
            let show = given.is_none();
            let token_lifetime = token_lifetime
                .map(|t| {
                    t.parse::<tessera_config::Duration>()
                        .map_err(|e| anyhow!("--token-lifetime {t:?}: {e}"))
                })
                .transpose()?;
            let secret =
                crate::ops::add_api_client(store, &client_id, scopes, token_lifetime, given)?;
            if show {
                print_api_secret(&client_id, &secret);
            } else {
                out!(
                    "api client {client_id:?} added to the draft; run `tessera publish` to make it live"
                );
            }
        }
        ApiClientCmd::Rotate { client_id } => {
            let secret = crate::ops::rotate_api_client(store, &client_id)?;
            print_api_secret(&client_id, &secret);
        }
        ApiClientCmd::Remove { client_id } => {
            crate::ops::remove_named(store, "api_client", &client_id)?;
            out!(
                "api client {client_id:?} removed from the draft; run `tessera publish` to make it live"
            );
        }
        ApiClientCmd::List => {
            out!("{:<24} {:<32} TOKEN LIFETIME", "CLIENT ID", "SCOPES");
            for a in store.draft()?.api_clients {
                let scopes = if a.scopes.is_empty() {
                    tessera_engine::oauth::SCOPE_READ.to_owned()
                } else {
                    a.scopes.join(" ")
                };
                let lifetime = a.token_lifetime.map_or("8h".to_owned(), |d| d.to_string());
                out!("{:<24} {:<32} {lifetime}", a.client_id, scopes);
            }
        }
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum MethodCmd {
    /// Add an authentication method to the draft.
    Add {
        name: String,
        /// otp | pin-otp | motp | password | password-otp | mobile-text
        #[arg(long)]
        kind: String,
        #[arg(long)]
        display_name: Option<String>,
        /// Reply-Message on Access-Accept ({user}, {display_name}).
        #[arg(long)]
        accept_message: Option<String>,
        /// Reply-Message on Access-Reject.
        #[arg(long)]
        reject_message: Option<String>,
        /// Password kinds: "local" or a [[directory]] name (other kinds: groups for identities).
        #[arg(long)]
        directory: Option<String>,
        /// mobile-text: a [[courier]] name.
        #[arg(long)]
        courier: Option<String>,
        /// Reply-Message of the Access-Challenge ({destination}: where the code went).
        #[arg(long)]
        challenge_message: Option<String>,
    },
}

pub fn method(store: &Storage, cmd: MethodCmd) -> Result<()> {
    match cmd {
        MethodCmd::Add {
            name,
            kind,
            display_name,
            accept_message,
            reject_message,
            directory,
            courier,
            challenge_message,
        } => {
            let kind: MethodKind = toml::Value::String(kind.clone())
                .try_into()
                .map_err(|_| anyhow!("unknown method kind {kind:?} (otp, pin-otp, motp, password-otp, mobile-text, password)"))?;
            crate::ops::add_method(
                store,
                Method {
                    name: name.clone(),
                    display_name,
                    kind,
                    enabled: true,
                    visible: true,
                    directory,
                    courier,
                    code_length: None,
                    code_ttl: None,
                    max_attempts: None,
                    replies: tessera_config::Replies {
                        accept: accept_message,
                        reject: reject_message,
                        challenge: challenge_message,
                    },
                    reply_attributes: Default::default(),
                },
            )?;
            out!("method {name:?} added to the draft; run `tessera publish` to make it live");
        }
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum UserCmd {
    /// Add a user.
    Add {
        name: String,
        /// Password for `directory = "local"` methods (stored as an argon2id hash), or - to
        /// read it from standard input.
        #[arg(long)]
        password: Option<String>,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        phone: Option<String>,
    },
    /// Set or change a user's local password (- reads it from standard input).
    Password {
        name: String,
        #[arg(long)]
        password: String,
    },
    /// List users.
    List,
    /// Show one user and their tokens.
    Show { name: String },
    /// Clear the failure counter and any lock.
    Unlock { name: String },
    /// Remove a user and their tokens.
    Remove { name: String },
    /// Add users and tokens from a CSV file, all or nothing. Header:
    /// user,kind,secret,pin,digits,period,algorithm,counter (kind empty: user only).
    Import { file: PathBuf },
}

fn lock_text(locked_until: Option<i64>, now: u64) -> String {
    match locked_until {
        Some(tessera_store::LOCKED_FOREVER) => "locked until unlocked".into(),
        Some(t) if t > now as i64 => format!("locked for {} s more", t - now as i64),
        _ => "active".into(),
    }
}

pub fn user(store: &Storage, cmd: UserCmd) -> Result<()> {
    match cmd {
        UserCmd::Add {
            name,
            password,
            email,
            phone,
        } => {
            let password = password.map(|p| secret_arg(&p, "password")).transpose()?;
            crate::ops::add_user(store, &name, password, email, phone)?;
            out!("user {name:?} added");
        }
        UserCmd::Password { name, password } => {
            crate::ops::set_password(store, &name, secret_arg(&password, "password")?)?;
            out!("password of {name:?} set");
        }
        UserCmd::List => {
            let users = store.list_users()?;
            out!("{:<24} {:>6} {:>8}  STATE", "USER", "TOKENS", "FAILURES");
            for u in users {
                out!(
                    "{:<24} {:>6} {:>8}  {}",
                    u.name,
                    u.tokens,
                    u.failures,
                    lock_text(u.locked_until, now())
                );
            }
            // Users known only to a directory appear once they have failures on record.
            for (name, l) in store.directory_lockouts()? {
                let until = l.locked_until.map(|t| i64::try_from(t).unwrap_or(i64::MAX));
                out!(
                    "{:<24} {:>6} {:>8}  {} (directory user)",
                    name,
                    "-",
                    l.failures(),
                    lock_text(until, now())
                );
            }
        }
        UserCmd::Show { name } => {
            // A name known only to a directory has no record here, but may have failures.
            if let (Err(tessera_store::AdminError::NoSuchUser(_)), Some(l)) =
                (store.user(&name), store.lockout(&name)?)
            {
                out!("user:     {name} (no local record; directory user)");
                out!("failures: {}", l.failures());
                let until = l.locked_until.map(|t| i64::try_from(t).unwrap_or(i64::MAX));
                out!("state:    {}", lock_text(until, now()));
                return Ok(());
            }
            let u = store.user(&name)?;
            out!("user:     {}", u.name);
            out!("email:    {}", u.email.as_deref().unwrap_or("-"));
            out!("phone:    {}", u.phone.as_deref().unwrap_or("-"));
            out!("failures: {}", u.failures);
            out!("state:    {}", lock_text(u.locked_until, now()));
            print_tokens(&store.list_tokens(Some(&u.name))?);
        }
        UserCmd::Unlock { name } => {
            store.unlock_user(&name)?;
            out!("user {name:?} unlocked");
        }
        UserCmd::Import { file } => {
            let rows = parse_user_csv(&file)?;
            let (users, tokens) = store.import(rows, now())?;
            out!(
                "imported {users} new users and {tokens} tokens from {}",
                file.display()
            );
        }
        UserCmd::Remove { name } => {
            store.remove_user(&name)?;
            out!("user {name:?} and their tokens removed");
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct TokenAdd {
    user: String,
    /// totp | hotp | motp
    #[arg(long)]
    kind: String,
    /// Base32 seed (totp/hotp; generated when omitted) or the mOTP init-secret as typed on the device.
    #[arg(long)]
    secret: Option<String>,
    #[arg(long, default_value_t = 6)]
    digits: u32,
    #[arg(long, default_value_t = 30)]
    period: u64,
    #[arg(long, default_value = "sha1")]
    algorithm: String,
    /// First HOTP counter to expect.
    #[arg(long, default_value_t = 0)]
    counter: u64,
    /// PIN (pin-otp methods; the device PIN for motp), or - to read it from standard input.
    #[arg(long)]
    pin: Option<String>,
    /// Write the enrolment QR code to this PNG file.
    #[arg(long, value_name = "FILE.png")]
    qr: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum TokenCmd {
    /// Enrol a token for a user; prints the otpauth:// URI once.
    Add(TokenAdd),
    /// List tokens (never their secrets).
    List { user: Option<String> },
    /// Bring an HOTP token back in step with two consecutive codes.
    Resync {
        user: String,
        otp1: String,
        otp2: String,
    },
    /// Remove a token.
    Remove { token_id: i64 },
}

fn print_tokens(tokens: &[TokenInfo]) {
    out!(
        "{:>6}  {:<20} {:<5} {:<7} {:>6} {:>6} {:<4} {:>10}",
        "ID",
        "USER",
        "KIND",
        "ALG",
        "DIGITS",
        "PERIOD",
        "PIN",
        "NEXT"
    );
    for t in tokens {
        out!(
            "{:>6}  {:<20} {:<5} {:<7} {:>6} {:>6} {:<4} {:>10}",
            t.id,
            t.user,
            t.kind.as_str(),
            t.algorithm.as_str(),
            t.digits,
            if t.kind == TokenKind::Totp {
                t.period.to_string()
            } else {
                "-".into()
            },
            if t.has_pin { "yes" } else { "no" },
            t.next_counter
        );
    }
}

fn token_add(store: &Storage, a: TokenAdd) -> Result<()> {
    let pin = a.pin.as_deref().map(|p| secret_arg(p, "PIN")).transpose()?;
    if a.kind.eq_ignore_ascii_case("motp") && a.qr.is_some() {
        bail!("mOTP devices are set up by typing the init-secret; there is no QR code (drop --qr)");
    }
    let enrolled = crate::ops::add_token(
        store,
        crate::ops::TokenSpec {
            user: a.user.clone(),
            kind: a.kind.clone(),
            secret: a.secret.clone(),
            digits: a.digits,
            period: a.period,
            algorithm: a.algorithm.clone(),
            counter: a.counter,
            pin,
        },
    )?;
    let (id, uri, secret) = (enrolled.id, enrolled.uri, enrolled.secret);
    out!("token {id} added for {:?}", a.user);
    match &uri {
        Some(uri) => {
            out!("{uri}");
            if let Some(path) = &a.qr {
                qr::write_png(uri, path)?;
                out!("QR code written to {}", path.display());
            }
            if std::io::stdout().is_terminal() {
                out_part!("{}", qr::terminal(uri)?);
            }
        }
        None => {
            let s = String::from_utf8_lossy(secret.expose()).into_owned();
            out!("mOTP init-secret (enter on the device): {s}");
        }
    }
    Ok(())
}

pub fn token(store: &Storage, cmd: TokenCmd) -> Result<()> {
    match cmd {
        TokenCmd::Add(a) => token_add(store, a)?,
        TokenCmd::List { user } => print_tokens(&store.list_tokens(user.as_deref())?),
        TokenCmd::Resync { user, otp1, otp2 } => {
            let (id, next) = store.resync_token(&user, &otp1, &otp2, 1000)?;
            out!("token {id} resynchronised; next expected counter {next}");
        }
        TokenCmd::Remove { token_id } => {
            store.remove_token(token_id)?;
            out!("token {token_id} removed");
        }
    }
    Ok(())
}

/// Read `tessera user import` CSV. Fields are plain (no quoting); every error names the line.
fn parse_user_csv(file: &Path) -> Result<Vec<(NewUser, Option<NewToken>)>> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(file).with_context(|| file.display().to_string())?,
    );
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = match lines.next() {
        Some((_, h)) => h.split(',').map(str::trim).collect(),
        None => bail!("{}: empty file", file.display()),
    };
    let col = |name: &str| header.iter().position(|h| *h == name);
    let user_col = col("user")
        .ok_or_else(|| anyhow!("{}:1: the header needs a `user` column", file.display()))?;
    let mut rows = Vec::new();
    for (n, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let at = |msg: String| anyhow!("{}:{}: {msg}", file.display(), n + 1);
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != header.len() {
            return Err(at(format!(
                "expected {} fields, found {}",
                header.len(),
                fields.len()
            )));
        }
        let get = |name: &str| col(name).map(|i| fields[i]).filter(|v| !v.is_empty());
        tessera_store::validate_user_name(fields[user_col]).map_err(|e| at(e.to_string()))?;
        let user = NewUser {
            name: fields[user_col].to_owned(),
            email: get("email").map(str::to_owned),
            phone: get("phone").map(str::to_owned),
            password_hash: None,
        };
        let token = match get("kind") {
            None => None,
            Some(kind) => {
                let kind: TokenKind = kind.parse().map_err(at)?;
                let num = |name: &str, default: u64| -> Result<u64> {
                    get(name).map_or(Ok(default), |v| {
                        v.parse()
                            .map_err(|_| at(format!("{name} {v:?} is not a number")))
                    })
                };
                let algorithm: Algorithm = get("algorithm")
                    .unwrap_or("sha1")
                    .parse()
                    .map_err(|e| at(format!("{e}")))?;
                let secret = get("secret").ok_or_else(|| at("a token needs a secret".into()))?;
                let secret = match kind {
                    TokenKind::Motp => Secret::new(secret.as_bytes().to_vec()),
                    _ => Secret::new(
                        tessera_otp::base32_decode(secret)
                            .map_err(|_| at("secret is not base32".into()))?,
                    ),
                };
                let digits = u32::try_from(num("digits", 6)?)
                    .map_err(|_| at("digits must be 6 or 8".into()))?;
                let period = num("period", 30)?;
                let token = NewToken {
                    kind,
                    algorithm,
                    digits,
                    period,
                    secret,
                    pin: get("pin").map(|p| Secret::new(p.as_bytes().to_vec())),
                    counter: num("counter", 0)?,
                };
                token.validate().map_err(|e| at(e.to_string()))?;
                Some(token)
            }
        };
        rows.push((user, token));
    }
    Ok(rows)
}

#[derive(Subcommand)]
pub enum IdentityCmd {
    /// List who holds which address (newest change last).
    List,
    /// Show the current entry for one address.
    Show { ip: std::net::IpAddr },
}

/// RFC 3339 in UTC from unix seconds (the civil calendar from days, without a date crate).
pub fn rfc3339(unix: i64) -> String {
    tessera_engine::identity::format_rfc3339(unix)
}

pub fn identity(store: &Storage, cmd: IdentityCmd) -> Result<()> {
    match cmd {
        IdentityCmd::List => {
            out!(
                "{:<39} {:<20} {:<16} {:<6} {:<20} {:<12} UPDATED",
                "IP",
                "USER",
                "DOMAIN",
                "STATE",
                "SESSION",
                "CLIENT"
            );
            for e in store.identities(0, usize::MAX)? {
                out!(
                    "{:<39} {:<20} {:<16} {:<6} {:<20} {:<12} {}",
                    e.ip,
                    e.user,
                    e.domain.as_deref().unwrap_or("-"),
                    e.state,
                    e.session_id.as_deref().unwrap_or("-"),
                    e.client.as_deref().unwrap_or("-"),
                    rfc3339(e.updated_at)
                );
            }
        }
        IdentityCmd::Show { ip } => {
            let e = store
                .identity(ip)?
                .ok_or_else(|| anyhow!("no identity entry for {ip}"))?;
            out!("ip:         {}", e.ip);
            out!("user:       {}", e.user);
            out!("domain:     {}", e.domain.as_deref().unwrap_or("-"));
            out!("groups:     {}", e.groups.join(", "));
            out!("state:      {}", e.state);
            out!("source:     {}", e.source);
            out!("session_id: {}", e.session_id.as_deref().unwrap_or("-"));
            out!("client:     {}", e.client.as_deref().unwrap_or("-"));
            out!("start_time: {}", rfc3339(e.start_time));
            out!("updated_at: {}", rfc3339(e.updated_at));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_dates() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_795_398_245), "2026-11-23T01:44:05Z");
    }
}

#[derive(Subcommand)]
pub enum AdminCmd {
    /// Add an administrator of the console and the admin API; prints the TOTP enrolment.
    Add {
        name: String,
        /// The password (- reads it from standard input); generated and printed once if absent.
        #[arg(long)]
        password: Option<String>,
        /// admin (may change everything) or auditor (may read everything, change nothing).
        #[arg(long, default_value = "admin")]
        role: String,
    },
    /// List administrators.
    List,
    /// Remove an administrator, ending their sessions and tokens (to reset a password or
    /// TOTP: remove, then add again).
    Remove { name: String },
    /// Unlock an administrator locked by failed logins (clears the failure count; audited).
    Unlock { name: String },
    /// Create an admin API token for automation (printed once; sent as a Bearer token).
    Token {
        name: String,
        /// What the token is for.
        #[arg(long, default_value = "automation")]
        label: String,
        /// Lifetime, e.g. 90d (default: until removed with the administrator).
        #[arg(long)]
        lifetime: Option<String>,
    },
}

/// Shortest administrator password accepted.
const MIN_ADMIN_PASSWORD: usize = 12;

fn random_text(bytes: usize) -> Result<String> {
    Ok(data_encoding::BASE64URL_NOPAD.encode(&crate::ops::random_bytes(bytes)?))
}

pub fn admin(store: &Storage, cmd: AdminCmd) -> Result<()> {
    match cmd {
        AdminCmd::Add {
            name,
            password,
            role,
        } => {
            let role: tessera_store::Role = role.parse().map_err(|e: String| anyhow!(e))?;
            // The name first: a refused name costs no argon2 hash.
            tessera_config::check_name("administrator name", name.trim())?;
            let (password, shown) = match password {
                Some(p) => (secret_arg(&p, "password")?, false),
                None => (Secret::new(random_text(15)?.into_bytes()), true),
            };
            if password.expose().len() < MIN_ADMIN_PASSWORD {
                bail!("an administrator password must be at least {MIN_ADMIN_PASSWORD} characters");
            }
            let hash = tessera_store::hash_password(password.expose()).map_err(|e| anyhow!(e))?;
            let mut seed = [0u8; 20];
            getrandom::fill(&mut seed).map_err(|e| anyhow!("no randomness: {e}"))?;
            store.add_admin(&name, hash, &seed, role, now())?;
            let uri = tessera_otp::otpauth_uri(
                OtpauthKind::Totp { period: 30 },
                "tessera admin",
                &name,
                &seed,
                OathParams {
                    algorithm: Algorithm::Sha1,
                    digits: 6,
                },
            );
            out!("administrator {name:?} added ({})", role.as_str());
            if shown {
                out!(
                    "password: {} (shown only this once)",
                    String::from_utf8_lossy(password.expose())
                );
            }
            out!("TOTP enrolment (scan or type into an authenticator app):");
            out!("{uri}");
            if std::io::stdout().is_terminal() {
                out_part!("{}", qr::terminal(&uri)?);
            }
        }
        AdminCmd::Remove { name } => {
            store.remove_admin(&name)?;
            out!("administrator {name:?} removed; their sessions and tokens ended");
        }
        AdminCmd::Unlock { name } => {
            store.unlock_admin(&name)?;
            out!("administrator {name:?} unlocked");
        }
        AdminCmd::List => {
            out!("{:<24} {:<8} STATE", "ADMINISTRATOR", "ROLE");
            for (name, role, locked) in store.list_admins()? {
                out!(
                    "{name:<24} {:<8} {}",
                    role.as_str(),
                    lock_text(locked.map(|l| i64::try_from(l).unwrap_or(i64::MAX)), now())
                );
            }
        }
        AdminCmd::Token {
            name,
            label,
            lifetime,
        } => {
            let expires = lifetime
                .map(|l| {
                    l.parse::<tessera_config::Duration>()
                        .map(|d| now() + d.secs())
                        .map_err(|e| anyhow!("--lifetime {l:?}: {e}"))
                })
                .transpose()?;
            let token = format!("tsa_{}", random_text(32)?);
            let hash = tessera_engine::oauth::token_hash(&token);
            store.add_admin_token(&name, hash, &label, now(), expires)?;
            out!("admin API token for {name:?} ({label}), shown only this once:");
            out!("{token}");
        }
    }
    Ok(())
}

pub fn audit(store: &Storage, limit: usize) -> Result<()> {
    out!(
        "{:<20} {:<16} {:<8} {:<16} {:<18} {:<20} DETAIL",
        "WHEN",
        "WHO",
        "VIA",
        "FROM",
        "ACTION",
        "TARGET"
    );
    for e in store.audit_log(None, limit)? {
        out!(
            "{:<20} {:<16} {:<8} {:<16} {:<18} {:<20} {}",
            rfc3339(e.at),
            e.actor,
            e.via,
            e.source.as_deref().unwrap_or("-"),
            e.action,
            e.target,
            e.detail.as_deref().unwrap_or("")
        );
    }
    Ok(())
}
