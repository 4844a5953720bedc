//! Key rotation: a municipality's data key (its rows re-sealed in batches, online and resumable)
//! and the master key (every wrapped key and sealed secret rewrapped in one transaction, the data
//! untouched). Both are audited in the municipalities' chains.

use openvrs_crypto::{KeyKind, KeySlot, MasterKey};
use openvrs_domain::{
    audit::{Actor, Outcome},
    ids::MunicipalityCode,
};

use crate::{
    StoreError,
    engine::{Engine, key_slot, reseal},
    sql::{Backend, Tx, Value},
};

/// Where a data key rotation stands after [`Keys::begin_data_key_rotation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataKeyRotation {
    /// The version new values are sealed with, and every row will be.
    pub version: u32,
    /// Whether an interrupted rotation to this version was taken up again.
    pub resumed: bool,
}

/// One batch of [`Keys::reseal_batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResealBatch {
    /// Rows re-sealed with the current data key.
    pub resealed: u64,
    /// The last row looked at, to continue after; `None` at the end of the table.
    pub next: Option<String>,
}

impl<B: Backend> Engine<B> {
    /// Forgets the cached keys of `m` (they are read again, under the current master key).
    fn forget(&self, m: MunicipalityCode) {
        self.tenants
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&m);
    }

    /// Appends the same entry to every registered municipality's chain (deployment-wide acts:
    /// master and signing keys).
    pub(crate) fn audit_everywhere(
        &self,
        tx: &mut dyn Tx,
        actor: &Actor,
        action: &str,
        object: &str,
    ) -> Result<(), StoreError> {
        for m in municipality_codes(tx)? {
            self.write_in(tx, m, actor, action, |_, _| {
                Ok(((), object.to_owned(), Outcome::Ok))
            })?;
        }
        Ok(())
    }
}

/// Every registered municipality, in code order (the national reference table).
fn municipality_codes(tx: &mut dyn Tx) -> Result<Vec<MunicipalityCode>, StoreError> {
    tx.query(
        "SELECT municipality_code FROM municipalities ORDER BY municipality_code",
        &[],
    )?
    .iter()
    .map(|r| {
        MunicipalityCode::parse(r.text(0)?).map_err(|_| StoreError::Corrupt("municipality code"))
    })
    .collect()
}

/// Municipality keys: crypto-shredding, data-key rotation, the master key's rewrap and check.
pub trait Keys: Send + Sync {
    /// Crypto-shredding: destroys the municipality's data and index keys, so none of its
    /// personal data can be read again. The audit chain stays verifiable.
    fn shred(&self, m: MunicipalityCode, actor: &Actor) -> Result<(), StoreError>;

    /// Starts rotating `m`'s data key: a new version that new values are sealed with from now
    /// on (audited `keys.data.rotate`); takes up an interrupted rotation instead of starting
    /// another. Then [`reseal_batch`](Self::reseal_batch) until the end of the table, then
    /// [`finish_data_key_rotation`](Self::finish_data_key_rotation).
    fn begin_data_key_rotation(
        &self,
        m: MunicipalityCode,
        actor: &Actor,
    ) -> Result<DataKeyRotation, StoreError>;

    /// Re-seals with the current data key up to `limit` rows of `m` after the row `after` (""
    /// for the first), in a transaction of its own, without holding up other writers.
    fn reseal_batch(
        &self,
        m: MunicipalityCode,
        after: &str,
        limit: u32,
    ) -> Result<ResealBatch, StoreError>;

    /// Destroys `m`'s older data keys when no row needs them any more (audited); `false`, with
    /// nothing done, while some still does (written meanwhile: run the batches again).
    fn finish_data_key_rotation(
        &self,
        m: MunicipalityCode,
        actor: &Actor,
    ) -> Result<bool, StoreError>;

    /// Rewraps every municipality key and sealed signing key under `new` in one transaction
    /// (audited in every municipality's chain); the data is not touched. Returns the keys
    /// rewrapped. This store's own master key is the old one: reopen with the new one.
    fn rewrap_master_key(&self, new: &MasterKey, actor: &Actor) -> Result<u64, StoreError>;

    /// Fails with a decryption error unless the store's master key opens what is stored.
    fn check_master_key(&self) -> Result<(), StoreError>;
}

impl<B: Backend> Keys for Engine<B> {
    fn shred(&self, m: MunicipalityCode, actor: &Actor) -> Result<(), StoreError> {
        self.write(m, actor, "municipality.shred", |tx, _| {
            tx.execute(
                "DELETE FROM tenant_keys WHERE municipality_code = $1 AND kind IN ('data', 'index')",
                &[m.to_string().into()],
            )?;
            Ok(((), format!("municipality:{m}"), Outcome::Ok))
        })?;
        // The unwrapped keys must not outlive their wrapped copies.
        self.tenants
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&m);
        Ok(())
    }

    fn begin_data_key_rotation(
        &self,
        m: MunicipalityCode,
        actor: &Actor,
    ) -> Result<DataKeyRotation, StoreError> {
        let code = m.to_string();
        let began = self.write(m, actor, "keys.data.rotate", |tx, tenant| {
            let keys = tenant.personal(m)?;
            if !keys.data_retiring.is_empty() {
                let r = DataKeyRotation {
                    version: keys.data_version,
                    resumed: true,
                };
                return Ok((r, format!("data key v{} (resumed)", r.version), Outcome::Ok));
            }
            let version = keys.data_version + 1;
            let key = openvrs_crypto::Key::random();
            let slot = KeySlot {
                municipality: &code,
                kind: KeyKind::Data,
                version,
            };
            tx.execute(
                "INSERT INTO tenant_keys (municipality_code, kind, version, wrapped, created_at) \
                 VALUES ($1, 'data', $2, $3, $4)",
                &[
                    code.as_str().into(),
                    i64::from(version).into(),
                    self.master().wrap(&slot, &key).into(),
                    self.now().into(),
                ],
            )?;
            let r = DataKeyRotation {
                version,
                resumed: false,
            };
            Ok((r, format!("data key v{version} (begun)"), Outcome::Ok))
        })?;
        self.forget(m);
        Ok(began)
    }

    /// Re-seals up to `limit` rows after `after` whose key version is not the current one. No
    /// lock is taken: a row is rewritten only if it still holds what was read (same version,
    /// same content digest), so a writer's change in between is never lost - the row is simply
    /// left for the next pass.
    fn reseal_batch(
        &self,
        m: MunicipalityCode,
        after: &str,
        limit: u32,
    ) -> Result<ResealBatch, StoreError> {
        let code = m.to_string();
        self.db.transaction(|tx| {
            let tenant = self.tenant(tx, m)?;
            let keys = tenant.personal(m)?;
            let current = i64::from(keys.data_version);
            let rows = tx.query(
                "SELECT address_number, name_sealed, name_kana_sealed, birth_date_sealed, \
                 my_number_sealed, key_version, content_digest FROM persons \
                 WHERE municipality_code = $1 AND address_number > $2 \
                 ORDER BY address_number LIMIT $3",
                &[code.as_str().into(), after.into(), i64::from(limit).into()],
            )?;
            let mut resealed = 0;
            for row in &rows {
                if row.int(5)? == current {
                    continue;
                }
                let address = row.text(0)?;
                let mut values: Vec<Value> = Vec::with_capacity(4);
                for (i, column) in [(1, "name"), (2, "name_kana"), (3, "birth_date")] {
                    values.push(reseal(keys, &code, column, address, row.bytes(i)?)?.into());
                }
                values.push(
                    row.opt_bytes(4)?
                        .map(|s| reseal(keys, &code, "my_number", address, s))
                        .transpose()?
                        .into(),
                );
                resealed += tx.execute(
                    "UPDATE persons SET name_sealed = $3, name_kana_sealed = $4, \
                     birth_date_sealed = $5, my_number_sealed = $6, key_version = $7 \
                     WHERE municipality_code = $1 AND address_number = $2 \
                     AND key_version = $8 AND content_digest = $9",
                    &[
                        code.as_str().into(),
                        address.into(),
                        values[0].clone(),
                        values[1].clone(),
                        values[2].clone(),
                        values[3].clone(),
                        current.into(),
                        row.int(5)?.into(),
                        row.bytes(6)?.to_vec().into(),
                    ],
                )?;
            }
            let next = (rows.len() as u32 == limit)
                .then(|| rows.last().map(|r| r.text(0).map(str::to_owned)))
                .flatten()
                .transpose()?;
            Ok(ResealBatch { resealed, next })
        })
    }

    /// Retires the older data keys once no row needs them; `false` (and nothing done) while
    /// some row still does. Holds the audit head's lock, which every writer takes before it
    /// reads the keys, so no value sealed with an older key can appear after this.
    fn finish_data_key_rotation(
        &self,
        m: MunicipalityCode,
        actor: &Actor,
    ) -> Result<bool, StoreError> {
        let code = m.to_string();
        let finished = self.db.transaction(|tx| {
            self.lock_heads(tx, [m])?;
            let tenant = self.tenant(tx, m)?;
            let keys = tenant.personal(m)?;
            let current = keys.data_version;
            let left = tx
                .query_opt(
                    "SELECT COUNT(*) FROM persons WHERE municipality_code = $1 AND key_version <> $2",
                    &[code.as_str().into(), i64::from(current).into()],
                )?
                .ok_or(StoreError::Corrupt("count"))?
                .int(0)?;
            if left > 0 {
                return Ok(false);
            }
            let retired: Vec<String> = keys
                .data_retiring
                .iter()
                .map(|(v, _)| format!("v{v}"))
                .collect();
            self.write_in(tx, m, actor, "keys.data.rotate", |tx, _| {
                tx.execute(
                    "DELETE FROM tenant_keys WHERE municipality_code = $1 AND kind = 'data' \
                     AND version < $2",
                    &[code.as_str().into(), i64::from(current).into()],
                )?;
                let object = format!(
                    "data key v{current} (finished; destroyed {})",
                    if retired.is_empty() {
                        "none".to_owned()
                    } else {
                        retired.join(", ")
                    }
                );
                Ok(((), object, Outcome::Ok))
            })?;
            Ok(true)
        })?;
        self.forget(m);
        Ok(finished)
    }

    /// Rewraps every municipality key and sealed deployment secret under `new`, in one
    /// transaction, municipality by municipality (each one's audit entry first, while its keys
    /// still open under the old master key).
    fn rewrap_master_key(&self, new: &MasterKey, actor: &Actor) -> Result<u64, StoreError> {
        let count = self.db.transaction(|tx| {
            let secrets = tx.query("SELECT kind, kid, sealed FROM signing_keys", &[])?;
            let mut count = secrets.len() as u64;
            for m in municipality_codes(tx)? {
                let code = m.to_string();
                let keys = tx.query(
                    "SELECT kind, version, wrapped FROM tenant_keys WHERE municipality_code = $1",
                    &[code.as_str().into()],
                )?;
                let object = format!(
                    "master key (rewrapped {} keys of the municipality and {} signing keys)",
                    keys.len(),
                    secrets.len()
                );
                self.write_in(tx, m, actor, "keys.master.rotate", |_, _| {
                    Ok(((), object, Outcome::Ok))
                })?;
                for row in &keys {
                    let slot = key_slot(&code, row, 0)?;
                    let key = self.master().unwrap(&slot, row.bytes(2)?)?;
                    tx.execute(
                        "UPDATE tenant_keys SET wrapped = $4 WHERE municipality_code = $1 \
                         AND kind = $2 AND version = $3",
                        &[
                            code.as_str().into(),
                            slot.kind.code().into(),
                            i64::from(slot.version).into(),
                            new.wrap(&slot, &key).into(),
                        ],
                    )?;
                }
                count += keys.len() as u64;
            }
            for row in &secrets {
                let (kind, kid) = (row.text(0)?, row.text(1)?);
                let slot = crate::signing::slot(kind, kid);
                let secret = self.master().open_secret(&slot, row.bytes(2)?)?;
                tx.execute(
                    "UPDATE signing_keys SET sealed = $3 WHERE kind = $1 AND kid = $2",
                    &[
                        kind.into(),
                        kid.into(),
                        new.seal_secret(&slot, &secret).into(),
                    ],
                )?;
            }
            Ok(count)
        })?;
        self.tenants
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        Ok(count)
    }

    /// Whether the master key opens what is stored: the first municipality's first wrapped key
    /// or, before any municipality exists, the first sealed secret. An empty database accepts
    /// any key.
    fn check_master_key(&self) -> Result<(), StoreError> {
        self.db.transaction(|tx| {
            let first = municipality_codes(tx)?.into_iter().next();
            let wrapped = match first {
                Some(m) => tx.query_opt(
                    "SELECT kind, version, wrapped FROM tenant_keys WHERE municipality_code = $1 \
                     ORDER BY kind, version LIMIT 1",
                    &[m.to_string().into()],
                )?,
                None => None,
            };
            if let (Some(m), Some(row)) = (first, wrapped) {
                let code = m.to_string();
                self.master()
                    .unwrap(&key_slot(&code, &row, 0)?, row.bytes(2)?)?;
            } else if let Some(row) = tx.query_opt(
                "SELECT kind, kid, sealed FROM signing_keys ORDER BY kind, kid LIMIT 1",
                &[],
            )? {
                let slot = crate::signing::slot(row.text(0)?, row.text(1)?);
                self.master().open_secret(&slot, row.bytes(2)?)?;
            }
            Ok(())
        })
    }
}
