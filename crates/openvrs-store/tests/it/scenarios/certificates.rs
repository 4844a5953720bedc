//! Certificates: recorded once per id, listed per municipality and person, revoked once.

use openvrs_domain::person::Person;
use openvrs_store::StoreError;

use super::fixtures::{code, naha, people, residents, staff, uruma};
use crate::Harness;

pub fn certificates_are_recorded_listed_and_revoked_once(h: &Harness) {
    use openvrs_domain::certificate::{Channel, Format, Kind};
    let ps = residents(h, 2, 31);
    let record = |id: &str, p: &Person, format: Format, rid: Option<&str>| {
        openvrs_store::CertificateRecord {
            id: id.into(),
            address_number: p.address_number.clone(),
            kind: Kind::Domestic,
            format,
            channel: Channel::Counter,
            kid: "kid-a".into(),
            rid: rid.map(str::to_owned),
            issued_at: 0,
            issued_by: "ignored".into(),
            revoked_at: Some(1),
            revoked_by: None,
            revocation_reason: None,
            application: None,
        }
    };
    let a = h
        .store
        .record_certificate(
            uruma(),
            &record("CERT00000001", &ps[0], Format::Shc, Some("rid-a")),
            &staff(),
        )
        .unwrap();
    assert_eq!(a.issued_by, "staff-0001", "the store says who and when");
    assert!(a.issued_at > 0 && a.revoked_at.is_none());
    h.store
        .record_certificate(
            uruma(),
            &record("CERT00000002", &ps[1], Format::Vds, None),
            &staff(),
        )
        .unwrap();
    // The same id twice, a person of another town, an unknown town: refused, nothing written.
    assert!(matches!(
        h.store.record_certificate(
            uruma(),
            &record("CERT00000001", &ps[1], Format::Shc, None),
            &staff()
        ),
        Err(StoreError::Conflict(_))
    ));
    let stranger = people(naha(), 1, 32);
    assert!(matches!(
        h.store.record_certificate(
            uruma(),
            &record("CERT00000003", &stranger[0], Format::Shc, None),
            &staff()
        ),
        Err(StoreError::NotFound("person"))
    ));
    assert!(
        h.store
            .record_certificate(
                code("011002"),
                &record("CERT00000004", &ps[0], Format::Shc, None),
                &staff()
            )
            .is_err()
    );
    assert_eq!(h.store.certificates(uruma(), None).unwrap().len(), 2);
    let mine = h
        .store
        .certificates(uruma(), Some(&ps[0].address_number))
        .unwrap();
    assert_eq!(mine, vec![a.clone()]);
    assert!(
        h.store.certificates(naha(), None).unwrap().is_empty(),
        "per municipality"
    );

    // Revocation: once, with a reason; the rid joins its key's list; another town cannot.
    assert!(
        h.store
            .revoke_certificate(naha(), "CERT00000001", "誤発行", &staff())
            .is_err()
    );
    assert!(matches!(
        h.store
            .revoke_certificate(uruma(), "CERT00000001", "", &staff()),
        Err(StoreError::Invalid(_))
    ));
    let r = h
        .store
        .revoke_certificate(uruma(), "CERT00000001", "誤発行", &staff())
        .unwrap();
    assert_eq!(r.revocation_reason.as_deref(), Some("誤発行"));
    assert!(matches!(
        h.store
            .revoke_certificate(uruma(), "CERT00000001", "誤発行", &staff()),
        Err(StoreError::Conflict(_))
    ));
    h.store
        .revoke_certificate(uruma(), "CERT00000002", "誤発行", &staff())
        .unwrap();
    let list = h.store.revocations("kid-a").unwrap();
    assert_eq!(list.len(), 1, "only a certificate with a rid is listed");
    assert_eq!(list[0].0, "rid-a");
    assert!(h.store.revocations("kid-b").unwrap().is_empty());
    let log = h.store.audit_log(uruma()).unwrap();
    let acts: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        acts.iter().filter(|a| **a == "certificate.issue").count(),
        2
    );
    assert_eq!(
        acts.iter().filter(|a| **a == "certificate.revoke").count(),
        2
    );
    h.store.verify_audit(uruma()).unwrap();
}
