//! The connection to PostgreSQL as its URL says, TLS included: libpq's `sslmode` (`disable`,
//! `prefer`, `require`, `verify-ca`, `verify-full`) and `sslrootcert` (a PEM file of the CA
//! that signed the server's certificate), over rustls. The same URL works for `pg_dump` and
//! `psql`. Without `sslmode` the connection is plain, as before (a database on the same host);
//! a deployment that reaches its database over a network sets `sslmode=verify-full`.
//!
//! `require` encrypts without checking who answers (as libpq does); `verify-ca` checks the
//! certificate chains to `sslrootcert`; `verify-full` also checks it names the host.

use std::{str::FromStr, sync::Arc};

use postgres::config::SslMode;
use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::{
        WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    crypto::CryptoProvider,
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject},
};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::StoreError;

/// How to reach the database: its configuration, and TLS when the URL asks for it.
#[derive(Clone)]
pub(crate) struct Target {
    pub config: postgres::Config,
    pub tls: Option<MakeRustlsConnect>,
}

impl Target {
    pub fn connect(&self) -> Result<postgres::Client, StoreError> {
        Ok(match &self.tls {
            None => self.config.connect(postgres::NoTls)?,
            Some(tls) => self.config.connect(tls.clone())?,
        })
    }
}

/// A URL without its password (in the user part or as a `password=` option), for error
/// messages.
pub(crate) fn redact_url(url: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let base = match (base.find("://"), base.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &base[..s], &base[at..]),
        _ => base.to_owned(),
    };
    if query.is_empty() {
        return base;
    }
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

fn bad(url: &str, why: &str) -> StoreError {
    StoreError::BadUrl(format!("{} ({why})", redact_url(url)))
}

/// Reads the URL: the TLS options are taken off it (the driver knows only some of them), the
/// rest is the driver's.
pub(crate) fn target(url: &str) -> Result<Target, StoreError> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut mode = None;
    let mut root = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", v)) => mode = Some(v.to_owned()),
            Some(("sslrootcert", v)) => root = Some(v.to_owned()),
            Some(("sslcert" | "sslkey" | "sslpassword", _)) => {
                return Err(bad(url, "client certificates are not supported"));
            }
            _ => rest.push(pair),
        }
    }
    let driver = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    let mut config =
        postgres::Config::from_str(&driver).map_err(|_| StoreError::BadUrl(redact_url(url)))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = || -> Result<Arc<RootCertStore>, StoreError> {
        let path = root
            .as_deref()
            .ok_or_else(|| bad(url, "sslrootcert is required to verify the server"))?;
        let path = decode(path);
        let mut store = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&path)
            .map_err(|_| bad(url, "sslrootcert cannot be read"))?
        {
            store
                .add(cert.map_err(|_| bad(url, "sslrootcert is not PEM"))?)
                .map_err(|_| bad(url, "sslrootcert holds no usable certificate"))?;
        }
        if store.is_empty() {
            return Err(bad(url, "sslrootcert holds no certificate"));
        }
        Ok(Arc::new(store))
    };
    let verifier: Option<Arc<dyn ServerCertVerifier>> = match mode.as_deref() {
        None | Some("disable") => None,
        // With a root certificate, libpq's `require` checks the chain (as `verify-ca`).
        Some("prefer" | "require") if root.is_none() => {
            Some(Arc::new(Unverified(provider.clone())))
        }
        Some(m @ ("prefer" | "require" | "verify-ca" | "verify-full")) => {
            let webpki = WebPkiServerVerifier::builder_with_provider(roots()?, provider.clone())
                .build()
                .map_err(|_| bad(url, "sslrootcert cannot be used"))?;
            Some(if m == "verify-full" {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            })
        }
        Some(_) => {
            return Err(bad(
                url,
                "sslmode is one of disable, prefer, require, verify-ca, verify-full",
            ));
        }
    };
    let tls = match verifier {
        None => None,
        Some(verifier) => {
            config.ssl_mode(if mode.as_deref() == Some("prefer") {
                SslMode::Prefer
            } else {
                SslMode::Require
            });
            let client = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|_| bad(url, "TLS"))?
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth();
            Some(MakeRustlsConnect::new(client))
        }
    };
    Ok(Target { config, tls })
}

/// A URL's percent-encoded value (a path may hold `%2F`).
fn decode(value: &str) -> String {
    percent_encoding::percent_decode_str(value)
        .decode_utf8_lossy()
        .into_owned()
}

/// `require`: the connection is encrypted and the server proves it holds the key of the
/// certificate it shows, but nobody vouches for that certificate (libpq's meaning).
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the certificate must chain to the root; the name in it is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        use rustls::{CertificateError, Error};
        match self
            .0
            .verify_server_cert(end_entity, intermediates, name, ocsp, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_options_are_read_off_the_url() {
        let t = target("postgres://u@127.0.0.1:5432/db").unwrap();
        assert!(t.tls.is_none());
        let t = target("postgres://u@127.0.0.1:5432/db?sslmode=require&connect_timeout=5").unwrap();
        assert!(t.tls.is_some());
        assert_eq!(t.config.get_ssl_mode(), SslMode::Require);
        assert_eq!(
            t.config.get_connect_timeout(),
            Some(&std::time::Duration::from_secs(5))
        );
        for (url, why) in [
            (
                "postgres://u:secret@h/db?sslmode=verify-full",
                "sslrootcert is required",
            ),
            (
                "postgres://u:secret@h/db?sslmode=verify-full&sslrootcert=/no/such",
                "cannot be read",
            ),
            (
                "postgres://u:secret@h/db?sslmode=maybe",
                "sslmode is one of",
            ),
            (
                "postgres://u:secret@h/db?sslcert=/c.pem",
                "client certificates",
            ),
        ] {
            let Err(e) = target(url) else { panic!("{url}") };
            let said = e.to_string();
            assert!(said.contains(why), "{url}: {said}");
            assert!(!said.contains("secret"), "{said}");
        }
        assert_eq!(decode("%2Fetc%2Fca.pem"), "/etc/ca.pem");
        for url in [
            "postgres://h/db?user=u&password=secret&sslmode=bogus",
            "postgres://u@h/db?password=secret&connect_timeout=x",
        ] {
            let Err(e) = target(url) else { panic!("{url}") };
            assert!(!e.to_string().contains("secret"), "{e}");
        }
        assert_eq!(decode("a%zz%"), "a%zz%");
    }
}
