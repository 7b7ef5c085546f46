//! The server certificate, replaced while the server runs when its files
//! change.
//!
//! [`ReloadingCertificate`] is rustls's certificate resolver: every
//! handshake takes the current chain and key from behind a lock. [`watch`]
//! polls the files' modification time and length and, when either
//! changed, reads both files again. A new pair that does not load (half
//! written, key not matching yet because the certificate was replaced
//! first) is logged and the previous one kept; the next change is tried
//! again, so writing the two files one after the other works.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::RwLock;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::sync::watch;

use crate::ServerError;
use crate::tls::pem::read_certified_key;

/// The certificate chain and key every handshake uses now.
#[derive(Debug)]
pub(crate) struct ReloadingCertificate {
    certificate_chain: PathBuf,
    private_key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files as they were just before the first load, so a change
    /// made while the server starts is noticed by the first check.
    loaded: Stamp,
}

impl ReloadingCertificate {
    /// Reads the pair for the first time; an error here stops start-up.
    pub(crate) fn load(
        certificate_chain: PathBuf,
        private_key: PathBuf,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, ServerError> {
        let loaded = Stamp::of(&certificate_chain, &private_key);
        let current = read_certified_key(&certificate_chain, &private_key, &provider)?;
        Ok(Self { certificate_chain, private_key, provider, current: RwLock::new(Arc::new(current)), loaded })
    }

    /// What the files look like now, to notice a change.
    fn stamp(&self) -> Stamp {
        Stamp::of(&self.certificate_chain, &self.private_key)
    }

    /// Reads the pair again, keeping the current one if the new one does
    /// not load.
    fn reload(&self) {
        match read_certified_key(&self.certificate_chain, &self.private_key, &self.provider) {
            Ok(key) => {
                *self.current.write() = Arc::new(key);
                tracing::info!(
                    certificate = %self.certificate_chain.display(),
                    key = %self.private_key.display(),
                    "reloaded the TLS certificate"
                );
            }
            Err(error) => tracing::warn!(
                certificate = %self.certificate_chain.display(),
                key = %self.private_key.display(),
                reason = %error,
                "TLS certificate files changed but do not load; still serving the previous certificate"
            ),
        }
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().clone())
    }
}

/// Modification time and length of one file; `None` while it cannot be
/// read (an editor or `mv` may replace it for a moment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStamp(Option<(SystemTime, u64)>);

impl FileStamp {
    fn of(path: &Path) -> Self {
        Self(std::fs::metadata(path).ok().and_then(|meta| Some((meta.modified().ok()?, meta.len()))))
    }
}

/// The stamps of the certificate chain and key files together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    certificate_chain: FileStamp,
    private_key: FileStamp,
}

impl Stamp {
    fn of(certificate_chain: &Path, private_key: &Path) -> Self {
        Self { certificate_chain: FileStamp::of(certificate_chain), private_key: FileStamp::of(private_key) }
    }
}

/// Checks the files every `poll` until `shutdown` turns true (or its
/// sender is dropped), reloading the pair after each change.
pub(crate) async fn watch(
    certificate: Arc<ReloadingCertificate>,
    poll: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut seen = certificate.loaded;
    let mut ticks = tokio::time::interval(poll);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = crate::stream::shutdown_requested(&mut shutdown) => return,
        }
        let checked = certificate.clone();
        let previous = seen;
        // File system calls block: keep them off the async workers.
        let outcome = tokio::task::spawn_blocking(move || {
            let now = checked.stamp();
            if now != previous {
                checked.reload();
            }
            now
        })
        .await;
        match outcome {
            Ok(now) => seen = now,
            Err(error) => tracing::warn!(%error, "TLS certificate reload check failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate and its key, as PEM, and the DER served.
    fn pair() -> (String, String, Vec<u8>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let certificate =
            rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap().self_signed(&key).unwrap();
        (certificate.pem(), key.serialize_pem(), certificate.der().to_vec())
    }

    fn served(certificate: &ReloadingCertificate) -> Vec<u8> {
        certificate.current.read().cert[0].to_vec()
    }

    #[test]
    fn bad_replacement_keeps_the_previous_certificate_and_a_good_one_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let (first_cert, first_key, first_der) = pair();
        std::fs::write(&cert_path, first_cert).unwrap();
        std::fs::write(&key_path, first_key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certificate = ReloadingCertificate::load(cert_path.clone(), key_path.clone(), provider).unwrap();
        assert_eq!(served(&certificate), first_der);

        std::fs::write(&cert_path, "not PEM at all").unwrap();
        assert_ne!(certificate.stamp(), certificate.loaded);
        certificate.reload();
        assert_eq!(served(&certificate), first_der);

        let (second_cert, second_key, second_der) = pair();
        std::fs::write(&cert_path, second_cert).unwrap();
        certificate.reload();
        assert_eq!(served(&certificate), first_der, "a certificate with the old key must not be served");
        std::fs::write(&key_path, second_key).unwrap();
        certificate.reload();
        assert_eq!(served(&certificate), second_der);
    }
}
