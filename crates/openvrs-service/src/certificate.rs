//! Issuing and revoking vaccination certificates, and the deployment's signing keys: the one
//! place where a person's record becomes a signed SMART Health Card, ICAO VDS-NC or EU DCC.
//! The command line, the counter, the resident app and the kiosk all come through here.

use openvrs_cert::{
    dcc, pki,
    shc::{self, SigningKeyPair},
    vds,
};
use openvrs_domain::{
    audit::Actor,
    certificate::{self as rules, Channel, Format, Kind, Passport},
    dose::Dose,
    ids::{AddressNumber, MunicipalityCode},
    person::Person,
    product::Product,
};
use openvrs_store::{CertificateRecord, Store, StoreError};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The kinds of key in the store.
pub const SHC: &str = "shc";
pub const CSCA: &str = "csca";
pub const VDS: &str = "vds";
pub const DCC: &str = "dcc";

/// Days a development CSCA and a document signer are valid.
const CSCA_DAYS: i64 = 10 * 365;
const SIGNER_DAYS: i64 = 2 * 365;
/// An EU DCC expires a year after issue (`exp`).
const DCC_SECONDS: i64 = 365 * 86_400;

/// Why a certificate was not issued, revoked or signed. Nothing was recorded in any case.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error(transparent)]
    Refused(#[from] openvrs_domain::Invalid),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cert(#[from] openvrs_cert::CertError),
    #[error("署名鍵がありません(openvrs keys init) / no signing key: run openvrs keys init ({0})")]
    NoKey(&'static str),
    #[error("該当する方が登録されていません / no such person is registered")]
    NoPerson,
    #[error(
        "[certificates] issuer は https:// で始まり / で終わらない URL です / [certificates] issuer must be an https URL without a trailing /"
    )]
    BadIssuer,
}

/// Where and how this deployment issues.
#[derive(Debug, Clone)]
pub struct Issuer {
    /// The SMART Health Card `iss`: https, no trailing `/`.
    pub url: String,
    /// `performer.actor.display` and the administering authority named in the seals.
    pub authority: String,
}

impl Issuer {
    pub fn new(url: &str, authority: &str) -> Result<Self, CertificateError> {
        if !url.starts_with("https://") || url.ends_with('/') || url.len() <= "https://".len() {
            return Err(CertificateError::BadIssuer);
        }
        Ok(Self {
            url: url.to_owned(),
            authority: authority.to_owned(),
        })
    }
}

/// The deployment's active signing keys, opened once (the private parts are wiped with them).
#[derive(Debug)]
pub struct Signers {
    shc: SigningKeyPair,
    rid_secret: [u8; 32],
    vds: Option<pki::Issued>,
    dcc: Option<pki::Issued>,
}

fn active(
    store: &dyn Store,
    kind: &'static str,
) -> Result<Option<(String, SigningKeyPair)>, CertificateError> {
    match store.active_signing_key(kind)? {
        Some((kid, secret)) => Ok(Some((kid, SigningKeyPair::from_bytes(&secret)?))),
        None => Ok(None),
    }
}

fn signer(store: &dyn Store, kind: &'static str) -> Result<Option<pki::Issued>, CertificateError> {
    let Some((kid, key)) = active(store, kind)? else {
        return Ok(None);
    };
    let info = store
        .signing_keys(kind)?
        .into_iter()
        .find(|k| k.kid == kid)
        .ok_or(CertificateError::NoKey(kind))?;
    let der = pki::read_certificates(info.public_part.as_bytes())?
        .into_iter()
        .next()
        .ok_or(CertificateError::NoKey(kind))?;
    Ok(Some(pki::Issued { der, key }))
}

impl Signers {
    pub fn load(store: &dyn Store) -> Result<Self, CertificateError> {
        let (_, shc) = active(store, SHC)?.ok_or(CertificateError::NoKey(SHC))?;
        // The revocation-id secret follows from the card key: as secret, rotated with it.
        let rid_secret = Sha256::new()
            .chain_update(b"openvrs/rid/")
            .chain_update(shc.to_bytes())
            .finalize()
            .into();
        Ok(Self {
            shc,
            rid_secret,
            vds: signer(store, VDS)?,
            dcc: signer(store, DCC)?,
        })
    }
}

/// What is asked for.
#[derive(Debug, Clone)]
pub struct Request {
    pub address: AddressNumber,
    pub kind: Kind,
    pub format: Format,
    pub passport: Option<Passport>,
    pub channel: Channel,
    /// The digest of the app or kiosk application this answers (see [`crate::application`]).
    pub application: Option<String>,
}

/// An issued certificate: its record and its content.
#[derive(Debug, Clone)]
pub struct Certificate {
    pub record: CertificateRecord,
    /// The `.smart-health-card` file, the VDS-NC JSON, the `HC1:` text or the PDF.
    pub payload: Vec<u8>,
    /// What its (first) QR code holds (`shc:/...`, the VDS-NC JSON, `HC1:...`).
    pub qr_text: String,
}

impl Certificate {
    /// The QR image of the certificate, as PNG.
    pub fn qr_png(&self) -> Result<Vec<u8>, CertificateError> {
        let code = match self.record.format {
            Format::Shc | Format::Pdf => openvrs_cert::qr::shc(&self.qr_text)?,
            Format::Vds => openvrs_cert::qr::bytes(&self.qr_text)?,
            Format::Dcc => openvrs_cert::qr::dcc(&self.qr_text)?,
        };
        Ok(openvrs_cert::qr::png(&code, 4)?)
    }
}

/// A new certificate id: 12 characters of Crockford base32 (60 random bits; no I, L, O, U),
/// unique within the municipality (the store refuses a repeat).
pub fn new_certificate_id() -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut bytes = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("the system's random generator works");
    let n = u64::from_le_bytes(bytes);
    (0..12)
        .map(|i| ALPHABET[((n >> (i * 5)) & 31) as usize] as char)
        .collect()
}

fn product<'a>(catalogue: &'a [Product], code: &str) -> Result<&'a Product, CertificateError> {
    catalogue
        .iter()
        .find(|p| p.code == code)
        .ok_or(CertificateError::Store(StoreError::NotFound("product")))
}

/// The product's name as seals print it, e.g. `COMIRNATY` for `comirnaty-bivalent`.
fn product_name(p: &Product) -> String {
    p.code
        .split('-')
        .next()
        .unwrap_or(&p.code)
        .to_ascii_uppercase()
}

/// ICAO 9303 transliteration as the DCC's `fnt`/`gnt` want it: A-Z, `<` for a space.
fn icao(name: &str) -> String {
    name.to_ascii_uppercase().replace(' ', "<")
}

/// Issues a certificate for a person of `m` and records it (audited). Nothing is issued for a
/// deceased, suspended or moved-out person, nor without a completed dose.
pub fn issue(
    store: &dyn Store,
    signers: &Signers,
    issuer: &Issuer,
    m: MunicipalityCode,
    request: &Request,
    actor: &Actor,
) -> Result<Certificate, CertificateError> {
    rules::check_request(request.kind, request.format, request.passport.as_ref())?;
    let person = store
        .person(m, &request.address, actor)?
        .ok_or(CertificateError::NoPerson)?;
    let stored = store.doses(m, &request.address)?;
    let doses: Vec<Dose> = stored.into_iter().map(|d| d.dose).collect();
    let given = rules::certifiable(&person.flags, &doses)?;
    let catalogue = store.products()?;
    let id = new_certificate_id();
    let now = store.clock().now().as_secs();
    let today = store.clock().now().today_jst();
    let sign_shc = |rid: &str| -> Result<String, CertificateError> {
        let card = shc_card(
            &person,
            request.passport.as_ref(),
            &given,
            &catalogue,
            issuer,
            now,
            rid,
        )?;
        Ok(shc::sign(&card, &signers.shc)?)
    };
    let vds_seal = |passport: &Passport| -> Result<(String, String), CertificateError> {
        let signer = signers.vds.as_ref().ok_or(CertificateError::NoKey(VDS))?;
        let data = vds::document(&vds_content(
            &person, passport, &given, &catalogue, issuer, &id,
        )?);
        Ok((pki_kid(signer)?, vds::sign(&data, signer)?))
    };
    let (kid, rid, payload, qr_text) = match request.format {
        Format::Shc => {
            let kid = signers.shc.kid();
            let rid = shc::rid(&signers.rid_secret, &kid, &id);
            let jws = sign_shc(&rid)?;
            let file = shc::file(std::slice::from_ref(&jws)).into_bytes();
            (kid, Some(rid), file, shc::qr_numeric(&jws))
        }
        Format::Vds => {
            let passport = request.passport.as_ref().ok_or(rules::PASSPORT_NEEDED)?;
            let (kid, seal) = vds_seal(passport)?;
            (kid, None, seal.clone().into_bytes(), seal)
        }
        Format::Dcc => {
            let signer = signers.dcc.as_ref().ok_or(CertificateError::NoKey(DCC))?;
            let passport = request.passport.as_ref().ok_or(rules::PASSPORT_NEEDED)?;
            let json = dcc_content(&person, passport, &given, &catalogue, issuer, &id)?;
            let text = dcc::sign(&json, "JP", now, now + DCC_SECONDS, signer)?;
            (pki_kid(signer)?, None, text.clone().into_bytes(), text)
        }
        Format::Pdf => {
            // The SMART Health Card, and overseas the VDS-NC too, printed as QR codes.
            let kid = signers.shc.kid();
            let rid = shc::rid(&signers.rid_secret, &kid, &id);
            let jws = sign_shc(&rid)?;
            let qr_text = shc::qr_numeric(&jws);
            let mut codes = vec![(
                "SMART Health Card".to_owned(),
                openvrs_cert::qr::shc(&qr_text)?,
            )];
            if let Some(passport) = request.passport.as_ref() {
                let (_, seal) = vds_seal(passport)?;
                codes.push(("ICAO VDS-NC".to_owned(), openvrs_cert::qr::bytes(&seal)?));
            }
            let town = store
                .municipalities()?
                .into_iter()
                .find(|t| t.code == m)
                .map(|t| format!("{}長", t.name))
                .unwrap_or_default();
            let doc = paper(
                today,
                &person,
                request.passport.as_ref(),
                &given,
                &catalogue,
                &id,
                town,
                codes,
            )?;
            (
                kid,
                Some(rid),
                openvrs_cert::pdf::certificate(&doc)?,
                qr_text,
            )
        }
    };
    let record = store.record_certificate(
        m,
        &CertificateRecord {
            id,
            address_number: request.address.clone(),
            kind: request.kind,
            format: request.format,
            channel: request.channel,
            kid,
            rid,
            issued_at: 0,
            issued_by: String::new(),
            revoked_at: None,
            revoked_by: None,
            revocation_reason: None,
            application: request.application.clone(),
        },
        actor,
    )?;
    Ok(Certificate {
        record,
        payload,
        qr_text,
    })
}

/// The paper certificate's content: the person as registered (overseas: as in the passport,
/// with its number and nationality), every given dose, the QR codes.
#[allow(clippy::too_many_arguments)]
fn paper(
    today: time::Date,
    person: &Person,
    passport: Option<&Passport>,
    given: &[&Dose],
    catalogue: &[Product],
    id: &str,
    issuer: String,
    codes: Vec<(String, openvrs_cert::qr::QrCode)>,
) -> Result<openvrs_cert::pdf::Document, CertificateError> {
    let field = |ja: &str, en: &str, v: String| (ja.to_owned(), en.to_owned(), v);
    let mut fields = match passport {
        Some(p) => vec![
            field("氏名", "Name", p.full_name()),
            field("生年月日", "Date of birth", person.birth_date.0.to_string()),
            field("旅券番号", "Passport No.", p.number.clone()),
            field("国籍", "Nationality", p.nationality.clone()),
        ],
        None => vec![
            field("氏名", "Name", person.name.as_str().to_owned()),
            field("生年月日", "Date of birth", person.birth_date.0.to_string()),
        ],
    };
    fields.push(field(
        "対象疾病",
        "Disease",
        "新型コロナウイルス感染症 / COVID-19".into(),
    ));
    let doses = given
        .iter()
        .map(|d| {
            let p = product(catalogue, d.product.as_str())?;
            Ok([
                d.number.get().to_string(),
                d.date.to_string(),
                format!("{} / {}", p.name, product_name(p)),
                d.lot.as_str().to_owned(),
                "日本 / JPN".to_owned(),
            ])
        })
        .collect::<Result<Vec<_>, CertificateError>>()?;
    Ok(openvrs_cert::pdf::Document {
        fields,
        doses,
        codes,
        certificate_id: id.to_owned(),
        issued_on: today.to_string(),
        issuer,
    })
}

fn pki_kid(signer: &pki::Issued) -> Result<String, CertificateError> {
    Ok(pki::kid_text(&pki::Certificate::parse(&signer.der)?.kid))
}

fn shc_card(
    person: &Person,
    passport: Option<&Passport>,
    given: &[&Dose],
    catalogue: &[Product],
    issuer: &Issuer,
    now: i64,
    rid: &str,
) -> Result<shc::Card, CertificateError> {
    // Domestic cards name the person as registered (family and given name are separated by a
    // full-width space); overseas cards as in the passport.
    let patient = match passport {
        Some(p) => shc::Patient {
            family: p.family.clone(),
            given: vec![p.given.clone()],
            birth_date: person.birth_date.0.to_string(),
        },
        None => {
            let name = person.name.as_str();
            let (family, given) = name.split_once('\u{3000}').unwrap_or((name, ""));
            shc::Patient {
                family: family.to_owned(),
                given: if given.is_empty() {
                    vec![]
                } else {
                    vec![given.to_owned()]
                },
                birth_date: person.birth_date.0.to_string(),
            }
        }
    };
    let shots = given
        .iter()
        .map(|d| {
            Ok(shc::Shot {
                cvx: product(catalogue, d.product.as_str())?.cvx.clone(),
                date: d.date.to_string(),
                lot: d.lot.as_str().to_owned(),
                performer: issuer.authority.clone(),
            })
        })
        .collect::<Result<Vec<_>, CertificateError>>()?;
    Ok(shc::Card {
        iss: issuer.url.clone(),
        nbf: now as f64,
        exp: None,
        types: vec![
            "https://smarthealth.cards#health-card".into(),
            "https://smarthealth.cards#immunization".into(),
            "https://smarthealth.cards#covid19".into(),
        ],
        bundle: shc::immunization_bundle(&patient, &shots),
        rid: Some(rid.to_owned()),
    })
}

fn vds_content(
    person: &Person,
    passport: &Passport,
    given: &[&Dose],
    catalogue: &[Product],
    issuer: &Issuer,
    id: &str,
) -> Result<vds::Vaccination, CertificateError> {
    let mut products: Vec<vds::Product> = Vec::new();
    for d in given {
        let p = product(catalogue, d.product.as_str())?;
        let dose = vds::Dose {
            date: d.date.to_string(),
            seq: d.number.get(),
            country: "JPN".into(),
            administered_by: issuer.authority.clone(),
            lot: d.lot.as_str().to_owned(),
        };
        let name = product_name(p);
        match products
            .iter_mut()
            .find(|e| e.name == name && e.des == p.icd11)
        {
            Some(entry) => entry.doses.push(dose),
            None => products.push(vds::Product {
                des: p.icd11.clone(),
                name,
                disease: "RA01.0".into(),
                doses: vec![dose],
            }),
        }
    }
    Ok(vds::Vaccination {
        issuing_country: "JPN".into(),
        uvci: id.to_owned(),
        name: passport.full_name(),
        birth_date: person.birth_date.0.to_string(),
        sex: None,
        passport: passport.number.clone(),
        products,
    })
}

fn dcc_content(
    person: &Person,
    passport: &Passport,
    given: &[&Dose],
    catalogue: &[Product],
    issuer: &Issuer,
    id: &str,
) -> Result<Value, CertificateError> {
    // One vaccination entry: the latest dose, as the EU format holds exactly one.
    let last = given.last().ok_or(CertificateError::NoPerson)?;
    let p = product(catalogue, last.product.as_str())?;
    let n = last.number.get();
    Ok(json!({
        "ver": "1.3.0",
        "nam": {
            "fn": passport.family, "fnt": icao(&passport.family),
            "gn": passport.given, "gnt": icao(&passport.given),
        },
        "dob": person.birth_date.0.to_string(),
        "v": [{
            "tg": "840539006", "vp": p.eu_vp, "mp": p.eu_mp, "ma": p.eu_ma,
            "dn": n, "sd": n, "dt": last.date.to_string(), "co": "JP",
            "is": issuer.authority, "ci": dcc::uvci(id),
        }],
    }))
}

/// The published revocation list of a SMART Health Card key.
pub fn crl(store: &dyn Store, kid: &str) -> Result<shc::Crl, CertificateError> {
    let rids = store.revocations(kid)?;
    Ok(shc::Crl {
        kid: kid.to_owned(),
        ctr: rids.len() as u64,
        rids: rids.into_iter().map(|(rid, _)| (rid, None)).collect(),
    })
}

/// The public JWKS of the deployment's SMART Health Card keys (retired ones too), each with
/// its `crlVersion` once it has revocations.
pub fn jwks(store: &dyn Store) -> Result<Value, CertificateError> {
    let mut keys = Vec::new();
    for k in store.signing_keys(SHC)? {
        let mut jwk: Value =
            serde_json::from_str(&k.public_part).map_err(|_| StoreError::Corrupt("public JWK"))?;
        let revoked = store.revocations(&k.kid)?.len();
        if revoked > 0 {
            jwk["crlVersion"] = json!(revoked);
        }
        keys.push(jwk);
    }
    Ok(json!({ "keys": keys }))
}

/// The CSCA and signer certificates as PEM, newest first per kind, retired ones too.
pub fn certificates_pem(store: &dyn Store) -> Result<Vec<(String, String)>, CertificateError> {
    let mut out = Vec::new();
    for kind in [CSCA, VDS, DCC] {
        for k in store.signing_keys(kind)? {
            out.push((kind.to_owned(), k.public_part));
        }
    }
    Ok(out)
}

/// What [`init_keys`] and [`rotate`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    pub kind: &'static str,
    pub kid: String,
}

fn add_shc(store: &dyn Store, actor: &Actor) -> Result<NewKey, CertificateError> {
    let key = SigningKeyPair::generate();
    store.add_signing_key(
        SHC,
        &key.kid(),
        &key.public_jwk().to_string(),
        &openvrs_crypto::Zeroizing::new(key.to_bytes()),
        actor,
    )?;
    Ok(NewKey {
        kind: SHC,
        kid: key.kid(),
    })
}

fn add_certified(
    store: &dyn Store,
    kind: &'static str,
    issued: &pki::Issued,
    actor: &Actor,
) -> Result<NewKey, CertificateError> {
    let kid = pki_kid(issued)?;
    store.add_signing_key(
        kind,
        &kid,
        &issued.pem(),
        &openvrs_crypto::Zeroizing::new(issued.key.to_bytes()),
        actor,
    )?;
    Ok(NewKey { kind, kid })
}

/// The document signers a CSCA certifies: kind, role, name.
const SIGNERS: [(&str, pki::Role, &str); 2] = [
    (VDS, pki::Role::VdsSigner, "openvrs VDS-NC signer"),
    (DCC, pki::Role::DccSigner, "openvrs EU DCC signer"),
];

fn add_signer(
    store: &dyn Store,
    csca: &pki::Issued,
    kind: &str,
    actor: &Actor,
) -> Result<NewKey, CertificateError> {
    let (kind, role, name) = SIGNERS
        .into_iter()
        .find(|(k, _, _)| *k == kind)
        .ok_or(CertificateError::NoKey("vds|dcc"))?;
    let now = store.clock().now().as_secs();
    let signer = pki::make_signer(csca, role, "JP", name, now, SIGNER_DAYS)?;
    add_certified(store, kind, &signer, actor)
}

fn add_csca(store: &dyn Store, actor: &Actor) -> Result<(pki::Issued, NewKey), CertificateError> {
    let now = store.clock().now().as_secs();
    let csca = pki::make_csca("JP", "openvrs development CSCA", now, CSCA_DAYS)?;
    let key = add_certified(store, CSCA, &csca, actor)?;
    Ok((csca, key))
}

/// Creates whichever of the deployment's keys do not exist yet: the SMART Health Card key, a
/// development CSCA, the VDS-NC and EU DCC signers it certifies, and the resident app's intake
/// key.
pub fn init_keys(store: &dyn Store, actor: &Actor) -> Result<Vec<NewKey>, CertificateError> {
    let mut made = Vec::new();
    if store.active_signing_key(SHC)?.is_none() {
        made.push(add_shc(store, actor)?);
    }
    let csca = match signer(store, CSCA)? {
        Some(c) => c,
        None => {
            let (csca, key) = add_csca(store, actor)?;
            made.push(key);
            csca
        }
    };
    for (kind, _, _) in SIGNERS {
        if store.active_signing_key(kind)?.is_none() {
            made.push(add_signer(store, &csca, kind, actor)?);
        }
    }
    made.extend(crate::application::init_intake(store, actor)?);
    Ok(made)
}

/// A new key of `kind`; the old one is retired and stays published. A new CSCA certifies new
/// signers at once; a new signer is certified by the current CSCA.
pub fn rotate(
    store: &dyn Store,
    kind: &str,
    actor: &Actor,
) -> Result<Vec<NewKey>, CertificateError> {
    match kind {
        SHC => Ok(vec![add_shc(store, actor)?]),
        CSCA => {
            let (csca, key) = add_csca(store, actor)?;
            let mut made = vec![key];
            for (kind, _, _) in SIGNERS {
                made.push(add_signer(store, &csca, kind, actor)?);
            }
            Ok(made)
        }
        VDS | DCC => {
            let csca = signer(store, CSCA)?.ok_or(CertificateError::NoKey(CSCA))?;
            Ok(vec![add_signer(store, &csca, kind, actor)?])
        }
        crate::application::INTAKE => Ok(vec![crate::application::rotate_intake(store, actor)?]),
        _ => Err(CertificateError::NoKey("shc|csca|vds|dcc|intake")),
    }
}
