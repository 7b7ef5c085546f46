//! Reading certificates and keys from PEM files, with errors that name the
//! file and what was wrong with it.

use std::path::Path;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use crate::ServerError;

/// Reads a certificate chain and its private key and checks that they
/// belong together.
pub(crate) fn read_certified_key(
    certificate_chain: &Path,
    private_key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, ServerError> {
    let chain = read_certificates(certificate_chain)?;
    let key_pem = read(private_key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|error| match error {
        rustls::pki_types::pem::Error::NoItemsFound => {
            ServerError::NoPrivateKey { path: private_key.to_owned() }
        }
        other => ServerError::TlsPem { path: private_key.to_owned(), reason: other.to_string() },
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|error| ServerError::TlsKey {
        key: private_key.to_owned(),
        certificate: certificate_chain.to_owned(),
        reason: error.to_string(),
    })
}

/// Reads a bundle of CA certificates client certificates must chain to.
pub(crate) fn read_roots(ca_bundle: &Path) -> Result<RootCertStore, ServerError> {
    let mut roots = RootCertStore::empty();
    for (index, certificate) in read_certificates(ca_bundle)?.into_iter().enumerate() {
        roots.add(certificate).map_err(|error| ServerError::ClientCaBundle {
            path: ca_bundle.to_owned(),
            reason: format!("certificate {} of the bundle: {error}", index + 1),
        })?;
    }
    Ok(roots)
}

/// Every `CERTIFICATE` block of a PEM file, in order; at least one.
fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, ServerError> {
    let pem = read(path)?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| ServerError::TlsPem { path: path.to_owned(), reason: error.to_string() })?;
    if certificates.is_empty() {
        return Err(ServerError::NoCertificate { path: path.to_owned() });
    }
    Ok(certificates)
}

fn read(path: &Path) -> Result<Vec<u8>, ServerError> {
    std::fs::read(path).map_err(|source| ServerError::TlsFile { path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> CryptoProvider {
        rustls::crypto::ring::default_provider()
    }

    struct Files {
        dir: tempfile::TempDir,
    }

    impl Files {
        fn new() -> Self {
            Self { dir: tempfile::tempdir().unwrap() }
        }

        fn write(&self, name: &str, contents: &str) -> std::path::PathBuf {
            let path = self.dir.path().join(name);
            std::fs::write(&path, contents).unwrap();
            path
        }
    }

    fn self_signed() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let certificate =
            rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap().self_signed(&key).unwrap();
        (certificate.pem(), key.serialize_pem())
    }

    #[test]
    fn matching_certificate_and_key_load() {
        let files = Files::new();
        let (certificate, key) = self_signed();
        let loaded =
            read_certified_key(&files.write("c.pem", &certificate), &files.write("k.pem", &key), &provider());
        assert_eq!(loaded.unwrap().cert.len(), 1);
    }

    #[test]
    fn missing_file_error_names_the_path() {
        let files = Files::new();
        let (_, key) = self_signed();
        let missing = files.dir.path().join("absent.pem");
        let error = read_certified_key(&missing, &files.write("k.pem", &key), &provider()).unwrap_err();
        assert!(matches!(error, ServerError::TlsFile { .. }), "{error:?}");
        assert!(error.to_string().contains("absent.pem"), "{error}");
    }

    #[test]
    fn key_of_another_certificate_is_refused_naming_both_files() {
        let files = Files::new();
        let (certificate, _) = self_signed();
        let (_, other_key) = self_signed();
        let error = read_certified_key(
            &files.write("server.pem", &certificate),
            &files.write("other-key.pem", &other_key),
            &provider(),
        )
        .unwrap_err();
        let text = error.to_string();
        assert!(text.contains("server.pem") && text.contains("other-key.pem"), "{text}");
    }

    #[test]
    fn file_without_certificates_or_key_says_so() {
        let files = Files::new();
        let (certificate, key) = self_signed();
        let empty = files.write("empty.pem", "nothing here\n");
        let error = read_certified_key(&empty, &files.write("k.pem", &key), &provider()).unwrap_err();
        assert!(matches!(error, ServerError::NoCertificate { .. }), "{error:?}");
        let error = read_certified_key(&files.write("c.pem", &certificate), &empty, &provider()).unwrap_err();
        assert!(matches!(error, ServerError::NoPrivateKey { .. }), "{error:?}");
    }

    #[test]
    fn broken_pem_is_an_error_naming_the_file() {
        let files = Files::new();
        let broken = files.write("broken.pem", "-----BEGIN CERTIFICATE-----\nnot base64!\n");
        let error = read_roots(&broken).unwrap_err();
        assert!(matches!(error, ServerError::TlsPem { .. }), "{error:?}");
        assert!(error.to_string().contains("broken.pem"), "{error}");
    }
}
