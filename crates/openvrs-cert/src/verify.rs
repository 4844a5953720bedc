//! One verdict per check for whatever a verifier is handed: a QR image, a QR text
//! (`shc:/...`, `HC1:...`), a `.smart-health-card` file, a JWS or a VDS-NC document. Exit
//! status and presentation are the caller's.

use serde_json::{Value, json};

use crate::{CertError, dcc, pki, qr, shc, vds};

/// One check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// `decode`, `signature`, `trust`, `schema`, `key_usage`, `expiry`, `revocation`.
    pub name: &'static str,
    pub ok: bool,
    /// Why, in Japanese and English.
    pub detail: String,
}

/// Everything the verifier found out.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// How the input came: `qr-png`, `qr-svg`, `shc-qr-text`, `smart-health-card-file`, `jws`,
    /// `eu-dcc`, `vds-nc`.
    pub format: &'static str,
    pub checks: Vec<Check>,
    /// What each decoded certificate says (a `.smart-health-card` file may hold several):
    /// `{"kind": "shc"|"dcc"|"vds", ...}`.
    pub content: Vec<Value>,
}

impl Report {
    /// Every check passed (and something was decoded).
    pub fn passed(&self) -> bool {
        !self.content.is_empty() && self.checks.iter().all(|c| c.ok)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "format": self.format,
            "passed": self.passed(),
            "checks": self.checks.iter().map(|c| json!({"check": c.name, "ok": c.ok, "detail": c.detail})).collect::<Vec<_>>(),
            "content": self.content,
        })
    }
}

/// What the verifier trusts and when it checks.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// Issuer keys (JWKS) for SMART Health Cards.
    pub jwks: Vec<shc::PublicKey>,
    /// Revocation lists for SMART Health Cards.
    pub crls: Vec<shc::Crl>,
    /// X.509 certificates: CSCAs for VDS-NC, signer certificates for EU DCC.
    pub certificates: Vec<pki::Certificate>,
    /// The time to check as of (Unix seconds).
    pub at: f64,
}

fn fail(name: &'static str, e: &CertError) -> Check {
    Check {
        name,
        ok: false,
        detail: e.to_string(),
    }
}

fn pass(name: &'static str, detail: impl Into<String>) -> Check {
    Check {
        name,
        ok: true,
        detail: detail.into(),
    }
}

fn verdict(name: &'static str, r: Result<String, CertError>) -> Check {
    match r {
        Ok(d) => pass(name, d),
        Err(e) => fail(name, &e),
    }
}

const NO_TEXT: CertError = CertError::new(
    "verify.unknown",
    "証明書として読めません(shc:/・HC1:・JWS・VDS-NC・QR画像のいずれでもありません)",
    "not a certificate (none of shc:/, HC1:, a JWS, a VDS-NC document, a QR image)",
);

/// `qr-png` or `qr-svg` when the input is an image the verifier draws and reads (the costly
/// kind of input: a caller may want to bound how many are read at once).
pub fn image_kind(input: &[u8]) -> Option<&'static str> {
    let head = String::from_utf8_lossy(&input[..input.len().min(512)]);
    let head = head.trim_start();
    if input.starts_with(b"\x89PNG") {
        Some("qr-png")
    } else if head.starts_with("<svg") || (head.starts_with("<?xml") && head.contains("<svg")) {
        Some("qr-svg")
    } else {
        None
    }
}

/// Verifies `input` (bytes of a file, or a pasted string).
pub fn verify(input: &[u8], trust: &Trust) -> Report {
    let mut report = Report {
        format: "unknown",
        checks: Vec::new(),
        content: Vec::new(),
    };
    let kind = image_kind(input);
    let image = match kind {
        Some("qr-png") => Some(qr::read_png(input)),
        Some(_) => Some(qr::read_svg(input)),
        None => None,
    };
    report.format = kind.unwrap_or(report.format);
    if let Some(texts) = image {
        match texts {
            Ok(texts) => {
                let joined = texts.join("");
                match texts.first() {
                    // Chunked SMART Health Card QR codes may share one image.
                    Some(t) if t.starts_with("shc:/") => {
                        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                        match shc::jws_from_qr(&refs) {
                            Ok(jws) => verify_shc(&mut report, &[jws], trust),
                            Err(e) => report.checks.push(fail("decode", &e)),
                        }
                    }
                    _ => verify_text(&mut report, &joined, trust),
                }
            }
            Err(e) => report.checks.push(fail("decode", &e)),
        }
        return report;
    }
    let text = String::from_utf8_lossy(input);
    let text = text.trim();
    report.format = match text {
        t if t.starts_with("shc:/") => "shc-qr-text",
        t if t.starts_with(dcc::PREFIX) => "eu-dcc",
        t if t.starts_with('{') && t.contains("\"verifiableCredential\"") => {
            "smart-health-card-file"
        }
        t if t.starts_with('{') || t.starts_with('[') => "vds-nc",
        _ => "jws",
    };
    verify_text(&mut report, text, trust);
    report
}

fn verify_text(report: &mut Report, text: &str, trust: &Trust) {
    if text.starts_with("shc:/") {
        // One or more QR texts, however they were pasted together.
        let texts: Vec<String> = text
            .split("shc:/")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| format!("shc:/{t}"))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        match shc::jws_from_qr(&refs) {
            Ok(jws) => verify_shc(report, &[jws], trust),
            Err(e) => report.checks.push(fail("decode", &e)),
        }
    } else if text.starts_with(dcc::PREFIX) {
        verify_dcc(report, text, trust);
    } else if text.starts_with('{') && text.contains("\"verifiableCredential\"") {
        match shc::jws_from_file(text) {
            Ok(jws) => verify_shc(report, &jws, trust),
            Err(e) => report.checks.push(fail("decode", &e)),
        }
    } else if text.starts_with('{') || text.starts_with('[') {
        verify_vds(report, text, trust);
    } else if text.split('.').count() == 3 {
        verify_shc(report, &[text.to_owned()], trust);
    } else {
        report.checks.push(fail("decode", &NO_TEXT));
    }
}

fn verify_shc(report: &mut Report, jws: &[String], trust: &Trust) {
    for j in jws {
        let decoded = match shc::decode(j) {
            Ok(d) => d,
            Err(e) => {
                report.checks.push(fail("decode", &e));
                continue;
            }
        };
        report.checks.push(pass(
            "decode",
            format!(
                "SMART Health Card を読み取りました / decoded a SMART Health Card ({}, kid {})",
                decoded.card.iss, decoded.kid
            ),
        ));
        report.checks.push(match decoded.verify(&trust.jwks) {
            Ok(()) => pass("signature", "署名は正しい / signature verified"),
            Err(e) if trust.jwks.is_empty() => Check {
                detail: format!(
                    "{e}(発行者の鍵が与えられていません --jwks / no issuer keys given: --jwks)"
                ),
                ..fail("signature", &e)
            },
            Err(e) => fail("signature", &e),
        });
        let card = &decoded.card;
        report.checks.push(if card.nbf > trust.at + 300.0 {
            Check {
                name: "expiry",
                ok: false,
                detail: "発行日時が未来です / not valid yet (nbf is in the future)".into(),
            }
        } else if card.exp.is_some_and(|exp| exp < trust.at) {
            Check {
                name: "expiry",
                ok: false,
                detail: "有効期限切れです / expired".into(),
            }
        } else {
            pass("expiry", "有効期間内 / within its validity")
        });
        let crl = trust.crls.iter().find(|c| c.kid == decoded.kid);
        report.checks.push(match (&card.rid, crl) {
            (Some(rid), Some(crl)) if crl.revokes(rid, card.nbf) => Check {
                name: "revocation",
                ok: false,
                detail: "失効しています / revoked".into(),
            },
            (Some(_), Some(_)) => pass("revocation", "失効していません / not revoked"),
            (None, _) => pass("revocation", "失効IDなし / no revocation id"),
            (Some(_), None) => pass(
                "revocation",
                "失効リストが与えられていません / no revocation list given",
            ),
        });
        report.content.push(json!({
            "kind": "shc", "iss": card.iss, "nbf": card.nbf, "exp": card.exp, "type": card.types,
            "rid": card.rid, "fhirBundle": card.bundle,
        }));
    }
}

fn verify_dcc(report: &mut Report, text: &str, trust: &Trust) {
    let signed = match dcc::decode(text) {
        Ok(s) => s,
        Err(e) => {
            report.checks.push(fail("decode", &e));
            return;
        }
    };
    let json = match signed.dcc_json() {
        Ok(j) => j,
        Err(e) => {
            report.checks.push(fail("decode", &e));
            return;
        }
    };
    let kid = signed.kid.as_ref().map(pki::kid_text);
    report.checks.push(pass(
        "decode",
        format!(
            "EU DCC を読み取りました / decoded an EU DCC ({}, kid {})",
            signed.claims.iss.as_deref().unwrap_or("-"),
            kid.as_deref().unwrap_or("-")
        ),
    ));
    let signer = signed.verify(&trust.certificates);
    report.checks.push(match &signer {
        Ok(cert) => pass(
            "signature",
            format!("署名は正しい / signature verified ({})", cert.subject),
        ),
        Err(e) if trust.certificates.is_empty() => Check {
            detail: format!(
                "{e}(署名者証明書が与えられていません --trust / no signer certificates given: --trust)"
            ),
            ..fail("signature", e)
        },
        Err(e) => fail("signature", e),
    });
    report.checks.push(verdict(
        "schema",
        dcc::check_schema(&json)
            .map(|()| "DCC スキーマ 1.3.3 に適合 / conforms to DCC schema 1.3.3".into()),
    ));
    if let Ok(cert) = signer {
        report.checks.push(verdict(
            "key_usage",
            dcc::check_key_usage(cert, &json)
                .map(|()| "署名者の用途に合致 / allowed by the signer's key usage".into()),
        ));
    }
    report.checks.push(verdict(
        "expiry",
        signed
            .check_time(trust.at as i64)
            .map(|()| "有効期間内 / within its validity".into()),
    ));
    report.checks.push(pass(
        "revocation",
        "失効リストは参照していません / no revocation list consulted",
    ));
    report.content.push(json!({
        "kind": "dcc", "iss": signed.claims.iss, "iat": signed.claims.iat,
        "exp": signed.claims.exp, "kid": kid, "dcc": json,
    }));
}

fn verify_vds(report: &mut Report, text: &str, trust: &Trust) {
    let seal = match vds::parse(text) {
        Ok(s) => s,
        Err(e) => {
            report.checks.push(fail("decode", &e));
            return;
        }
    };
    report.checks.push(pass(
        "decode",
        format!(
            "VDS-NC を読み取りました / decoded an ICAO VDS-NC ({})",
            seal.signer.subject
        ),
    ));
    report.checks.push(verdict(
        "signature",
        seal.verify_signature()
            .map(|()| "署名は正しい / signature verified".into()),
    ));
    let csca = seal.verify_chain(&trust.certificates);
    report.checks.push(verdict(
        "trust",
        csca.clone()
            .map(|ca| format!("CSCA が発行 / issued by the CSCA {}", ca.subject)),
    ));
    if let Ok(ca) = csca {
        report.checks.push(verdict(
            "expiry",
            seal.check_validity(ca, trust.at as i64)
                .map(|()| "証明書の有効期間内 / within the certificates' validity".into()),
        ));
    }
    report.checks.push(pass(
        "revocation",
        "失効リストは参照していません / no revocation list consulted",
    ));
    report
        .content
        .push(json!({ "kind": "vds", "data": seal.data }));
}

/// One dose as a certificate lists it, whatever the format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoseLine {
    pub date: String,
    /// The product as the format names it (`CVX 208`, `EU/1/20/1528`, `COMIRNATY`).
    pub product: String,
    /// The dose number, where the format has one (`2`, or `2/2` in a DCC).
    pub dose: Option<String>,
    pub lot: String,
    /// The performer or administering authority.
    pub by: String,
}

/// What a decoded certificate says, format aside (one entry of [`Report::content`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Summary {
    /// `shc`, `dcc` or `vds`.
    pub kind: String,
    pub issuer: String,
    /// As written: family then given names, separated by spaces.
    pub name: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    pub doses: Vec<DoseLine>,
}

impl std::fmt::Debug for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Summary")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// The summary of one entry of [`Report::content`].
pub fn summary(content: &Value) -> Option<Summary> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let kind = text(&content["kind"]);
    let mut s = Summary {
        kind: kind.clone(),
        issuer: String::new(),
        name: String::new(),
        birth_date: String::new(),
        doses: Vec::new(),
    };
    match kind.as_str() {
        "shc" => {
            s.issuer = text(&content["iss"]);
            for e in content["fhirBundle"]["entry"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let r = &e["resource"];
                match r["resourceType"].as_str() {
                    Some("Patient") => {
                        let given = r["name"][0]["given"]
                            .as_array()
                            .map(|g| g.iter().map(text).collect::<Vec<_>>().join(" "))
                            .unwrap_or_default();
                        s.name = format!("{} {given}", text(&r["name"][0]["family"]))
                            .trim()
                            .to_owned();
                        s.birth_date = text(&r["birthDate"]);
                    }
                    Some("Immunization") => s.doses.push(DoseLine {
                        date: text(&r["occurrenceDateTime"]),
                        product: format!("CVX {}", text(&r["vaccineCode"]["coding"][0]["code"])),
                        dose: None,
                        lot: text(&r["lotNumber"]),
                        by: text(&r["performer"][0]["actor"]["display"]),
                    }),
                    _ => {}
                }
            }
        }
        "dcc" => {
            let d = &content["dcc"];
            s.issuer = text(&content["iss"]);
            s.name = format!("{} {}", text(&d["nam"]["fnt"]), text(&d["nam"]["gnt"]))
                .replace('<', " ")
                .trim()
                .to_owned();
            s.birth_date = text(&d["dob"]);
            for v in d["v"].as_array().into_iter().flatten() {
                s.doses.push(DoseLine {
                    date: text(&v["dt"]),
                    product: text(&v["mp"]),
                    dose: Some(format!("{}/{}", v["dn"], v["sd"])),
                    lot: String::new(),
                    by: text(&v["is"]),
                });
            }
        }
        "vds" => {
            let m = &content["data"]["msg"];
            s.issuer = text(&content["data"]["hdr"]["is"]);
            s.name = text(&m["pid"]["n"]);
            s.birth_date = text(&m["pid"]["dob"]);
            for ve in m["ve"].as_array().into_iter().flatten() {
                for vd in ve["vd"].as_array().into_iter().flatten() {
                    s.doses.push(DoseLine {
                        date: text(&vd["dvc"]),
                        product: text(&ve["nam"]),
                        dose: Some(vd["seq"].to_string()),
                        lot: text(&vd["lot"]),
                        by: text(&vd["adm"]),
                    });
                }
            }
        }
        _ => return None,
    }
    Some(s)
}
