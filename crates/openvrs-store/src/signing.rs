//! The deployment's certificate signing keys: private parts sealed under the master key,
//! public parts kept (and published) after rotation.

use openvrs_domain::audit::Actor;

use crate::{SigningKeyInfo, StoreError, engine::Engine, sql::Backend};

pub(crate) fn slot(kind: &str, kid: &str) -> String {
    format!("signing/{kind}/{kid}")
}

impl<B: Backend> Engine<B> {}

/// The deployment's certificate signing keys, sealed under the master key.
pub trait SigningKeys: Send + Sync {
    /// Adds the deployment's new signing key of `kind` (`shc`, ...): the private part sealed
    /// under the master key; the key of that kind in use so far is retired (still published).
    /// Audited `keys.signing.add` in every municipality's chain.
    fn add_signing_key(
        &self,
        kind: &str,
        kid: &str,
        public_part: &str,
        secret: &[u8],
        actor: &Actor,
    ) -> Result<(), StoreError>;

    /// Every signing key of `kind`, newest first.
    fn signing_keys(&self, kind: &str) -> Result<Vec<SigningKeyInfo>, StoreError>;

    /// The signing key of `kind` in use: its kid and private part.
    fn active_signing_key(&self, kind: &str) -> Result<Option<crate::ActiveKey>, StoreError>;
}

impl<B: Backend> SigningKeys for Engine<B> {
    fn add_signing_key(
        &self,
        kind: &str,
        kid: &str,
        public_part: &str,
        secret: &[u8],
        actor: &openvrs_domain::audit::Actor,
    ) -> Result<(), StoreError> {
        let sealed = self.master().seal_secret(&slot(kind, kid), secret);
        let now = self.now();
        self.db.transaction(|tx| {
            tx.execute(
                "UPDATE signing_keys SET retired_at = $2 WHERE kind = $1 AND retired_at IS NULL",
                &[kind.into(), now.into()],
            )?;
            tx.execute(
                "INSERT INTO signing_keys (kind, kid, public_part, sealed, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    kind.into(),
                    kid.into(),
                    public_part.into(),
                    sealed.clone().into(),
                    now.into(),
                ],
            )?;
            self.audit_everywhere(tx, actor, "keys.signing.add", &format!("{kind} key {kid}"))
        })
    }

    fn signing_keys(&self, kind: &str) -> Result<Vec<SigningKeyInfo>, StoreError> {
        self.db.transaction(|tx| {
            tx.query(
                "SELECT kind, kid, public_part, created_at, retired_at FROM signing_keys \
                 WHERE kind = $1 ORDER BY created_at DESC, kid",
                &[kind.into()],
            )?
            .iter()
            .map(|r| {
                Ok(SigningKeyInfo {
                    kind: r.text(0)?.to_owned(),
                    kid: r.text(1)?.to_owned(),
                    public_part: r.text(2)?.to_owned(),
                    created_at: r.int(3)?,
                    retired_at: r.opt_int(4)?,
                })
            })
            .collect()
        })
    }

    fn active_signing_key(&self, kind: &str) -> Result<Option<crate::ActiveKey>, StoreError> {
        let row = self.db.transaction(|tx| {
            tx.query_opt(
                "SELECT kid, sealed FROM signing_keys WHERE kind = $1 AND retired_at IS NULL",
                &[kind.into()],
            )?
            .map(|r| Ok((r.text(0)?.to_owned(), r.bytes(1)?.to_vec())))
            .transpose()
        })?;
        row.map(|(kid, sealed)| {
            let secret = self.master().open_secret(&slot(kind, &kid), &sealed)?;
            Ok((kid, secret))
        })
        .transpose()
    }
}
