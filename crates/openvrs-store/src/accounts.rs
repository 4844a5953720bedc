//! Accounts, sessions and security events: national tables, no personal data.

use openvrs_domain::{
    account::{Account, Binding, UserId},
    audit::Role,
    dose::Short,
    ids::MunicipalityCode,
    prefecture::Prefecture,
};

use crate::{
    Credential, SecurityEvent, Session, StoreError,
    sql::{Row, Tx, Value},
};

pub(crate) const ACCOUNT_COLUMNS: &str =
    "user_id, role, prefecture, municipality_code, venue, password_hash, token_digest, disabled";

pub(crate) fn insert(
    tx: &mut dyn Tx,
    a: &Account,
    credential: &Credential,
    now: i64,
) -> Result<(), StoreError> {
    if tx
        .query_opt(
            "SELECT 1 FROM accounts WHERE user_id = $1",
            &[a.id.as_str().into()],
        )?
        .is_some()
    {
        return Err(StoreError::Conflict(
            "このユーザIDは使用済みです / this user id is taken",
        ));
    }
    let (prefecture, municipality, venue): (Option<i64>, Option<String>, Option<String>) =
        match &a.binding {
            Binding::National | Binding::Center => (None, None, None),
            Binding::Prefecture(p) => (Some(i64::from(p.number())), None, None),
            Binding::Municipality(m) => (None, Some(m.to_string()), None),
            Binding::Venue {
                municipality,
                venue,
            } => (
                None,
                Some(municipality.to_string()),
                Some(venue.as_str().to_owned()),
            ),
        };
    let (password, token): (Option<String>, Option<Vec<u8>>) = match credential {
        Credential::PasswordHash(h) => (Some(h.clone()), None),
        Credential::TokenDigest(d) => (None, Some(d.to_vec())),
        Credential::Revoked => (None, None),
    };
    tx.execute(
        &format!(
            "INSERT INTO accounts ({ACCOUNT_COLUMNS}, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ),
        &[
            a.id.as_str().into(),
            a.binding.role().code().into(),
            prefecture.into(),
            municipality.into(),
            venue.into(),
            password.into(),
            token.into(),
            i64::from(a.disabled).into(),
            now.into(),
        ],
    )?;
    Ok(())
}

pub(crate) fn from_row(r: &Row) -> Result<(Account, Credential), StoreError> {
    let corrupt = || StoreError::Corrupt("account binding");
    let municipality = r.opt_text(3)?.map(MunicipalityCode::parse).transpose()?;
    let binding = match Role::from_code(r.text(1)?).ok_or(StoreError::Corrupt("role"))? {
        Role::National => Binding::National,
        Role::IssuanceCenter => Binding::Center,
        Role::PrefectureViewer => Binding::Prefecture(
            r.opt_int(2)?
                .and_then(|n| u8::try_from(n).ok())
                .and_then(Prefecture::from_number)
                .ok_or_else(corrupt)?,
        ),
        Role::MunicipalStaff => Binding::Municipality(municipality.ok_or_else(corrupt)?),
        Role::VenueDevice => Binding::Venue {
            municipality: municipality.ok_or_else(corrupt)?,
            venue: Short::parse(r.opt_text(4)?.ok_or_else(corrupt)?)?,
        },
        Role::Operator | Role::Resident => return Err(corrupt()),
    };
    let credential = match (r.opt_text(5)?, r.opt_bytes(6)?) {
        (Some(h), None) => Credential::PasswordHash(h.to_owned()),
        (None, Some(d)) => Credential::TokenDigest(
            d.try_into()
                .map_err(|_| StoreError::Corrupt("token digest"))?,
        ),
        (None, None) => Credential::Revoked,
        (Some(_), Some(_)) => return Err(StoreError::Corrupt("account credential")),
    };
    Ok((
        Account {
            id: UserId::parse(r.text(0)?)?,
            binding,
            disabled: r.int(7)? != 0,
        },
        credential,
    ))
}

pub(crate) fn session_from_row(r: &Row) -> Result<Session, StoreError> {
    Ok(Session {
        user: UserId::parse(r.text(0)?)?,
        csrf_token: r.text(1)?.to_owned(),
        created_at: r.int(2)?,
        last_seen: r.int(3)?,
    })
}

pub(crate) fn event_values(e: &SecurityEvent) -> Vec<Value> {
    vec![
        e.at.into(),
        e.kind.code().into(),
        e.municipality.map(|m| m.to_string()).into(),
        e.user.clone().into(),
        e.client.clone().into(),
        e.detail.as_str().into(),
    ]
}

pub(crate) fn event_from_row(r: &Row) -> Result<SecurityEvent, StoreError> {
    Ok(SecurityEvent {
        id: r.int(0)?,
        at: r.int(1)?,
        kind: openvrs_domain::audit::SecurityEventKind::from_code(r.text(2)?)
            .ok_or(StoreError::Corrupt("security event kind"))?,
        municipality: r.opt_text(3)?.map(MunicipalityCode::parse).transpose()?,
        user: r.opt_text(4)?.map(str::to_owned),
        client: r.opt_text(5)?.map(str::to_owned),
        detail: r.text(6)?.to_owned(),
    })
}
