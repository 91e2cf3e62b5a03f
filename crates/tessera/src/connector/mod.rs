//! `tessera connector`: the firewall-side connector (SPEC §8) as a thin I/O shell around the
//! pure `tessera_connector` crate, which parses and checks the Junos-style file and decides
//! everything the connector does (`Machine`).
//!
//! - `driver`: the tokio loop that owns the machine, runs its requests, and serves the
//!   control socket; the only place the connector reads the clock.
//! - `http`, `tls`: the identity-API client (reqwest + rustls, trust from the CA profile).
//! - `control`: the 0600 Unix socket `show` and `ip-query` talk to `run` through.
//! - `show`: the Junos-like text of `show status|counters|authentication-table`.
//! - `nft`: `run --nft-table`, nftables sets per group kept in step with the table.
//!
//! The connector never reads the node configuration (TOML): it has its own `--config`.

mod control;
mod driver;
mod http;
mod nft;
mod show;
mod tls;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use control::{Envelope, Format, Request};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Subcommand)]
pub enum ConnectorCmd {
    /// Run the connector: keep the authentication table current from the identity servers.
    Run {
        #[command(flatten)]
        common: Common,
        /// Keep nftables sets in table `inet NAME` in step with the authentication table
        /// (one set per group: grp_GROUP for IPv4, grp6_GROUP for IPv6; users/users6 for all).
        #[arg(long, value_name = "NAME", value_parser = nft::parse_table_name)]
        nft_table: Option<String>,
    },
    /// Commit check of the configuration file: errors and warnings with line and column.
    Check {
        /// The connector's Junos-style configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Ask the running connector.
    #[command(subcommand)]
    Show(ShowCmd),
    /// Ask about one address (queried from the identity server if the table does not know it).
    IpQuery {
        ip: IpAddr,
        #[command(flatten)]
        common: Common,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Subcommand)]
pub enum ShowCmd {
    /// Per server: address, port, method, Online/Offline, last status message, token, in use.
    Status {
        #[command(flatten)]
        common: Common,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Per server: queries sent, responses received, error responses.
    Counters {
        #[command(flatten)]
        common: Common,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// The authentication table: IP, user, groups, state.
    AuthenticationTable {
        #[command(flatten)]
        common: Common,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Args)]
pub struct Common {
    /// The connector's Junos-style configuration file.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The control socket of `run` [default: the configuration file's path + ".sock"].
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
}

impl Common {
    fn socket(&self) -> PathBuf {
        self.socket
            .clone()
            .unwrap_or_else(|| control::default_path(&self.config))
    }
}

/// `tessera connector ...`.
pub fn main(cmd: ConnectorCmd, log_format: crate::LogFormat) -> Result<()> {
    match cmd {
        ConnectorCmd::Check { config } => check(&config),
        ConnectorCmd::Run { common, nft_table } => {
            crate::init_logging(log_format);
            run(&common, nft_table)
        }
        ConnectorCmd::Show(show) => {
            let (common, request, format) = match show {
                ShowCmd::Status { common, format } => (common, Request::ShowStatus, format),
                ShowCmd::Counters { common, format } => (common, Request::ShowCounters, format),
                ShowCmd::AuthenticationTable { common, format } => {
                    (common, Request::ShowAuthenticationTable, format)
                }
            };
            ask(&common, request, format, Duration::from_secs(10))
        }
        ConnectorCmd::IpQuery { ip, common, format } => {
            // The connector itself waits query-delay-time + 20 s at most.
            ask(
                &common,
                Request::IpQuery { ip },
                format,
                Duration::from_secs(90),
            )
        }
    }
}

fn ask(common: &Common, request: Request, format: Format, wait: Duration) -> Result<()> {
    let reply = control::ask(
        &common.socket(),
        &common.config,
        &Envelope { request, format },
        wait,
    )?;
    if let Some(e) = reply.error {
        bail!("{e}");
    }
    out_part!("{}", reply.output.unwrap_or_default());
    Ok(())
}

fn read_config(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// The file holds client secrets: say so when others may read it.
fn readable_by_others(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
}

/// `check`: every error and warning as `FILE:LINE:COL: error|warning: ...` on standard
/// error, then the verdict; non-zero exit when there is an error.
fn check(path: &Path) -> Result<()> {
    let text = read_config(path)?;
    let origin = path.display().to_string();
    let report = tessera_connector::check(&text);
    for d in &report.diagnostics {
        eprintln!("{}", d.with_origin(&origin));
    }
    if readable_by_others(path) {
        eprintln!(
            "{origin}: warning: the file is readable by group or others and holds client secrets (chmod 600)"
        );
    }
    let errors = report.errors().count();
    if errors > 0 {
        bail!(
            "configuration check-out failed: {errors} error{}",
            if errors == 1 { "" } else { "s" }
        );
    }
    let warnings = report.warnings().count();
    if warnings > 0 {
        out!(
            "configuration check succeeds ({warnings} warning{})",
            if warnings == 1 { "" } else { "s" }
        );
    } else {
        out!("configuration check succeeds");
    }
    Ok(())
}

fn run(common: &Common, nft_table: Option<String>) -> Result<()> {
    let path = &common.config;
    let text = read_config(path)?;
    let origin = path.display().to_string();
    let parsed = match tessera_connector::parse(&text) {
        Ok(p) => p,
        Err(e) => {
            for d in &e.errors {
                eprintln!("{}", d.with_origin(&origin));
            }
            bail!(
                "{origin}: configuration check-out failed: {} error(s); see `tessera connector check`",
                e.errors.len()
            );
        }
    };
    for w in &parsed.warnings {
        tracing::warn!("{}", w.with_origin(&origin));
    }
    if readable_by_others(path) {
        tracing::warn!(
            "{origin}: readable by group or others, and it holds client secrets (chmod 600)"
        );
    }
    let nft = nft_table.map(nft::NftMirror::new).transpose()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(driver::run(
        parsed.config,
        driver::Options {
            config_path: path.clone(),
            socket: common.socket(),
            nft,
        },
    ))
}
