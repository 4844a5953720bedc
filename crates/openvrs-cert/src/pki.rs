//! X.509 for the seal formats: the deployment's development CSCA and its document signers
//! (made with rcgen), and the certificates a verifier is told to trust (read with x509-parser,
//! signatures checked with ring). VDS-NC trusts a CSCA and checks the signer it embeds; EU DCC
//! trusts signer certificates directly and picks one by `kid`.

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyUsagePurpose,
};
use ring::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA384_ASN1,
    ECDSA_P384_SHA256_ASN1, ECDSA_P384_SHA384_ASN1, RSA_PSS_2048_8192_SHA256, UnparsedPublicKey,
    VerificationAlgorithm,
};
use sha2::{Digest, Sha256};
use x509_parser::{
    der_parser::{ber::BerObject, der::Tag, parse_der},
    prelude::{FromDer, SubjectPublicKeyInfo, X509Certificate},
};

use crate::{CertError, shc::SigningKeyPair};

const MAKE: CertError = CertError::new(
    "pki.make",
    "証明書を作成できません",
    "the certificate cannot be made",
);
const PARSE: CertError = CertError::new(
    "pki.certificate",
    "X.509 証明書として読めません(PEM または DER)",
    "not an X.509 certificate (PEM or DER)",
);
const KEY: CertError = CertError::new(
    "pki.key",
    "証明書の公開鍵の種類に対応していません(P-256 または RSA)",
    "the certificate's public key type is not supported (P-256 or RSA)",
);
const SIGNATURE: CertError = CertError::new(
    "pki.signature",
    "署名が正しくありません",
    "the signature does not verify",
);

/// What a made certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The country signing CA (development: the deployment's own).
    Csca,
    /// Signs ICAO VDS-NC documents.
    VdsSigner,
    /// Signs EU DCCs; its extended key usage says "vaccination".
    DccSigner,
}

/// The HCERT extended key usages: a DCC signer certificate that names any of them may sign
/// only those kinds of certificate (test, vaccination, recovery).
pub const DCC_KEY_USAGES: [(&str, char); 6] = [
    ("1.3.6.1.4.1.1847.2021.1.1", 't'),
    ("1.3.6.1.4.1.1847.2021.1.2", 'v'),
    ("1.3.6.1.4.1.1847.2021.1.3", 'r'),
    ("1.3.6.1.4.1.0.1847.2021.1.1", 't'),
    ("1.3.6.1.4.1.0.1847.2021.1.2", 'v'),
    ("1.3.6.1.4.1.0.1847.2021.1.3", 'r'),
];

/// A certificate the deployment made, with the key it certifies.
#[derive(Debug)]
pub struct Issued {
    pub der: Vec<u8>,
    pub key: SigningKeyPair,
}

impl Issued {
    /// PEM, as `openvrs keys certs` prints it.
    pub fn pem(&self) -> String {
        pem(&self.der)
    }
}

/// PEM text of a DER certificate.
pub fn pem(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der))
}

fn params(role: Role, country: &str, name: &str, now: i64, days: i64) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CountryName, country);
    p.distinguished_name.push(DnType::CommonName, name);
    p.not_before =
        time::OffsetDateTime::from_unix_timestamp(now).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    p.not_after = p.not_before + time::Duration::days(days);
    // A serial from the name and time: distinct per certificate the deployment makes.
    let serial = Sha256::digest(format!("{role:?}/{name}/{now}").as_bytes());
    p.serial_number = Some(rcgen::SerialNumber::from_slice(&serial[..16]));
    match role {
        Role::Csca => {
            p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        }
        Role::VdsSigner => {
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            // id-icao-mrtd-security-extensions-healthCertificateSigning (as Australia's signers).
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::Other(vec![
                2, 23, 136, 1, 1, 14, 2,
            ])];
            // ICAO 9303-12 document type list: "NV" (non-constrained vaccination)
            // as a PrintableString inside SET OF, under id-icao-mrtd-security-extensions-documentTypeList.
            let oid = [2, 23, 136, 1, 1, 6, 2];
            let doc_types = [
                0x30, 0x07, 0x02, 0x01, 0x00, 0x31, 0x04, 0x13, 0x02, b'N', b'V',
            ];
            p.custom_extensions = vec![CustomExtension::from_oid_content(&oid, doc_types.to_vec())];
        }
        Role::DccSigner => {
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::Other(vec![
                1, 3, 6, 1, 4, 1, 1847, 2021, 1, 2,
            ])];
        }
    }
    p
}

fn rcgen_key(key: &SigningKeyPair) -> Result<rcgen::KeyPair, CertError> {
    rcgen::KeyPair::try_from(key.to_bytes().as_slice()).map_err(|_| MAKE)
}

/// A development CSCA, self-signed, valid for `days` from `now` (Unix seconds).
pub fn make_csca(country: &str, name: &str, now: i64, days: i64) -> Result<Issued, CertError> {
    let key = SigningKeyPair::generate();
    let cert = params(Role::Csca, country, name, now, days)
        .self_signed(&rcgen_key(&key)?)
        .map_err(|_| MAKE)?;
    Ok(Issued {
        der: cert.der().to_vec(),
        key,
    })
}

/// A document signer certified by `csca` (whose certificate and key are given).
pub fn make_signer(
    csca: &Issued,
    role: Role,
    country: &str,
    name: &str,
    now: i64,
    days: i64,
) -> Result<Issued, CertError> {
    let key = SigningKeyPair::generate();
    let ca_key = rcgen_key(&csca.key)?;
    let issuer =
        rcgen::Issuer::from_ca_cert_der(&csca.der.as_slice().into(), ca_key).map_err(|_| MAKE)?;
    let cert = params(role, country, name, now, days)
        .signed_by(&rcgen_key(&key)?, &issuer)
        .map_err(|_| MAKE)?;
    Ok(Issued {
        der: cert.der().to_vec(),
        key,
    })
}

/// A certificate's key id as text (standard base64 of its 8 bytes, as EU trust lists write it).
pub fn kid_text(kid: &[u8; 8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(kid)
}

/// Every certificate in a PEM file (one or more blocks, text around them allowed), or the one
/// DER certificate.
pub fn read_certificates(bytes: &[u8]) -> Result<Vec<Vec<u8>>, CertError> {
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Ok(vec![bytes.to_vec()]);
    }
    let out: Vec<Vec<u8>> = pem::parse_many(bytes)
        .map_err(|_| PARSE)?
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| p.into_contents())
        .collect();
    if out.is_empty() {
        return Err(PARSE);
    }
    Ok(out)
}

/// A certificate a verifier trusts or meets, read once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub der: Vec<u8>,
    /// The EU DCC key id: the first 8 bytes of SHA-256 of the DER.
    pub kid: [u8; 8],
    pub subject: String,
    pub issuer: String,
    pub not_before: i64,
    pub not_after: i64,
    /// The extended key usage extension: its OIDs, dotted, and whether it is critical;
    /// `None` when the certificate has none.
    pub key_usages: Option<KeyUsages>,
    key: PublicKeyInfo,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PublicKeyInfo {
    /// Uncompressed P-256 point.
    P256(Vec<u8>),
    /// Uncompressed P-384 point (some countries' CSCAs).
    P384(Vec<u8>),
    /// RSAPublicKey DER.
    Rsa(Vec<u8>),
    Other,
}

impl Certificate {
    pub fn parse(der: &[u8]) -> Result<Self, CertError> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|_| PARSE)?;
        let spki = cert.public_key();
        let algorithm = spki.algorithm.algorithm.to_id_string();
        let bits = spki.subject_public_key.data.to_vec();
        let key = match algorithm.as_str() {
            // id-ecPublicKey on P-256, named by its OID or spelled out as explicit parameters
            // (Japan's CSCA does the latter; both are valid X.509).
            "1.2.840.10045.2.1" if is_p256(spki) => PublicKeyInfo::P256(bits),
            "1.2.840.10045.2.1" if is_named(spki, "1.3.132.0.34") => PublicKeyInfo::P384(bits),
            "1.2.840.113549.1.1.1" => PublicKeyInfo::Rsa(bits),
            _ => PublicKeyInfo::Other,
        };
        let key_usages = match cert.extended_key_usage() {
            Ok(Some(eku)) => Some(KeyUsages {
                critical: eku.critical,
                oids: eku.value.other.iter().map(|o| o.to_id_string()).collect(),
            }),
            Ok(None) => None,
            Err(_) => return Err(PARSE),
        };
        let digest = Sha256::digest(der);
        Ok(Self {
            der: der.to_vec(),
            kid: digest[..8].try_into().map_err(|_| PARSE)?,
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            key_usages,
            key,
        })
    }

    /// Checks an ES256 (raw r || s) or PS256 signature with this certificate's key.
    pub fn verify(
        &self,
        algorithm: Algorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CertError> {
        let (alg, key): (&dyn VerificationAlgorithm, &[u8]) = match (&self.key, algorithm) {
            (PublicKeyInfo::P256(k), Algorithm::Es256) => (&ECDSA_P256_SHA256_FIXED, k),
            (PublicKeyInfo::Rsa(k), Algorithm::Ps256) => (&RSA_PSS_2048_8192_SHA256, k),
            _ => return Err(KEY),
        };
        UnparsedPublicKey::new(alg, key)
            .verify(message, signature)
            .map_err(|_| SIGNATURE)
    }

    /// Whether `self` was signed by `ca` (the signature over its TBS, checked with ring). ECDSA
    /// is checked with the curve this module recognised in `ca`'s key (so explicit domain
    /// parameters work), whatever parameters the signature algorithm carries (absent or NULL);
    /// RSA by x509-parser's table.
    pub fn is_signed_by(&self, ca: &Certificate) -> bool {
        let Ok((_, cert)) = X509Certificate::from_der(&self.der) else {
            return false;
        };
        let signed = cert.tbs_certificate.as_ref();
        let signature = cert.signature_value.data.as_ref();
        let ecdsa: Option<&'static dyn VerificationAlgorithm> = match (
            cert.signature_algorithm.algorithm.to_id_string().as_str(),
            &ca.key,
        ) {
            (ECDSA_SHA256, PublicKeyInfo::P256(_)) => Some(&ECDSA_P256_SHA256_ASN1),
            (ECDSA_SHA384, PublicKeyInfo::P256(_)) => Some(&ECDSA_P256_SHA384_ASN1),
            (ECDSA_SHA256, PublicKeyInfo::P384(_)) => Some(&ECDSA_P384_SHA256_ASN1),
            (ECDSA_SHA384, PublicKeyInfo::P384(_)) => Some(&ECDSA_P384_SHA384_ASN1),
            (ECDSA_SHA256 | ECDSA_SHA384, _) => return false,
            _ => None,
        };
        match (ecdsa, &ca.key) {
            (Some(alg), PublicKeyInfo::P256(key) | PublicKeyInfo::P384(key)) => {
                UnparsedPublicKey::new(alg, key)
                    .verify(signed, signature)
                    .is_ok()
            }
            _ => {
                let Ok((_, ca_cert)) = X509Certificate::from_der(&ca.der) else {
                    return false;
                };
                cert.verify_signature(Some(ca_cert.public_key())).is_ok()
            }
        }
    }

    /// Whether the time (Unix seconds) is within the certificate's validity.
    pub fn valid_at(&self, at: i64) -> bool {
        self.not_before <= at && at <= self.not_after
    }
}

/// A certificate's extended key usages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUsages {
    pub critical: bool,
    /// The OIDs other than the well-known TLS and code-signing ones, dotted.
    pub oids: Vec<String>,
}

/// The signature algorithms the seal formats use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Es256,
    Ps256,
}

const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
const ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";

/// Whether the key's parameters name the curve `oid`.
fn is_named(spki: &SubjectPublicKeyInfo, oid: &str) -> bool {
    spki.algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .is_some_and(|o| o.to_id_string() == oid)
}

/// P-256 (secp256r1) as SEC 2 (section 2.4.2) gives it: field prime, a, b, base point (x, y),
/// order; cofactor 1.
const P256_PRIME: &str = "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff";
const P256_A: &str = "ffffffff00000001000000000000000000000000fffffffffffffffffffffffc";
const P256_B: &str = "5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b";
const P256_GX: &str = "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296";
const P256_GY: &str = "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";
const P256_ORDER: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";

/// Whether the key is on P-256: named by `prime256v1`, or given as explicit `SpecifiedECDomain`
/// parameters (RFC 3279, section 2.3.5) equal to P-256's, the way OpenSSL recognises them.
fn is_p256(spki: &SubjectPublicKeyInfo) -> bool {
    is_named(spki, "1.2.840.10045.3.1.7") || explicit_p256(spki.raw).unwrap_or(false)
}

fn explicit_p256(spki: &[u8]) -> Option<bool> {
    let (_, spki) = parse_der(spki).ok()?;
    let algorithm = spki.as_sequence().ok()?.first()?.as_sequence().ok()?;
    let domain = algorithm.get(1)?.as_sequence().ok()?;
    // version 1, fieldID, curve, base, order, cofactor (optional)
    let [version, field, curve, base, order, rest @ ..] = domain.as_slice() else {
        return Some(false);
    };
    let field = field.as_sequence().ok()?;
    let curve = curve.as_sequence().ok()?;
    let prime_field = field.first()?.as_oid().ok()?.to_id_string() == "1.2.840.10045.1.1";
    let cofactor_one = match rest {
        [] => true,
        [c] => unsigned(c, Tag::Integer)? == [1],
        _ => false,
    };
    let g = unsigned(base, Tag::OctetString)?;
    let (gx, gy) = (hex(P256_GX), hex(P256_GY));
    let base_ok = match g.split_first() {
        // uncompressed, or compressed with the parity of y (odd: 03)
        Some((4, xy)) => xy.len() == 64 && xy[..32] == gx[..] && xy[32..] == gy[..],
        Some((&prefix, x)) if prefix == 2 || prefix == 3 => {
            x == gx.as_slice() && (prefix == 3) == (gy[31] & 1 == 1)
        }
        _ => false,
    };
    Some(
        version.as_u32().ok()? == 1
            && prime_field
            && unsigned(field.get(1)?, Tag::Integer)? == hex(P256_PRIME)
            && unsigned(curve.first()?, Tag::OctetString)? == hex(P256_A)
            && unsigned(curve.get(1)?, Tag::OctetString)? == hex(P256_B)
            && base_ok
            && unsigned(order, Tag::Integer)? == hex(P256_ORDER)
            && cofactor_one,
    )
}

/// The content of an INTEGER or OCTET STRING, leading zero bytes dropped (DER puts one before
/// a high bit; field elements are fixed-length octet strings).
fn unsigned<'a>(o: &BerObject<'a>, tag: Tag) -> Option<&'a [u8]> {
    if o.tag() != tag {
        return None;
    }
    let bytes = o.as_slice().ok()?;
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    Some(&bytes[start..])
}

fn hex(text: &str) -> Vec<u8> {
    ::hex::decode(text).unwrap_or_default()
}
