//! Each municipality's operation log: reading, searching and verifying its hash chain.

use openvrs_domain::ids::MunicipalityCode;

use crate::{
    AuditEntry, AuditFilter, AuditHead, StoreError,
    engine::{Engine, audit_entry, entry_link, read_audit},
    sql::{Backend, Value},
};

/// Each municipality's operation log: reading, searching and verifying its hash chain.
pub trait Audit: Send + Sync {
    fn audit_log(&self, m: MunicipalityCode) -> Result<Vec<AuditEntry>, StoreError>;

    /// The newest entries of `m`'s log that match `filter`, at most `limit`, newest first.
    fn audit_search(
        &self,
        m: MunicipalityCode,
        filter: &AuditFilter,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError>;

    /// Checks the whole chain; the error names the first bad entry.
    fn verify_audit(&self, m: MunicipalityCode) -> Result<AuditHead, StoreError>;
}

impl<B: Backend> Audit for Engine<B> {
    fn audit_log(&self, m: MunicipalityCode) -> Result<Vec<AuditEntry>, StoreError> {
        self.db
            .transaction(|tx| read_audit(tx, &m.to_string()))
            .map(|rows| rows.into_iter().map(|(e, _)| e).collect())
    }

    fn audit_search(
        &self,
        m: MunicipalityCode,
        filter: &crate::AuditFilter,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut sql = String::from(
            "SELECT seq, at, actor, role, zone, action, object, outcome, link FROM audit_log \
             WHERE municipality_code = $1",
        );
        let mut args: Vec<Value> = vec![m.to_string().into()];
        let mut arg = |sql: &mut String, clause: &str, value: Value| {
            args.push(value);
            sql.push_str(&clause.replace('?', &format!("${}", args.len())));
        };
        if let Some(a) = &filter.person {
            // "person:<a>" and "person:<a> ...", not "person:<a>0": the range up to "!" (the
            // byte after the space), compared byte by byte.
            let from = format!("person:{a}");
            let to = format!("person:{a}!");
            let by = B::BYTE_ORDER;
            arg(&mut sql, &format!(" AND object{by} >= ?"), from.into());
            arg(&mut sql, &format!(" AND object{by} < ?"), to.into());
        }
        if let Some(actor) = &filter.actor {
            arg(&mut sql, " AND actor = ?", actor.as_str().into());
        }
        if let Some(action) = &filter.action {
            let by = B::BYTE_ORDER;
            arg(
                &mut sql,
                &format!(" AND action{by} >= ?"),
                action.as_str().into(),
            );
            arg(
                &mut sql,
                &format!(" AND action{by} < ?"),
                format!("{action}\u{10ffff}").into(),
            );
        }
        if let Some(before) = filter.before {
            arg(&mut sql, " AND seq < ?", before.into());
        }
        arg(
            &mut sql,
            " ORDER BY seq DESC LIMIT ?",
            i64::from(limit).into(),
        );
        self.db.transaction(|tx| {
            tx.query(&sql, &args)?
                .iter()
                .map(|r| audit_entry(r).map(|(e, _)| e))
                .collect()
        })
    }

    fn verify_audit(&self, m: MunicipalityCode) -> Result<AuditHead, StoreError> {
        self.db.transaction(|tx| {
            let tenant = self.tenant(tx, m)?;
            let code = m.to_string();
            let entries = read_audit(tx, &code)?;
            let head = tx
                .query_opt(
                    "SELECT seq, link FROM audit_heads WHERE municipality_code = $1",
                    &[code.as_str().into()],
                )?
                .ok_or(StoreError::Corrupt("missing audit head"))?;
            let mut prev = [0u8; 32];
            for (i, (entry, link)) in entries.iter().enumerate() {
                let expected_seq = i as i64 + 1;
                if entry.seq != expected_seq {
                    return Err(StoreError::AuditBroken {
                        seq: expected_seq,
                        reason: "missing or out of sequence / 欠落または順序不正",
                    });
                }
                let computed = entry_link(&tenant.audit, &code, &prev, entry);
                if computed.as_slice() != link.as_slice() {
                    return Err(StoreError::AuditBroken {
                        seq: entry.seq,
                        reason: "link does not match: modified, inserted or reordered / 改ざん・挿入・並べ替え",
                    });
                }
                prev = computed;
            }
            let last = entries.len() as i64;
            if head.int(0)? != last || head.bytes(1)? != prev.as_slice() {
                return Err(StoreError::AuditBroken {
                    seq: last.min(head.int(0)?) + 1,
                    reason: "the chain does not end at the recorded head: entries removed or added at the end / 末尾の削除または追加",
                });
            }
            Ok(AuditHead {
                seq: last,
                link: prev.iter().map(|b| format!("{b:02x}")).collect(),
            })
        })
    }
}
