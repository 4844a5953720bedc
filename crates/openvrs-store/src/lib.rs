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
    account::{Account, UserId},
    audit::{Actor, Outcome, Role, Zone},
    dose::Dose,
    ids::{AddressNumber, MunicipalityCode, MyNumber, VoucherNumber},
    person::{FlagChange, Flags, Person},
    product::Product,
    quality::{Finding, Severity},
};

mod accounts;
pub mod bench;
mod certificates;
mod engine;
mod error;
mod inquiries;
mod keys;
mod pg_tls;
mod postgres;
mod records;
mod signing;
mod sql;
mod sqlite;
mod tablets;

pub use error::{REPLAYED_APPLICATION, StoreError};
pub use keys::{DataKeyRotation, ResealBatch};
pub use postgres::{PgSnapshot, export_snapshot as postgres_snapshot};
pub use sqlite::snapshot as sqlite_snapshot;

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

/// What [`Store::put_persons`] did.
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

/// The tenant-scoped store. Implemented once over both backends; see [`open`].
pub trait Store: Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

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

    /// Inserts or updates persons and their vouchers in one transaction, all or nothing.
    /// A person whose content is unchanged is left alone; vouchers are added, never removed.
    fn put_persons(
        &self,
        m: MunicipalityCode,
        persons: &[Person],
        actor: &Actor,
    ) -> Result<PutSummary, StoreError>;
    /// As [`put_persons`](Store::put_persons), from a stream, in one transaction: an `Err` from
    /// the stream rolls everything back. A person may come more than once (e.g. one row per
    /// voucher); vouchers accumulate.
    fn import_persons(
        &self,
        m: MunicipalityCode,
        persons: &mut dyn Iterator<Item = Result<Person, StoreError>>,
        actor: &Actor,
    ) -> Result<PutSummary, StoreError>;
    fn person(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
        actor: &Actor,
    ) -> Result<Option<Person>, StoreError>;
    /// Finds a person through the keyed index of the My Number, in `m` only.
    fn person_by_my_number(
        &self,
        m: MunicipalityCode,
        my_number: &MyNumber,
        actor: &Actor,
    ) -> Result<Option<Person>, StoreError>;
    fn person_by_voucher(
        &self,
        m: MunicipalityCode,
        voucher: &VoucherNumber,
        actor: &Actor,
    ) -> Result<Option<Person>, StoreError>;
    fn count_persons(&self, m: MunicipalityCode) -> Result<u64, StoreError>;
    fn stats(&self, m: MunicipalityCode) -> Result<Stats, StoreError>;
    /// Sets a person's flags (moved out, deceased, use suspended), with the reason.
    fn set_flags(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
        flags: Flags,
        reason: &str,
        actor: &Actor,
    ) -> Result<(), StoreError>;
    /// Applies many flag changes in one transaction, all or nothing: an unknown address number
    /// rejects the batch with every such row ([`StoreError::Rejected`]). Returns how many
    /// persons changed.
    fn update_flags(
        &self,
        m: MunicipalityCode,
        updates: &[FlagUpdate],
        actor: &Actor,
    ) -> Result<u64, StoreError>;
    /// Corrects a person's identity (name, kana, birth date, sex, My Number) with a reason;
    /// returns the names of the fields that changed. Flags and vouchers are left as they are.
    fn correct_person(
        &self,
        m: MunicipalityCode,
        corrected: &Person,
        reason: &str,
        actor: &Actor,
    ) -> Result<Vec<&'static str>, StoreError>;
    /// Everything held about one person, as a disclosure (audited).
    fn disclosure(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
        actor: &Actor,
    ) -> Result<Option<Disclosure>, StoreError>;

    /// A single inquiry (他市区町村への照会): looks `request.my_number` up in the source
    /// municipality through its keyed index and returns only that person's doses; records the
    /// provision there and the inquiry here, both audited. A source that is not registered
    /// answers exactly like a person who is not.
    fn inquire(
        &self,
        asker: MunicipalityCode,
        request: &InquiryRequest,
        actor: &Actor,
    ) -> Result<Inquiry, StoreError>;

    /// Starts a bulk inquiry job of `total_rows` rows.
    fn create_inquiry_job(
        &self,
        asker: MunicipalityCode,
        total_rows: u64,
        actor: &Actor,
    ) -> Result<i64, StoreError>;

    /// Answers some rows of a bulk job in one transaction, and counts them done.
    fn inquire_rows(
        &self,
        asker: MunicipalityCode,
        job: i64,
        rows: &[BulkRow],
        actor: &Actor,
    ) -> Result<(), StoreError>;

    /// Marks a job done, or failed with `error`.
    fn finish_inquiry_job(
        &self,
        asker: MunicipalityCode,
        job: i64,
        error: Option<&str>,
    ) -> Result<(), StoreError>;

    fn inquiry_job(
        &self,
        asker: MunicipalityCode,
        job: i64,
    ) -> Result<Option<InquiryJob>, StoreError>;

    /// A job's rows in file order, or (`None`) the single inquiries, newest first.
    fn inquiries(
        &self,
        asker: MunicipalityCode,
        job: Option<i64>,
    ) -> Result<Vec<Inquiry>, StoreError>;

    /// Attaches what the given inquiries (or all found rows of `job`) brought back to the
    /// asking municipality's persons, keeping where each dose came from. All or nothing.
    fn attach_inquiries(
        &self,
        asker: MunicipalityCode,
        ids: &[i64],
        job: Option<i64>,
        actor: &Actor,
    ) -> Result<Attached, StoreError>;

    /// Inquiries made in the last `within` microseconds (by the clock that dates them), for the
    /// volume limits and the fishing check.
    fn inquiry_counts(
        &self,
        asker: MunicipalityCode,
        user: &str,
        my_number: Option<&MyNumber>,
        within: i64,
    ) -> Result<InquiryCounts, StoreError>;

    /// The provision records of a municipality, newest first (`address` for one person's).
    fn provisions(
        &self,
        provider: MunicipalityCode,
        address: Option<&AddressNumber>,
    ) -> Result<Vec<Provision>, StoreError>;

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

    /// The vaccine product catalogue.
    fn products(&self) -> Result<Vec<Product>, StoreError>;
    /// The database's clock (Unix microseconds), to compare with the server's, and its
    /// schema version.
    fn database_clock(&self) -> Result<(i64, i64), StoreError>;

    /// Records a dose after the data-quality rules: an error is [`StoreError::Quality`].
    fn add_dose(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
        dose: &Dose,
        actor: &Actor,
    ) -> Result<DoseWritten, StoreError>;
    /// Replaces a dose, keeping the previous version with the reason.
    fn correct_dose(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
        id: i64,
        dose: &Dose,
        reason: &str,
        actor: &Actor,
    ) -> Result<DoseWritten, StoreError>;
    /// Removes a dose from the current record, keeping it in the history with the reason.
    fn delete_dose(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
        id: i64,
        reason: &str,
        actor: &Actor,
    ) -> Result<(), StoreError>;
    /// The current doses of a person, in dose order.
    fn doses(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
    ) -> Result<Vec<StoredDose>, StoreError>;
    /// The earlier versions of a person's doses, oldest first.
    fn dose_history(
        &self,
        m: MunicipalityCode,
        address: &AddressNumber,
    ) -> Result<Vec<DoseVersion>, StoreError>;
    /// Imports ledger rows in one transaction, all or nothing: a row that fails a rule or names
    /// an unknown person rejects the file with every such row ([`StoreError::Rejected`]). A dose
    /// already recorded the same way is left alone.
    fn import_ledger(
        &self,
        m: MunicipalityCode,
        records: &mut dyn Iterator<Item = Result<LedgerRecord, StoreError>>,
        actor: &Actor,
    ) -> Result<LedgerSummary, StoreError>;
    /// Walks every person with doses, in address-number order, a page at a time, handing each to
    /// `sink`; records one audit entry for the export.
    fn export_ledger(
        &self,
        m: MunicipalityCode,
        actor: &Actor,
        sink: &mut LedgerSink<'_>,
    ) -> Result<u64, StoreError>;
    /// Records a dose from a venue tablet into the voucher's municipality `m`: the voucher must
    /// be `m`'s, the date of birth must match ([`StoreError::BirthDateMismatch`]), a retry with
    /// the same idempotency key answers the first answer again, and an existing dose is never
    /// overwritten (a different record of it goes to the conflict queue). Failed attempts are
    /// audited too.
    fn record_from_tablet(
        &self,
        m: MunicipalityCode,
        record: &TabletRecord,
        actor: &Actor,
    ) -> Result<TabletAnswer, StoreError>;
    /// Group commit: many tablets' records (each with its own municipality and actor) in one
    /// transaction and one durable commit; each gets its own answer, as
    /// [`record_from_tablet`](Store::record_from_tablet) would give it.
    fn record_from_tablets(
        &self,
        batch: &[(MunicipalityCode, TabletRecord, Actor)],
    ) -> Result<Vec<Result<TabletAnswer, StoreError>>, StoreError>;
    /// The tablet records waiting for staff, oldest first.
    fn dose_conflicts(&self, m: MunicipalityCode) -> Result<Vec<DoseConflict>, StoreError>;
    /// Staff decide a conflict: keep the recorded dose, or replace it with the tablet's record
    /// (a correction: the previous version is kept with the reason).
    fn resolve_dose_conflict(
        &self,
        m: MunicipalityCode,
        id: i64,
        replace: bool,
        reason: &str,
        actor: &Actor,
    ) -> Result<(), StoreError>;
    /// Every data-quality finding over the municipality's current doses.
    fn quality_report(
        &self,
        m: MunicipalityCode,
        actor: &Actor,
    ) -> Result<Vec<QualityLine>, StoreError>;

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

    /// `asker`'s latest bulk inquiries, newest first.
    fn inquiry_jobs(
        &self,
        asker: MunicipalityCode,
        limit: u32,
    ) -> Result<Vec<InquiryJob>, StoreError>;

    /// Rewraps every municipality key and sealed signing key under `new` in one transaction
    /// (audited in every municipality's chain); the data is not touched. Returns the keys
    /// rewrapped. This store's own master key is the old one: reopen with the new one.
    fn rewrap_master_key(&self, new: &MasterKey, actor: &Actor) -> Result<u64, StoreError>;

    /// Fails with a decryption error unless the store's master key opens what is stored.
    fn check_master_key(&self) -> Result<(), StoreError>;

    /// Its database connections now.
    fn pool(&self) -> PoolStatus;

    /// `m`'s doses given, counted (open data and aggregates); the dates of birth are opened
    /// to place each dose in its age group and never leave the store.
    fn dose_counts(&self, m: MunicipalityCode) -> Result<Vec<DoseCount>, StoreError>;
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

/// Opens the store, applying any migrations it has not seen.
pub fn open(location: &Location, master: MasterKey) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match location {
        Location::Sqlite { path, create } => Arc::new(engine::Engine::open(
            sqlite::Sqlite::open(path, *create)?,
            master,
            true,
        )?),
        Location::Postgres {
            url,
            max_connections,
        } => Arc::new(engine::Engine::open(
            postgres::Postgres::open(url, *max_connections)?,
            master,
            true,
        )?),
    })
}
