//! Issuing an account: the one way the national administrator's page, the API and the console
//! do it. People get a password (the one given, or one generated and shown once); devices and
//! the issuance center get a token shown once. Only a hash or a digest is stored.

use openvrs_crypto::credentials::{hash_password, new_secret, secret_digest};
use openvrs_domain::{
    Invalid,
    account::{Account, Binding, UserId, check_password},
    audit::{Actor, Role},
    dose::Short,
    ids::MunicipalityCode,
    prefecture::Prefecture,
};
use openvrs_store::{Credential, Store, StoreError};

/// An account to issue: `role` is national, prefecture, staff, venue or center. Not `Debug`:
/// it may hold a password.
#[allow(missing_debug_implementations)]
pub struct Request {
    pub user: String,
    pub role: String,
    /// For staff and venue devices.
    pub municipality: Option<String>,
    /// For prefecture viewers, 1-47.
    pub prefecture: Option<u8>,
    /// For venue devices.
    pub venue: Option<String>,
    /// For people; generated when absent.
    pub password: Option<String>,
}

/// An issued account and the secret to show once: a generated password or a device token
/// (`None` when the person's password was given).
#[allow(missing_debug_implementations)]
pub struct Issued {
    pub account: Account,
    pub shown_once: Option<String>,
}

/// Checks the request, makes the credential and stores the account (audited as `actor`).
/// A refused request is [`StoreError::Invalid`] and stores nothing.
pub fn issue(store: &dyn Store, request: Request, actor: &Actor) -> Result<Issued, StoreError> {
    let (account, credential, shown_once) = account(request)?;
    store.add_account(&account, &credential, actor)?;
    Ok(Issued {
        account,
        shown_once,
    })
}

fn account(req: Request) -> Result<(Account, Credential, Option<String>), Invalid> {
    let municipality = || -> Result<MunicipalityCode, Invalid> {
        MunicipalityCode::parse(req.municipality.as_deref().ok_or(Invalid::new(
            "account.municipality",
            "municipality(自治体コード)が必要です",
            "municipality is required for this role",
        ))?)
    };
    let binding = match Role::from_code(&req.role) {
        Some(Role::National) => Binding::National,
        Some(Role::PrefectureViewer) => {
            Binding::Prefecture(req.prefecture.and_then(Prefecture::from_number).ok_or(
                Invalid::new(
                    "account.prefecture",
                    "prefecture(1-47)が必要です",
                    "prefecture (1-47) is required for this role",
                ),
            )?)
        }
        Some(Role::MunicipalStaff) => Binding::Municipality(municipality()?),
        Some(Role::VenueDevice) => Binding::Venue {
            municipality: municipality()?,
            venue: Short::parse(req.venue.as_deref().ok_or(Invalid::new(
                "account.venue",
                "venue(会場名)が必要です",
                "venue is required for this role",
            ))?)?,
        },
        Some(Role::IssuanceCenter) => Binding::Center,
        _ => {
            return Err(Invalid::new(
                "account.role",
                "role は national/prefecture/staff/venue/center のいずれかです",
                "role must be national, prefecture, staff, venue or center",
            ));
        }
    };
    let account = Account {
        id: UserId::parse(&req.user)?,
        binding,
        disabled: false,
    };
    if account.binding.uses_password() {
        let (password, shown_once) = match req.password {
            Some(p) => (p, None),
            None => {
                let p = new_secret();
                (p.clone(), Some(p))
            }
        };
        check_password(&password)?;
        let credential = Credential::PasswordHash(hash_password(&password));
        Ok((account, credential, shown_once))
    } else {
        let token = new_secret();
        let credential = Credential::TokenDigest(secret_digest(&token));
        Ok((account, credential, Some(token)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(role: &str) -> Request {
        Request {
            user: "clerk-1".into(),
            role: role.into(),
            municipality: None,
            prefecture: None,
            venue: None,
            password: None,
        }
    }

    #[test]
    fn each_role_needs_what_binds_it() {
        let cases: Vec<(Request, Result<&str, &str>)> = vec![
            (request("national"), Ok("national")),
            (request("center"), Ok("center")),
            (request("staff"), Err("account.municipality")),
            (request("prefecture"), Err("account.prefecture")),
            (request("root"), Err("account.role")),
            (
                Request {
                    municipality: Some("131016".into()),
                    ..request("venue")
                },
                Err("account.venue"),
            ),
            (
                Request {
                    prefecture: Some(48),
                    ..request("prefecture")
                },
                Err("account.prefecture"),
            ),
            (
                Request {
                    password: Some("short".into()),
                    ..request("national")
                },
                Err("password.length"),
            ),
        ];
        for (req, want) in cases {
            let got = account(req).map(|(a, _, _)| a.binding.role().code());
            match (got, want) {
                (Ok(role), Ok(w)) => assert_eq!(role, w),
                (Err(e), Err(w)) => assert_eq!(e.kind, w),
                (got, want) => panic!("{:?} vs {want:?}", got.map_err(|e| e.kind)),
            }
        }
    }

    #[test]
    fn a_secret_is_shown_once_unless_the_person_chose_it() {
        let (_, credential, shown) = account(request("national")).unwrap();
        let shown = shown.expect("a generated password is shown");
        assert!(matches!(credential, Credential::PasswordHash(h) if !h.contains(&shown)));
        let chosen = Request {
            password: Some("a long enough passphrase".into()),
            ..request("national")
        };
        assert!(account(chosen).unwrap().2.is_none());
        let (_, credential, token) = account(request("center")).unwrap();
        let token = token.expect("a device token is shown");
        assert!(matches!(credential, Credential::TokenDigest(d) if d == secret_digest(&token)));
    }
}
