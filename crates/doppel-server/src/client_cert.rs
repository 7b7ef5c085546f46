//! The identity a client proved with a TLS certificate (mutual TLS), as
//! handlers and the access-control layer see it.
//!
//! The accept loop builds a [`ClientCertificate`] from the leaf of the chain
//! rustls verified and puts it into every request of that connection, so a
//! device's certificate can be mapped to a principal without the HTTP layer
//! knowing anything about TLS.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;

use axum::extract::OptionalFromRequestParts;
use axum::http::Extensions;
use axum::http::request::Parts;

use crate::ServerError;
use crate::x509::{HolderNames, holder_names};

/// A verified client certificate's holder names and fingerprint. Present in
/// a request's extensions only when the client presented a certificate
/// that chains to the configured client CA bundle. Cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCertificate(Arc<Identity>);

#[derive(Debug, PartialEq, Eq)]
struct Identity {
    names: HolderNames,
    fingerprint: Sha256Fingerprint,
}

impl ClientCertificate {
    /// Reads the identity of a DER-encoded leaf certificate. The accept
    /// loop calls this only after rustls verified the chain; it is public
    /// so that code mapping certificates to principals can be tested
    /// without a TLS connection.
    pub fn from_der(der: &[u8]) -> Result<Self, ServerError> {
        let names = holder_names(der).map_err(|malformed| ServerError::MalformedClientCertificate {
            part: malformed.part,
            problem: malformed.problem,
        })?;
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut fingerprint = [0u8; 32];
        fingerprint.copy_from_slice(digest.as_ref());
        Ok(Self(Arc::new(Identity { names, fingerprint: Sha256Fingerprint(fingerprint) })))
    }

    /// The certificate of the connection a request came on, if the client
    /// presented one. Handlers may also take `Option<ClientCertificate>`
    /// as an extractor.
    pub fn from_extensions(extensions: &Extensions) -> Option<&Self> {
        extensions.get::<Self>()
    }

    /// The subject's common name (the last one, when there are several).
    pub fn common_name(&self) -> Option<&str> {
        self.0.names.common_name.as_deref()
    }

    /// DNS names of the subject alternative name extension, in order.
    pub fn dns_names(&self) -> &[String] {
        &self.0.names.dns_names
    }

    /// URIs of the subject alternative name extension (SPIFFE ids, URNs),
    /// in order.
    pub fn uris(&self) -> &[String] {
        &self.0.names.uris
    }

    /// SHA-256 of the whole DER certificate: names a certificate exactly,
    /// so a principal can be pinned to one device certificate.
    pub fn fingerprint(&self) -> Sha256Fingerprint {
        self.0.fingerprint
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for ClientCertificate {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(Self::from_extensions(&parts.extensions).cloned())
    }
}

/// A SHA-256 certificate fingerprint. Displays as 64 lowercase hex digits,
/// the form `openssl x509 -fingerprint -sha256` prints without colons.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sha256Fingerprint([u8; 32]);

impl Sha256Fingerprint {
    /// The 32 digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Sha256Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_the_sha256_of_the_der_in_hex() {
        let key = rcgen::KeyPair::generate().unwrap();
        let der = rcgen::CertificateParams::new(vec!["device.example".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap()
            .der()
            .to_vec();
        let certificate = ClientCertificate::from_der(&der).unwrap();
        let expected = ring::digest::digest(&ring::digest::SHA256, &der);
        assert_eq!(certificate.fingerprint().as_bytes().as_slice(), expected.as_ref());
        let hex = certificate.fingerprint().to_string();
        assert_eq!(hex.len(), 64);
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{hex}");
        assert_eq!(certificate.dns_names(), ["device.example"]);
    }

    #[test]
    fn malformed_certificate_error_names_the_part() {
        let error = ClientCertificate::from_der(&[0x30, 0x03, 0x02, 0x01]).unwrap_err();
        assert!(error.to_string().contains("certificate"), "{error}");
    }
}
