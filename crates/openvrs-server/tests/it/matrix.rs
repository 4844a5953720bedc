//! The access matrix, generated from the route table itself: every route of every listener,
//! tried by every kind of caller, for its own and a foreign municipality.

use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicU32, Ordering},
};

use openvrs_domain::{
    account::{Account, Binding, UserId},
    audit::Actor as AuditActor,
    date::parse_date,
    dose::{Dose, DoseNumber, DoseSource, DoseStatus, Short},
};
use openvrs_server::{Zone, routes::ROUTES};
use openvrs_store::Credential;

use crate::world::{Actor, PASSWORD, World};

/// Expected status per caller, in the order of [`Actor::ALL`]:
/// anonymous, national, prefecture 47, prefecture 13, staff of 472131, staff of 472018, venue of
/// 472131, issuance center. Paths are asked about municipality 472131.
pub(crate) fn expected() -> BTreeMap<(Zone, &'static str, &'static str), [u16; 8]> {
    use Zone::{Internet, Lgwan};
    BTreeMap::from([
        ((Lgwan, "GET", "/healthz"), [200; 8]),
        ((Internet, "GET", "/"), [200; 8]),
        ((Lgwan, "GET", "/readyz"), [200; 8]),
        ((Lgwan, "GET", "/version"), [200; 8]),
        ((Lgwan, "GET", "/api/openapi.json"), [200; 8]),
        ((Lgwan, "POST", "/api/login"), [200; 8]),
        // The web application: a person without a session is sent to sign in.
        ((Lgwan, "GET", "/"), [303; 8]),
        ((Lgwan, "GET", "/signin"), [200; 8]),
        ((Lgwan, "POST", "/signin"), [303; 8]),
        (
            (Lgwan, "POST", "/signout"),
            [401, 303, 303, 303, 303, 303, 401, 303],
        ),
        ((Lgwan, "GET", "/lang/{lang}"), [303; 8]),
        (
            (Lgwan, "GET", "/m/{municipality}/delete"),
            [303, 403, 403, 403, 200, 404, 303, 403],
        ),
        (
            (Lgwan, "POST", "/m/{municipality}/delete"),
            [401, 403, 403, 403, 422, 404, 401, 403],
        ),
        (
            (Lgwan, "POST", "/m/{municipality}/kiosk"),
            [401, 403, 403, 403, 303, 404, 401, 403],
        ),
        (
            (Lgwan, "GET", "/national/accounts"),
            [303, 200, 403, 403, 403, 403, 303, 403],
        ),
        (
            (Lgwan, "GET", "/national/municipalities"),
            [303, 200, 403, 403, 403, 403, 303, 403],
        ),
        (
            (Lgwan, "GET", "/national/products"),
            [303, 200, 403, 403, 403, 403, 303, 403],
        ),
        (
            (Lgwan, "GET", "/national/security-events"),
            [303, 200, 403, 403, 403, 403, 303, 403],
        ),
        (
            (Lgwan, "POST", "/national/accounts"),
            [401, 201, 403, 403, 403, 403, 401, 403],
        ),
        (
            (Lgwan, "POST", "/national/accounts/{user}/disable"),
            [401, 303, 403, 403, 403, 403, 401, 403],
        ),
        (
            (Lgwan, "GET", "/aggregates"),
            [303, 200, 200, 200, 403, 403, 303, 403],
        ),
        (
            (
                Lgwan,
                "GET",
                "/m/{municipality}/persons/{address_number}/disclosure",
            ),
            [303, 403, 403, 403, 200, 404, 303, 403],
        ),
        (
            (
                Lgwan,
                "POST",
                "/m/{municipality}/persons/{address_number}/flags",
            ),
            [401, 403, 403, 403, 303, 404, 401, 403],
        ),
        (
            (
                Lgwan,
                "POST",
                "/m/{municipality}/persons/{address_number}/correction",
            ),
            [401, 403, 403, 403, 303, 404, 401, 403],
        ),
        (
            (Lgwan, "GET", "/m/{municipality}/conflicts"),
            [303, 403, 403, 403, 200, 404, 303, 403],
        ),
        (
            (Lgwan, "GET", "/m/{municipality}/quality"),
            [303, 403, 403, 403, 200, 404, 303, 403],
        ),
        (
            (Lgwan, "GET", "/m/{municipality}/provisions"),
            [303, 403, 403, 403, 200, 404, 303, 403],
        ),
        (
            (Lgwan, "GET", "/m/{municipality}/audit"),
            [303, 403, 403, 403, 200, 404, 303, 403],
        ),
        (
            (Lgwan, "GET", "/m/{municipality}/security-events"),
            [303, 403, 403, 403, 200, 404, 303, 403],
        ),
        (
            (Lgwan, "POST", "/m/{municipality}/conflicts/{conflict_id}"),
            [401, 403, 403, 403, 303, 404, 401, 403],
        ),
        (
            (
                Lgwan,
                "POST",
                "/m/{municipality}/persons/{address_number}/certificates",
            ),
            [401, 403, 403, 403, 200, 404, 401, 403],
        ),
        (
            (
                Lgwan,
                "POST",
                "/m/{municipality}/certificates/{certificate_id}/revoke",
            ),
            [401, 403, 403, 403, 303, 404, 401, 403],
        ),
        (
            (Lgwan, "GET", "/m/{municipality}/inquiries"),
            [303, 403, 403, 403, 200, 404, 303, 403],
        ),
        (
            (Lgwan, "POST", "/m/{municipality}/inquiries"),
            [401, 403, 403, 403, 303, 404, 401, 403],
        ),
        (
            (Lgwan, "POST", "/m/{municipality}/inquiries/attach"),
            [401, 403, 403, 403, 303, 404, 401, 403],
        ),
        (
            (Lgwan, "GET", "/m/{municipality}/imports"),
            [303, 403, 403, 403, 200, 404, 303, 403],
        ),
        (
            (Lgwan, "GET", "/m/{municipality}/"),
            [303, 403, 403, 403, 200, 404, 303, 403],
        ),
        (
            (Lgwan, "GET", "/m/{municipality}/persons"),
            [303, 403, 403, 403, 200, 404, 303, 403],
        ),
        (
            (Lgwan, "POST", "/m/{municipality}/persons"),
            [401, 403, 403, 403, 303, 404, 401, 403],
        ),
        (
            (Lgwan, "GET", "/m/{municipality}/persons/{address_number}"),
            [303, 403, 403, 403, 200, 404, 303, 403],
        ),
        (
            (
                Lgwan,
                "GET",
                "/m/{municipality}/persons/{address_number}/doses/new",
            ),
            [303, 403, 403, 403, 200, 404, 303, 403],
        ),
        (
            (
                Lgwan,
                "POST",
                "/m/{municipality}/persons/{address_number}/doses",
            ),
            [401, 403, 403, 403, 303, 404, 401, 403],
        ),
        (
            (
                Lgwan,
                "GET",
                "/m/{municipality}/persons/{address_number}/doses/{dose_id}",
            ),
            [303, 403, 403, 403, 200, 404, 303, 403],
        ),
        (
            (
                Lgwan,
                "POST",
                "/m/{municipality}/persons/{address_number}/doses/{dose_id}",
            ),
            [401, 403, 403, 403, 303, 404, 401, 403],
        ),
        (
            (
                Lgwan,
                "POST",
                "/m/{municipality}/persons/{address_number}/doses/{dose_id}/delete",
            ),
            [401, 403, 403, 403, 303, 404, 401, 403],
        ),
        (
            (Lgwan, "POST", "/api/logout"),
            [401, 204, 204, 204, 204, 204, 401, 204],
        ),
        (
            (Lgwan, "GET", "/api/me"),
            [401, 200, 200, 200, 200, 200, 401, 200],
        ),
        (
            (Lgwan, "GET", "/api/accounts"),
            [401, 200, 403, 403, 403, 403, 401, 403],
        ),
        (
            (Lgwan, "POST", "/api/accounts"),
            [401, 201, 403, 403, 403, 403, 401, 403],
        ),
        (
            (Lgwan, "POST", "/api/accounts/{user}/disable"),
            [401, 204, 403, 403, 403, 403, 401, 403],
        ),
        (
            (Lgwan, "GET", "/api/security-events"),
            [401, 200, 403, 403, 403, 403, 401, 403],
        ),
        (
            (Lgwan, "GET", "/api/aggregates/persons"),
            [401, 200, 200, 200, 403, 403, 401, 403],
        ),
        (
            (
                Lgwan,
                "GET",
                "/api/municipalities/{municipality}/security-events",
            ),
            [401, 403, 403, 403, 200, 404, 401, 403],
        ),
        (
            (
                Lgwan,
                "GET",
                "/api/municipalities/{municipality}/persons/{address_number}",
            ),
            [401, 403, 403, 403, 200, 404, 401, 403],
        ),
        (
            (
                Lgwan,
                "GET",
                "/api/municipalities/{municipality}/persons/{address_number}/doses",
            ),
            [401, 403, 403, 403, 200, 404, 401, 403],
        ),
        (
            (
                Lgwan,
                "POST",
                "/api/municipalities/{municipality}/persons/{address_number}/doses",
            ),
            [401, 403, 403, 403, 201, 404, 401, 403],
        ),
        (
            (
                Lgwan,
                "PUT",
                "/api/municipalities/{municipality}/persons/{address_number}/doses/{dose_id}",
            ),
            [401, 403, 403, 403, 200, 404, 401, 403],
        ),
        (
            (
                Lgwan,
                "POST",
                "/api/municipalities/{municipality}/persons/{address_number}/doses/{dose_id}/delete",
            ),
            [401, 403, 403, 403, 204, 404, 401, 403],
        ),
        (
            (
                Lgwan,
                "PUT",
                "/api/municipalities/{municipality}/persons/{address_number}/flags",
            ),
            [401, 403, 403, 403, 204, 404, 401, 403],
        ),
        (
            (
                Lgwan,
                "POST",
                "/api/municipalities/{municipality}/persons/{address_number}/correction",
            ),
            [401, 403, 403, 403, 200, 404, 401, 403],
        ),
        (
            (
                Lgwan,
                "GET",
                "/api/municipalities/{municipality}/persons/{address_number}/disclosure",
            ),
            [401, 403, 403, 403, 200, 404, 401, 403],
        ),
        (
            (
                Lgwan,
                "GET",
                "/api/municipalities/{municipality}/dose-conflicts",
            ),
            [401, 403, 403, 403, 200, 404, 401, 403],
        ),
        (
            (
                Lgwan,
                "POST",
                "/api/municipalities/{municipality}/dose-conflicts/{conflict_id}/resolve",
            ),
            [401, 403, 403, 403, 204, 404, 401, 403],
        ),
        (
            (Lgwan, "GET", "/api/municipalities/{municipality}/quality"),
            [401, 403, 403, 403, 200, 404, 401, 403],
        ),
        (
            (
                Lgwan,
                "GET",
                "/api/municipalities/{municipality}/ledger.csv",
            ),
            [401, 403, 403, 403, 200, 404, 401, 403],
        ),
        (
            (
                Lgwan,
                "POST",
                "/api/municipalities/{municipality}/imports/targets",
            ),
            [401, 403, 403, 403, 200, 404, 401, 403],
        ),
        (
            (
                Lgwan,
                "POST",
                "/api/municipalities/{municipality}/imports/ledger",
            ),
            [401, 403, 403, 403, 200, 404, 401, 403],
        ),
        (
            (
                Lgwan,
                "POST",
                "/api/municipalities/{municipality}/imports/flags",
            ),
            [401, 403, 403, 403, 200, 404, 401, 403],
        ),
        (
            (
                Lgwan,
                "POST",
                "/api/municipalities/{municipality}/inquiries",
            ),
            [401, 403, 403, 403, 200, 404, 401, 403],
        ),
        (
            (Lgwan, "GET", "/api/municipalities/{municipality}/inquiries"),
            [401, 403, 403, 403, 200, 404, 401, 403],
        ),
        (
            (
                Lgwan,
                "POST",
                "/api/municipalities/{municipality}/inquiries/attach",
            ),
            [401, 403, 403, 403, 200, 404, 401, 403],
        ),
        (
            (
                Lgwan,
                "POST",
                "/api/municipalities/{municipality}/inquiry-jobs",
            ),
            [401, 403, 403, 403, 202, 404, 401, 403],
        ),
        (
            (
                Lgwan,
                "GET",
                "/api/municipalities/{municipality}/inquiry-jobs/{job}",
            ),
            [401, 403, 403, 403, 200, 404, 401, 403],
        ),
        (
            (
                Lgwan,
                "GET",
                "/api/municipalities/{municipality}/inquiry-jobs/{job}/result.csv",
            ),
            [401, 403, 403, 403, 200, 404, 401, 403],
        ),
        (
            (
                Lgwan,
                "POST",
                "/api/municipalities/{municipality}/inquiry-jobs/{job}/attach",
            ),
            [401, 403, 403, 403, 200, 404, 401, 403],
        ),
        (
            (
                Lgwan,
                "GET",
                "/api/municipalities/{municipality}/provisions",
            ),
            [401, 403, 403, 403, 200, 404, 401, 403],
        ),
        (
            (
                Lgwan,
                "POST",
                "/api/municipalities/{municipality}/persons/{address_number}/certificates",
            ),
            [401, 403, 403, 403, 201, 404, 401, 403],
        ),
        (
            (
                Lgwan,
                "GET",
                "/api/municipalities/{municipality}/certificates",
            ),
            [401, 403, 403, 403, 200, 404, 401, 403],
        ),
        (
            (
                Lgwan,
                "POST",
                "/api/municipalities/{municipality}/certificates/{certificate_id}/revoke",
            ),
            [401, 403, 403, 403, 200, 404, 401, 403],
        ),
        (
            (Lgwan, "PUT", "/api/municipalities/{municipality}/kiosk"),
            [401, 403, 403, 403, 204, 404, 401, 403],
        ),
        // Past the guard only the center; an application that is not one is refused.
        (
            (Lgwan, "POST", "/api/center/certificates"),
            [401, 403, 403, 403, 403, 403, 401, 400],
        ),
        (
            (Internet, "GET", "/.well-known/openvrs-app-key.json"),
            [200; 8],
        ),
        // Open to anyone (the card is the credential); a sealed box that does not open is refused.
        ((Internet, "POST", "/api/app/certificates"), [400; 8]),
        ((Internet, "GET", "/app/"), [200; 8]),
        ((Internet, "GET", "/app/{file}"), [200; 8]),
        ((Internet, "GET", "/.well-known/jwks.json"), [200; 8]),
        ((Internet, "GET", "/issuer/.well-known/jwks.json"), [200; 8]),
        ((Internet, "GET", "/.well-known/crl/{file}"), [200; 8]),
        (
            (Internet, "GET", "/issuer/.well-known/crl/{file}"),
            [200; 8],
        ),
        ((Internet, "POST", "/api/verify"), [200; 8]),
        ((Internet, "GET", "/verify/"), [200; 8]),
        ((Internet, "GET", "/verify/{file}"), [200; 8]),
        ((Internet, "GET", "/healthz"), [200; 8]),
        ((Internet, "GET", "/opendata/{day}/{file}"), [200; 8]),
        ((Internet, "GET", "/version"), [200; 8]),
        ((Internet, "GET", "/api/openapi.json"), [200; 8]),
        (
            (Internet, "POST", "/api/venue/doses"),
            [401, 401, 401, 401, 401, 401, 201, 401],
        ),
        (
            (Internet, "GET", "/api/venue/products"),
            [401, 401, 401, 401, 401, 401, 200, 401],
        ),
        ((Internet, "GET", "/venue/"), [200; 8]),
        ((Internet, "GET", "/venue/{file}"), [200; 8]),
        (
            (Internet, "GET", "/api/venue/me"),
            [401, 401, 401, 401, 401, 401, 200, 401],
        ),
    ])
}

static SERIAL: AtomicU32 = AtomicU32::new(0);

/// Percent-encoded for a form body.
fn pct(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// A concrete request for a route template: path parameters filled in, a body where needed.
pub(crate) fn concrete(w: &World, path: &str) -> (String, Option<String>) {
    let n = SERIAL.fetch_add(1, Ordering::SeqCst);
    let mut concrete = path
        .replace("{municipality}", "472131")
        .replace("{lang}", "en")
        .replace(
            "{address_number}",
            w.uruma_people[0].address_number.as_str(),
        );
    let kid = || w.state.store.active_signing_key("shc").unwrap().unwrap().0;
    concrete = if concrete.starts_with("/opendata/") {
        concrete
            .replace("{day}", "latest")
            .replace("{file}", "prefecture.ndjson")
    } else if concrete.contains("/crl/") {
        concrete.replace("{file}", &format!("{}.json", kid()))
    } else if concrete.starts_with("/verify/") {
        concrete.replace("{file}", "verify.js")
    } else {
        concrete.replace("{file}", "app.js")
    };
    if concrete.contains("{certificate_id}") {
        let id = format!("MATRIX{n:06}");
        w.state
            .store
            .record_certificate(
                w.uruma,
                &openvrs_store::CertificateRecord {
                    id: id.clone(),
                    address_number: w.uruma_people[0].address_number.clone(),
                    kind: openvrs_domain::certificate::Kind::Domestic,
                    format: openvrs_domain::certificate::Format::Shc,
                    channel: openvrs_domain::certificate::Channel::Counter,
                    kid: kid(),
                    rid: Some(format!("rid{n}")),
                    issued_at: 0,
                    issued_by: String::new(),
                    revoked_at: None,
                    revoked_by: None,
                    revocation_reason: None,
                    application: None,
                },
                &AuditActor::console(),
            )
            .unwrap();
        concrete = concrete.replace("{certificate_id}", &id);
    }
    if concrete.contains("{job}") {
        let job = w
            .state
            .store
            .create_inquiry_job(w.uruma, 0, &AuditActor::console())
            .unwrap();
        w.state
            .store
            .finish_inquiry_job(w.uruma, job, None)
            .unwrap();
        concrete = concrete.replace("{job}", &job.to_string());
    }
    if concrete.ends_with("/inquiry-jobs") {
        concrete.push_str("?basis=matrix");
    }
    if concrete.contains("{user}") {
        let id = UserId::parse(&format!("throwaway-{n}")).unwrap();
        let account = Account {
            id: id.clone(),
            binding: Binding::National,
            disabled: false,
        };
        w.state
            .store
            .add_account(
                &account,
                &Credential::PasswordHash("x".into()),
                &AuditActor::console(),
            )
            .unwrap();
        concrete = concrete.replace("{user}", id.as_str());
    }
    // Doses are dated before any synthetic death and after any synthetic birth; each call
    // records its own dose number, so no two collide.
    let number = 1000 + n;
    let dose = serde_json::json!({
        "dose_number": number, "date": "2021-03-01", "product": "comirnaty", "lot": "FA1234",
    });
    let person = &w.uruma_people[0];
    let give_dose = || {
        w.state
            .store
            .add_dose(
                w.uruma,
                &person.address_number,
                &Dose {
                    number: DoseNumber::new(number).unwrap(),
                    status: DoseStatus::Given,
                    date: parse_date("2021-03-01").unwrap(),
                    product: Short::parse("comirnaty").unwrap(),
                    lot: Short::parse("FA1234").unwrap(),
                    venue: Short::default(),
                    doctor: Short::default(),
                    source: DoseSource::Staff,
                    voucher: None,
                    given_in: None,
                },
                &AuditActor::console(),
            )
            .unwrap()
            .id
    };
    if concrete.contains("{dose_id}") {
        concrete = concrete.replace("{dose_id}", &give_dose().to_string());
    }
    if path.ends_with("/persons/{address_number}/certificates") {
        // Issuing needs a given dose, whatever the routes before this one did to the record.
        give_dose();
    }
    if concrete.contains("{conflict_id}") {
        // A tablet's record and a different one for the same dose: a conflict to resolve.
        let p = &w.uruma_people[4];
        let tablet = AuditActor {
            user: "venue-uruma".into(),
            role: openvrs_domain::audit::Role::VenueDevice,
            zone: openvrs_domain::audit::Zone::Internet,
        };
        let record = |lot: &str, key: String| openvrs_store::TabletRecord {
            voucher: p.vouchers[0].number,
            birth_date: p.birth_date.0,
            dose: Dose {
                number: DoseNumber::new(number).unwrap(),
                status: DoseStatus::Given,
                date: parse_date("2021-03-01").unwrap(),
                product: Short::parse("comirnaty").unwrap(),
                lot: Short::parse(lot).unwrap(),
                venue: Short::default(),
                doctor: Short::default(),
                source: DoseSource::Tablet,
                voucher: None,
                given_in: None,
            },
            idempotency_key: key,
        };
        for (lot, key) in [("FA1234", format!("m{n}a")), ("FB5678", format!("m{n}b"))] {
            w.state
                .store
                .record_from_tablet(w.uruma, &record(lot, key), &tablet)
                .unwrap();
        }
        let id = w
            .state
            .store
            .dose_conflicts(w.uruma)
            .unwrap()
            .last()
            .unwrap()
            .id;
        concrete = concrete.replace("{conflict_id}", &id.to_string());
    }
    let other = w.uruma_people[1].address_number.as_str();
    let body = match path {
        "/api/login" => Some(serde_json::json!({"user": "kuni", "password": PASSWORD}).to_string()),
        "/signin" => Some(format!("user=kuni&password={PASSWORD}")),
        "/m/{municipality}/inquiries" => Some(format!(
            "source_municipality=472018&my_number={}&address_number={}&basis=matrix",
            w.uruma_people[3].my_number.as_ref().map(|m| m.expose()).unwrap_or_default(),
            person.address_number
        )),
        "/m/{municipality}/inquiries/attach" => Some("none=0".into()),
        "/national/accounts" => Some(format!("user=page-{n}&role=center")),
        "/m/{municipality}/kiosk" => Some("enabled=on".into()),
        // Not the code: refused (the matrix must not shred the town the other rows use).
        "/m/{municipality}/delete" => Some("confirm=000000".into()),
        "/m/{municipality}/conflicts/{conflict_id}" => Some("action=keep&reason=matrix".into()),
        "/m/{municipality}/persons/{address_number}/flags" => Some("reason=matrix".into()),
        "/m/{municipality}/persons/{address_number}/correction" => Some(format!(
            "name={}&name_kana={}&birth_date={}&sex={}&reason=matrix",
            pct(person.name.as_str()),
            pct(person.name_kana.as_str()),
            person.birth_date.0,
            person.sex.iso5218()
        )),
        "/m/{municipality}/persons/{address_number}/certificates" => {
            Some("kind=domestic&format=shc".into())
        }
        "/m/{municipality}/certificates/{certificate_id}/revoke" => Some("reason=matrix".into()),
        p if p.starts_with("/m/") && p.contains("/doses") => Some(format!(
            "dose_number={number}&date=2021-03-01&product=comirnaty&lot=FA1234&reason=matrix"
        )),
        "/m/{municipality}/persons" => Some(format!(
            "by=address&q={}",
            w.uruma_people[0].address_number
        )),
        "/api/accounts" => {
            Some(serde_json::json!({"user": format!("made-{n}"), "role": "center"}).to_string())
        }
        "/api/venue/doses" => {
            let p = &w.uruma_people[2];
            Some(
                serde_json::json!({
                    "ocr_line": format!("11472131{}", p.vouchers[0].number),
                    "birth_date": p.birth_date.0.to_string(),
                    "product": "comirnaty",
                    "lot": "FA1234",
                    "date": "2021-03-01",
                    "idempotency_key": format!("matrix-{n}"),
                })
                .to_string(),
            )
        }
        p if p.ends_with("/inquiries") => Some(
            serde_json::json!({
                "source_municipality": "472018",
                "my_number": w.uruma_people[3].my_number.as_ref().map(|m| m.expose()),
                "address_number": person.address_number.as_str(),
                "basis": "番号法第19条第16号",
            })
            .to_string(),
        ),
        p if p.ends_with("/inquiries/attach") => Some(r#"{"inquiry_ids": []}"#.into()),
        p if p.ends_with("/inquiry-jobs") => Some(format!(
            "照会先自治体コード,個人番号,宛名番号\n472018,123456789018,{other}\n"
        )),
        p if p.ends_with("/doses") => Some(dose.to_string()),
        p if p.ends_with("/doses/{dose_id}") => {
            Some(serde_json::json!({"dose": dose, "reason": "予診票と照合"}).to_string())
        }
        p if p.ends_with("/delete") => Some(r#"{"reason": "二重登録"}"#.into()),
        p if p.ends_with("/revoke") => Some(r#"{"reason": "誤発行"}"#.into()),
        p if p.ends_with("/persons/{address_number}/certificates") => {
            Some(r#"{"kind": "domestic", "format": "shc"}"#.into())
        }
        p if p.ends_with("/kiosk") => Some(r#"{"enabled": true}"#.into()),
        "/api/center/certificates" => Some(r#"{"kiosk": "k1", "application": "{}"}"#.into()),
        "/api/app/certificates" => Some(r#"{"kid": "k", "sealed": "AAAA"}"#.into()),
        "/api/verify" => Some("shc:/5676290952432060346029243740446031222959532654603460292540772804336028702864716745222809286133314564376531415906402203064504590856435503414245413640370636654171372412363803043756220467374075323239254334433260573601064529380905".into()),
        p if p.ends_with("/resolve") => {
            Some(r#"{"action": "replace", "reason": "タブレットの記録が正しい"}"#.into())
        }
        p if p.ends_with("/flags") && p.contains("persons") => {
            Some(r#"{"use_suspended": false, "reason": "確認"}"#.into())
        }
        p if p.ends_with("/correction") => Some(
            serde_json::json!({
                "name": person.name.as_str(),
                "name_kana": person.name_kana.as_str(),
                "birth_date": person.birth_date.0.to_string(),
                "sex": person.sex.iso5218().to_string(),
                "my_number": person.my_number.as_ref().map(|m| m.expose()),
                "reason": "訂正請求",
            })
            .to_string(),
        ),
        p if p.ends_with("/imports/targets") => Some(format!(
            "自治体コード,宛名番号,券番号,氏名,氏名カナ,生年月日,性別\n\
             472131,{},99{n:08},試験　太郎,シケン　タロウ,1980-01-01,1\n",
            900_000 + n
        )),
        p if p.ends_with("/imports/ledger") => Some(format!(
            "個別宛名番号,1回目接種日,1回目ワクチンメーカー,1回目ワクチンロット番号\n\
             {other},2021-03-01,ファイザー,FA1234\n"
        )),
        p if p.ends_with("/imports/flags") => Some(format!("宛名番号,利用停止\n{other},0\n")),
        _ => None,
    };
    (concrete, body)
}

#[tokio::test]
async fn every_route_for_every_caller() {
    let w = World::new().await;
    let table = expected();
    let mounted: Vec<_> = ROUTES
        .iter()
        .map(|r| (r.zone, r.method.as_str(), r.path))
        .collect();
    for key in &mounted {
        assert!(
            table.contains_key(key),
            "route {key:?} has no row in the access matrix"
        );
    }
    assert_eq!(
        mounted.len(),
        table.len(),
        "the matrix lists a route that does not exist"
    );
    let mut failures = Vec::new();
    for route in ROUTES {
        let row = table[&(route.zone, route.method.as_str(), route.path)];
        for (actor, want) in Actor::ALL.into_iter().zip(row) {
            let (path, body) = concrete(&w, route.path);
            let (status, text) = w
                .call(
                    route.zone,
                    route.method.as_str(),
                    &path,
                    w.who(actor),
                    body.as_deref(),
                )
                .await;
            if status.as_u16() != want {
                failures.push(format!(
                    "{:?} {} {} as {actor:?}: {status} (want {want}) {text}",
                    route.zone, route.method, route.path
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn no_personal_route_on_the_internet_listener() {
    for r in ROUTES.iter().filter(|r| r.zone == Zone::Internet) {
        assert!(!r.personal, "{} is personal", r.path);
        assert!(!r.path.contains("persons"), "{}", r.path);
    }
}

#[tokio::test]
async fn another_towns_person_looks_like_nobody() {
    let w = World::new().await;
    let naha = |path: String| path.replace("472131", "472018");
    let own_missing = "/api/municipalities/472131/persons/999999999".to_string();
    let foreign = naha(format!(
        "/api/municipalities/472131/persons/{}",
        w.naha_people[0].address_number
    ));
    let (s1, b1) = w
        .call(
            Zone::Lgwan,
            "GET",
            &own_missing,
            w.who(Actor::StaffOwn),
            None,
        )
        .await;
    let (s2, b2) = w
        .call(Zone::Lgwan, "GET", &foreign, w.who(Actor::StaffOwn), None)
        .await;
    assert_eq!((s1, &b1), (s2, &b2));
    assert_eq!(s1.as_u16(), 404);
    let events = w.state.store.security_events(Some(w.uruma), 10).unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind.code() == "cross_municipality"
                && e.user.as_deref() == Some("staff-uruma"))
    );
    // The own person is there, with the identity data staff need (LGWAN only).
    let own = format!(
        "/api/municipalities/472131/persons/{}",
        w.uruma_people[0].address_number
    );
    let (status, body) = w
        .call(Zone::Lgwan, "GET", &own, w.who(Actor::StaffOwn), None)
        .await;
    assert_eq!(status.as_u16(), 200);
    assert!(body.contains(w.uruma_people[0].name_kana.as_str()));
}

#[tokio::test]
async fn people_accounts_do_not_work_on_the_internet_listener() {
    let w = World::new().await;
    for actor in [Actor::National, Actor::StaffOwn, Actor::Center] {
        let (status, _) = w
            .call(Zone::Internet, "GET", "/api/venue/me", w.who(actor), None)
            .await;
        assert_eq!(status.as_u16(), 401, "{actor:?}");
    }
    assert!(
        w.state
            .store
            .security_events(None, 10)
            .unwrap()
            .iter()
            .any(|e| e.kind.code() == "wrong_zone_account")
    );
}

#[tokio::test]
async fn each_listener_describes_exactly_its_routes() {
    let w = World::new().await;
    for zone in [Zone::Lgwan, Zone::Internet] {
        let (status, text) = w
            .call(
                zone,
                "GET",
                "/api/openapi.json",
                crate::world::Who::Anonymous,
                None,
            )
            .await;
        assert_eq!(status.as_u16(), 200);
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let mut described = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                described.push((method.to_uppercase(), path.clone()));
                if let Some(body) = op.pointer("/requestBody/content/application~1json/schema/$ref")
                {
                    let name = body
                        .as_str()
                        .unwrap()
                        .trim_start_matches("#/components/schemas/");
                    assert!(
                        doc["components"]["schemas"].get(name).is_some(),
                        "{name} is not described"
                    );
                }
            }
        }
        described.sort();
        // Every route but the web application's pages (HTML for people, not an API).
        let mut mounted: Vec<(String, String)> = ROUTES
            .iter()
            .filter(|r| r.zone == zone && !r.is_page())
            .map(|r| (r.method.to_string(), r.path.to_owned()))
            .collect();
        mounted.sort();
        assert_eq!(described, mounted, "{zone:?}");
        if zone == Zone::Internet {
            assert!(!text.contains("persons") && !text.contains("my_number"));
        }
    }
}

/// One policy on every answer of every route, to a stranger and to the town's own staff: no
/// sniffing, no referrer, never in another site's frame, and for every HTML page a
/// Content-Security-Policy that allows no inline code but the page's own (by nonce).
#[tokio::test]
async fn every_route_answers_with_the_security_headers() {
    let w = World::new().await;
    let mut failures = Vec::new();
    for route in ROUTES {
        for actor in [Actor::Anonymous, Actor::StaffOwn] {
            let (path, body) = concrete(&w, route.path);
            let (status, headers, _) = w
                .call_raw(
                    route.zone,
                    route.method.as_str(),
                    &path,
                    w.who(actor),
                    body.as_deref(),
                    &[],
                )
                .await;
            let header = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            };
            let csp = header("content-security-policy");
            let html = header("content-type").starts_with("text/html");
            let ok = header("x-content-type-options") == "nosniff"
                && !header("referrer-policy").is_empty()
                && header("x-frame-options") == "DENY"
                && csp.contains("frame-ancestors 'none'")
                && !csp.contains("'unsafe-inline'")
                && (!html || csp.contains("script-src 'self'"));
            if !ok {
                failures.push(format!(
                    "{:?} {} {} as {actor:?} ({status}): {headers:?}",
                    route.zone, route.method, route.path
                ));
            }
        }
    }
    // The pages' own inline blocks carry this response's nonce, and nothing else may run.
    let (_, headers, page) = w
        .call_raw(
            Zone::Lgwan,
            "GET",
            "/signin",
            w.who(Actor::Anonymous),
            None,
            &[],
        )
        .await;
    let page = String::from_utf8(page).unwrap();
    let csp = headers["content-security-policy"].to_str().unwrap();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|n| n.split('\'').next())
        .unwrap();
    assert!(nonce.len() >= 22, "{csp}");
    assert!(
        page.contains(&format!("<style nonce=\"{nonce}\">")),
        "{page}"
    );
    let (_, again, _) = w
        .call_raw(
            Zone::Lgwan,
            "GET",
            "/signin",
            w.who(Actor::Anonymous),
            None,
            &[],
        )
        .await;
    assert_ne!(
        again["content-security-policy"],
        headers["content-security-policy"]
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
