//! Store errors. Messages are Japanese first, then English, and never carry a personal value
//! (database errors keep only their code and primary message, never the detail with key values).

use openvrs_crypto::CryptoError;
use openvrs_domain::{Invalid, ids::MunicipalityCode};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "データベースがありません: {0}(`openvrs init` で作成します) / no database at {0} (create it with `openvrs init`)"
    )]
    NoDatabase(String),
    #[error("データベースURLが不正です / invalid database URL: {0}")]
    BadUrl(String),
    #[error("自治体 {0} は登録されていません / municipality {0} is not registered")]
    UnknownMunicipality(MunicipalityCode),
    #[error("自治体 {0} は既に登録されています / municipality {0} is already registered")]
    MunicipalityExists(MunicipalityCode),
    #[error(
        "自治体 {0} の鍵は削除済みです(暗号消去) / the keys of municipality {0} were destroyed (crypto-shredded)"
    )]
    Shredded(MunicipalityCode),
    #[error("該当するデータがありません / not found: {0}")]
    NotFound(&'static str),
    #[error("競合しています / conflict: {0}")]
    Conflict(&'static str),
    #[error("{0}")]
    Invalid(#[from] Invalid),
    #[error("{0}")]
    Crypto(#[from] CryptoError),
    #[error("保存データが不正です / stored data is malformed: {0}")]
    Corrupt(&'static str),
    #[error(
        "監査ログの検証に失敗しました: 第{seq}項 ({reason}) / audit log verification failed at entry {seq}: {reason}"
    )]
    AuditBroken { seq: i64, reason: &'static str },
    #[error(
        "データベースのスキーマ版 {found} はこのプログラム(版 {known})より新しいです / the database schema version {found} is newer than this program's ({known})"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error(
        "データベースのスキーマ版 {found} が古いです(版 {known} へは openvrs の起動時に移行します) / the database schema version {found} is older than this program's ({known}): openvrs migrates it when it starts"
    )]
    SchemaOld { found: i64, known: i64 },
    #[error("データベースエラー / database error: {0}")]
    Database(String),
    #[error("{}", quality_message(.0))]
    Quality(Vec<openvrs_domain::quality::Finding>),
    #[error(
        "{}件の行に誤りがあるため、何も書き込んでいません / nothing was written: {} rows have errors",
        .0.len(), .0.len()
    )]
    Rejected(Vec<crate::RowFinding>),
    #[error("書き出しに失敗しました / writing failed: {0}")]
    Sink(String),
    #[error("生年月日が一致しません / the date of birth does not match")]
    BirthDateMismatch,
    #[error(
        "データベースの接続がすべて使用中です。しばらくしてから再度お試しください / every database connection is in use: try again shortly"
    )]
    Busy,
    #[error(
        "Citus クラスタは openvrs backup では複製できません。各ノードの物理バックアップ(pg_basebackup と WAL アーカイブ)を同じ時点で取ってください / a Citus cluster cannot be copied by openvrs backup (the coordinator holds no rows): back up every node physically (pg_basebackup and WAL archiving) to one point in time"
    )]
    CitusBackup,
    #[error(
        "データベースに接続できません(再起動中か停止しています)。しばらくしてから再度お試しください / the database cannot be reached (restarting or down): try again shortly"
    )]
    Unavailable,
}

fn quality_message(findings: &[openvrs_domain::quality::Finding]) -> String {
    let ja: Vec<&str> = findings.iter().map(|f| f.rule.ja()).collect();
    let en: Vec<&str> = findings.iter().map(|f| f.rule.en()).collect();
    format!(
        "記録できません: {} / cannot record: {}",
        ja.join("、"),
        en.join("; ")
    )
}

pub(crate) const MY_NUMBER_TAKEN: &str =
    "この個人番号は別の宛名番号に登録済みです / this My Number belongs to another address number";
pub(crate) const VOUCHER_TAKEN: &str = "この券番号は別の宛名番号に登録済みです / this voucher number belongs to another address number";
pub(crate) const DUPLICATE_PERSON: &str =
    "同じ宛名番号が一度に複数回あります / the same address number appears twice in one batch";
pub const REPLAYED_APPLICATION: &str =
    "この申請は処理済みです(同じ申請の再送) / this application was answered already (a replay)";
const DUPLICATE_ROW: &str =
    "同じキーの行が一度に複数回あります / the same key appears twice in one batch";

/// Unique constraints, as each backend names them, and what a user should read.
const UNIQUE: [(&str, &str, &str); 4] = [
    (
        "persons_my_number",
        "persons.my_number_index",
        MY_NUMBER_TAKEN,
    ),
    ("vouchers_pkey", "vouchers.voucher_number", VOUCHER_TAKEN),
    ("persons_pkey", "persons.address_number", DUPLICATE_PERSON),
    (
        "certificates_application",
        "certificates.application",
        REPLAYED_APPLICATION,
    ),
];

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(f, Some(msg)) = &e
            && f.code == rusqlite::ErrorCode::ConstraintViolation
            && let Some((_, _, m)) = UNIQUE.iter().find(|(_, col, _)| msg.contains(col))
        {
            return StoreError::Conflict(m);
        }
        // rusqlite messages name tables and columns, never bound values.
        StoreError::Database(e.to_string())
    }
}

/// What Citus says when a worker is down or restarting.
const CITUS_WORKER_AWAY: [&str; 3] = [
    "failure on connection marked as essential",
    "connection to the remote node",
    "could not establish any connections to the node",
];

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        use postgres::error::SqlState;
        match e.as_db_error() {
            Some(db) if *db.code() == SqlState::UNIQUE_VIOLATION => {
                let name = db.constraint().unwrap_or_default();
                match UNIQUE.iter().find(|(c, _, _)| *c == name) {
                    Some((_, _, m)) => StoreError::Conflict(m),
                    None => StoreError::Conflict(DUPLICATE_ROW),
                }
            }
            Some(db) if *db.code() == SqlState::CARDINALITY_VIOLATION => {
                StoreError::Conflict(DUPLICATE_ROW)
            }
            // Connection exceptions (08) and operator intervention (57: shutdown, restart,
            // cannot connect now): the database is going away or coming back.
            Some(db) if matches!(db.code().code().get(..2), Some("08" | "57")) => {
                StoreError::Unavailable
            }
            // Citus reports a worker it cannot reach as an internal error, in fixed words.
            Some(db)
                if *db.code() == SqlState::INTERNAL_ERROR
                    && CITUS_WORKER_AWAY.iter().any(|m| db.message().contains(m)) =>
            {
                StoreError::Unavailable
            }
            // The detail of a PostgreSQL error can quote key values; keep code and message only.
            Some(db) => StoreError::Database(format!("{} {}", db.code().code(), db.message())),
            // A closed connection, or one that could not be made.
            None if e.is_closed()
                || std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>()) =>
            {
                StoreError::Unavailable
            }
            None => StoreError::Database(e.to_string()),
        }
    }
}
