//! Accounts, sessions and security events: national tables, no personal data.

use openvrs_domain::{
    account::{Account, Binding, UserId},
    audit::{Actor, Outcome, Role},
    dose::Short,
    ids::MunicipalityCode,
    prefecture::Prefecture,
};

use crate::{
    Credential, SecurityEvent, Session, StoreError,
    engine::Engine,
    sql::{Backend, Row, Tx, Value},
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

/// Accounts, sessions and security events.
pub trait Accounts: Send + Sync {
    /// Issues an account (national administrator's act). Accounts bound to a municipality are
    /// also recorded in that municipality's audit log.
    fn add_account(
        &self,
        account: &Account,
        credential: &Credential,
        actor: &Actor,
    ) -> Result<(), StoreError>;

    /// The account and its stored credential.
    fn account(&self, id: &UserId) -> Result<Option<(Account, Credential)>, StoreError>;

    fn account_by_token(&self, digest: &[u8; 32]) -> Result<Option<Account>, StoreError>;

    fn accounts(&self) -> Result<Vec<Account>, StoreError>;

    /// Disables an account: its token stops working and its sessions end.
    fn disable_account(&self, id: &UserId, actor: &Actor) -> Result<(), StoreError>;

    fn create_session(&self, digest: &[u8; 32], session: &Session) -> Result<(), StoreError>;

    fn session(&self, digest: &[u8; 32]) -> Result<Option<Session>, StoreError>;

    fn touch_session(&self, digest: &[u8; 32], now: i64) -> Result<(), StoreError>;

    fn delete_session(&self, digest: &[u8; 32]) -> Result<(), StoreError>;

    /// Stores an event; returns its id. `id` of the argument is ignored.
    fn record_security_event(&self, event: &SecurityEvent) -> Result<i64, StoreError>;

    /// Newest first; only `municipality`'s when given.
    fn security_events(
        &self,
        municipality: Option<MunicipalityCode>,
        limit: u32,
    ) -> Result<Vec<SecurityEvent>, StoreError>;

    /// How many events of `kind` concern `user` since `since` (unix microseconds).
    fn count_security_events(
        &self,
        kind: openvrs_domain::audit::SecurityEventKind,
        user: &str,
        since: i64,
    ) -> Result<u64, StoreError>;

    /// Counters shared by the server processes of one database: adds each delta to its
    /// counter's window and returns the totals after, in order; drops the windows that began
    /// before `drop_before`. Counter names hold account ids and client addresses, never a
    /// person.
    fn add_counts(&self, deltas: &[CountDelta], drop_before: i64) -> Result<Vec<u64>, StoreError>;

    /// The shared total of `counter` in the window from `window_start` (0 if none).
    fn shared_count(&self, counter: &str, window_start: i64) -> Result<u64, StoreError>;
}

/// What one process counted in one window since it last said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountDelta {
    pub counter: String,
    /// Unix microseconds.
    pub window_start: i64,
    pub delta: u64,
}

impl<B: Backend> Accounts for Engine<B> {
    fn add_account(
        &self,
        account: &Account,
        credential: &Credential,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let now = self.now();
        match account.binding.municipality() {
            Some(m) => self.write(m, actor, "account.add", |tx, _| {
                insert(tx, account, credential, now)?;
                Ok(((), format!("account:{}", account.id), Outcome::Ok))
            }),
            None => self
                .db
                .transaction(|tx| insert(tx, account, credential, now)),
        }
    }

    fn account(&self, id: &UserId) -> Result<Option<(Account, Credential)>, StoreError> {
        self.db.transaction(|tx| {
            tx.query_opt(
                &format!(
                    "SELECT {} FROM accounts WHERE user_id = $1",
                    ACCOUNT_COLUMNS
                ),
                &[id.as_str().into()],
            )?
            .as_ref()
            .map(from_row)
            .transpose()
        })
    }

    fn account_by_token(&self, digest: &[u8; 32]) -> Result<Option<Account>, StoreError> {
        self.db.transaction(|tx| {
            tx.query_opt(
                &format!(
                    "SELECT {} FROM accounts WHERE token_digest = $1",
                    ACCOUNT_COLUMNS
                ),
                &[digest.to_vec().into()],
            )?
            .as_ref()
            .map(|r| from_row(r).map(|(a, _)| a))
            .transpose()
        })
    }

    fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.db.transaction(|tx| {
            tx.query(
                &format!("SELECT {} FROM accounts ORDER BY user_id", ACCOUNT_COLUMNS),
                &[],
            )?
            .iter()
            .map(|r| from_row(r).map(|(a, _)| a))
            .collect()
        })
    }

    fn disable_account(&self, id: &UserId, actor: &Actor) -> Result<(), StoreError> {
        let disable = |tx: &mut dyn Tx| -> Result<(), StoreError> {
            let n = tx.execute(
                "UPDATE accounts SET disabled = 1, token_digest = NULL WHERE user_id = $1",
                &[id.as_str().into()],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound("account"));
            }
            tx.execute(
                "DELETE FROM sessions WHERE user_id = $1",
                &[id.as_str().into()],
            )?;
            Ok(())
        };
        let (account, _) = self.account(id)?.ok_or(StoreError::NotFound("account"))?;
        match account.binding.municipality() {
            Some(m) => self.write(m, actor, "account.disable", |tx, _| {
                disable(tx)?;
                Ok(((), format!("account:{id}"), Outcome::Ok))
            }),
            None => self.db.transaction(disable),
        }
    }

    fn create_session(&self, digest: &[u8; 32], s: &Session) -> Result<(), StoreError> {
        self.db.transaction(|tx| {
            tx.execute(
                "INSERT INTO sessions (session_digest, user_id, csrf_token, created_at, last_seen) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    digest.to_vec().into(),
                    s.user.as_str().into(),
                    s.csrf_token.as_str().into(),
                    s.created_at.into(),
                    s.last_seen.into(),
                ],
            )?;
            Ok(())
        })
    }

    fn session(&self, digest: &[u8; 32]) -> Result<Option<Session>, StoreError> {
        self.db.transaction(|tx| {
            tx.query_opt(
                "SELECT user_id, csrf_token, created_at, last_seen FROM sessions \
                 WHERE session_digest = $1",
                &[digest.to_vec().into()],
            )?
            .as_ref()
            .map(session_from_row)
            .transpose()
        })
    }

    fn touch_session(&self, digest: &[u8; 32], now: i64) -> Result<(), StoreError> {
        self.db.transaction(|tx| {
            tx.execute(
                "UPDATE sessions SET last_seen = $2 WHERE session_digest = $1",
                &[digest.to_vec().into(), now.into()],
            )?;
            Ok(())
        })
    }

    fn delete_session(&self, digest: &[u8; 32]) -> Result<(), StoreError> {
        self.db.transaction(|tx| {
            tx.execute(
                "DELETE FROM sessions WHERE session_digest = $1",
                &[digest.to_vec().into()],
            )?;
            Ok(())
        })
    }

    fn record_security_event(&self, event: &SecurityEvent) -> Result<i64, StoreError> {
        self.db.transaction(|tx| {
            tx.query_opt(
                "INSERT INTO security_events (at, kind, municipality_code, user_id, client, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING event_id",
                &event_values(event),
            )?
            .ok_or(StoreError::Corrupt("event id"))?
            .int(0)
        })
    }

    fn security_events(
        &self,
        municipality: Option<MunicipalityCode>,
        limit: u32,
    ) -> Result<Vec<SecurityEvent>, StoreError> {
        let columns = "event_id, at, kind, municipality_code, user_id, client, detail";
        self.db.transaction(|tx| {
            let rows = match municipality {
                Some(m) => tx.query(
                    &format!(
                        "SELECT {columns} FROM security_events WHERE municipality_code = $1 \
                         ORDER BY event_id DESC LIMIT $2"
                    ),
                    &[m.to_string().into(), i64::from(limit).into()],
                )?,
                None => tx.query(
                    &format!(
                        "SELECT {columns} FROM security_events ORDER BY event_id DESC LIMIT $1"
                    ),
                    &[i64::from(limit).into()],
                )?,
            };
            rows.iter().map(event_from_row).collect()
        })
    }

    fn add_counts(&self, deltas: &[CountDelta], drop_before: i64) -> Result<Vec<u64>, StoreError> {
        self.db.transaction(|tx| {
            tx.execute(
                "DELETE FROM shared_counts WHERE window_start < $1",
                &[drop_before.into()],
            )?;
            let mut totals = Vec::with_capacity(deltas.len());
            for d in deltas {
                let total = tx
                    .query_opt(
                        "INSERT INTO shared_counts (counter, window_start, total) \
                         VALUES ($1, $2, $3) ON CONFLICT (counter, window_start) \
                         DO UPDATE SET total = shared_counts.total + excluded.total \
                         RETURNING total",
                        &[
                            d.counter.as_str().into(),
                            d.window_start.into(),
                            i64::try_from(d.delta).unwrap_or(i64::MAX).into(),
                        ],
                    )?
                    .ok_or(StoreError::Corrupt("count"))?
                    .int(0)?;
                totals.push(u64::try_from(total).unwrap_or(0));
            }
            Ok(totals)
        })
    }

    fn shared_count(&self, counter: &str, window_start: i64) -> Result<u64, StoreError> {
        self.db.transaction(|tx| {
            let total = tx
                .query_opt(
                    "SELECT total FROM shared_counts WHERE counter = $1 AND window_start = $2",
                    &[counter.into(), window_start.into()],
                )?
                .map(|r| r.int(0))
                .transpose()?
                .unwrap_or(0);
            Ok(u64::try_from(total).unwrap_or(0))
        })
    }

    fn count_security_events(
        &self,
        kind: openvrs_domain::audit::SecurityEventKind,
        user: &str,
        since: i64,
    ) -> Result<u64, StoreError> {
        self.db.transaction(|tx| {
            let row = tx
                .query_opt(
                    "SELECT COUNT(*) FROM security_events WHERE user_id = $1 AND kind = $2 AND at >= $3",
                    &[user.into(), kind.code().into(), since.into()],
                )?
                .ok_or(StoreError::Corrupt("count"))?;
            Ok(row.int(0)? as u64)
        })
    }
}
