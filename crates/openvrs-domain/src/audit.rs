//! Who did what, from where: the vocabulary of the operation log (操作ログ).

use std::fmt;

/// The kinds of account, from `SPEC.md` section 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The operator at the machine's console (CLI), e.g. `init`, imports run by hand.
    Operator,
    National,
    PrefectureViewer,
    MunicipalStaff,
    VenueDevice,
    IssuanceCenter,
    Resident,
}

/// Where a request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Zone {
    /// The machine itself (the CLI).
    Console,
    Lgwan,
    Internet,
}

macro_rules! codes {
    ($t:ty { $($v:ident => $c:literal),* $(,)? }) => {
        impl $t {
            pub fn code(self) -> &'static str {
                match self { $(Self::$v => $c),* }
            }
            pub fn from_code(code: &str) -> Option<Self> {
                match code { $($c => Some(Self::$v),)* _ => None }
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}

codes!(Role {
    Operator => "operator",
    National => "national",
    PrefectureViewer => "prefecture",
    MunicipalStaff => "staff",
    VenueDevice => "venue",
    IssuanceCenter => "center",
    Resident => "resident",
});

codes!(Zone {
    Console => "console",
    Lgwan => "lgwan",
    Internet => "internet",
});

/// What the security officers are told about (`security_events.kind`). One list, so that a
/// kind is written, counted and named the same everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecurityEventKind {
    LoginFailed,
    LockedOut,
    RateLimited,
    CsrfRejected,
    CrossMunicipality,
    WrongZone,
    WrongZoneAccount,
    MalformedBurst,
    ReadVolume,
    InquiryVolume,
    InquiryFishing,
    InquiryNotOwnResident,
    ForgedCard,
    ReplayedApplication,
    UnknownKiosk,
}

codes!(SecurityEventKind {
    LoginFailed => "login_failed",
    LockedOut => "locked_out",
    RateLimited => "rate_limited",
    CsrfRejected => "csrf_rejected",
    CrossMunicipality => "cross_municipality",
    WrongZone => "wrong_zone",
    WrongZoneAccount => "wrong_zone_account",
    MalformedBurst => "malformed_burst",
    ReadVolume => "read_volume",
    InquiryVolume => "inquiry_volume",
    InquiryFishing => "inquiry_fishing",
    InquiryNotOwnResident => "inquiry_not_own_resident",
    ForgedCard => "forged_card",
    ReplayedApplication => "replayed_application",
    UnknownKiosk => "unknown_kiosk",
});

impl SecurityEventKind {
    pub const ALL: [SecurityEventKind; 15] = [
        Self::LoginFailed,
        Self::LockedOut,
        Self::RateLimited,
        Self::CsrfRejected,
        Self::CrossMunicipality,
        Self::WrongZone,
        Self::WrongZoneAccount,
        Self::MalformedBurst,
        Self::ReadVolume,
        Self::InquiryVolume,
        Self::InquiryFishing,
        Self::InquiryNotOwnResident,
        Self::ForgedCard,
        Self::ReplayedApplication,
        Self::UnknownKiosk,
    ];
}

/// The account acting. `user` is an account id, never a person's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user: String,
    pub role: Role,
    pub zone: Zone,
}

impl Actor {
    /// The console operator running a CLI command.
    pub fn console() -> Self {
        Self {
            user: "console".into(),
            role: Role::Operator,
            zone: Zone::Console,
        }
    }
}

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Ok,
    Denied,
    Failed,
}

codes!(Outcome {
    Ok => "ok",
    Denied => "denied",
    Failed => "failed",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for r in [
            Role::Operator,
            Role::National,
            Role::PrefectureViewer,
            Role::MunicipalStaff,
            Role::VenueDevice,
            Role::IssuanceCenter,
            Role::Resident,
        ] {
            assert_eq!(Role::from_code(r.code()), Some(r));
        }
        for z in [Zone::Console, Zone::Lgwan, Zone::Internet] {
            assert_eq!(Zone::from_code(&z.to_string()), Some(z));
        }
        for o in [Outcome::Ok, Outcome::Denied, Outcome::Failed] {
            assert_eq!(Outcome::from_code(o.code()), Some(o));
        }
        assert_eq!(Role::from_code("root"), None);
        for k in SecurityEventKind::ALL {
            assert_eq!(SecurityEventKind::from_code(k.code()), Some(k));
        }
    }
}
