//! The handlers. They receive an already authorised [`Principal`]; they never re-check roles.

use openvrs_domain::audit::SecurityEventKind;
use std::collections::BTreeMap;

use axum::{
    Extension, Json,
    extract::{Path, Request, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use openvrs_crypto::credentials::{hash_password, new_secret, secret_digest, verify_password};
use openvrs_domain::{
    account::{Account, Binding, UserId},
    audit::Actor,
    ids::{AddressNumber, MunicipalityCode},
};
use openvrs_service::accounts;
use openvrs_store::{Credential, Session};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    AppState, Zone,
    auth::{Principal, SESSION_COOKIE, client, security_event},
    blocking,
    error::ApiError,
    notify::SecurityEventBody,
    routes,
};

pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers and is migrated (the product catalogue reads). A load
/// balancer or systemd watchdog sends traffic only when this says `ready`.
pub async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    let store = state.store.clone();
    match crate::blocking(move || store.products()).await {
        Ok(_) => Ok("ready"),
        Err(_) => Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "データベースに接続できません",
            "the database does not answer",
        )),
    }
}

/// What is running: the program, its version, the listener and the database.
#[derive(Debug, Serialize, ToSchema)]
pub struct Version {
    /// Always `openvrs`.
    pub name: &'static str,
    pub version: &'static str,
    /// The listener that answered: `lgwan` or `internet`.
    #[schema(value_type = String)]
    pub zone: Zone,
    /// The database engine, e.g. `sqlite` or `postgres`.
    pub backend: &'static str,
}

fn version(state: &AppState, zone: Zone) -> Json<Version> {
    Json(Version {
        name: "openvrs",
        version: env!("CARGO_PKG_VERSION"),
        zone,
        backend: state.store.backend(),
    })
}

pub async fn version_lgwan(State(state): State<AppState>) -> Json<Version> {
    version(&state, Zone::Lgwan)
}

pub async fn version_internet(State(state): State<AppState>) -> Json<Version> {
    version(&state, Zone::Internet)
}

pub(crate) fn actor(p: &Principal) -> Actor {
    Actor {
        user: p.account.id.to_string(),
        role: p.account.binding.role(),
        zone: openvrs_domain::audit::Zone::Lgwan,
    }
}

/// An account: who it is and what it is bound to.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Account)]
pub struct AccountBody {
    /// The user id.
    pub user: String,
    /// `national`, `prefecture`, `staff`, `venue` or `center`.
    pub role: &'static str,
    /// The municipality (自治体コード) of staff and venue devices.
    #[schema(required = true)]
    pub municipality: Option<String>,
    /// The prefecture number (1-47) of staff, venue devices and prefecture viewers.
    #[schema(required = true)]
    pub prefecture: Option<u8>,
    /// The venue of a venue device.
    #[schema(required = true)]
    pub venue: Option<String>,
    pub disabled: bool,
}

impl From<&Account> for AccountBody {
    fn from(a: &Account) -> Self {
        let (municipality, prefecture, venue) = match &a.binding {
            Binding::Municipality(m) => (Some(m.to_string()), Some(m.prefecture().number()), None),
            Binding::Venue {
                municipality,
                venue,
            } => (
                Some(municipality.to_string()),
                Some(municipality.prefecture().number()),
                Some(venue.as_str().to_owned()),
            ),
            Binding::Prefecture(p) => (None, Some(p.number()), None),
            Binding::National | Binding::Center => (None, None, None),
        };
        Self {
            user: a.id.as_str().to_owned(),
            role: a.binding.role().code(),
            municipality,
            prefecture,
            venue,
            disabled: a.disabled,
        }
    }
}

/// The account just signed in, and the token its state changes must send.
#[derive(Serialize, ToSchema)]
#[allow(missing_debug_implementations)] // Not `Debug`: it holds the session's CSRF token.
pub struct SignedIn {
    #[serde(flatten)]
    pub account: AccountBody,
    /// Send it as the `X-CSRF-Token` header with every state change of this session.
    pub csrf_token: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Login {
    user: String,
    password: String,
}

fn failed_login() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "login_failed",
        "ユーザIDまたはパスワードが違います",
        "wrong user id or password",
    )
}

pub async fn login(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let client = client(req.extensions());
    let body = axum::body::to_bytes(req.into_body(), 16 * 1024)
        .await
        .map_err(|_| ApiError::bad_request("要求が大きすぎます", "request too large"))?;
    let Login { user, password } = serde_json::from_slice(&body)
        .map_err(|_| ApiError::bad_request("JSONが不正です", "malformed JSON"))?;
    let (account, cookie, csrf) = sign_in(&state, client, &user, password).await?;
    let body = SignedIn {
        account: AccountBody::from(&account),
        csrf_token: csrf,
    };
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

/// Checks a user id and password (lockout, security events, the same time for unknown
/// accounts) and opens a session: the account, its `Set-Cookie` value and its CSRF token. The
/// JSON API and the sign-in page both come here.
pub(crate) async fn sign_in(
    state: &AppState,
    client: Option<String>,
    user: &str,
    password: String,
) -> Result<(openvrs_domain::account::Account, String, String), ApiError> {
    let Ok(id) = UserId::parse(user) else {
        return Err(failed_login());
    };
    let store = state.store.clone();
    let config = state.security.clone();
    let now = state.now();
    let (account, locked) = {
        let id = id.clone();
        blocking(move || {
            let found = store.account(&id)?;
            let failures = store.count_security_events(
                SecurityEventKind::LoginFailed,
                id.as_str(),
                now - config.lockout_window,
            )?;
            Ok((found, failures >= config.lockout_failures))
        })
        .await?
    };
    let municipality = account.as_ref().and_then(|(a, _)| a.binding.municipality());
    if locked {
        security_event(
            state,
            SecurityEventKind::LockedOut,
            municipality,
            Some(id.to_string()),
            client,
            "sign-in refused while locked".into(),
        )
        .await;
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "locked",
            "失敗が続いたためロックされています。時間をおいてください",
            "locked after repeated failures; try again later",
        ));
    }
    // Verify even for unknown accounts, so timing does not tell which ids exist.
    let (ok, account) = match account {
        Some((a, Credential::PasswordHash(h))) if a.binding.uses_password() && !a.disabled => {
            let ok = tokio::task::spawn_blocking(move || verify_password(&password, &h))
                .await
                .unwrap_or(false);
            (ok, Some(a))
        }
        _ => {
            let _ =
                tokio::task::spawn_blocking(move || verify_password(&password, &DUMMY_HASH)).await;
            (false, None)
        }
    };
    let Some(account) = account.filter(|_| ok) else {
        security_event(
            state,
            SecurityEventKind::LoginFailed,
            municipality,
            Some(id.to_string()),
            client,
            "wrong user id or password".into(),
        )
        .await;
        return Err(failed_login());
    };
    let secret = new_secret();
    let csrf = new_secret();
    let session = Session {
        user: account.id.clone(),
        csrf_token: csrf.clone(),
        created_at: now,
        last_seen: now,
    };
    let store = state.store.clone();
    let digest = secret_digest(&secret);
    blocking(move || store.create_session(&digest, &session)).await?;
    let cookie = cookie::Cookie::build((SESSION_COOKIE, secret))
        .http_only(true)
        .secure(state.security.secure_cookies)
        .same_site(cookie::SameSite::Strict)
        .path("/")
        .build();
    Ok((account, cookie.to_string(), csrf))
}

/// A person of `m` as the principal reads them (audited), counted against the read-volume
/// limit (a security event past it). Not found: 404.
pub(crate) async fn read_person(
    state: &AppState,
    p: &Principal,
    m: MunicipalityCode,
    address: AddressNumber,
) -> Result<openvrs_domain::person::Person, ApiError> {
    let store = state.store.clone();
    let actor = actor(p);
    let person = blocking(move || store.person(m, &address, &actor))
        .await?
        .ok_or_else(ApiError::not_found)?;
    let user = p.account.id.to_string();
    let read = format!("{m}:{}", person.address_number);
    if state
        .monitor
        .person_read(&user, read, state.security.persons_per_hour, state.now())
    {
        let limit = state.security.persons_per_hour;
        security_event(
            state,
            SecurityEventKind::ReadVolume,
            Some(m),
            Some(user),
            None,
            format!("more than {limit} distinct persons read in an hour"),
        )
        .await;
    }
    Ok(person)
}

/// An Argon2id hash of a random password, to spend the same time on unknown accounts.
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password(&new_secret()));

pub async fn logout(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Response, ApiError> {
    Ok((
        [(header::SET_COOKIE, sign_out(&state, &p).await?)],
        StatusCode::NO_CONTENT,
    )
        .into_response())
}

/// Ends the principal's session; the `Set-Cookie` value that clears the cookie.
pub(crate) async fn sign_out(state: &AppState, p: &Principal) -> Result<String, ApiError> {
    if let Some(digest) = p.session {
        let store = state.store.clone();
        blocking(move || store.delete_session(&digest)).await?;
    }
    Ok(cookie::Cookie::build((SESSION_COOKIE, ""))
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .path("/")
        .max_age(cookie::time::Duration::ZERO)
        .build()
        .to_string())
}

pub async fn me(Extension(p): Extension<Principal>) -> Json<AccountBody> {
    Json(AccountBody::from(&p.account))
}

/// Every account.
#[derive(Debug, Serialize, ToSchema)]
#[serde(transparent)]
pub struct Accounts(pub Vec<AccountBody>);

pub async fn list_accounts(State(state): State<AppState>) -> Result<Json<Accounts>, ApiError> {
    let store = state.store.clone();
    let accounts = blocking(move || store.accounts()).await?;
    Ok(Json(Accounts(
        accounts.iter().map(AccountBody::from).collect(),
    )))
}

/// An account to issue: `role` is national, prefecture, staff, venue or center. People use the
/// `password` given (12+ characters) or get one generated; a generated password, or the token of
/// a device or the center, is in the answer's `token`, shown once. Not `Debug`: it holds a
/// password.
#[derive(Deserialize, utoipa::ToSchema)]
#[allow(missing_debug_implementations)]
pub struct NewAccount {
    pub user: String,
    pub role: String,
    pub municipality: Option<String>,
    pub prefecture: Option<u8>,
    pub venue: Option<String>,
    pub password: Option<String>,
}

impl From<NewAccount> for accounts::Request {
    fn from(a: NewAccount) -> Self {
        Self {
            user: a.user,
            role: a.role,
            municipality: a.municipality,
            prefecture: a.prefecture,
            venue: a.venue,
            password: a.password,
        }
    }
}

/// The account issued, and its generated password or token if it has one.
#[derive(Serialize, ToSchema)]
#[allow(missing_debug_implementations)] // Not `Debug`: it holds a secret.
pub struct IssuedAccount {
    #[serde(flatten)]
    pub account: AccountBody,
    /// The generated password, or the token of a device or the center: shown this once (only
    /// its hash or digest is stored). Absent when the request gave the password.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub token: Option<String>,
}

pub async fn add_account(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(req): Json<NewAccount>,
) -> Result<(StatusCode, Json<IssuedAccount>), ApiError> {
    let (store, actor) = (state.store.clone(), actor(&p));
    let issued = blocking(move || accounts::issue(&*store, req.into(), &actor)).await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedAccount {
            account: AccountBody::from(&issued.account),
            token: issued.shown_once,
        }),
    ))
}

pub async fn disable_account(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(user): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = UserId::parse(&user).map_err(|_| ApiError::not_found())?;
    let store = state.store.clone();
    let actor = actor(&p);
    let disabled = id.clone();
    blocking(move || store.disable_account(&id, &actor)).await?;
    state.tokens.forget(&disabled);
    Ok(StatusCode::NO_CONTENT)
}

/// Security events, newest first (the latest 500).
#[derive(Debug, Serialize, ToSchema)]
#[serde(transparent)]
pub struct SecurityEvents(pub Vec<SecurityEventBody>);

async fn events(
    state: &AppState,
    m: Option<MunicipalityCode>,
) -> Result<Json<SecurityEvents>, ApiError> {
    let store = state.store.clone();
    let events = blocking(move || store.security_events(m, 500)).await?;
    Ok(Json(SecurityEvents(
        events.iter().map(SecurityEventBody::from).collect(),
    )))
}

pub async fn all_security_events(
    State(state): State<AppState>,
) -> Result<Json<SecurityEvents>, ApiError> {
    events(&state, None).await
}

pub async fn own_security_events(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Json<SecurityEvents>, ApiError> {
    events(&state, p.account.binding.municipality()).await
}

/// The number of persons registered per municipality, by 自治体コード.
#[derive(Debug, Serialize, ToSchema)]
#[serde(transparent)]
pub struct PersonCounts(pub BTreeMap<String, u64>);

/// Persons per municipality: all for the state, its own prefecture for a prefecture viewer.
pub async fn person_counts(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Json<PersonCounts>, ApiError> {
    let only = match p.account.binding {
        Binding::Prefecture(pref) => Some(pref),
        _ => None,
    };
    let store = state.store.clone();
    let counts = blocking(move || {
        let mut out = BTreeMap::new();
        for m in store.municipalities()? {
            if only.is_none_or(|p| m.code.prefecture() == p) {
                out.insert(m.code.to_string(), store.count_persons(m.code)?);
            }
        }
        Ok(out)
    })
    .await?;
    Ok(Json(PersonCounts(counts)))
}

/// A person as their municipality's staff see them (LGWAN only).
#[derive(Serialize, ToSchema)]
#[schema(as = Person)]
#[allow(missing_debug_implementations)] // Not `Debug`: the identity and the My Number.
pub struct PersonBody {
    /// 宛名番号.
    pub address_number: String,
    pub name: String,
    pub name_kana: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    /// ISO/IEC 5218: 0 unknown, 1 male, 2 female, 9 not applicable.
    pub sex: u8,
    /// The My Number (12 digits), when known.
    #[schema(required = true)]
    pub my_number: Option<String>,
    /// 転出日, `YYYY-MM-DD`.
    #[schema(required = true)]
    pub moved_out_on: Option<String>,
    /// 死亡日, `YYYY-MM-DD`.
    #[schema(required = true)]
    pub deceased_on: Option<String>,
    /// 利用停止.
    pub use_suspended: bool,
    pub vouchers: Vec<VoucherBody>,
}

/// A voucher (接種券) issued to a person.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Voucher)]
pub struct VoucherBody {
    /// 券番号.
    pub number: String,
    /// The dose it is for, if it names one.
    #[schema(required = true)]
    pub dose_number: Option<u32>,
    /// `YYYY-MM-DD`.
    #[schema(required = true)]
    pub issued_on: Option<String>,
}

/// A person's record, for their own municipality's staff (LGWAN only).
pub async fn person(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((municipality, address)): Path<(String, String)>,
) -> Result<Json<PersonBody>, ApiError> {
    let m = MunicipalityCode::parse(&municipality).map_err(|_| ApiError::not_found())?;
    let address = AddressNumber::parse(&address).map_err(|_| ApiError::not_found())?;
    let person = read_person(&state, &p, m, address).await?;
    Ok(Json(PersonBody {
        address_number: person.address_number.as_str().to_owned(),
        name: person.name.as_str().to_owned(),
        name_kana: person.name_kana.as_str().to_owned(),
        birth_date: person.birth_date.0.to_string(),
        sex: person.sex.iso5218(),
        my_number: person.my_number.as_ref().map(|n| n.expose()),
        moved_out_on: person.flags.moved_out.map(|m| m.on.to_string()),
        deceased_on: person.flags.deceased_on.map(|d| d.to_string()),
        use_suspended: person.flags.use_suspended,
        vouchers: person
            .vouchers
            .iter()
            .map(|v| VoucherBody {
                number: v.number.as_str().to_owned(),
                dose_number: v.dose_number.map(|d| d.get()),
                issued_on: v.issued_on.map(|d| d.to_string()),
            })
            .collect(),
    }))
}

pub async fn venue_me(Extension(p): Extension<Principal>) -> Json<AccountBody> {
    Json(AccountBody::from(&p.account))
}

/// No such route in this zone. If the other zone has it, that is a security event.
pub async fn fallback(state: AppState, zone: Zone, req: Request) -> ApiError {
    let other = match zone {
        Zone::Lgwan => Zone::Internet,
        Zone::Internet => Zone::Lgwan,
    };
    let path = req.uri().path().to_owned();
    if let Some(spec) = routes::routes(other).find(|r| routes::matches(r.path, &path)) {
        security_event(
            &state,
            SecurityEventKind::WrongZone,
            None,
            None,
            client(req.extensions()),
            format!("{} {} on the {zone:?} listener", req.method(), spec.path),
        )
        .await;
    }
    ApiError::not_found()
}
