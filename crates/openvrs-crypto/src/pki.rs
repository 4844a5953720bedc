//! A development PKI for TLS: a CA and a server certificate it signs, made with rcgen. For tests,
//! demos and a first installation; production installations configure their own certificates.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

/// PEM texts of a development CA and one server certificate with its key.
#[derive(Debug, Clone)]
pub struct DevPki {
    pub ca_cert_pem: String,
    pub server_cert_pem: String,
    /// PKCS#8 private key of the server certificate. Secret.
    pub server_key_pem: String,
}

#[derive(Debug, thiserror::Error)]
#[error("証明書を作成できません / cannot create certificates: {0}")]
pub struct PkiError(String);

fn name(common: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "openvrs development");
    dn.push(DnType::CommonName, common);
    dn
}

/// How long the development certificates are valid (`openvrs doctor` warns before the end).
pub const DEV_VALIDITY_DAYS: i64 = 825;

/// A new CA, and a server certificate for `hosts` (DNS names or IP addresses) signed by it,
/// both valid from a day before `now` (Unix seconds) for [`DEV_VALIDITY_DAYS`].
pub fn dev_pki(hosts: &[&str], now: i64) -> Result<DevPki, PkiError> {
    let err = |e: rcgen::Error| PkiError(e.to_string());
    let start = time::OffsetDateTime::from_unix_timestamp(now)
        .map_err(|e| PkiError(e.to_string()))?
        - time::Duration::days(1);
    let validity = |p: &mut CertificateParams| {
        p.not_before = start;
        p.not_after = start + time::Duration::days(DEV_VALIDITY_DAYS);
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    validity(&mut ca_params);
    ca_params.distinguished_name = name("openvrs development CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().map_err(err)?;
    let ca = ca_params.self_signed(&ca_key).map_err(err)?;

    let hosts: Vec<String> = hosts.iter().map(|h| (*h).to_owned()).collect();
    let mut params = CertificateParams::new(hosts).map_err(err)?;
    params.distinguished_name = name("openvrs server");
    validity(&mut params);
    let key = KeyPair::generate().map_err(err)?;
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let cert = params.signed_by(&key, &issuer).map_err(err)?;
    Ok(DevPki {
        ca_cert_pem: ca.pem(),
        server_cert_pem: cert.pem(),
        server_key_pem: key.serialize_pem(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn makes_pem_texts() {
        let pki = super::dev_pki(&["localhost", "127.0.0.1"], 1_800_000_000).unwrap();
        assert!(pki.ca_cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(
            pki.server_cert_pem
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        assert!(pki.server_key_pem.contains("PRIVATE KEY"));
        assert_ne!(pki.ca_cert_pem, pki.server_cert_pem);
    }
}
