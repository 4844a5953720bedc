//! The deployment's municipalities, its product catalogue and the state of the database itself.

use openvrs_crypto::{KeyKind, KeySlot, TenantKeys};
use openvrs_domain::{
    audit::{Actor, Outcome},
    date::parse_date,
    dose::Short,
    ids::MunicipalityCode,
    product::Product,
};

use crate::{
    DoseCount, Municipality, PoolStatus, Stats, StoreError,
    engine::{Engine, append_audit, open_text},
    records::{PAGE, catalogue},
    sql::{Backend, Row},
};

/// The deployment's municipalities, its product catalogue and the state of the database itself.
pub trait Municipalities: Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// The clock every timestamp of this store comes from, for whoever acts with it (the
    /// service's certificates, the server's sessions and limits): one clock for all.
    fn clock(&self) -> std::sync::Arc<dyn openvrs_domain::date::Clock>;

    /// Registers a municipality and creates its keys and audit chain.
    fn add_municipality(
        &self,
        code: MunicipalityCode,
        name: &str,
        actor: &Actor,
    ) -> Result<(), StoreError>;

    fn municipalities(&self) -> Result<Vec<Municipality>, StoreError>;

    /// Turns kiosk issuance on or off for `m` (audited in `m`).
    fn set_kiosk(&self, m: MunicipalityCode, on: bool, actor: &Actor) -> Result<(), StoreError>;

    /// The vaccine product catalogue.
    fn products(&self) -> Result<Vec<Product>, StoreError>;

    /// The database's clock (Unix microseconds), to compare with the server's, and its
    /// schema version.
    fn database_clock(&self) -> Result<(i64, i64), StoreError>;

    /// Its database connections now.
    fn pool(&self) -> PoolStatus;

    fn stats(&self, m: MunicipalityCode) -> Result<Stats, StoreError>;

    /// `m`'s doses given, counted (open data and aggregates); the dates of birth are opened
    /// to place each dose in its age group and never leave the store.
    fn dose_counts(&self, m: MunicipalityCode) -> Result<Vec<DoseCount>, StoreError>;
}

impl<B: Backend> Municipalities for Engine<B> {
    fn clock(&self) -> std::sync::Arc<dyn openvrs_domain::date::Clock> {
        self.clock.clone()
    }

    fn backend(&self) -> &'static str {
        B::NAME
    }

    fn add_municipality(
        &self,
        m: MunicipalityCode,
        name: &str,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        let name = Short::<40>::parse(name)?;
        let code = m.to_string();
        self.db.transaction(|tx| {
            let exists = tx.query_opt(
                "SELECT 1 FROM municipalities WHERE municipality_code = $1",
                &[code.as_str().into()],
            )?;
            if exists.is_some() {
                return Err(StoreError::MunicipalityExists(m));
            }
            let now = self.now();
            tx.execute(
                "INSERT INTO municipalities (municipality_code, name, created_at) VALUES ($1, $2, $3)",
                &[code.as_str().into(), name.as_str().into(), now.into()],
            )?;
            let keys = TenantKeys::generate();
            for (kind, key) in [
                (KeyKind::Data, &keys.data),
                (KeyKind::Index, &keys.index),
                (KeyKind::Audit, &keys.audit),
            ] {
                let s = KeySlot {
                    municipality: &code,
                    kind,
                    version: 1,
                };
                tx.execute(
                    "INSERT INTO tenant_keys (municipality_code, kind, version, wrapped, created_at) \
                     VALUES ($1, $2, 1, $3, $4)",
                    &[
                        code.as_str().into(),
                        kind.code().into(),
                        self.master.wrap(&s, key).into(),
                        now.into(),
                    ],
                )?;
            }
            let genesis = [0u8; 32];
            tx.execute(
                "INSERT INTO audit_heads (municipality_code, seq, link) VALUES ($1, 0, $2)",
                &[code.as_str().into(), genesis.to_vec().into()],
            )?;
            append_audit(
                tx, self.now(),
                &code,
                &keys.audit,
                (0, &genesis),
                actor,
                "municipality.add",
                &format!("municipality:{code}"),
                Outcome::Ok,
            )
        })
    }

    fn municipalities(&self) -> Result<Vec<Municipality>, StoreError> {
        self.db.transaction(|tx| {
            tx.query(
                "SELECT municipality_code, name, kiosk FROM municipalities \
                 ORDER BY municipality_code",
                &[],
            )?
            .iter()
            .map(|r| {
                Ok(Municipality {
                    code: MunicipalityCode::parse(r.text(0)?)?,
                    name: r.text(1)?.to_owned(),
                    kiosk: r.int(2)? != 0,
                })
            })
            .collect()
        })
    }

    fn set_kiosk(&self, m: MunicipalityCode, on: bool, actor: &Actor) -> Result<(), StoreError> {
        let code = m.to_string();
        self.write(m, actor, "municipality.kiosk", |tx, _| {
            tx.execute(
                "UPDATE municipalities SET kiosk = $2 WHERE municipality_code = $1",
                &[code.as_str().into(), i64::from(on).into()],
            )?;
            let object = format!(
                "municipality:{code} kiosk:{}",
                if on { "on" } else { "off" }
            );
            Ok(((), object, Outcome::Ok))
        })
    }

    fn products(&self) -> Result<Vec<Product>, StoreError> {
        self.db
            .transaction(|tx| Ok(catalogue(tx)?.products().cloned().collect()))
    }

    fn database_clock(&self) -> Result<(i64, i64), StoreError> {
        let now = if B::NAME == "sqlite" {
            "SELECT CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)"
        } else {
            "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)"
        };
        self.db.transaction(|tx| {
            let at = tx
                .query_opt(now, &[])?
                .ok_or(StoreError::Corrupt("clock"))?
                .int(0)?;
            let version = tx
                .query_opt("SELECT MAX(version) FROM schema_migrations", &[])?
                .ok_or(StoreError::Corrupt("schema_migrations"))?
                .int(0)?;
            Ok((at, version))
        })
    }

    fn pool(&self) -> crate::PoolStatus {
        self.db.pool()
    }

    fn stats(&self, m: MunicipalityCode) -> Result<Stats, StoreError> {
        let code = m.to_string();
        self.db.transaction(|tx| {
            let count = |r: &Row, i| r.opt_int(i).map(|v| v.unwrap_or(0) as u64);
            let p = tx
                .query_opt(
                    "SELECT COUNT(*), COUNT(moved_out_on), COUNT(deceased_on), \
                     COALESCE(SUM(use_suspended), 0) FROM persons WHERE municipality_code = $1",
                    &[code.as_str().into()],
                )?
                .ok_or(StoreError::Corrupt("stats"))?;
            let v = tx
                .query_opt(
                    "SELECT COUNT(*) FROM vouchers WHERE municipality_code = $1",
                    &[code.as_str().into()],
                )?
                .ok_or(StoreError::Corrupt("stats"))?;
            let doses = tx
                .query(
                    "SELECT dose_number, COUNT(*) FROM doses WHERE municipality_code = $1 \
                     GROUP BY dose_number ORDER BY dose_number",
                    &[code.as_str().into()],
                )?
                .iter()
                .map(|r| {
                    Ok((
                        u32::try_from(r.int(0)?).map_err(|_| StoreError::Corrupt("dose number"))?,
                        count(r, 1)?,
                    ))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let versions = tx
                .query(
                    "SELECT key_version, COUNT(*) FROM persons WHERE municipality_code = $1 \
                     GROUP BY key_version ORDER BY key_version",
                    &[code.as_str().into()],
                )?
                .iter()
                .map(|r| {
                    Ok((
                        u32::try_from(r.int(0)?).map_err(|_| StoreError::Corrupt("key version"))?,
                        count(r, 1)?,
                    ))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(Stats {
                persons_by_key_version: versions,
                persons: count(&p, 0)?,
                vouchers: count(&v, 0)?,
                doses_by_number: doses,
                moved_out: count(&p, 1)?,
                deceased: count(&p, 2)?,
                use_suspended: count(&p, 3)?,
            })
        })
    }

    fn dose_counts(&self, m: MunicipalityCode) -> Result<Vec<crate::DoseCount>, StoreError> {
        use openvrs_domain::{aggregate::AgeGroup, sex::Sex};
        let code = m.to_string();
        let mut counts: std::collections::BTreeMap<(time::Date, u8, AgeGroup, u32), u64> =
            std::collections::BTreeMap::new();
        let mut after = String::new();
        loop {
            let last = self.db.transaction(|tx| {
                let tenant = self.tenant(tx, m)?;
                let keys = tenant.personal(m)?;
                let rows = tx.query(
                    "SELECT p.address_number, p.sex, p.birth_date_sealed, d.given_on, d.dose_number \
                     FROM persons p JOIN doses d ON d.municipality_code = p.municipality_code \
                     AND d.address_number = p.address_number \
                     WHERE p.municipality_code = $1 AND d.status = 'given' \
                     AND p.address_number IN (SELECT address_number FROM persons \
                     WHERE municipality_code = $1 AND address_number > $2 \
                     ORDER BY address_number LIMIT $3) \
                     ORDER BY p.address_number",
                    &[code.as_str().into(), after.as_str().into(), PAGE.into()],
                )?;
                let mut birth: Option<(String, Option<time::Date>)> = None;
                for r in &rows {
                    let a = r.text(0)?;
                    if birth.as_ref().is_none_or(|(b, _)| b != a) {
                        let text = open_text(keys, &code, "birth_date", a, r.bytes(2)?)?;
                        birth = Some((a.to_owned(), parse_date(&text).ok()));
                    }
                    let on = r.date(3)?;
                    let age = match birth.as_ref().and_then(|(_, b)| *b) {
                        Some(b) => AgeGroup::of(b, on),
                        None => AgeGroup::Unknown,
                    };
                    let sex = u8::try_from(r.int(1)?).map_err(|_| StoreError::Corrupt("sex"))?;
                    let number =
                        u32::try_from(r.int(4)?).map_err(|_| StoreError::Corrupt("dose number"))?;
                    *counts.entry((on, sex, age, number)).or_default() += 1;
                }
                // The last person of the page: the next page starts after them.
                tx.query_opt(
                    "SELECT MAX(address_number) FROM (SELECT address_number FROM persons \
                     WHERE municipality_code = $1 AND address_number > $2 \
                     ORDER BY address_number LIMIT $3) page",
                    &[code.as_str().into(), after.as_str().into(), PAGE.into()],
                )?
                .map(|r| r.opt_text(0).map(|t| t.map(str::to_owned)))
                .transpose()
                .map(Option::flatten)
            })?;
            match last {
                Some(l) => after = l,
                None => break,
            }
        }
        counts
            .into_iter()
            .map(|((date, sex, age, dose_number), count)| {
                Ok(crate::DoseCount {
                    date,
                    sex: Sex::from_iso5218(sex).ok_or(StoreError::Corrupt("sex"))?,
                    age,
                    dose_number,
                    count,
                })
            })
            .collect()
    }
}
