//! The store of openvrs: one [`Store`] trait, tenant-scoped, on embedded SQLite (the default) or
//! on PostgreSQL.
//!
//! Every method that touches a municipality's data takes its [`MunicipalityCode`]: a query
//! without a tenant cannot be written. Personal fields are sealed with the municipality's data
//! key before they reach SQL, a My Number is found through its keyed index, and every change (and
//! every read of personal data) appends to the municipality's hash-chained audit log in the same
//! transaction. The logic lives once in `engine.rs`; the backends only run SQL.

use std::{path::PathBuf, sync::Arc};

use openvrs_crypto::MasterKey;
use openvrs_domain::{
    account::UserId,
    audit::{Outcome, Role, Zone},
    dose::Dose,
    ids::{AddressNumber, MunicipalityCode, MyNumber, VoucherNumber},
    person::{FlagChange, Person},
    quality::{Finding, Severity},
};

mod accounts;
mod audit;
pub mod bench;
mod certificates;
mod citus;
pub use citus::MIGRATION_LOCK;
mod engine;
mod error;
mod inquiries;
mod keys;
mod municipalities;
mod persons;
mod pg_tls;
mod postgres;
mod records;
mod signing;
mod sql;
mod sqlite;
mod tablets;

pub use accounts::{Accounts, CountDelta};
pub use audit::Audit;
pub use certificates::Certificates;
pub use engine::SystemClock;
pub use error::{REPLAYED_APPLICATION, StoreError};
pub use inquiries::Inquiries;
pub use keys::Keys;
pub use keys::{DataKeyRotation, ResealBatch};
pub use municipalities::Municipalities;
pub use persons::Persons;
pub use postgres::{PgSnapshot, export_snapshot as postgres_snapshot};
pub use records::Records;
pub use signing::SigningKeys;
pub use sqlite::snapshot as sqlite_snapshot;
pub use tablets::Tablets;

/// The schema version this program writes (its last migration).
pub fn schema_version() -> i64 {
    use sql::Backend as _;
    sqlite::Sqlite::MIGRATIONS.last().map_or(0, |(v, _)| *v)
}

/// A registered municipality (national reference data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Municipality {
    pub code: MunicipalityCode,
    pub name: String,
    /// Offers certificates at convenience-store kiosks (コンビニ交付).
    pub kiosk: bool,
}

/// What [`Persons::put_persons`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PutSummary {
    /// Persons new to the municipality.
    pub inserted: u64,
    /// Persons whose identity or flags changed.
    pub updated: u64,
    pub unchanged: u64,
    /// Vouchers added or changed.
    pub vouchers_written: u64,
}

/// The database connections of a store, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatus {
    /// In a transaction now.
    pub in_use: usize,
    /// Open and waiting for work.
    pub idle: usize,
    /// Transactions waiting for a connection (SQLite's one writer).
    pub waiting: usize,
}

/// Counts of one municipality, for operators and for checking imports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub persons: u64,
    pub vouchers: u64,
    /// (dose number, doses recorded), in dose order.
    pub doses_by_number: Vec<(u32, u64)>,
    pub moved_out: u64,
    pub deceased: u64,
    pub use_suspended: u64,
    /// (data key version, persons sealed with it): one entry, except while the data key is
    /// being rotated.
    pub persons_by_key_version: Vec<(u32, u64)>,
}

/// A dose as stored, with its id, version, and when and by whom it was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDose {
    pub id: i64,
    /// 1 when recorded, one more at each correction.
    pub version: i64,
    pub dose: Dose,
    /// Unix time in microseconds (the ledger's 接種履歴登録日時).
    pub recorded_at: i64,
    pub recorded_by: String,
}

/// A dose write that passed the rules, and the warnings staff should look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoseWritten {
    pub id: i64,
    pub warnings: Vec<Finding>,
}

/// Why an earlier version of a dose was replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoseChange {
    Corrected,
    Deleted,
}

impl DoseChange {
    pub fn code(self) -> &'static str {
        match self {
            DoseChange::Corrected => "corrected",
            DoseChange::Deleted => "deleted",
        }
    }
}

/// An earlier version of a dose: what it was, and who replaced it, when and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoseVersion {
    pub was: StoredDose,
    pub change: DoseChange,
    pub reason: String,
    /// Unix time in microseconds.
    pub changed_at: i64,
    pub changed_by: String,
}

/// A correction, flag change or suspension of a person: which fields, never their values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonChange {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    /// `correct`, `flags`.
    pub kind: String,
    pub fields: Vec<String>,
    pub reason: String,
}

/// A change of flags for one person, from a row of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagUpdate {
    pub row: u64,
    pub address: AddressNumber,
    pub change: FlagChange,
    pub reason: String,
}

/// One row of a ledger file to import: the person and their doses, with the registration time
/// the file gives (unix microseconds) where it gives one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRecord {
    /// The row number in the file (1 = the header).
    pub row: u64,
    pub address: AddressNumber,
    pub doses: Vec<(Dose, Option<i64>)>,
}

/// A rule or a lookup that failed for one row of a file, in words (日本語 / English).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowFinding {
    pub row: u64,
    /// The dose block, where the finding is about one dose.
    pub dose_number: Option<u32>,
    pub severity: Severity,
    pub code: &'static str,
    pub message: String,
}

impl std::fmt::Display for RowFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}行目", self.row)?;
        if let Some(n) = self.dose_number {
            write!(f, " {n}回目")?;
        }
        write!(f, ": {}", self.message)?;
        write!(f, " (row {}", self.row)?;
        if let Some(n) = self.dose_number {
            write!(f, ", dose {n}")?;
        }
        f.write_str(")")
    }
}

/// Receives each person of a ledger export with their current doses.
pub type LedgerSink<'a> = dyn FnMut(&AddressNumber, &[StoredDose]) -> Result<(), StoreError> + 'a;

/// What a ledger import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerSummary {
    pub rows: u64,
    pub inserted: u64,
    pub unchanged: u64,
    pub warnings: Vec<RowFinding>,
}

/// One line of a data-quality report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualityLine {
    pub address: AddressNumber,
    pub dose_id: i64,
    pub dose_number: u32,
    pub finding: Finding,
}

/// A dose as a venue tablet sends it: the voucher from the OCR line, the date of birth from
/// the paper form (the second factor a misread cannot fake), the dose (its number from the OCR
/// line), and the device's idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TabletRecord {
    pub voucher: VoucherNumber,
    pub birth_date: time::Date,
    pub dose: Dose,
    pub idempotency_key: String,
}

/// What became of a tablet's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TabletOutcome {
    /// Written as a new dose.
    Recorded,
    /// The same dose was already recorded the same way: nothing written.
    AlreadyRecorded,
    /// The dose is recorded differently: queued for the municipality's staff, nothing
    /// overwritten.
    Conflict,
}

impl TabletOutcome {
    pub fn code(self) -> &'static str {
        match self {
            TabletOutcome::Recorded => "recorded",
            TabletOutcome::AlreadyRecorded => "already_recorded",
            TabletOutcome::Conflict => "conflict",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        [Self::Recorded, Self::AlreadyRecorded, Self::Conflict]
            .into_iter()
            .find(|o| o.code() == code)
    }
}

/// The answer to a tablet: only what the operator needs to confirm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TabletAnswer {
    pub outcome: TabletOutcome,
    /// The dose id, or the conflict id.
    pub id: i64,
    pub dose_number: u32,
    /// `ウ** タ**`: never the full name.
    pub masked_name: String,
    pub warnings: Vec<Finding>,
    /// The same idempotency key was seen before: this is the first answer again.
    pub replayed: bool,
}

/// A tablet's record waiting for staff, next to the dose it disagrees with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoseConflict {
    pub id: i64,
    pub address: AddressNumber,
    pub existing_dose_id: i64,
    pub proposed: Dose,
    pub device: String,
    /// Unix time in microseconds.
    pub at: i64,
}

/// Everything held about one person (開示): identity, flags, doses with their history, changes,
/// and the operation-log entries that name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disclosure {
    pub person: Person,
    pub doses: Vec<StoredDose>,
    pub history: Vec<DoseVersion>,
    pub changes: Vec<PersonChange>,
    /// Inquiries this municipality made for the person (as it knows them).
    pub inquiries: Vec<Inquiry>,
    /// 情報提供等の記録: answers this municipality gave other municipalities about the person.
    pub provisions: Vec<Provision>,
    /// The certificates issued to the person, newest first.
    pub certificates: Vec<CertificateRecord>,
    pub audit: Vec<AuditEntry>,
}

/// What an inquiry asks: whose records, of which municipality, on what basis.
#[derive(Debug, Clone)]
pub struct InquiryRequest {
    /// The municipality the person moved from (照会先).
    pub source: MunicipalityCode,
    pub my_number: MyNumber,
    /// The asking municipality's own person (its 宛名番号), to attach the records to.
    pub address: AddressNumber,
    /// The legal basis, or the person's consent, as the clerk recorded it.
    pub basis: String,
}

/// The answer to one inquiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InquiryStatus {
    /// 該当あり: the person's doses came back (possibly none).
    Found,
    /// 該当なし: nobody with that My Number in that municipality, or no such municipality.
    NotFound,
    /// 利用停止: the person's use is suspended; no records.
    Suspended,
    /// 形式エラー: a bulk row that could not be read.
    FormatError,
    /// 照会不可: refused before the source was asked - the asking municipality holds no resident
    /// with the 宛名番号 it gave (an inquiry is for the asker's own resident).
    Refused,
}

impl InquiryStatus {
    pub const ALL: [InquiryStatus; 5] = [
        InquiryStatus::Found,
        InquiryStatus::NotFound,
        InquiryStatus::Suspended,
        InquiryStatus::FormatError,
        InquiryStatus::Refused,
    ];

    pub fn code(self) -> &'static str {
        match self {
            InquiryStatus::Found => "found",
            InquiryStatus::NotFound => "not_found",
            InquiryStatus::Suspended => "suspended",
            InquiryStatus::FormatError => "format_error",
            InquiryStatus::Refused => "refused",
        }
    }

    /// As the result file says it.
    pub fn label(self) -> &'static str {
        match self {
            InquiryStatus::Found => "該当あり",
            InquiryStatus::NotFound => "該当なし",
            InquiryStatus::Suspended => "利用停止",
            InquiryStatus::FormatError => "形式エラー",
            InquiryStatus::Refused => "照会不可",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }
}

/// An inquiry as the asking municipality keeps it: never a My Number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inquiry {
    pub id: i64,
    /// The bulk job and the row of its file, for a bulk inquiry.
    pub job: Option<i64>,
    pub row: Option<u64>,
    pub source: Option<MunicipalityCode>,
    pub address: Option<AddressNumber>,
    pub basis: String,
    pub status: InquiryStatus,
    /// Why a bulk row could not be read.
    pub message: Option<String>,
    /// The doses as the source provided them.
    pub doses: Vec<StoredDose>,
    pub asked_by: String,
    /// Unix time in microseconds.
    pub at: i64,
    pub attached_at: Option<i64>,
}

/// One row of a bulk inquiry file: a request, or why the row could not be read.
#[derive(Debug, Clone)]
pub struct BulkRow {
    /// The line of the file.
    pub row: u64,
    pub input: Result<InquiryRequest, Malformed>,
}

/// A bulk row that could not be read: its own person if that much was readable, and why.
#[derive(Debug, Clone)]
pub struct Malformed {
    pub address: Option<AddressNumber>,
    pub message: String,
}

/// 情報提供等の記録: one answer the providing municipality gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provision {
    pub id: i64,
    pub asked_by_municipality: MunicipalityCode,
    pub asked_by: String,
    /// The asking municipality's inquiry id.
    pub inquiry_id: i64,
    /// The providing municipality's own person.
    pub address: AddressNumber,
    pub status: InquiryStatus,
    pub record_count: u64,
    pub basis: String,
    /// Unix time in microseconds.
    pub at: i64,
}

/// A bulk inquiry job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InquiryJob {
    pub id: i64,
    pub created_by: String,
    pub created_at: i64,
    /// `running`, `done`, `failed`.
    pub state: String,
    pub total_rows: u64,
    pub done_rows: u64,
    pub finished_at: Option<i64>,
    pub error: Option<String>,
    /// Rows per status so far.
    pub counts: Vec<(InquiryStatus, u64)>,
}

/// How many inquiries were made lately: for the volume limits and the fishing check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InquiryCounts {
    /// Single inquiries by this user.
    pub by_user: u64,
    /// Single inquiries by the whole municipality.
    pub by_municipality: u64,
    /// Distinct municipalities asked about this My Number.
    pub sources_for_person: u64,
}

/// What attaching inquiries did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Attached {
    pub doses: u64,
    /// Doses already recorded the same way.
    pub unchanged: u64,
    pub inquiries: u64,
}

/// The signing key in use: its kid and private part (wiped from memory when dropped).
pub type ActiveKey = (String, openvrs_crypto::Zeroizing<Vec<u8>>);

/// A certificate signing key of the deployment, as published (never the private part).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyInfo {
    pub kind: String,
    pub kid: String,
    /// A JWK (SMART Health Cards) or a PEM certificate (CSCA, VDS-NC and EU DCC signers).
    pub public_part: String,
    /// Unix microseconds.
    pub created_at: i64,
    /// When a newer key took over; retired keys stay published.
    pub retired_at: Option<i64>,
}

/// A certificate as the issuing municipality recorded it (never its content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRecord {
    /// The certificate id printed on it (VDS-NC `uvci`, in the EU DCC's UVCI).
    pub id: String,
    pub address_number: AddressNumber,
    pub kind: openvrs_domain::certificate::Kind,
    pub format: openvrs_domain::certificate::Format,
    pub channel: openvrs_domain::certificate::Channel,
    /// The signing key used.
    pub kid: String,
    /// The SMART Health Card revocation id.
    pub rid: Option<String>,
    /// Unix microseconds; set by the store.
    pub issued_at: i64,
    pub issued_by: String,
    pub revoked_at: Option<i64>,
    pub revoked_by: Option<String>,
    pub revocation_reason: Option<String>,
    /// The app or kiosk application it answered (a digest); the store refuses the same twice.
    pub application: Option<String>,
}

/// One entry of a municipality's operation log. Holds ids and counts, never a personal value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub seq: i64,
    /// Unix time in microseconds.
    pub at: i64,
    pub actor: String,
    pub role: Role,
    pub zone: Zone,
    pub action: String,
    pub object: String,
    pub outcome: Outcome,
}

/// Doses given, counted by vaccination date, sex, age group on that date and dose number: the
/// matter of the open data, no person in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoseCount {
    pub date: time::Date,
    pub sex: openvrs_domain::sex::Sex,
    pub age: openvrs_domain::aggregate::AgeGroup,
    pub dose_number: u32,
    pub count: u64,
}

/// Which audit entries to show (every field optional; all given must match).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Entries about this person (their object starts `person:<address number>`).
    pub person: Option<AddressNumber>,
    /// By this account id.
    pub actor: Option<String>,
    /// Whose action starts with this (`person.`, `dose`, `certificate.issue`, ...).
    pub action: Option<String>,
    /// Older than this sequence number (the next page).
    pub before: Option<i64>,
}

/// The verified end of an audit chain: how many entries, and the last link (hex) to anchor
/// elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    pub seq: i64,
    pub link: String,
}

/// How an account proves who it is, as stored: never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An Argon2id PHC string (people).
    PasswordHash(String),
    /// The SHA-256 digest of a device or service token.
    TokenDigest([u8; 32]),
    /// A disabled device or service account: its token digest was erased.
    Revoked,
}

/// A signed-in session, found by the digest of its cookie value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: UserId,
    pub csrf_token: String,
    /// Unix time in microseconds.
    pub created_at: i64,
    pub last_seen: i64,
}

/// A security event (侵入検知): what happened, to which account and town, from where. Never
/// holds personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityEvent {
    pub id: i64,
    /// Unix time in microseconds.
    pub at: i64,
    pub kind: openvrs_domain::audit::SecurityEventKind,
    pub municipality: Option<MunicipalityCode>,
    pub user: Option<String>,
    pub client: Option<String>,
    pub detail: String,
}

/// The tenant-scoped store: every area's operations, implemented once by the engine over both
/// backends (see [`open`]). Each area's trait lives in its file with its implementation.
pub trait Store:
    Municipalities
    + Audit
    + Persons
    + Records
    + Tablets
    + Inquiries
    + SigningKeys
    + Certificates
    + Accounts
    + Keys
{
}

impl<
    T: Municipalities
        + Audit
        + Persons
        + Records
        + Tablets
        + Inquiries
        + SigningKeys
        + Certificates
        + Accounts
        + Keys
        + ?Sized,
> Store for T
{
}

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An SQLite file; created only when `create` is set.
    Sqlite { path: PathBuf, create: bool },
    /// A `postgres://` or `postgresql://` URL (TLS by its `sslmode` and `sslrootcert`), and at
    /// most this many connections at once.
    Postgres { url: String, max_connections: usize },
}

/// Connections a process opens to PostgreSQL at most, unless configured.
pub const DEFAULT_MAX_CONNECTIONS: usize = 32;

impl Location {
    /// PostgreSQL when `url` is given, else the SQLite file `sqlite_path`.
    pub fn from_parts(
        url: Option<&str>,
        sqlite_path: PathBuf,
        create: bool,
    ) -> Result<Self, StoreError> {
        match url.filter(|u| !u.is_empty()) {
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                Ok(Location::Postgres {
                    url: u.to_owned(),
                    max_connections: DEFAULT_MAX_CONNECTIONS,
                })
            }
            Some(_) => Err(StoreError::BadUrl(
                "postgres:// または postgresql:// で始めてください / must start with postgres:// or postgresql://".into(),
            )),
            None => Ok(Location::Sqlite {
                path: sqlite_path,
                create,
            }),
        }
    }
}

/// Opens the store on the wall clock, applying any migrations it has not seen.
pub fn open(location: &Location, master: MasterKey) -> Result<Arc<dyn Store>, StoreError> {
    open_with_clock(location, master, Arc::new(SystemClock))
}

/// Opens the store with the clock its timestamps come from (the server passes the clock it
/// reads itself; tests pass one they set).
pub fn open_with_clock(
    location: &Location,
    master: MasterKey,
    clock: Arc<dyn openvrs_domain::date::Clock>,
) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match location {
        Location::Sqlite { path, create } => Arc::new(engine::Engine::open(
            sqlite::Sqlite::open(path, *create)?,
            master,
            true,
            clock,
        )?),
        Location::Postgres {
            url,
            max_connections,
        } => Arc::new(engine::Engine::open(
            postgres::Postgres::open(url, *max_connections)?,
            master,
            true,
            clock,
        )?),
    })
}
