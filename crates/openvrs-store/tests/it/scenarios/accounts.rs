//! Accounts: users bound to a municipality, a venue or the nation, their sessions, and the
//! security events.

use openvrs_domain::{audit::Actor, dose::Short, ids::MunicipalityCode};
use openvrs_store::StoreError;

use super::fixtures::{code, naha, uruma, with_towns};
use crate::Harness;

pub fn accounts_sessions_and_security_events(h: &Harness) {
    use openvrs_domain::account::{Account, Binding, UserId};
    use openvrs_store::{Credential, SecurityEvent, Session};
    with_towns(h);
    let staff_id = UserId::parse("staff-472131").unwrap();
    let staff = Account {
        id: staff_id.clone(),
        binding: Binding::Municipality(uruma()),
        disabled: false,
    };
    let hash = Credential::PasswordHash("$argon2id$v=19$m=19456,t=2,p=1$x$y".into());
    h.store
        .add_account(&staff, &hash, &Actor::console())
        .unwrap();
    assert!(matches!(
        h.store.add_account(&staff, &hash, &Actor::console()),
        Err(StoreError::Conflict(_))
    ));
    let venue = Account {
        id: UserId::parse("venue-001").unwrap(),
        binding: Binding::Venue {
            municipality: uruma(),
            venue: Short::parse("会場A").unwrap(),
        },
        disabled: false,
    };
    h.store
        .add_account(&venue, &Credential::TokenDigest([7; 32]), &Actor::console())
        .unwrap();
    let national = Account {
        id: UserId::parse("kuni").unwrap(),
        binding: Binding::National,
        disabled: false,
    };
    h.store
        .add_account(&national, &hash, &Actor::console())
        .unwrap();
    // An account for an unregistered municipality is refused.
    let stray = Account {
        id: UserId::parse("stray").unwrap(),
        binding: Binding::Municipality(code("131016")),
        disabled: false,
    };
    assert!(
        h.store
            .add_account(&stray, &hash, &Actor::console())
            .is_err()
    );

    assert_eq!(
        h.store.account(&staff_id).unwrap(),
        Some((staff.clone(), hash.clone()))
    );
    assert_eq!(
        h.store.account_by_token(&[7; 32]).unwrap(),
        Some(venue.clone())
    );
    assert_eq!(h.store.account_by_token(&[8; 32]).unwrap(), None);
    assert_eq!(h.store.accounts().unwrap().len(), 3);
    let log = h.store.audit_log(uruma()).unwrap();
    assert!(
        log.iter()
            .any(|e| e.action == "account.add" && e.object == "account:staff-472131")
    );

    let s = Session {
        user: staff_id.clone(),
        csrf_token: "csrf".into(),
        created_at: 10,
        last_seen: 10,
    };
    h.store.create_session(&[1; 32], &s).unwrap();
    h.store.touch_session(&[1; 32], 20).unwrap();
    assert_eq!(h.store.session(&[1; 32]).unwrap().unwrap().last_seen, 20);
    h.store.delete_session(&[1; 32]).unwrap();
    assert_eq!(h.store.session(&[1; 32]).unwrap(), None);

    // Disabling revokes the token and ends the sessions.
    h.store.create_session(&[2; 32], &s).unwrap();
    h.store
        .disable_account(&staff_id, &Actor::console())
        .unwrap();
    assert_eq!(h.store.session(&[2; 32]).unwrap(), None);
    assert!(h.store.account(&staff_id).unwrap().unwrap().0.disabled);
    h.store
        .disable_account(&venue.id, &Actor::console())
        .unwrap();
    assert_eq!(h.store.account_by_token(&[7; 32]).unwrap(), None);
    let (revoked, credential) = h.store.account(&venue.id).unwrap().unwrap();
    assert!(revoked.disabled);
    assert_eq!(credential, Credential::Revoked);
    assert_eq!(h.store.accounts().unwrap().len(), 3);

    use openvrs_domain::audit::SecurityEventKind as Kind;
    let event = |kind: Kind, m: Option<MunicipalityCode>, at: i64| SecurityEvent {
        id: 0,
        at,
        kind,
        municipality: m,
        user: Some("staff-472131".into()),
        client: Some("127.0.0.1".into()),
        detail: "test".into(),
    };
    let a = h
        .store
        .record_security_event(&event(Kind::LoginFailed, Some(uruma()), 100))
        .unwrap();
    let b = h
        .store
        .record_security_event(&event(Kind::LoginFailed, Some(uruma()), 200))
        .unwrap();
    h.store
        .record_security_event(&event(Kind::WrongZone, Some(naha()), 300))
        .unwrap();
    assert!(b > a);
    assert_eq!(h.store.security_events(None, 10).unwrap().len(), 3);
    let own = h.store.security_events(Some(uruma()), 10).unwrap();
    assert_eq!(own.iter().map(|e| e.id).collect::<Vec<_>>(), [b, a]);
    assert_eq!(
        h.store
            .count_security_events(Kind::LoginFailed, "staff-472131", 150)
            .unwrap(),
        1
    );
    assert_eq!(
        h.store
            .count_security_events(Kind::LoginFailed, "staff-472131", 0)
            .unwrap(),
        2
    );
}
