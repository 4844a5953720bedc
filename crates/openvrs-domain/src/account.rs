//! Accounts: who a user of the system is and what they are bound to (`SPEC.md` section 1).

use std::fmt;

use crate::{Invalid, audit::Role, dose::Short, ids::MunicipalityCode, prefecture::Prefecture};

/// An account id, issued by the national administrator: 3 to 64 of `a-z 0-9 . _ -`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

impl UserId {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let ok = (3..=64).contains(&input.len())
            && input
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
        if ok {
            Ok(Self(input.to_owned()))
        } else {
            Err(Invalid::new(
                "user_id.format",
                "ユーザIDは英小文字・数字・._- の3～64文字です",
                "a user id is 3 to 64 of a-z, 0-9 and ._-",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an account is bound to; the role follows from it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Binding {
    /// 国: accounts, products, aggregates; never personal data.
    National,
    /// 都道府県: aggregates of one prefecture.
    Prefecture(Prefecture),
    /// 市区町村職員: everything for one municipality.
    Municipality(MunicipalityCode),
    /// 接種会場: one venue of one municipality, authenticated by a device token.
    Venue {
        municipality: MunicipalityCode,
        venue: Short<30>,
    },
    /// 証明書交付センター: a service credential.
    Center,
}

impl Binding {
    pub fn role(&self) -> Role {
        match self {
            Binding::National => Role::National,
            Binding::Prefecture(_) => Role::PrefectureViewer,
            Binding::Municipality(_) => Role::MunicipalStaff,
            Binding::Venue { .. } => Role::VenueDevice,
            Binding::Center => Role::IssuanceCenter,
        }
    }

    /// The municipality whose data the account works on, if any.
    pub fn municipality(&self) -> Option<MunicipalityCode> {
        match self {
            Binding::Municipality(m)
            | Binding::Venue {
                municipality: m, ..
            } => Some(*m),
            _ => None,
        }
    }

    /// Whether the account signs in with a password (people) or a token (devices, services).
    pub fn uses_password(&self) -> bool {
        matches!(
            self,
            Binding::National | Binding::Prefecture(_) | Binding::Municipality(_)
        )
    }
}

/// An account as the system knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: UserId,
    pub binding: Binding,
    pub disabled: bool,
}

/// Password rule for people's accounts: 12 to 256 characters.
pub fn check_password(password: &str) -> Result<(), Invalid> {
    if (12..=256).contains(&password.chars().count()) {
        Ok(())
    } else {
        Err(Invalid::new(
            "password.length",
            "パスワードは12～256文字です",
            "a password is 12 to 256 characters",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids() {
        for ok in ["abc", "staff-472131.01", "a_b"] {
            assert!(UserId::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", "Staff", "a b", "ユーザ", &"a".repeat(65), "a/b"] {
            assert!(UserId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn password_length() {
        assert!(check_password("twelve chars").is_ok());
        assert!(check_password("eleven char").is_err());
        assert!(check_password(&"x".repeat(257)).is_err());
    }

    #[test]
    fn bindings_give_roles() {
        let m = MunicipalityCode::parse("472131").unwrap();
        let venue = Binding::Venue {
            municipality: m,
            venue: Short::parse("会場A").unwrap(),
        };
        assert_eq!(venue.role(), Role::VenueDevice);
        assert_eq!(venue.municipality(), Some(m));
        assert!(!venue.uses_password());
        assert!(Binding::Municipality(m).uses_password());
        assert_eq!(Binding::National.municipality(), None);
        assert_eq!(
            Binding::Prefecture(Prefecture::from_number(47).unwrap()).role(),
            Role::PrefectureViewer
        );
    }
}
