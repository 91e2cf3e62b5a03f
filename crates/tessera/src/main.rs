//! `tessera`: two-factor RADIUS and identity server.
#![forbid(unsafe_code)]

/// `println!` for command output. A reader that has gone away (`tessera user list | head -1`,
/// `| grep -q`) ends the command quietly with success instead of a panic and a backtrace.
macro_rules! out {
    () => { out!("") };
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            panic!("failed printing to stdout: {e}");
        }
    }};
}

/// `print!` with [`out!`]'s handling of a reader that has gone away.
macro_rules! out_part {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout().lock(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            panic!("failed printing to stdout: {e}");
        }
    }};
}

mod bench;
mod cli;
mod connector;
mod courier;
mod diff;
mod http;
mod ldap;
mod metrics;
mod ops;
mod qr;
mod radsec;
mod server;
mod services;

use anyhow::Result;

/// The request path allocates small, short-lived buffers on several threads; mimalloc's
/// per-thread free lists serve that better than glibc's arenas (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Two-factor RADIUS and identity server"
)]
struct Args {
    /// Node configuration file (TOML). Without it, defaults are used and ./tessera-data is created.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the RADIUS server.
    Serve,
    /// Edit the draft system configuration.
    #[command(subcommand)]
    Config(cli::ConfigCmd),
    /// Make the draft system configuration live on every server.
    Publish,
    /// RADIUS clients (in the draft).
    #[command(subcommand)]
    Client(cli::ClientCmd),
    /// Authentication methods (in the draft).
    #[command(subcommand)]
    Method(cli::MethodCmd),
    /// Users (take effect at once).
    #[command(subcommand)]
    User(cli::UserCmd),
    /// OTP tokens (take effect at once).
    #[command(subcommand)]
    Token(cli::TokenCmd),
    /// Identity-API clients (OAuth 2.0 client credentials, in the draft).
    #[command(subcommand, name = "apiclient")]
    ApiClient(cli::ApiClientCmd),
    /// The identity table: who holds which address (from RADIUS accounting).
    #[command(subcommand)]
    Identity(cli::IdentityCmd),
    /// Administrators of the console and the admin API.
    #[command(subcommand)]
    Admin(cli::AdminCmd),
    /// The storage: schema migrations, and moving an SQLite install to PostgreSQL.
    #[command(subcommand)]
    Storage(cli::StorageCmd),
    /// The audit log: every administrative change and publish, newest first.
    Audit {
        /// Entries to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// RADIUS load generator.
    Bench(bench::BenchArgs),
    /// The firewall-side connector (its own Junos-style --config FILE; no node configuration).
    #[command(subcommand)]
    Connector(connector::ConnectorCmd),
    /// Print the HTTPS API's OpenAPI document (as committed in docs/openapi.json).
    #[command(hide = true)]
    Openapi,
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("TESSERA_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => b.init(),
        LogFormat::Json => b.json().init(),
    }
}

/// Data files only tessera's user may read (issue 11): tighten what an older version or an
/// administrator left readable, and say so.
fn tighten_data_files(node: &tessera_config::NodeConfig) {
    let db = cli::storage_options(node).sqlite_path();
    for t in tessera_store::tighten_data_files(&node.data_dir, db.as_deref()) {
        match t.result {
            Ok(()) => tracing::warn!(
                path = %t.path.display(),
                was = format_args!("{:04o}", t.was),
                now = format_args!("{:04o}", t.now),
                "tightened permissions: only tessera's own user may read its data"
            ),
            Err(e) => tracing::warn!(
                path = %t.path.display(),
                mode = format_args!("{:04o}", t.was),
                error = %e,
                "readable by other users, and the permissions could not be tightened"
            ),
        }
    }
}

fn main() {
    // One TLS crypto provider for every rustls user (HTTPS, LDAP, SMTP, HTTP couriers).
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("tessera: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    // The connector reads its own Junos-style file, never the node configuration.
    let command = match args.command {
        Command::Connector(c) => return connector::main(c, args.log_format),
        other => other,
    };
    let node = tessera_config::NodeConfig::load(args.config.as_deref(), |k| std::env::var(k).ok())?;
    match command {
        Command::Bench(a) => bench::run(a),
        Command::Openapi => {
            out_part!("{}", http::api::document());
            Ok(())
        }
        Command::Serve => {
            init_logging(args.log_format);
            let _only_server = server::lock_data_dir(&node.data_dir)?;
            // Before anything else: a port held by another process stops here, in one line.
            let bound = server::bind_listeners(&node)?;
            tighten_data_files(&node);
            let store = cli::open_store(&node)?;
            // The RADIUS shards run their own runtimes; this one serves HTTPS and watches for
            // Publish and signals.
            let rt = tokio::runtime::Builder::new_multi_thread()
                .thread_name("tessera-https")
                .enable_all()
                .build()?;
            rt.block_on(server::serve(node, store, bound))
        }
        cmd => {
            let store = cli::open_store(&node)?;
            match cmd {
                Command::Config(c) => cli::config(&store, c),
                Command::Publish => cli::publish(&store),
                Command::Client(c) => cli::client(&store, c),
                Command::Method(c) => cli::method(&store, c),
                Command::User(c) => cli::user(&store, c),
                Command::Token(c) => cli::token(&store, c),
                Command::Identity(c) => cli::identity(&store, c),
                Command::ApiClient(c) => cli::api_client(&store, c),
                Command::Admin(c) => cli::admin(&store, c),
                Command::Audit { limit } => cli::audit(&store, limit),
                Command::Storage(c) => cli::storage(&store, &node, c),
                Command::Serve | Command::Bench(_) | Command::Openapi | Command::Connector(_) => {
                    unreachable!("handled above")
                }
            }
        }
    }
}
