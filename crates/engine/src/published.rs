//! The published system configuration, compiled into the form the request path uses: client
//! lookup by address, methods by name, reply attributes already encoded for the wire.
//!
//! [`compile`] is also the validation of a draft: `config import` and `publish` refuse a
//! document it does not accept, with the path of every offending value.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use tessera_config::{
    AttrValue, Cidr, Courier, Directory, Method, MethodKind, PathSeg, Policy, Problem, Radius11,
    Replies, Secret, SystemConfig, Transport,
};
use tessera_radius::dict;

use crate::oauth::{self, ApiClientRule};

/// An attribute to add to Access-Accept, encoded once at publish time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyAttr {
    pub vendor: Option<u32>,
    pub code: u8,
    pub value: Vec<u8>,
}

#[derive(Debug)]
pub struct CompiledMethod {
    pub name: String,
    pub display_name: String,
    pub kind: MethodKind,
    pub enabled: bool,
    pub visible: bool,
    pub replies: Replies,
    pub accept_attributes: Vec<ReplyAttr>,
    /// `local`, a `[[directory]]` name, or none (one-step kinds without group lookup).
    pub directory: Option<String>,
    /// A `[[courier]]` name (`mobile-text`).
    pub courier: Option<String>,
    /// Digits of a sent code.
    pub code_length: u32,
    /// Seconds a challenge stays open.
    pub code_ttl: u64,
    /// Wrong answers before a challenge ends.
    pub max_attempts: u32,
}

#[derive(Debug)]
pub struct CompiledClient {
    pub name: String,
    pub network: Cidr,
    pub secret: Secret,
    pub method: Arc<CompiledMethod>,
    pub require_message_authenticator: bool,
    pub transport: Transport,
    /// `tls` clients: the name their certificate carries, lowercase.
    pub tls_peer_name: Option<String>,
    pub radius_1_1: Radius11,
}

/// The shared secret of a RadSec client that has none configured (RFC 6614 §2.3).
pub const RADSEC_DEFAULT_SECRET: &str = "radsec";

/// A published configuration version, ready for the request path.
#[derive(Debug, Default)]
pub struct Published {
    pub version: i64,
    pub policy: Policy,
    /// Seconds without an accounting update after which a logon entry ends (0: never).
    pub identity_idle_timeout: u64,
    /// UDP clients: hosts by exact address; networks most specific first.
    hosts: HashMap<IpAddr, usize>,
    networks: Vec<usize>,
    /// TLS clients, most specific network first.
    tls: Vec<usize>,
    clients: Vec<CompiledClient>,
    methods: HashMap<String, Arc<CompiledMethod>>,
    api_clients: HashMap<String, ApiClientRule>,
    /// Checked `[[directory]]` and `[[courier]]` entries by name; the server builds its
    /// connections from them.
    pub directories: HashMap<String, Directory>,
    pub couriers: HashMap<String, Courier>,
}

impl Published {
    /// The UDP client whose address or network holds `ip` (longest prefix wins).
    pub fn client_for(&self, ip: IpAddr) -> Option<&CompiledClient> {
        let ip = unmapped(ip);
        if let Some(&i) = self.hosts.get(&ip) {
            return Some(&self.clients[i]);
        }
        self.networks
            .iter()
            .map(|&i| &self.clients[i])
            .find(|c| c.network.contains(ip))
    }

    /// The TLS clients whose network holds `ip`, most specific first: who a connection from
    /// `ip` may turn out to be once its certificate is seen.
    pub fn tls_clients_at(&self, ip: IpAddr) -> impl Iterator<Item = &CompiledClient> {
        let ip = unmapped(ip);
        self.tls
            .iter()
            .map(|&i| &self.clients[i])
            .filter(move |c| c.network.contains(ip))
    }

    /// The TLS client a connection from `ip` whose certificate carries `names` (its DNS
    /// subjectAltNames, or its subject CN when it has none) belongs to: the most specific
    /// network holding `ip` among the clients whose `tls_peer_name` is one of `names`.
    pub fn tls_client_for(&self, ip: IpAddr, names: &[String]) -> Option<&CompiledClient> {
        self.tls_clients_at(ip).find(|c| {
            c.tls_peer_name
                .as_deref()
                .is_some_and(|want| names.iter().any(|n| n.eq_ignore_ascii_case(want)))
        })
    }

    pub fn method(&self, name: &str) -> Option<&Arc<CompiledMethod>> {
        self.methods.get(name)
    }

    pub fn clients(&self) -> &[CompiledClient] {
        &self.clients
    }

    /// Identity-API clients by `client_id`.
    pub fn api_clients(&self) -> &HashMap<String, ApiClientRule> {
        &self.api_clients
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is (a dual-stack socket's peers).
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Check `cfg` and compile it. Every problem is reported, not just the first.
pub fn compile(cfg: &SystemConfig, version: i64) -> Result<Published, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut at = |path: Vec<PathSeg>, msg: String| problems.push(Problem::new(path, msg));

    check_policy(&cfg.policy, &mut at);

    let mut methods = HashMap::new();
    for (i, m) in cfg.methods.iter().enumerate() {
        let path = |k: &str| vec!["method".into(), i.into(), k.into()];
        if m.name.trim().is_empty() {
            at(path("name"), "a method needs a name".into());
        }
        if methods.contains_key(&m.name) {
            at(
                path("name"),
                format!("method {:?} is defined twice", m.name),
            );
        }
        check_method_services(m, i, cfg, &mut at);
        let accept_attributes = compile_attributes(m, i, &mut at);
        methods.insert(
            m.name.clone(),
            Arc::new(CompiledMethod {
                name: m.name.clone(),
                display_name: m.display_name.clone().unwrap_or_else(|| m.name.clone()),
                kind: m.kind,
                enabled: m.enabled,
                visible: m.visible,
                replies: m.replies.clone(),
                accept_attributes,
                directory: m.directory.clone(),
                courier: m.courier.clone(),
                code_length: m.code_length.unwrap_or(DEFAULT_CODE_LENGTH),
                code_ttl: m
                    .code_ttl
                    .map_or(crate::challenge::DEFAULT_CODE_TTL, |d| d.secs()),
                max_attempts: m.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS),
            }),
        );
    }

    let mut clients = Vec::new();
    let mut names = HashSet::new();
    let mut addresses = HashMap::new();
    let mut peers = HashMap::new();
    for (i, c) in cfg.clients.iter().enumerate() {
        let path = |k: &str| vec!["client".into(), i.into(), k.into()];
        if !names.insert(c.name.as_str()) {
            at(
                path("name"),
                format!("client {:?} is defined twice", c.name),
            );
        }
        let network = match c.address.parse::<Cidr>() {
            Ok(n) => n,
            Err(e) => {
                at(path("address"), e.to_string());
                continue;
            }
        };
        let tls_peer_name = c
            .tls_peer_name
            .as_deref()
            .map(|n| n.trim().to_ascii_lowercase());
        match c.transport {
            Transport::Udp => {
                if tls_peer_name.is_some() {
                    at(
                        path("tls_peer_name"),
                        format!(
                            "client {:?}: tls_peer_name is only for transport \"tls\" clients",
                            c.name
                        ),
                    );
                }
                if c.radius_1_1 != Radius11::Allow {
                    at(
                        path("radius_1_1"),
                        format!(
                            "client {:?}: radius_1_1 is only for transport \"tls\" clients",
                            c.name
                        ),
                    );
                }
                // One UDP client per address: a datagram has nothing else to tell them apart.
                if let Some(other) = addresses.insert(network, c.name.as_str()) {
                    at(
                        path("address"),
                        format!("{network} is already client {other:?}'s address"),
                    );
                }
            }
            Transport::Tls => match tls_peer_name.as_ref().filter(|n| !n.is_empty()) {
                None => at(
                    path("tls_peer_name"),
                    format!(
                        "client {:?}: tls_peer_name is required with transport \"tls\": the name \
                         its certificate carries",
                        c.name
                    ),
                ),
                // Several TLS clients may share a network; the certificate tells them apart.
                Some(n) => {
                    if let Some(other) = peers.insert((network, n.clone()), c.name.as_str()) {
                        at(
                            path("tls_peer_name"),
                            format!(
                                "{network} with certificate name {n:?} is already client {other:?}"
                            ),
                        );
                    }
                }
            },
        }
        let secret = match (&c.secret, c.transport) {
            (Some(s), _) if !s.is_empty() => s.clone(),
            (_, Transport::Tls) => Secret::new(RADSEC_DEFAULT_SECRET.as_bytes().to_vec()),
            _ => {
                at(
                    path("secret"),
                    format!(
                        "client {:?} needs a secret (only transport \"tls\" clients default to \"radsec\")",
                        c.name
                    ),
                );
                continue;
            }
        };
        let Some(method) = methods.get(&c.method) else {
            at(path("method"), format!("no method named {:?}", c.method));
            continue;
        };
        clients.push(CompiledClient {
            name: c.name.clone(),
            network,
            secret,
            method: Arc::clone(method),
            require_message_authenticator: c.require_message_authenticator,
            transport: c.transport,
            tls_peer_name,
            radius_1_1: c.radius_1_1,
        });
    }

    let api_clients = compile_api_clients(cfg, &mut at);
    let directories = compile_directories(cfg, &mut at);
    let couriers = compile_couriers(cfg, &mut at);

    if !problems.is_empty() {
        return Err(problems);
    }
    let mut hosts = HashMap::new();
    let mut networks = Vec::new();
    let mut tls = Vec::new();
    for (i, c) in clients.iter().enumerate() {
        if c.transport == Transport::Tls {
            tls.push(i);
        } else if c.network.is_host() {
            hosts.insert(c.network.addr(), i);
        } else {
            networks.push(i);
        }
    }
    networks.sort_by_key(|&i| std::cmp::Reverse(clients[i].network.prefix()));
    tls.sort_by_key(|&i| std::cmp::Reverse(clients[i].network.prefix()));
    Ok(Published {
        version,
        policy: cfg.policy.clone(),
        identity_idle_timeout: cfg.identity.idle_timeout.secs(),
        hosts,
        networks,
        tls,
        clients,
        methods,
        api_clients,
        directories,
        couriers,
    })
}

const DEFAULT_CODE_LENGTH: u32 = 6;
const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// A method's directory, courier and code settings.
fn check_method_services(
    m: &Method,
    i: usize,
    cfg: &SystemConfig,
    at: &mut impl FnMut(Vec<PathSeg>, String),
) {
    let path = |k: &str| vec!["method".into(), i.into(), k.into()];
    match m.directory.as_deref() {
        None if m.kind.uses_directory() => at(
            path("kind"),
            format!(
                "method {:?} ({}) needs directory = \"local\" or the name of a [[directory]]",
                m.name,
                m.kind.as_str()
            ),
        ),
        Some(d) if d != "local" && !cfg.directories.iter().any(|x| x.name == d) => at(
            path("directory"),
            format!("no directory named {d:?} (\"local\" or a [[directory]] name)"),
        ),
        _ => {}
    }
    match m.courier.as_deref() {
        None if m.kind == MethodKind::MobileText => at(
            path("kind"),
            format!("method {:?} (mobile-text) needs a courier", m.name),
        ),
        Some(c) if !cfg.couriers.iter().any(|x| x.name == c) => {
            at(path("courier"), format!("no courier named {c:?}"))
        }
        Some(_) if m.kind != MethodKind::MobileText => at(
            path("courier"),
            "a courier is used only by mobile-text methods".into(),
        ),
        _ => {}
    }
    if let Some(n) = m.code_length
        && !(4..=10).contains(&n)
    {
        at(
            path("code_length"),
            "code_length must be 4 to 10 digits".into(),
        );
    }
    if let Some(t) = m.code_ttl
        && !(5..=3600).contains(&t.secs())
    {
        at(path("code_ttl"), "code_ttl must be from 5s to 1h".into());
    }
    if let Some(n) = m.max_attempts
        && !(1..=10).contains(&n)
    {
        at(path("max_attempts"), "max_attempts must be 1 to 10".into());
    }
}

/// `scheme://host[:port]`: the scheme and whether a host is there.
fn url_scheme(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?']).next().unwrap_or("");
    (!host.is_empty()).then_some((scheme, host))
}

fn compile_directories(
    cfg: &SystemConfig,
    at: &mut impl FnMut(Vec<PathSeg>, String),
) -> HashMap<String, Directory> {
    let mut out = HashMap::new();
    for (i, d) in cfg.directories.iter().enumerate() {
        let path = |k: &str| vec!["directory".into(), i.into(), k.into()];
        if d.name.trim().is_empty() || d.name == "local" {
            at(
                path("name"),
                "a directory needs a name other than \"local\"".into(),
            );
        }
        if !matches!(d.kind.as_str(), "ldap" | "ad") {
            at(
                path("kind"),
                format!(
                    "directory kind {:?}: expected \"ldap\" or \"ad\" (Active Directory)",
                    d.kind
                ),
            );
        }
        match url_scheme(&d.url) {
            Some(("ldap", _)) => {}
            Some(("ldaps", _)) if d.starttls == Some(true) => at(
                path("starttls"),
                "starttls is for ldap:// URLs; ldaps:// is TLS from the start".into(),
            ),
            Some(("ldaps", _)) => {}
            _ => at(
                path("url"),
                format!(
                    "{:?}: expected ldap://HOST[:PORT] or ldaps://HOST[:PORT]",
                    d.url
                ),
            ),
        }
        if d.base_dn.trim().is_empty() {
            at(path("base_dn"), "base_dn is required".into());
        }
        if d.bind_dn.is_some() != d.bind_password.is_some() {
            at(
                path("bind_dn"),
                "bind_dn and bind_password go together (or neither, for anonymous search)".into(),
            );
        }
        if let Some(f) = &d.user_filter
            && (!f.contains("{user}") || !f.starts_with('(') || !f.ends_with(')'))
        {
            at(
                path("user_filter"),
                format!(
                    "user_filter {f:?} must be a parenthesized LDAP filter containing {{user}}"
                ),
            );
        }
        if let Some(t) = d.timeout
            && !(1..=60).contains(&t.secs())
        {
            at(path("timeout"), "timeout must be from 1s to 60s".into());
        }
        if out.insert(d.name.clone(), d.clone()).is_some() {
            at(
                path("name"),
                format!("directory {:?} is defined twice", d.name),
            );
        }
    }
    out
}

fn compile_couriers(
    cfg: &SystemConfig,
    at: &mut impl FnMut(Vec<PathSeg>, String),
) -> HashMap<String, Courier> {
    let mut out = HashMap::new();
    for (i, c) in cfg.couriers.iter().enumerate() {
        let path = |k: &str| vec!["courier".into(), i.into(), k.into()];
        let scheme = url_scheme(&c.url).map(|(s, _)| s);
        match c.kind.as_str() {
            "smtp" => {
                if !matches!(scheme, Some("smtp" | "smtps")) {
                    at(
                        path("url"),
                        format!(
                            "{:?}: expected smtp://HOST[:PORT] (STARTTLS) or smtps://HOST[:PORT]",
                            c.url
                        ),
                    );
                }
                if c.from.as_deref().is_none_or(|f| !f.contains('@')) {
                    at(path("from"), "an smtp courier needs a from address".into());
                }
            }
            "http" => {
                if !matches!(scheme, Some("http" | "https")) {
                    at(
                        path("url"),
                        format!("{:?}: expected an http:// or https:// URL", c.url),
                    );
                }
                let method = c.http_method.as_deref().unwrap_or("POST");
                if !matches!(method, "GET" | "POST" | "PUT") {
                    at(
                        path("http_method"),
                        format!("http_method {method:?}: expected GET, POST or PUT"),
                    );
                }
                let has_code = c.body.as_deref().is_some_and(|b| b.contains("{code}"))
                    || c.url.contains("{code}");
                if !has_code {
                    at(
                        path("body"),
                        "the body (or the URL) must contain {code}".into(),
                    );
                }
            }
            other => at(
                path("kind"),
                format!("courier kind {other:?}: expected \"smtp\" or \"http\""),
            ),
        }
        if c.username.is_some() && c.password.is_none() {
            at(path("username"), "username needs a password".into());
        }
        // An HTTP courier may hold a password alone: an API key for its headers ({password}).
        if c.kind == "smtp" && c.password.is_some() && c.username.is_none() {
            at(path("password"), "password needs a username".into());
        }
        if out.insert(c.name.clone(), c.clone()).is_some() {
            at(
                path("name"),
                format!("courier {:?} is defined twice", c.name),
            );
        }
    }
    out
}

/// Shortest `api_client` secret accepted: 16 characters, so that a secret cannot be found by
/// trying (the token endpoint also throttles failures).
const MIN_API_SECRET: usize = 16;
/// Longest access-token lifetime accepted: 30 days.
const MAX_TOKEN_LIFETIME: u64 = 30 * 86_400;

fn compile_api_clients(
    cfg: &SystemConfig,
    at: &mut impl FnMut(Vec<PathSeg>, String),
) -> HashMap<String, ApiClientRule> {
    let mut out = HashMap::new();
    for (i, a) in cfg.api_clients.iter().enumerate() {
        let path = |k: &str| vec!["api_client".into(), i.into(), k.into()];
        let id_ok = !a.client_id.is_empty()
            && a.client_id.len() <= 128
            && a.client_id
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b':');
        if !id_ok {
            at(
                path("client_id"),
                format!(
                    "client_id {:?} must be 1 to 128 printable ASCII characters without ':' or spaces",
                    a.client_id
                ),
            );
        }
        if a.secret.expose().len() < MIN_API_SECRET {
            at(
                path("secret"),
                format!(
                    "api_client {:?} needs a secret of at least {MIN_API_SECRET} characters",
                    a.client_id
                ),
            );
        }
        let scopes = if a.scopes.is_empty() {
            vec![oauth::SCOPE_READ.to_owned()]
        } else {
            a.scopes.clone()
        };
        for s in &scopes {
            if !oauth::KNOWN_SCOPES.contains(&s.as_str()) {
                at(
                    path("scopes"),
                    format!(
                        "unknown scope {s:?} (known: {})",
                        oauth::KNOWN_SCOPES.join(", ")
                    ),
                );
            }
        }
        let lifetime = a
            .token_lifetime
            .map_or(oauth::DEFAULT_TOKEN_LIFETIME, |d| d.secs());
        if !(1..=MAX_TOKEN_LIFETIME).contains(&lifetime) {
            at(
                path("token_lifetime"),
                "token_lifetime must be from 1s to 30d".into(),
            );
        }
        let rule = ApiClientRule {
            client_id: a.client_id.clone(),
            secret: a.secret.clone(),
            scopes,
            token_lifetime: lifetime,
        };
        if out.insert(a.client_id.clone(), rule).is_some() {
            at(
                path("client_id"),
                format!("api_client {:?} is defined twice", a.client_id),
            );
        }
    }
    out
}

fn check_policy(p: &Policy, at: &mut impl FnMut(Vec<PathSeg>, String)) {
    let path = |k: &str| vec!["policy".into(), k.into()];
    if p.max_failures == 0 {
        at(
            path("max_failures"),
            "max_failures must be at least 1".into(),
        );
    }
    if p.totp_window > 10 {
        at(
            path("totp_window"),
            "totp_window must be 0..=10 steps".into(),
        );
    }
    if p.hotp_window > 1000 {
        at(
            path("hotp_window"),
            "hotp_window must be 0..=1000 counters".into(),
        );
    }
    if p.motp_window > 360 {
        at(
            path("motp_window"),
            "motp_window must be 0..=360 slots of 10 s".into(),
        );
    }
    if p.realm == tessera_config::RealmHandling::Require && p.realms.is_empty() {
        at(
            path("realms"),
            "realm = \"require\" needs the list of accepted realms".into(),
        );
    }
    if let Some(r) = p
        .realms
        .iter()
        .find(|r| r.trim().is_empty() || r.contains(['@', '\\']) || r.chars().any(char::is_control))
    {
        at(
            path("realms"),
            format!("{r:?} is not a realm or domain name"),
        );
    }
    if !(60..=86_400).contains(&p.code_window.secs()) {
        at(
            path("code_window"),
            "code_window must be between 1m and 1d".into(),
        );
    }
}

fn compile_attributes(
    m: &Method,
    i: usize,
    at: &mut impl FnMut(Vec<PathSeg>, String),
) -> Vec<ReplyAttr> {
    let mut out = Vec::new();
    for (name, value) in &m.reply_attributes {
        let path = || {
            vec![
                "method".into(),
                i.into(),
                "reply_attributes".into(),
                name.as_str().into(),
            ]
        };
        let Some(def) = dict::lookup(name) else {
            at(path(), format!("unknown RADIUS attribute {name:?}"));
            continue;
        };
        if def.vendor.is_none() && RESERVED.contains(&def.code) {
            at(
                path(),
                format!("{name} is set by tessera itself and cannot be a reply attribute"),
            );
            continue;
        }
        let values = match value {
            AttrValue::List(v) => v.iter().collect(),
            single => vec![single],
        };
        for v in values {
            let text = match v {
                AttrValue::Int(n) => n.to_string(),
                AttrValue::Text(t) => t.clone(),
                AttrValue::List(_) => {
                    at(path(), "nested lists are not attribute values".into());
                    continue;
                }
            };
            match dict::encode_value(def, &text) {
                Ok(value) => out.push(ReplyAttr {
                    vendor: def.vendor,
                    code: def.code,
                    value,
                }),
                Err(e) => at(path(), format!("{name}: {e}")),
            }
        }
    }
    out
}

/// Attributes the server controls: letting an administrator add them would break the protocol.
const RESERVED: &[u8] = &[
    tessera_radius::attr::USER_PASSWORD,
    tessera_radius::attr::REPLY_MESSAGE,
    tessera_radius::attr::STATE,
    tessera_radius::attr::MESSAGE_AUTHENTICATOR,
];

/// The names in `new` that are not in `old` (a draft being saved over the current one), checked
/// with [`tessera_config::check_name`]: a name that breaks URLs cannot be created, while a
/// configuration from before that rule still compiles, publishes and serves, and can still be
/// edited (its names are in `old`). Not part of [`compile`], which a server runs on whatever
/// was published.
pub fn check_new_names(old: &SystemConfig, new: &SystemConfig) -> Vec<Problem> {
    fn each<'a, T>(
        problems: &mut Vec<Problem>,
        (table, key, field): (&str, &str, &str),
        old: &'a [T],
        new: &'a [T],
        name: impl Fn(&'a T) -> &'a str,
    ) {
        let known: HashSet<&str> = old.iter().map(&name).collect();
        for (i, x) in new.iter().enumerate() {
            let n = name(x);
            if !known.contains(n)
                && let Err(e) = tessera_config::check_name(field, n)
            {
                problems.push(Problem::new(
                    vec![table.into(), i.into(), key.into()],
                    e.to_string(),
                ));
            }
        }
    }
    let mut p = Vec::new();
    each(
        &mut p,
        ("client", "name", "client name"),
        &old.clients,
        &new.clients,
        |c| &c.name,
    );
    each(
        &mut p,
        ("method", "name", "method name"),
        &old.methods,
        &new.methods,
        |m| &m.name,
    );
    let directories = ("directory", "name", "directory name");
    each(
        &mut p,
        directories,
        &old.directories,
        &new.directories,
        |d| &d.name,
    );
    let couriers = ("courier", "name", "courier name");
    each(&mut p, couriers, &old.couriers, &new.couriers, |c| &c.name);
    let api_clients = ("api_client", "client_id", "API client id");
    each(
        &mut p,
        api_clients,
        &old.api_clients,
        &new.api_clients,
        |a| &a.client_id,
    );
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_config::parse_toml;

    fn doc(extra: &str) -> SystemConfig {
        parse_toml(
            &format!(
                r#"
[[client]]
name = "pulse"
address = "192.0.2.10"
secret = "s"
method = "truid"
[[client]]
name = "lab"
address = "192.0.2.0/24"
secret = "t"
method = "truid"
[[method]]
name = "truid"
kind = "pin-otp"
[method.reply_attributes]
Filter-Id = "vpn-users"
Session-Timeout = 3600
Juniper-Local-User-Name = "remote"
{extra}
"#
            ),
            "t",
        )
        .unwrap()
    }

    #[test]
    fn longest_prefix_wins() {
        let p = compile(&doc(""), 1).unwrap();
        assert_eq!(
            p.client_for("192.0.2.10".parse().unwrap()).unwrap().name,
            "pulse"
        );
        assert_eq!(
            p.client_for("192.0.2.11".parse().unwrap()).unwrap().name,
            "lab"
        );
        assert!(p.client_for("198.51.100.1".parse().unwrap()).is_none());
        assert_eq!(p.method("truid").unwrap().accept_attributes.len(), 3);
    }

    /// TLS clients: found by address and certificate name, never by a datagram; several may
    /// share a network; UDP clients are never found for a connection.
    #[test]
    fn tls_clients_are_told_apart_by_certificate_name() {
        let mut c = doc("");
        let tls = |name: &str, address: &str, peer: &str| tessera_config::Client {
            name: name.into(),
            address: address.into(),
            secret: None,
            secret_file: None,
            method: "truid".into(),
            require_message_authenticator: true,
            transport: Transport::Tls,
            tls_peer_name: Some(peer.into()),
            radius_1_1: Radius11::Allow,
        };
        c.clients
            .push(tls("edge-a", "198.51.100.0/24", "A.gw.example"));
        c.clients
            .push(tls("edge-b", "198.51.100.0/24", "b.gw.example"));
        c.clients
            .push(tls("edge-a1", "198.51.100.7", "a.gw.example"));
        let p = compile(&c, 1).unwrap();
        let at = |ip: &str, names: &[&str]| {
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            p.tls_client_for(ip.parse().unwrap(), &names)
                .map(|c| c.name.clone())
        };
        assert_eq!(at("198.51.100.9", &["a.gw.example"]).unwrap(), "edge-a");
        assert_eq!(at("198.51.100.9", &["B.GW.example"]).unwrap(), "edge-b");
        // the host entry is more specific than the network
        assert_eq!(at("198.51.100.7", &["a.gw.example"]).unwrap(), "edge-a1");
        assert_eq!(at("198.51.100.9", &["c.gw.example"]), None);
        assert_eq!(at("203.0.113.1", &["a.gw.example"]), None);
        // a UDP client is not a TLS client, whatever the certificate says
        assert_eq!(at("192.0.2.10", &["pulse"]), None);
        assert!(p.client_for("198.51.100.9".parse().unwrap()).is_none());
        assert_eq!(p.tls_clients_at("198.51.100.7".parse().unwrap()).count(), 3);
        let edge = p.tls_client_for("198.51.100.9".parse().unwrap(), &["a.gw.example".into()]);
        assert_eq!(
            edge.unwrap().secret.expose(),
            RADSEC_DEFAULT_SECRET.as_bytes(),
            "RFC 6614 §2.3: a TLS client without a secret uses \"radsec\""
        );
    }

    #[test]
    fn transport_settings_are_checked() {
        let mut c = doc("");
        c.clients[0].tls_peer_name = Some("gw".into());
        c.clients[1].radius_1_1 = Radius11::Require;
        let mut tls = c.clients[0].clone();
        tls.name = "edge".into();
        tls.transport = Transport::Tls;
        tls.tls_peer_name = None;
        c.clients.push(tls);
        let mut twin = c.clients[0].clone();
        twin.name = "twin".into();
        twin.address = "198.51.100.1".into();
        twin.transport = Transport::Tls;
        twin.tls_peer_name = Some("X".into());
        let mut twin2 = twin.clone();
        twin2.name = "twin2".into();
        twin2.tls_peer_name = Some("x".into());
        c.clients.push(twin);
        c.clients.push(twin2);
        let problems = compile(&c, 1).unwrap_err();
        let text: Vec<String> = problems
            .iter()
            .map(|p| {
                let path: String = p
                    .path
                    .iter()
                    .map(|s| match s {
                        PathSeg::Key(k) => format!(".{k}"),
                        PathSeg::Index(i) => format!("[{i}]"),
                    })
                    .collect();
                format!("{}: {}", path.trim_start_matches('.'), p.message)
            })
            .collect();
        let has = |needle: &str| {
            assert!(
                text.iter().any(|t| t.contains(needle)),
                "no {needle:?} in {text:#?}"
            )
        };
        has("client[0].tls_peer_name");
        has("client[1].radius_1_1");
        has("tls_peer_name is required with transport \"tls\"");
        has("with certificate name \"x\" is already client \"twin\"");
        assert_eq!(problems.len(), 4, "{text:#?}");
    }

    #[test]
    fn problems_are_all_reported_with_paths() {
        let mut c = doc("Filtr-Id = \"x\"");
        c.clients[1].method = "nope".into();
        c.clients[0].address = "192.0.2.300".into();
        let errs = compile(&c, 1).unwrap_err();
        let msgs: Vec<_> = errs.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(errs.len(), 3, "{msgs:?}");
        assert!(msgs.iter().any(|m| m.contains("Filtr-Id")));
        assert!(msgs.iter().any(|m| m.contains("no method named \"nope\"")));
        assert!(
            errs.iter()
                .any(|p| p.path == vec![PathSeg::from("client"), 0.into(), "address".into()])
        );
    }

    #[test]
    fn reserved_attributes_are_refused() {
        assert!(compile(&doc("Message-Authenticator = \"0x00\""), 1).is_err());
    }
    #[test]
    fn only_new_names_must_be_url_safe() {
        // Published before names were checked: still compiles (a server starts with it).
        let mut legacy = doc("");
        legacy.clients[0].name = "../clients/lab".into();
        legacy.methods[0].name = "tru?id".into();
        legacy.clients[0].method = "tru?id".into();
        legacy.clients[1].method = "tru?id".into();
        assert!(compile(&legacy, 1).is_ok());
        // Kept names pass; a new one is refused with the field, the rule and its path.
        assert_eq!(check_new_names(&legacy, &legacy), vec![]);
        let mut next = legacy.clone();
        next.clients[1].name = "lab#2".into();
        let p = check_new_names(&legacy, &next);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(
            p[0].path,
            vec![PathSeg::from("client"), 1.into(), "name".into()]
        );
        assert!(
            p[0].message
                .starts_with("client name \"lab#2\": must not contain '#'"),
            "{}",
            p[0].message
        );
        // Every kind of name is checked, against the draft it replaces.
        let fresh: SystemConfig = parse_toml(
            r#"
[[client]]
name = "a/b"
address = "192.0.2.1"
method = "m"
[[method]]
name = ".."
kind = "otp"
[[directory]]
name = "d?"
kind = "ldap"
url = "ldap://x"
base_dn = "dc=x"
[[courier]]
name = "c%"
kind = "smtp"
url = "smtp://x"
[[api_client]]
client_id = "x\\y"
secret = "0123456789abcdef"
"#,
            "t",
        )
        .unwrap();
        let p = check_new_names(&SystemConfig::default(), &fresh);
        let tables: Vec<&PathSeg> = p.iter().map(|p| &p.path[0]).collect();
        assert_eq!(
            tables,
            ["client", "method", "directory", "courier", "api_client"]
                .map(PathSeg::from)
                .iter()
                .collect::<Vec<_>>(),
            "{p:?}"
        );
        assert!(
            p[4].message.starts_with("API client id "),
            "{}",
            p[4].message
        );
    }
}
