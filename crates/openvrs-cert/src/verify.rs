//! One verdict per check for whatever a verifier is handed: a QR image, a QR text, a
//! `.smart-health-card` file or a JWS. Exit status and presentation are the caller's.

use serde_json::{Value, json};

use crate::{CertError, qr, shc};

/// One check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// `decode`, `signature`, `expiry`, `revocation`.
    pub name: &'static str,
    pub ok: bool,
    /// Why, in Japanese and English.
    pub detail: String,
}

/// Everything the verifier found out.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub format: &'static str,
    pub checks: Vec<Check>,
    /// The decoded cards (a `.smart-health-card` file may hold several).
    pub cards: Vec<shc::Card>,
}

impl Report {
    /// Every check passed (and there was at least one card).
    pub fn passed(&self) -> bool {
        !self.cards.is_empty() && self.checks.iter().all(|c| c.ok)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "format": self.format,
            "passed": self.passed(),
            "checks": self.checks.iter().map(|c| json!({"check": c.name, "ok": c.ok, "detail": c.detail})).collect::<Vec<_>>(),
            "cards": self.cards.iter().map(|c| json!({
                "iss": c.iss, "nbf": c.nbf, "exp": c.exp, "type": c.types, "rid": c.rid,
                "fhirBundle": c.bundle,
            })).collect::<Vec<_>>(),
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

/// Verifies `input` (bytes of a file, or a pasted string).
pub fn verify(input: &[u8], trust: &Trust) -> Report {
    let mut report = Report {
        format: "unknown",
        checks: Vec::new(),
        cards: Vec::new(),
    };
    // What is it? A PNG, a file, a QR text, a JWS.
    let jws: Result<Vec<String>, CertError> = if input.starts_with(b"\x89PNG") {
        report.format = "qr-png";
        qr::read_png(input).and_then(|texts| {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            shc::jws_from_qr(&refs).map(|j| vec![j])
        })
    } else {
        let text = String::from_utf8_lossy(input);
        let text = text.trim();
        if text.starts_with('{') {
            report.format = "smart-health-card-file";
            shc::jws_from_file(text)
        } else if text.starts_with("shc:/") {
            report.format = "shc-qr-text";
            // One or more QR texts, however they were pasted together.
            let texts: Vec<String> = text
                .split("shc:/")
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| format!("shc:/{t}"))
                .collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            shc::jws_from_qr(&refs).map(|j| vec![j])
        } else {
            report.format = "jws";
            Ok(vec![text.to_owned()])
        }
    };
    let jws = match jws {
        Ok(j) => j,
        Err(e) => {
            report.checks.push(fail("decode", &e));
            return report;
        }
    };
    for j in jws {
        let decoded = match shc::decode(&j) {
            Ok(d) => d,
            Err(e) => {
                report.checks.push(fail("decode", &e));
                continue;
            }
        };
        report.checks.push(pass(
            "decode",
            format!(
                "SMART Health Card ({} / kid {})",
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
        report.cards.push(decoded.card);
    }
    report
}
