//! Issued certificates: the municipality's record of each (never its content) and the
//! deployment's revocation lists.

use openvrs_domain::{
    audit::{Actor, Outcome},
    certificate::{Channel, Format, Kind},
    ids::{AddressNumber, MunicipalityCode},
};

use crate::{
    CertificateRecord, StoreError,
    engine::Engine,
    records::reason,
    sql::{Backend, Row, Tx},
};

const COLUMNS: &str = "certificate_id, address_number, kind, format, channel, kid, rid, \
                       issued_at, issued_by, revoked_at, revoked_by, revocation_reason, \
                       application";

fn from_row(r: &Row) -> Result<CertificateRecord, StoreError> {
    Ok(CertificateRecord {
        id: r.text(0)?.to_owned(),
        address_number: AddressNumber::parse(r.text(1)?)?,
        kind: Kind::from_code(r.text(2)?).ok_or(StoreError::Corrupt("certificate kind"))?,
        format: Format::from_code(r.text(3)?).ok_or(StoreError::Corrupt("certificate format"))?,
        channel: Channel::from_code(r.text(4)?)
            .ok_or(StoreError::Corrupt("certificate channel"))?,
        kid: r.text(5)?.to_owned(),
        rid: r.opt_text(6)?.map(str::to_owned),
        issued_at: r.int(7)?,
        issued_by: r.text(8)?.to_owned(),
        revoked_at: r.opt_int(9)?,
        revoked_by: r.opt_text(10)?.map(str::to_owned),
        revocation_reason: r.opt_text(11)?.map(str::to_owned),
        application: r.opt_text(12)?.map(str::to_owned),
    })
}

fn one(tx: &mut dyn Tx, code: &str, id: &str) -> Result<Option<CertificateRecord>, StoreError> {
    tx.query_opt(
        &format!(
            "SELECT {COLUMNS} FROM certificates WHERE municipality_code = $1 AND certificate_id = $2"
        ),
        &[code.into(), id.into()],
    )?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// The certificates `m` issued (to one person, when given), newest first.
pub(crate) fn certificates_in(
    tx: &mut dyn Tx,
    m: MunicipalityCode,
    address: Option<&AddressNumber>,
) -> Result<Vec<CertificateRecord>, StoreError> {
    tx.query(
        &format!(
            "SELECT {COLUMNS} FROM certificates WHERE municipality_code = $1 \
             AND ($2 = '' OR address_number = $2) ORDER BY issued_at DESC, certificate_id"
        ),
        &[
            m.to_string().into(),
            address.map_or("", AddressNumber::as_str).into(),
        ],
    )?
    .iter()
    .map(from_row)
    .collect()
}

impl<B: Backend> Engine<B> {}

/// Issued certificates (records, never their content) and revocations.
pub trait Certificates: Send + Sync {
    /// Records an issued certificate for a person of `m` (audited `certificate.issue`); the
    /// store sets when and by whom. Returns the record as stored.
    fn record_certificate(
        &self,
        m: MunicipalityCode,
        certificate: &CertificateRecord,
        actor: &Actor,
    ) -> Result<CertificateRecord, StoreError>;

    /// The certificates `m` issued (to one person, when given), newest first.
    fn certificates(
        &self,
        m: MunicipalityCode,
        address: Option<&AddressNumber>,
    ) -> Result<Vec<CertificateRecord>, StoreError>;

    /// Revokes a certificate of `m` with the reason (audited); its revocation id, if it has
    /// one, joins the published list of its key.
    fn revoke_certificate(
        &self,
        m: MunicipalityCode,
        id: &str,
        reason: &str,
        actor: &Actor,
    ) -> Result<CertificateRecord, StoreError>;

    /// The revoked ids of a SMART Health Card key, with when (Unix microseconds), oldest first.
    fn revocations(&self, kid: &str) -> Result<Vec<(String, i64)>, StoreError>;
}

impl<B: Backend> Certificates for Engine<B> {
    fn record_certificate(
        &self,
        m: MunicipalityCode,
        c: &CertificateRecord,
        actor: &Actor,
    ) -> Result<CertificateRecord, StoreError> {
        let code = m.to_string();
        let a = c.address_number.as_str();
        self.write(m, actor, "certificate.issue", |tx, _| {
            let exists = tx
                .query_opt(
                    "SELECT 1 FROM persons WHERE municipality_code = $1 AND address_number = $2",
                    &[code.as_str().into(), a.into()],
                )?
                .is_some();
            if !exists {
                return Err(StoreError::NotFound("person"));
            }
            if one(tx, &code, &c.id)?.is_some() {
                return Err(StoreError::Conflict("certificate id"));
            }
            if let Some(application) = &c.application {
                let seen = tx.query_opt(
                    "SELECT 1 FROM certificates WHERE municipality_code = $1 AND application = $2",
                    &[code.as_str().into(), application.as_str().into()],
                )?;
                if seen.is_some() {
                    return Err(StoreError::Conflict(crate::error::REPLAYED_APPLICATION));
                }
            }
            let stored = CertificateRecord {
                issued_at: self.now(),
                issued_by: actor.user.clone(),
                revoked_at: None,
                revoked_by: None,
                revocation_reason: None,
                ..c.clone()
            };
            tx.execute(
                &format!(
                    "INSERT INTO certificates (municipality_code, {COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL, NULL, $11)"
                ),
                &[
                    code.as_str().into(),
                    stored.id.as_str().into(),
                    a.into(),
                    stored.kind.code().into(),
                    stored.format.code().into(),
                    stored.channel.code().into(),
                    stored.kid.as_str().into(),
                    stored.rid.clone().into(),
                    stored.issued_at.into(),
                    stored.issued_by.as_str().into(),
                    stored.application.clone().into(),
                ],
            )?;
            let object = format!(
                "person:{a} certificate:{} {}/{}/{}",
                stored.id,
                stored.kind.code(),
                stored.format.code(),
                stored.channel.code()
            );
            Ok((stored, object, Outcome::Ok))
        })
    }

    fn certificates(
        &self,
        m: MunicipalityCode,
        address: Option<&AddressNumber>,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        self.db.transaction(|tx| certificates_in(tx, m, address))
    }

    fn revoke_certificate(
        &self,
        m: MunicipalityCode,
        id: &str,
        why: &str,
        actor: &Actor,
    ) -> Result<CertificateRecord, StoreError> {
        let why = reason(why)?;
        let code = m.to_string();
        self.write(m, actor, "certificate.revoke", |tx, _| {
            let mut c = one(tx, &code, id)?.ok_or(StoreError::NotFound("certificate"))?;
            if c.revoked_at.is_some() {
                return Err(StoreError::Conflict("the certificate is revoked already"));
            }
            let now = self.now();
            tx.execute(
                "UPDATE certificates SET revoked_at = $3, revoked_by = $4, revocation_reason = $5 \
                 WHERE municipality_code = $1 AND certificate_id = $2",
                &[
                    code.as_str().into(),
                    id.into(),
                    now.into(),
                    actor.user.as_str().into(),
                    why.as_str().into(),
                ],
            )?;
            if let Some(rid) = &c.rid {
                tx.execute(
                    "INSERT INTO revocations (kid, rid, revoked_at) VALUES ($1, $2, $3)",
                    &[c.kid.as_str().into(), rid.as_str().into(), now.into()],
                )?;
            }
            let object = format!("person:{} certificate:{id}", c.address_number);
            c.revoked_at = Some(now);
            c.revoked_by = Some(actor.user.clone());
            c.revocation_reason = Some(why);
            Ok((c, object, Outcome::Ok))
        })
    }

    fn revocations(&self, kid: &str) -> Result<Vec<(String, i64)>, StoreError> {
        self.db.transaction(|tx| {
            tx.query(
                "SELECT rid, revoked_at FROM revocations WHERE kid = $1 ORDER BY revoked_at, rid",
                &[kid.into()],
            )?
            .iter()
            .map(|r| Ok((r.text(0)?.to_owned(), r.int(1)?)))
            .collect()
        })
    }
}
