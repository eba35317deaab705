//! [`Tls`]: an [`SslMode`] and the rustls client configuration it means
//! (ring provider). This is the only place pgpulse builds a TLS client
//! configuration for the upstream server; the proxy's pooled connections
//! and every direct connection share it.
//!
//! - `prefer` / `require`: encrypt, accept any certificate (libpq does the
//!   same); the handshake signature is still checked.
//! - `verify-ca`: the chain must lead to the CA bundle; the host name is not
//!   checked (rustls's `verify_server_cert_signed_by_trust_anchor` does the
//!   chain check alone).
//! - `verify-full`: rustls's WebPKI verifier: chain and host name.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::{SslMode, UpstreamError};

/// TLS settings towards the server, built once and cheap to clone.
#[derive(Clone)]
pub struct Tls {
    mode: SslMode,
    /// Built for `disable` too (as for `require`): tokio-postgres wants a
    /// connector of one type whatever the mode, and never uses it then.
    config: Arc<rustls::ClientConfig>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls").field("mode", &self.mode).finish()
    }
}

impl Tls {
    /// Builds the configuration for `mode`; `ca_file` (PEM) is read for
    /// `verify-ca` and `verify-full`, which refuse to start without it.
    pub fn new(mode: SslMode, ca_file: Option<&Path>) -> Result<Tls, UpstreamError> {
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| UpstreamError::Unsupported(format!("TLS versions: {e}")))?;
        let config = match mode {
            SslMode::Disable | SslMode::Prefer | SslMode::Require => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider())))
                .with_no_client_auth(),
            SslMode::VerifyCa => {
                let roots = Arc::new(roots(mode, ca_file)?);
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly {
                        roots,
                        provider: provider(),
                    }))
                    .with_no_client_auth()
            }
            SslMode::VerifyFull => builder
                .with_root_certificates(roots(mode, ca_file)?)
                .with_no_client_auth(),
        };
        Ok(Tls {
            mode,
            config: Arc::new(config),
        })
    }

    /// The mode.
    pub fn mode(&self) -> SslMode {
        self.mode
    }

    /// The rustls client configuration; `None` for `disable`.
    pub fn client_config(&self) -> Option<Arc<rustls::ClientConfig>> {
        (self.mode != SslMode::Disable).then(|| self.config.clone())
    }

    /// The configuration whatever the mode (see the field's comment).
    pub(crate) fn rustls(&self) -> &rustls::ClientConfig {
        &self.config
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(mode: SslMode, ca_file: Option<&Path>) -> Result<RootCertStore, UpstreamError> {
    let path = ca_file.ok_or(UpstreamError::NoCa(mode.as_str()))?;
    let bad = |why: String| UpstreamError::Ca {
        path: path.display().to_string(),
        why,
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))? {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificate in it".into()));
    }
    Ok(roots)
}

/// `prefer` / `require`: any certificate, as libpq.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signature12(&self.0, message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signature13(&self.0, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to one of `roots`; any host name.
#[derive(Debug)]
struct ChainOnly {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signature12(&self.provider, message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signature13(&self.provider, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn signature12(
    provider: &CryptoProvider,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    rustls::crypto::verify_tls12_signature(
        message,
        cert,
        dss,
        &provider.signature_verification_algorithms,
    )
}

fn signature13(
    provider: &CryptoProvider,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    rustls::crypto::verify_tls13_signature(
        message,
        cert,
        dss,
        &provider.signature_verification_algorithms,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifying_modes_need_a_readable_ca_with_a_certificate() {
        for mode in [SslMode::VerifyCa, SslMode::VerifyFull] {
            let err = Tls::new(mode, None).unwrap_err().to_string();
            assert!(err.contains("needs a CA bundle"), "{err}");
        }
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = Tls::new(SslMode::VerifyFull, Some(&empty))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no certificate"), "{err}");
        let missing = dir.path().join("missing.pem");
        assert!(Tls::new(SslMode::VerifyCa, Some(&missing)).is_err());
        assert!(
            Tls::new(SslMode::Disable, None)
                .unwrap()
                .client_config()
                .is_none()
        );
        assert!(
            Tls::new(SslMode::Require, None)
                .unwrap()
                .client_config()
                .is_some()
        );
    }

    fn chain_only(ca_pem: &str) -> ChainOnly {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
            .unwrap();
        ChainOnly {
            roots: Arc::new(roots),
            provider: provider(),
        }
    }

    #[test]
    fn verify_ca_checks_the_chain_but_not_the_host_name() {
        let files = pgpulse_testkit::generate_tls().unwrap();
        let other = pgpulse_testkit::generate_tls().unwrap();
        let leaf = CertificateDer::from_pem_slice(files.server_cert.as_bytes()).unwrap();
        // The certificate names localhost and 127.0.0.1, not this host.
        let name = ServerName::try_from("db.elsewhere.example").unwrap();
        let now = UnixTime::now();
        assert!(
            chain_only(&files.ca_cert)
                .verify_server_cert(&leaf, &[], &name, &[], now)
                .is_ok()
        );
        let err = chain_only(&other.ca_cert)
            .verify_server_cert(&leaf, &[], &name, &[], now)
            .unwrap_err();
        assert!(matches!(err, rustls::Error::InvalidCertificate(_)), "{err}");
    }
}
