//! A person in a municipality's records: identity, vouchers and flags.

use std::fmt;

use time::Date;

use crate::{
    dose::DoseNumber,
    ids::{AddressNumber, MunicipalityCode, MyNumber, VoucherNumber},
    name::{KanaName, Name},
    sex::Sex,
};

/// A date of birth. Personal data: `Debug` does not show it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BirthDate(pub Date);

impl fmt::Debug for BirthDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BirthDate(..)")
    }
}

/// A voucher (接種券) issued to a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voucher {
    pub number: VoucherNumber,
    /// 券種, opaque.
    pub voucher_type: Option<u8>,
    /// The dose the voucher is for.
    pub dose_number: Option<DoseNumber>,
    pub issued_on: Option<Date>,
}

/// 転出: the person moved out, on a date, to a known municipality or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MovedOut {
    pub on: Date,
    pub to: Option<MunicipalityCode>,
}

/// Status flags, respected everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags {
    pub moved_out: Option<MovedOut>,
    /// 死亡, with the date.
    pub deceased_on: Option<Date>,
    /// 利用停止: the person's data is not used except as law requires.
    pub use_suspended: bool,
}

/// A person as the municipality registered them. The municipality is not a field: it is the
/// tenant, passed beside the person wherever one is stored or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub address_number: AddressNumber,
    pub name: Name,
    pub name_kana: KanaName,
    pub birth_date: BirthDate,
    pub sex: Sex,
    /// Only where lawfully obtained.
    pub my_number: Option<MyNumber>,
    pub flags: Flags,
    pub vouchers: Vec<Voucher>,
}

/// A change to some flags: `None` leaves a flag as it is; `Some(None)` clears it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlagChange {
    /// (date, destination)
    pub moved_out: Option<Option<(Date, Option<MunicipalityCode>)>>,
    pub deceased_on: Option<Option<Date>>,
    pub use_suspended: Option<bool>,
}

impl FlagChange {
    pub fn apply(&self, flags: Flags) -> Flags {
        Flags {
            moved_out: match self.moved_out {
                None => flags.moved_out,
                Some(m) => m.map(|(on, to)| MovedOut { on, to }),
            },
            deceased_on: self.deceased_on.unwrap_or(flags.deceased_on),
            use_suspended: self.use_suspended.unwrap_or(flags.use_suspended),
        }
    }
}
