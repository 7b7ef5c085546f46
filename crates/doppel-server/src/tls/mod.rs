//! TLS for the listener: rustls with the *ring* provider, the certificate
//! chain and key read from PEM files and reloaded when they change, and
//! optional client-certificate authentication (mutual TLS) against a CA
//! bundle.
//!
//! Everything is read and checked when the server starts, so a wrong path
//! or a key that does not match its certificate stops start-up with an
//! error naming the file. Later changes to the certificate or key are
//! picked up by [`reload`]; the client CA bundle is read once.

mod pem;
pub(crate) mod reload;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;

use crate::ServerError;
use reload::ReloadingCertificate;

/// Default interval at which the certificate and key files are checked
/// for changes: an ACME client or operator who renews a certificate sees
/// it served within seconds, and a `stat` of two files costs nothing.
pub const DEFAULT_TLS_RELOAD_POLL_MS: u64 = 5_000;

/// ALPN protocols offered, most preferred first: HTTP/2 for clients that
/// can, HTTP/1.1 for the rest (and for WebSocket upgrades).
const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Where the server's certificate and key live and how clients are
/// authenticated. Present in [`crate::ServerConfig::tls`] to serve HTTPS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM file holding the server certificate followed by any
    /// intermediates, leaf first.
    pub certificate_chain: PathBuf,
    /// PEM file holding the certificate's private key (PKCS#8, PKCS#1 or
    /// SEC1).
    pub private_key: PathBuf,
    /// Whether and how clients must present certificates.
    pub client_auth: ClientAuth,
    /// How often the certificate and key files are checked for changes.
    pub reload_poll: Duration,
}

impl TlsConfig {
    /// TLS with this certificate chain and key, no client certificates,
    /// and the default reload interval.
    pub fn new(certificate_chain: impl Into<PathBuf>, private_key: impl Into<PathBuf>) -> Self {
        Self {
            certificate_chain: certificate_chain.into(),
            private_key: private_key.into(),
            client_auth: ClientAuth::Off,
            reload_poll: Duration::from_millis(DEFAULT_TLS_RELOAD_POLL_MS),
        }
    }
}

/// Client-certificate authentication. A verified certificate's identity
/// reaches handlers as a [`crate::ClientCertificate`] request extension.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// Clients are not asked for a certificate.
    #[default]
    Off,
    /// Clients may present a certificate; one that does not chain to the
    /// bundle ends the handshake, and a client without one is served
    /// anonymously.
    Optional {
        /// PEM file of the CA certificates client certificates must chain to.
        ca_bundle: PathBuf,
    },
    /// Every client must present a certificate that chains to the bundle.
    Required {
        /// PEM file of the CA certificates client certificates must chain to.
        ca_bundle: PathBuf,
    },
}

/// TLS as the accept loop uses it: the handshake acceptor and the
/// certificate the reload task refreshes.
pub(crate) struct Tls {
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
    pub(crate) certificate: Arc<ReloadingCertificate>,
    pub(crate) reload_poll: Duration,
}

impl Tls {
    /// Reads and checks every file `config` names and builds the rustls
    /// server configuration.
    pub(crate) fn load(config: &TlsConfig) -> Result<Self, ServerError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certificate = Arc::new(ReloadingCertificate::load(
            config.certificate_chain.clone(),
            config.private_key.clone(),
            provider.clone(),
        )?);
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|error| ServerError::TlsSetup(error.to_string()))?;
        let builder = match &config.client_auth {
            ClientAuth::Off => builder.with_no_client_auth(),
            ClientAuth::Optional { ca_bundle } => {
                let verifier = client_verifier(ca_bundle, &provider)?.allow_unauthenticated();
                builder.with_client_cert_verifier(build_verifier(verifier, ca_bundle)?)
            }
            ClientAuth::Required { ca_bundle } => {
                let verifier = client_verifier(ca_bundle, &provider)?;
                builder.with_client_cert_verifier(build_verifier(verifier, ca_bundle)?)
            }
        };
        let mut server_config = builder.with_cert_resolver(certificate.clone());
        server_config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|protocol| protocol.to_vec()).collect();
        Ok(Self {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server_config)),
            certificate,
            reload_poll: config.reload_poll,
        })
    }
}

fn client_verifier(
    ca_bundle: &std::path::Path,
    provider: &Arc<CryptoProvider>,
) -> Result<rustls::server::ClientCertVerifierBuilder, ServerError> {
    let roots = pem::read_roots(ca_bundle)?;
    Ok(WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()))
}

fn build_verifier(
    builder: rustls::server::ClientCertVerifierBuilder,
    ca_bundle: &std::path::Path,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, ServerError> {
    builder.build().map_err(|error| ServerError::ClientCaBundle {
        path: ca_bundle.to_owned(),
        reason: error.to_string(),
    })
}
