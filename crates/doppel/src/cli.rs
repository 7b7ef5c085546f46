//! The command line: every subcommand, its flags and the help that teaches
//! it.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};
use doppel_model::Span;

use crate::bench::BenchCommand;
use crate::config::ClientAuthMode;

/// Default address of `serve` and of the server the client commands talk to.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7780";
/// Default data directory of `serve`.
pub const DEFAULT_DATA_DIR: &str = "./doppel-data";

/// Doppel: live, private digital twins of people.
///
/// Start a server with `doppel serve`, or see everything working at once
/// with `doppel demo`. Client commands (query, twin, import, token) talk to
/// a running server at --server (default http://127.0.0.1:7780) with the
/// credential given by --token or DOPPEL_TOKEN.
#[derive(Parser, Debug)]
#[command(name = "doppel", version, about, long_about, propagate_version = true)]
pub struct Cli {
    /// More log output (-v debug, -vv trace); DOPPEL_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server: ingest, live twins, queries and streams over HTTP.
    ///
    /// Settings come from, in rising priority: the TOML file given with
    /// --config, DOPPEL_* environment variables, then flags.
    Serve(ServeArgs),
    /// Start a server with a synthetic population and stream live data.
    ///
    /// Generates people whose signals follow published physiology (history
    /// first, with progress bars), then streams new points in real time (or
    /// faster with --speed) and prints what to open.
    Demo(DemoArgs),
    /// Read a twin's signal: raw points or bucketed aggregates.
    ///
    /// Example: doppel query p0001 heart_rate --from 2024-03-01T00:00:00Z --every 1h --agg mean,max
    Query(QueryArgs),
    /// List, show, create and delete twins.
    Twin(TwinArgs),
    /// Send a CSV or line-protocol file to a server, in batches.
    ///
    /// CSV shapes: long (time,twin,signal,value[,tag...]) or wide
    /// (time,<signal>,<signal>... with --twin). Files ending in .lp, .txt or
    /// .line are read as line protocol; .gz files are inflated first.
    Import(ImportArgs),
    /// Flush and compact a data directory offline (the server must be stopped).
    Compact(CompactArgs),
    /// Verify every checksum and index of a data directory offline.
    ///
    /// Reads the twin catalog, every segment (footer, directory, index
    /// pages, block checksums) and every WAL record a restart would replay,
    /// changing nothing, and exits non-zero naming each damaged part (file,
    /// byte offset, what is lost). The server must be stopped; a sealed
    /// directory needs the same key flags as `serve`.
    Check(CheckArgs),
    /// Salvage a damaged data directory offline: keep what is readable,
    /// name what is lost.
    ///
    /// Replays the WAL (copying damaged ranges to <data>/quarantine/),
    /// rewrites the segments without their damaged blocks, removes WAL
    /// files whose readable records are now in segments and moves segments
    /// set aside at an earlier start to quarantine/. `doppel check` passes
    /// afterwards. The server must be stopped.
    Repair(RepairArgs),
    /// Make, list and revoke API tokens.
    ///
    /// create, list and revoke ask a running server (admin credential
    /// needed, except to revoke one's own token); generate prints a fresh
    /// token offline, to set as DOPPEL_ADMIN_TOKEN before the first start.
    Token(TokenArgs),
    /// Check the audit log's hash chain, or list its records.
    ///
    /// verify reads the data directory itself (best with the server
    /// stopped: records still being written show as an unfinished end);
    /// list asks a running server, where administrators see every record
    /// and a twin's owner the records of that twin (--twin).
    Audit(AuditArgs),
    /// Benchmarks run side by side with peer databases.
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// `doppel serve`.
#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// Data directory [default: ./doppel-data].
    #[arg(long, env = "DOPPEL_DATA")]
    pub data: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7780].
    #[arg(long, env = "DOPPEL_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// TOML configuration file.
    #[arg(long, env = "DOPPEL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Reject writes to twins that were not created first.
    #[arg(long, env = "DOPPEL_STRICT", value_parser = BoolishValueParser::new())]
    pub strict: bool,
    /// Directory of extra model definitions (*.toml, *.json).
    #[arg(long, env = "DOPPEL_MODELS")]
    pub models: Option<PathBuf>,
    /// Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key.
    /// Replacing the file (and the key) is picked up without a restart.
    #[arg(long, env = "DOPPEL_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "DOPPEL_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// PEM bundle of the CAs client (device) certificates must chain to.
    #[arg(long, env = "DOPPEL_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// Client certificates [default: required with --tls-client-ca, else off].
    #[arg(long, env = "DOPPEL_TLS_CLIENT_AUTH", value_enum)]
    pub tls_client_auth: Option<ClientAuthMode>,
    /// Serve without authentication: every request may do everything.
    /// Refused on a non-loopback address unless --insecure is given too.
    #[arg(long, env = "DOPPEL_NO_AUTH", value_parser = BoolishValueParser::new())]
    pub no_auth: bool,
    /// Allow --no-auth on a non-loopback address (when a proxy in front
    /// authenticates every request).
    #[arg(long, env = "DOPPEL_INSECURE", value_parser = BoolishValueParser::new())]
    pub insecure: bool,
    #[command(flatten)]
    pub encryption: EncryptionArgs,
    #[command(flatten)]
    pub ingest: IngestLimitArgs,
    #[command(flatten)]
    pub load: LoadLimitArgs,
}

/// What the server takes on at once; each overrides the same name in
/// `[limits]` (defaults in docs/configuration.md).
#[derive(Args, Debug, Default, Clone)]
pub struct LoadLimitArgs {
    /// Most connections open at once; beyond it new clients wait to be accepted [default: 4096].
    #[arg(long, env = "DOPPEL_MAX_CONNECTIONS")]
    pub max_connections: Option<NonZeroUsize>,
    /// Most requests served at once; beyond it 503 with Retry-After [default: 256].
    #[arg(long, env = "DOPPEL_MAX_IN_FLIGHT")]
    pub max_in_flight: Option<NonZeroUsize>,
    /// Longest a request may take to start its answer (408 beyond) [default: 30s].
    #[arg(long, env = "DOPPEL_REQUEST_TIMEOUT")]
    pub request_timeout: Option<Span>,
}

/// Caps on what one request and one twin may bring; each overrides the
/// same name in `[limits]` (defaults in docs/configuration.md).
#[derive(Args, Debug, Default, Clone)]
pub struct IngestLimitArgs {
    /// Refuse points more than this ahead of the server clock [default: 1h].
    #[arg(long, env = "DOPPEL_FUTURE_HORIZON")]
    pub future_horizon: Option<Span>,
    /// Most fields one line-protocol line may carry [default: 1000].
    #[arg(long, env = "DOPPEL_MAX_FIELDS_PER_LINE")]
    pub max_fields_per_line: Option<usize>,
    /// Most distinct signal names one request may bring [default: 1000].
    #[arg(long, env = "DOPPEL_MAX_SIGNALS_PER_REQUEST")]
    pub max_signals_per_request: Option<usize>,
    /// Most series one request may bring [default: 100000].
    #[arg(long, env = "DOPPEL_MAX_SERIES_PER_REQUEST")]
    pub max_series_per_request: Option<usize>,
    /// Most twins one request may write [default: 10000].
    #[arg(long, env = "DOPPEL_MAX_TWINS_PER_REQUEST")]
    pub max_twins_per_request: Option<usize>,
    /// Most tags one point may carry [default: 32].
    #[arg(long, env = "DOPPEL_MAX_TAGS_PER_POINT")]
    pub max_tags_per_point: Option<usize>,
    /// Most distinct signals one twin may have [default: 1000].
    #[arg(long, env = "DOPPEL_MAX_SIGNALS_PER_TWIN")]
    pub max_signals_per_twin: Option<usize>,
    /// Most series one twin may have [default: 10000].
    #[arg(long, env = "DOPPEL_MAX_SERIES_PER_TWIN")]
    pub max_series_per_twin: Option<usize>,
}

/// Encryption at rest, for `serve`, `compact`, `check` and `repair`, which
/// read the store.
#[derive(Args, Debug, Default, Clone)]
pub struct EncryptionArgs {
    /// Keyring directory for encryption at rest [default: <data>.keys].
    #[arg(long, env = "DOPPEL_KEYRING")]
    pub keyring: Option<PathBuf>,
    /// File holding the master key (base64) that seals the keyring
    /// [default: DOPPEL_MASTER_KEY, else a key generated into the keyring].
    #[arg(long, env = "DOPPEL_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Plain files: no encryption at rest.
    #[arg(long, env = "DOPPEL_NO_ENCRYPTION", value_parser = BoolishValueParser::new())]
    pub no_encryption: bool,
}

/// `doppel demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Number of synthetic people.
    #[arg(long, default_value_t = 1000)]
    pub people: usize,
    /// Days of history to generate before streaming live.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Live stream speed: 1 is real time, 60 makes a minute pass each second.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Address to listen on.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Data directory; by default a fresh temporary one, removed on exit.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Seed of the population, for a reproducible demo.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Stop after this many seconds of live streaming (runs until Ctrl-C by default).
    #[arg(long)]
    pub duration_secs: Option<u64>,
}

/// Where the client commands find the server, and how they prove who
/// they are.
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// Base URL of a running Doppel server.
    #[arg(long, env = "DOPPEL_URL", default_value = "http://127.0.0.1:7780", global = true)]
    pub server: String,
    /// Credential sent as `Authorization: Bearer`: an API token (dpl_…) or a JWT.
    #[arg(long, env = "DOPPEL_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
}

/// Output formats of client commands.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// Aligned columns for people.
    #[default]
    Table,
    /// `time,value` lines.
    Csv,
    /// The server's JSON answer.
    Json,
}

/// `doppel query`.
#[derive(Args, Debug)]
pub struct QueryArgs {
    /// Twin id.
    pub twin: String,
    /// Signal name, e.g. heart_rate.
    pub signal: String,
    /// Start (RFC 3339 or ns since epoch) [default: 24 h before --to].
    #[arg(long)]
    pub from: Option<String>,
    /// End, exclusive (RFC 3339 or ns since epoch) [default: now].
    #[arg(long)]
    pub to: Option<String>,
    /// Bucket width, e.g. 15m, 1h, 1d.
    #[arg(long)]
    pub every: Option<String>,
    /// Aggregates, comma-separated: mean,min,max,sum,count,first,last,p50,p95.
    #[arg(long)]
    pub agg: Option<String>,
    /// Only points from this source, e.g. device=watch.
    #[arg(long)]
    pub source: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `doppel twin`.
#[derive(Args, Debug)]
pub struct TwinArgs {
    #[command(subcommand)]
    pub command: TwinCommand,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `doppel twin ...`.
#[derive(Subcommand, Debug)]
pub enum TwinCommand {
    /// List twins, sorted by id.
    List {
        /// Only twins of this model.
        #[arg(long)]
        model: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Show a twin's properties and live state.
    Show {
        /// Twin id.
        id: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Create a twin, or replace its model and properties.
    Create {
        /// Twin id.
        id: String,
        /// Model name [default: the server's default, person].
        #[arg(long)]
        model: Option<String>,
        /// A property as key=value (value parsed as JSON when it is valid JSON); repeatable.
        #[arg(long = "property", short = 'p')]
        properties: Vec<String>,
    },
    /// Delete a twin and all its data.
    Delete {
        /// Twin id.
        id: String,
    },
    /// Let a user, group or token use part of a twin, e.g.
    /// `doppel twin share alice --with user:dr-who --resource signals:heart_rate --permissions read --ttl 90d`.
    Share {
        /// Twin id.
        id: String,
        /// Who receives the grant: user:<name>, group:<name> or token:<id>.
        #[arg(long = "with")]
        subject: String,
        /// What of the twin: twin, signals:<pattern>, scenarios, alerts or policy.
        #[arg(long, default_value = "twin")]
        resource: String,
        /// Permissions, comma-separated: read, write, simulate, manage, share.
        #[arg(long, value_delimiter = ',', default_value = "read")]
        permissions: Vec<String>,
        /// How long the grant lasts, such as 90d [default: until revoked].
        #[arg(long, conflicts_with = "expires")]
        ttl: Option<String>,
        /// When the grant ends (RFC 3339).
        #[arg(long)]
        expires: Option<String>,
    },
    /// Download everything held about a twin (what the caller may read) as
    /// a zip archive of JSON and CSV files; see docs/export.md.
    Export {
        /// Twin id.
        id: String,
        /// Where to write the archive [default: doppel-export-<id>.zip].
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// List a twin's owner and grants.
    Grants {
        /// Twin id.
        id: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Revoke a grant (its id from `doppel twin grants`).
    Unshare {
        /// Twin id.
        id: String,
        /// Grant id.
        grant: u64,
    },
}

/// `doppel import`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// File to import (CSV or line protocol, optionally gzip-compressed).
    pub file: PathBuf,
    /// Format; guessed from the extension when absent.
    #[arg(long, value_enum)]
    pub format: Option<ImportFormat>,
    /// Twin of a wide CSV file (time,<signal>,...).
    #[arg(long)]
    pub twin: Option<String>,
    /// Unit of integer timestamps: ns, us, ms or s.
    #[arg(long, default_value = "ns")]
    pub precision: String,
    /// Lines per request.
    #[arg(long, default_value_t = 5000)]
    pub batch_lines: usize,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// File formats `import` reads.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportFormat {
    /// Comma-separated values with a header.
    Csv,
    /// InfluxDB line protocol.
    LineProtocol,
}

/// `doppel token`.
#[derive(Args, Debug)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `doppel token ...`.
#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Make a token on the server and print it (shown this once).
    Create {
        /// A label for listings, such as alice-phone.
        #[arg(long)]
        name: String,
        /// The user the token acts as.
        #[arg(long)]
        user: String,
        /// Scopes, comma-separated: admin, or any of read, write, simulate, manage, share.
        #[arg(long, value_delimiter = ',', default_value = "read,write,simulate,manage,share")]
        scopes: Vec<String>,
        /// Only these twins, comma-separated (not with admin).
        #[arg(long, value_delimiter = ',')]
        twins: Option<Vec<String>>,
        /// How long the token works, such as 90d [default: until revoked].
        #[arg(long, conflicts_with = "expires")]
        ttl: Option<String>,
        /// When the token stops working (RFC 3339).
        #[arg(long)]
        expires: Option<String>,
    },
    /// List the server's tokens (never their secrets).
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Revoke a token by its id (the 12 characters after `dpl_`).
    Revoke {
        /// Token id.
        id: String,
    },
    /// Print a fresh admin token text without asking any server, to set as
    /// DOPPEL_ADMIN_TOKEN before `doppel serve` first starts.
    Generate,
}

/// `doppel audit`.
#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `doppel audit ...`.
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Walk the whole chain from record 1; print the record count and the
    /// head hash (keep it elsewhere), or the first broken record and exit
    /// non-zero.
    Verify {
        /// Data directory [default: ./doppel-data]; the log is its `audit/`.
        #[arg(long, env = "DOPPEL_DATA", default_value = DEFAULT_DATA_DIR)]
        data: PathBuf,
    },
    /// List audit records from a running server, oldest first.
    List {
        /// Only records of this twin (required unless an administrator asks).
        #[arg(long)]
        twin: Option<String>,
        /// Only records at or after this time (RFC 3339 or ns since epoch).
        #[arg(long)]
        from: Option<String>,
        /// Only records before this time (RFC 3339 or ns since epoch).
        #[arg(long)]
        to: Option<String>,
        /// Only records after this record number (the `next` of an earlier listing).
        #[arg(long)]
        after: Option<u64>,
        /// At most this many records (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

/// `doppel compact`.
#[derive(Args, Debug)]
pub struct CompactArgs {
    /// Data directory [default: ./doppel-data].
    #[arg(long, env = "DOPPEL_DATA", default_value = DEFAULT_DATA_DIR)]
    pub data: PathBuf,
    #[command(flatten)]
    pub encryption: EncryptionArgs,
}

/// `doppel check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Data directory [default: ./doppel-data].
    #[arg(long, env = "DOPPEL_DATA", default_value = DEFAULT_DATA_DIR)]
    pub data: PathBuf,
    #[command(flatten)]
    pub encryption: EncryptionArgs,
}

/// `doppel repair`.
#[derive(Args, Debug)]
pub struct RepairArgs {
    /// Data directory [default: ./doppel-data].
    #[arg(long, env = "DOPPEL_DATA", default_value = DEFAULT_DATA_DIR)]
    pub data: PathBuf,
    #[command(flatten)]
    pub encryption: EncryptionArgs,
}
