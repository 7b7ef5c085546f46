//! `serve` settings: a TOML file, overridden by `DOPPEL_*` environment
//! variables, overridden by flags (clap merges the last two).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use doppel_auth::JwtConfig;
use doppel_engine::IngestLimits;
use doppel_model::{SignalName, Span};
use doppel_privacy::{DEFAULT_EPSILON_BUDGET, Epsilon};
use doppel_server::{
    AuthConfig, ClientAuth, DEFAULT_RATE_LIMIT_BURST, DEFAULT_RATE_LIMIT_PER_S, PrivacyConfig, RateLimit,
    TlsConfig,
};
use serde::Deserialize;

use crate::cli::{DEFAULT_DATA_DIR, DEFAULT_LISTEN, IngestLimitArgs, LoadLimitArgs, ServeArgs};
use crate::encryption::{EncryptionFileConfig, EncryptionSettings};

/// The configuration file's shape. Every key is optional.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Data directory.
    pub data: Option<PathBuf>,
    /// Listen address.
    pub listen: Option<SocketAddr>,
    /// Reject writes to twins that do not exist.
    pub strict: Option<bool>,
    /// Directory of extra model definitions.
    pub models: Option<PathBuf>,
    /// Model of twins created by their first write.
    pub default_model: Option<String>,
    /// Request limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Storage settings.
    #[serde(default)]
    pub store: StoreFileConfig,
    /// HTTPS settings.
    #[serde(default)]
    pub tls: TlsFileConfig,
    /// Authentication settings.
    #[serde(default)]
    pub auth: AuthFileConfig,
    /// Encryption at rest.
    #[serde(default)]
    pub encryption: EncryptionFileConfig,
    /// Pseudonyms and privacy budgets of cohort output.
    #[serde(default)]
    pub privacy: PrivacyFileConfig,
}

/// `[privacy]`.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct PrivacyFileConfig {
    /// Total epsilon each analyst may spend on differentially private answers.
    pub epsilon_budget: Option<f64>,
    /// File holding the pseudonym secret (made when absent).
    pub pseudonym_key_file: Option<PathBuf>,
}

/// `[auth]`.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct AuthFileConfig {
    /// Whether credentials are required (default true).
    pub enabled: Option<bool>,
    /// Sustained requests per second per client; 0 turns the limit off.
    pub rate_limit_per_s: Option<f64>,
    /// Requests per client at once.
    pub rate_limit_burst: Option<u32>,
    /// `[auth.jwt]`: the identity provider whose JWTs are accepted.
    pub jwt: Option<JwtConfig>,
}

/// `[limits]`.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body, compressed or inflated, in bytes.
    pub max_body_bytes: Option<usize>,
    /// Largest batch, in points.
    pub max_batch_points: Option<usize>,
    /// Most raw points one signal read returns.
    pub max_read_points: Option<usize>,
    /// Most connections open at once.
    pub max_connections: Option<std::num::NonZeroUsize>,
    /// Most requests served at once.
    pub max_in_flight: Option<std::num::NonZeroUsize>,
    /// Longest a request may take.
    pub request_timeout: Option<Span>,
    /// Longest a client may take to send a request head (and finish the
    /// TLS handshake of a new connection).
    pub header_read_timeout: Option<Span>,
    /// Largest request head (request line and headers), in bytes.
    pub max_header_bytes: Option<usize>,
    /// Longest one send to a stream subscriber may take before it is
    /// dropped.
    pub subscriber_send_timeout: Option<Span>,
    /// Points further ahead of the server clock are refused.
    pub future_horizon: Option<Span>,
    /// Most fields one input line may carry.
    pub max_fields_per_line: Option<usize>,
    /// Most distinct signal names one request may bring.
    pub max_signals_per_request: Option<usize>,
    /// Most series one request may bring.
    pub max_series_per_request: Option<usize>,
    /// Most twins one request may write.
    pub max_twins_per_request: Option<usize>,
    /// Most tags one point may carry.
    pub max_tags_per_point: Option<usize>,
    /// Most distinct signals one twin may have.
    pub max_signals_per_twin: Option<usize>,
    /// Most series one twin may have.
    pub max_series_per_twin: Option<usize>,
}

impl LimitsConfig {
    /// Takes every limit the flags (or their environment variables) set
    /// over the file's.
    fn with_flags(self, flags: IngestLimitArgs, load: LoadLimitArgs) -> Self {
        Self {
            max_connections: load.max_connections.or(self.max_connections),
            max_in_flight: load.max_in_flight.or(self.max_in_flight),
            request_timeout: load.request_timeout.or(self.request_timeout),
            future_horizon: flags.future_horizon.or(self.future_horizon),
            max_fields_per_line: flags.max_fields_per_line.or(self.max_fields_per_line),
            max_signals_per_request: flags.max_signals_per_request.or(self.max_signals_per_request),
            max_series_per_request: flags.max_series_per_request.or(self.max_series_per_request),
            max_twins_per_request: flags.max_twins_per_request.or(self.max_twins_per_request),
            max_tags_per_point: flags.max_tags_per_point.or(self.max_tags_per_point),
            max_signals_per_twin: flags.max_signals_per_twin.or(self.max_signals_per_twin),
            max_series_per_twin: flags.max_series_per_twin.or(self.max_series_per_twin),
            ..self
        }
    }

    /// The engine's ingest caps: these settings over the defaults.
    pub fn ingest(&self) -> IngestLimits {
        let defaults = IngestLimits::default();
        IngestLimits {
            future_horizon: self.future_horizon.unwrap_or(defaults.future_horizon),
            max_fields_per_line: self.max_fields_per_line.unwrap_or(defaults.max_fields_per_line),
            max_signals_per_request: self.max_signals_per_request.unwrap_or(defaults.max_signals_per_request),
            max_series_per_request: self.max_series_per_request.unwrap_or(defaults.max_series_per_request),
            max_twins_per_request: self.max_twins_per_request.unwrap_or(defaults.max_twins_per_request),
            max_tags_per_point: self.max_tags_per_point.unwrap_or(defaults.max_tags_per_point),
            max_signals_per_twin: self.max_signals_per_twin.unwrap_or(defaults.max_signals_per_twin),
            max_series_per_twin: self.max_series_per_twin.unwrap_or(defaults.max_series_per_twin),
        }
    }
}

/// `[tls]`: serve HTTPS, optionally asking clients for certificates.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct TlsFileConfig {
    /// PEM certificate chain, leaf first.
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
    /// PEM bundle of the CAs client certificates must chain to.
    pub client_ca: Option<PathBuf>,
    /// Whether clients must present a certificate.
    pub client_auth: Option<ClientAuthMode>,
}

/// `client_auth` / `--tls-client-auth`, before it is paired with a CA
/// bundle.
#[derive(Deserialize, clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuthMode {
    /// Clients are not asked for a certificate.
    Off,
    /// Clients may present a certificate; those that do are verified.
    Optional,
    /// Every client must present a valid certificate.
    Required,
}

/// `[store]`.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct StoreFileConfig {
    /// Head older than this is flushed to a segment.
    pub flush_interval: Option<Span>,
    /// Head size, in points, that triggers a flush.
    pub head_flush_points: Option<usize>,
    /// Points the heads may hold before writes are refused (503) until a
    /// flush catches up.
    pub head_limit_points: Option<usize>,
    /// Default retention of every signal (kept forever when absent).
    pub retention: Option<Span>,
    /// Retention per signal name.
    #[serde(default)]
    pub retention_per_signal: HashMap<String, Span>,
}

/// Everything `serve` needs, resolved.
#[derive(Debug)]
pub struct Settings {
    pub data: PathBuf,
    pub listen: SocketAddr,
    pub strict: bool,
    pub models: Option<PathBuf>,
    pub default_model: String,
    pub limits: LimitsConfig,
    pub store: StoreFileConfig,
    /// HTTPS settings; `None` serves plain HTTP.
    pub tls: Option<TlsConfig>,
    pub auth: AuthConfig,
    pub privacy: PrivacyConfig,
    /// Serve without authentication on a non-loopback address anyway.
    pub insecure: bool,
    /// Encryption at rest; `None` writes plain files.
    pub encryption: Option<EncryptionSettings>,
}

impl Settings {
    /// Merges file < environment < flags.
    pub fn resolve(args: ServeArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => load(path)?,
            None => FileConfig::default(),
        };
        let default_listen: SocketAddr = DEFAULT_LISTEN.parse().context("default listen address")?;
        let tls = resolve_tls(TlsFileConfig {
            cert: args.tls_cert.or(file.tls.cert),
            key: args.tls_key.or(file.tls.key),
            client_ca: args.tls_client_ca.or(file.tls.client_ca),
            client_auth: args.tls_client_auth.or(file.tls.client_auth),
        })?;
        let auth = auth_config(file.auth, args.no_auth)?;
        let data = args.data.or(file.data).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let encryption = EncryptionSettings::resolve(file.encryption, &data, args.encryption)?;
        let privacy = privacy_config(file.privacy)?;
        Ok(Self {
            data,
            listen: args.listen.or(file.listen).unwrap_or(default_listen),
            strict: args.strict || file.strict.unwrap_or(false),
            models: args.models.or(file.models),
            default_model: file.default_model.unwrap_or_else(|| "person".to_owned()),
            limits: file.limits.with_flags(args.ingest, args.load),
            store: file.store,
            tls,
            auth,
            privacy,
            insecure: args.insecure,
            encryption,
        })
    }

    /// Refuses to expose an unauthenticated server beyond this machine
    /// unless told `--insecure`: anyone who could reach it could read and
    /// change every twin.
    pub fn check_exposure(&self) -> anyhow::Result<()> {
        if self.auth.enabled || self.insecure || self.listen.ip().is_loopback() {
            return Ok(());
        }
        bail!(
            "refusing to listen on {} without authentication: anyone who can reach that address could read \
             and change every twin. Turn authentication back on (drop --no-auth / `[auth] enabled = false`), \
             listen on a loopback address such as 127.0.0.1, or, if a proxy in front authenticates every \
             request, pass --insecure",
            self.listen
        )
    }

    /// The store's retention policy from `[store]`.
    pub fn retention(&self) -> anyhow::Result<doppel_store::RetentionPolicy> {
        let mut per_signal = HashMap::new();
        for (name, span) in &self.store.retention_per_signal {
            let signal =
                SignalName::new(name).with_context(|| format!("[store.retention_per_signal] {name}"))?;
            per_signal.insert(signal, *span);
        }
        Ok(doppel_store::RetentionPolicy { default: self.store.retention, per_signal })
    }
}

/// Pairs the merged `[tls]` settings into a [`TlsConfig`], refusing
/// combinations whose intent is unclear. A CA bundle without a mode means
/// `required`: whoever names the CAs of their devices wants them checked.
fn resolve_tls(tls: TlsFileConfig) -> anyhow::Result<Option<TlsConfig>> {
    let TlsFileConfig { cert, key, client_ca, client_auth } = tls;
    let (cert, key) = match (cert, key) {
        (Some(cert), Some(key)) => (cert, key),
        (None, None) => {
            if client_ca.is_some() || client_auth.is_some_and(|mode| mode != ClientAuthMode::Off) {
                bail!("client certificates need TLS: set [tls] cert and key (--tls-cert, --tls-key)");
            }
            return Ok(None);
        }
        (Some(_), None) => bail!("[tls] cert (--tls-cert) is set but key (--tls-key) is not"),
        (None, Some(_)) => bail!("[tls] key (--tls-key) is set but cert (--tls-cert) is not"),
    };
    let client_auth = match (client_auth, client_ca) {
        (None | Some(ClientAuthMode::Off), None) => ClientAuth::Off,
        (Some(ClientAuthMode::Off), Some(ca)) => bail!(
            "[tls] client_ca (--tls-client-ca) is set to {} but client_auth is off: remove one",
            ca.display()
        ),
        (Some(mode), None) => bail!(
            "[tls] client_auth = {} needs client_ca (--tls-client-ca), the CAs client certificates must chain to",
            if mode == ClientAuthMode::Optional { "optional" } else { "required" }
        ),
        (Some(ClientAuthMode::Optional), Some(ca_bundle)) => ClientAuth::Optional { ca_bundle },
        (None | Some(ClientAuthMode::Required), Some(ca_bundle)) => ClientAuth::Required { ca_bundle },
    };
    Ok(Some(TlsConfig { client_auth, ..TlsConfig::new(cert, key) }))
}

/// `[auth]` with `--no-auth` applied.
fn auth_config(file: AuthFileConfig, no_auth: bool) -> anyhow::Result<AuthConfig> {
    let per_second = file.rate_limit_per_s.unwrap_or(DEFAULT_RATE_LIMIT_PER_S);
    let burst = file.rate_limit_burst.unwrap_or(DEFAULT_RATE_LIMIT_BURST);
    let rate_limit = if per_second == 0.0 {
        None
    } else {
        Some(RateLimit::new(per_second, burst).with_context(|| {
            format!(
                "[auth] rate_limit_per_s = {per_second}, rate_limit_burst = {burst}: the rate must be a positive \
                 number (or 0 for no limit) and the burst at least 1"
            )
        })?)
    };
    Ok(AuthConfig { enabled: !no_auth && file.enabled.unwrap_or(true), jwt: file.jwt, rate_limit })
}

/// `[privacy]`, with the default budget when it names none.
fn privacy_config(file: PrivacyFileConfig) -> anyhow::Result<PrivacyConfig> {
    let epsilon_budget = match file.epsilon_budget {
        None => DEFAULT_EPSILON_BUDGET,
        Some(total) => Epsilon::new(total).with_context(|| format!("[privacy] epsilon_budget = {total}"))?,
    };
    Ok(PrivacyConfig { epsilon_budget, pseudonym_key_file: file.pseudonym_key_file })
}

fn load(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroUsize;

    #[test]
    fn flags_override_the_file_and_defaults_fill_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("doppel.toml");
        std::fs::write(
            &path,
            "data = \"/srv/doppel\"\nlisten = \"127.0.0.1:9000\"\n[store]\nretention = \"400d\"\n[store.retention_per_signal]\nheart_rate = \"90d\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(path),
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            ..Default::default()
        };
        let settings = Settings::resolve(args).unwrap();
        assert_eq!(settings.data, PathBuf::from("/srv/doppel"));
        assert_eq!(settings.listen.port(), 9100);
        let retention = settings.retention().unwrap();
        assert_eq!(retention.default, Some("400d".parse().unwrap()));
        assert_eq!(retention.per_signal.len(), 1);
    }

    fn tls_settings(toml: &str, args: ServeArgs) -> anyhow::Result<Option<TlsConfig>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("doppel.toml");
        std::fs::write(&path, toml).unwrap();
        Settings::resolve(ServeArgs { config: Some(path), ..args }).map(|settings| settings.tls)
    }

    #[test]
    fn tls_section_becomes_server_tls_settings() {
        let tls = tls_settings(
            "[tls]\ncert = \"/etc/doppel/cert.pem\"\nkey = \"/etc/doppel/key.pem\"\nclient_ca = \"/etc/doppel/devices.pem\"\nclient_auth = \"optional\"\n",
            ServeArgs::default(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(tls.certificate_chain, PathBuf::from("/etc/doppel/cert.pem"));
        assert_eq!(tls.private_key, PathBuf::from("/etc/doppel/key.pem"));
        assert_eq!(tls.client_auth, ClientAuth::Optional { ca_bundle: "/etc/doppel/devices.pem".into() });
    }

    #[test]
    fn tls_flags_override_the_file() {
        let args = ServeArgs {
            tls_key: Some("/run/key.pem".into()),
            tls_client_auth: Some(ClientAuthMode::Off),
            ..Default::default()
        };
        let tls = tls_settings("[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n", args).unwrap().unwrap();
        assert_eq!(tls.certificate_chain, PathBuf::from("c.pem"));
        assert_eq!(tls.private_key, PathBuf::from("/run/key.pem"));
        assert_eq!(tls.client_auth, ClientAuth::Off);
    }

    #[test]
    fn ingest_caps_come_from_the_file_and_flags_override_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("doppel.toml");
        std::fs::write(
            &path,
            "[limits]\nfuture_horizon = \"10m\"\nmax_signals_per_twin = 50\nmax_tags_per_point = 4\n",
        )
        .unwrap();
        let flags = IngestLimitArgs { max_signals_per_twin: Some(7), ..Default::default() };
        let settings =
            Settings::resolve(ServeArgs { config: Some(path), ingest: flags, ..Default::default() }).unwrap();
        let limits = settings.limits.ingest();
        assert_eq!(limits.future_horizon, "10m".parse().unwrap());
        assert_eq!(limits.max_signals_per_twin, 7, "the flag wins over the file");
        assert_eq!(limits.max_tags_per_point, 4);
        assert_eq!(
            limits.max_fields_per_line,
            IngestLimits::default().max_fields_per_line,
            "unset caps keep defaults"
        );
    }

    #[test]
    fn load_limits_come_from_the_file_and_flags_override_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("doppel.toml");
        std::fs::write(
            &path,
            "[limits]\nmax_connections = 100\nmax_in_flight = 10\nrequest_timeout = \"5s\"\n",
        )
        .unwrap();
        let load = LoadLimitArgs { max_in_flight: NonZeroUsize::new(3), ..Default::default() };
        let settings =
            Settings::resolve(ServeArgs { config: Some(path), load, ..Default::default() }).unwrap();
        let config = crate::serve::server_config(&settings);
        assert_eq!(config.max_connections.get(), 100);
        assert_eq!(config.max_in_flight.get(), 3, "the flag wins over the file");
        assert_eq!(config.request_timeout, std::time::Duration::from_secs(5));
        let defaults = crate::serve::server_config(&Settings::resolve(ServeArgs::default()).unwrap());
        assert_eq!(defaults.max_in_flight, doppel_server::DEFAULT_MAX_IN_FLIGHT);
    }

    #[test]
    fn client_ca_without_a_mode_requires_client_certificates() {
        let tls = tls_settings(
            "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\nclient_ca = \"ca.pem\"\n",
            ServeArgs::default(),
        );
        assert_eq!(tls.unwrap().unwrap().client_auth, ClientAuth::Required { ca_bundle: "ca.pem".into() });
    }

    #[test]
    fn no_tls_settings_serve_plain_http() {
        assert_eq!(tls_settings("", ServeArgs::default()).unwrap(), None);
    }

    #[test]
    fn unclear_tls_combinations_are_refused_with_the_setting_named() {
        let cases = [
            ("[tls]\ncert = \"c.pem\"\n", "key"),
            ("[tls]\nkey = \"k.pem\"\n", "cert"),
            ("[tls]\nclient_ca = \"ca.pem\"\n", "need TLS"),
            ("[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\nclient_auth = \"required\"\n", "needs client_ca"),
            (
                "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\nclient_ca = \"ca.pem\"\nclient_auth = \"off\"\n",
                "client_auth is off",
            ),
        ];
        for (toml, needle) in cases {
            let error = tls_settings(toml, ServeArgs::default()).unwrap_err();
            assert!(format!("{error:#}").contains(needle), "{toml}: {error:#}");
        }
    }

    #[test]
    fn unknown_client_auth_mode_is_an_error_naming_it() {
        let error = tls_settings("[tls]\nclient_auth = \"sometimes\"\n", ServeArgs::default()).unwrap_err();
        assert!(format!("{error:#}").contains("sometimes"), "{error:#}");
    }

    #[test]
    fn authentication_is_on_by_default_and_the_file_configures_it() {
        let settings = Settings::resolve(ServeArgs::default()).unwrap();
        assert!(settings.auth.enabled);
        assert_eq!(settings.auth.rate_limit, Some(RateLimit::default()));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("doppel.toml");
        std::fs::write(
            &path,
            "[auth]\nrate_limit_per_s = 0\n[auth.jwt]\nissuer = \"https://id.example.org\"\naudience = \"doppel\"\nadmin_group = \"ops\"\n",
        )
        .unwrap();
        let settings = Settings::resolve(ServeArgs { config: Some(path), ..Default::default() }).unwrap();
        assert_eq!(settings.auth.rate_limit, None);
        assert_eq!(settings.auth.jwt.unwrap().audience, "doppel");

        let settings = Settings::resolve(ServeArgs { no_auth: true, ..Default::default() }).unwrap();
        assert!(!settings.auth.enabled);
    }

    #[test]
    fn an_unauthenticated_server_stays_on_loopback_unless_told_insecure() {
        let exposed =
            ServeArgs { no_auth: true, listen: Some("0.0.0.0:7780".parse().unwrap()), ..Default::default() };
        let error = Settings::resolve(exposed).unwrap().check_exposure().unwrap_err().to_string();
        assert!(error.contains("0.0.0.0:7780") && error.contains("--insecure"), "{error}");
        let insecure = ServeArgs {
            no_auth: true,
            insecure: true,
            listen: Some("0.0.0.0:7780".parse().unwrap()),
            ..Default::default()
        };
        assert!(Settings::resolve(insecure).unwrap().check_exposure().is_ok());
        let loopback =
            ServeArgs { no_auth: true, listen: Some("[::1]:7780".parse().unwrap()), ..Default::default() };
        assert!(Settings::resolve(loopback).unwrap().check_exposure().is_ok());
        let authenticated = ServeArgs { listen: Some("0.0.0.0:7780".parse().unwrap()), ..Default::default() };
        assert!(Settings::resolve(authenticated).unwrap().check_exposure().is_ok());
    }

    #[test]
    fn a_bad_rate_limit_is_an_error_naming_the_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("doppel.toml");
        std::fs::write(&path, "[auth]\nrate_limit_per_s = -3\n").unwrap();
        let error = Settings::resolve(ServeArgs { config: Some(path), ..Default::default() }).unwrap_err();
        assert!(format!("{error:#}").contains("rate_limit_per_s"), "{error:#}");
    }

    #[test]
    fn unknown_keys_are_errors_that_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "dta = \"x\"\n").unwrap();
        let err = Settings::resolve(ServeArgs { config: Some(path), ..Default::default() }).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("bad.toml") && text.contains("dta"), "{text}");
    }
}
