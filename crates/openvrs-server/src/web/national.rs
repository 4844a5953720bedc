//! The national administrator's pages and the counts (the state, prefecture viewers).

use super::*;
use openvrs_service::accounts;

#[derive(Template)]
#[template(path = "aggregates.html")]
struct Aggregates {
    chrome: Chrome,
    area: String,
    national: bool,
    prefectures: Vec<(u8, String)>,
    /// The prefecture shown (0: all).
    selected: u8,
    /// The municipalities of the prefecture shown, to pick one: (code, name).
    towns: Vec<(String, String)>,
    /// The municipality shown ("" : none).
    town: String,
    chart: String,
    doses: Vec<u32>,
    totals: Vec<u64>,
    /// One level down (prefectures of the country, municipalities of a prefecture): (name,
    /// counts per dose number).
    parts: Vec<(String, Vec<u64>)>,
    /// By gender and age group: (gender, age group, counts per dose number).
    groups: Vec<(String, String, Vec<u64>)>,
    /// (date, count per dose number), newest first.
    recent: Vec<(String, Vec<u64>)>,
    /// Every day of the chart, oldest first: its numbers as a table (for screen readers, and
    /// anyone who wants the numbers).
    every_day: Vec<(String, Vec<u64>)>,
}

#[derive(Debug, Deserialize)]
pub struct AreaQuery {
    prefecture: Option<String>,
    municipality: Option<String>,
}

/// Days the table under the chart lists.
const RECENT_DAYS: usize = 14;

/// `GET /aggregates`: doses per day as a chart and tables, by area (one level down), gender and
/// age group - the country, any prefecture or municipality for the national administrator;
/// its own prefecture and its municipalities for a prefecture viewer.
pub async fn aggregates_page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Query(q): Query<AreaQuery>,
) -> Result<Response, ApiError> {
    use openvrs_domain::prefecture::Prefecture;
    use openvrs_service::opendata::{self, Area};
    let chrome = Chrome::new(&headers, Some(&p), "/aggregates");
    let lang = chrome.lang;
    let asked_prefecture = q
        .prefecture
        .as_deref()
        .and_then(|n| n.parse().ok())
        .and_then(Prefecture::from_number);
    let (national, prefecture) = match p.account.binding {
        Binding::Prefecture(own) => (false, Some(own)),
        _ => (true, asked_prefecture),
    };
    let town = q
        .municipality
        .as_deref()
        .and_then(|c| MunicipalityCode::parse(c).ok())
        .filter(|m| prefecture.is_none_or(|p| m.prefecture() == p));
    let area = match (town, prefecture) {
        (Some(m), _) => Area::Municipality(m),
        (None, Some(p)) => Area::Prefecture(p),
        (None, None) => Area::Country,
    };
    let rows = crate::opendata::rows(&state).await?;
    let store = state.store.clone();
    let names: std::collections::BTreeMap<u32, String> = blocking(move || store.municipalities())
        .await?
        .into_iter()
        .map(|m| (m.code.value(), m.name))
        .collect();
    let days = opendata::daily(&rows, area);
    let all = opendata::totals(&rows, area, |_| ());
    let doses: Vec<u32> = all.values().flat_map(|c| c.keys().copied()).collect();
    let per_dose = |c: &std::collections::BTreeMap<u32, u64>| -> Vec<u64> {
        doses
            .iter()
            .map(|d| c.get(d).copied().unwrap_or(0))
            .collect()
    };
    let pref_name = |pref: Prefecture| lang.t(pref.name_ja(), pref.name_en()).to_owned();
    let town_name = |v: u32| names.get(&v).cloned().unwrap_or_else(|| format!("{v:06}"));
    let title = match area {
        Area::Country => lang.t("全国", "All of Japan").to_owned(),
        Area::Prefecture(pref) => pref_name(pref),
        Area::Municipality(m) => {
            format!("{} {}", pref_name(m.prefecture()), town_name(m.value()))
        }
    };
    let parts = match area {
        Area::Country => opendata::totals(&rows, area, |r| r.prefecture.number())
            .iter()
            .filter_map(|(n, c)| Some((pref_name(Prefecture::from_number(*n)?), per_dose(c))))
            .collect(),
        Area::Prefecture(_) => opendata::totals(&rows, area, |r| r.municipality.value())
            .iter()
            .map(|(v, c)| (town_name(*v), per_dose(c)))
            .collect(),
        Area::Municipality(_) => Vec::new(),
    };
    let gender = |g| sex_label(lang, g);
    render(&Aggregates {
        chart: opendata::chart_svg(
            &days,
            [
                &format!("{} {title}", lang.t("日ごとの接種回数", "Doses per day:")),
                lang.t("接種", "dose"),
                lang.t(
                    "接種回ごとの日別件数の折れ線",
                    "One line per dose number, doses per day",
                ),
            ],
        ),
        every_day: days
            .iter()
            .map(|(date, counts)| (date.to_string(), per_dose(counts)))
            .collect(),
        recent: days
            .iter()
            .rev()
            .take(RECENT_DAYS)
            .map(|(date, counts)| (date.to_string(), per_dose(counts)))
            .collect(),
        totals: all.values().next().map(&per_dose).unwrap_or_default(),
        parts,
        groups: opendata::totals(&rows, area, |r| (r.gender, r.age))
            .iter()
            .map(|((g, a), c)| (gender(*g).to_owned(), a.code().to_owned(), per_dose(c)))
            .collect(),
        towns: match prefecture {
            Some(pref) => names
                .iter()
                .filter(|(v, _)| {
                    MunicipalityCode::parse(&format!("{v:06}"))
                        .is_ok_and(|m| m.prefecture() == pref)
                })
                .map(|(v, n)| (format!("{v:06}"), n.clone()))
                .collect(),
            None => Vec::new(),
        },
        town: town.map(|m| m.to_string()).unwrap_or_default(),
        doses,
        area: title,
        national,
        prefectures: Prefecture::all()
            .map(|pref| (pref.number(), pref_name(pref)))
            .collect(),
        selected: prefecture.map_or(0, Prefecture::number),
        chrome: chrome.clone(),
    })
}

#[derive(Template)]
#[template(path = "accounts.html")]
struct Accounts {
    chrome: Chrome,
    error: Option<String>,
    /// (user, password or token, is a token): shown once.
    issued: Option<(String, String, bool)>,
    /// (id, role, bound to, disabled)
    accounts: Vec<(String, String, String, bool)>,
}

async fn accounts_view(
    state: &AppState,
    chrome: Chrome,
    error: Option<String>,
    issued: Option<(String, String, bool)>,
) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let list = blocking(move || store.accounts()).await?;
    render(&Accounts {
        accounts: list
            .iter()
            .map(|a| {
                let bound = match &a.binding {
                    Binding::National | Binding::Center => String::new(),
                    Binding::Prefecture(p) => chrome.lang.t(p.name_ja(), p.name_en()).to_owned(),
                    Binding::Municipality(m) => m.to_string(),
                    Binding::Venue {
                        municipality,
                        venue,
                    } => format!("{municipality} {}", venue.as_str()),
                };
                (
                    a.id.to_string(),
                    a.binding.role().code().to_owned(),
                    bound,
                    a.disabled,
                )
            })
            .collect(),
        chrome,
        error,
        issued,
    })
}

/// `GET /national/accounts`: every account; issue and disable.
pub async fn accounts_page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let chrome = Chrome::new(&headers, Some(&p), "/national/accounts");
    accounts_view(&state, chrome.clone(), None, None).await
}

/// The account form as typed.
#[derive(Deserialize)]
pub struct AccountForm {
    user: String,
    role: String,
    #[serde(default)]
    municipality: String,
    #[serde(default)]
    prefecture: String,
    #[serde(default)]
    venue: String,
    #[serde(default)]
    password: String,
}

impl std::fmt::Debug for AccountForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AccountForm({}, {}, ..)", self.user, self.role)
    }
}

/// `POST /national/accounts`: issues an account; the password (generated when left blank) or
/// the device token is shown once, on this answer only.
pub async fn add_account(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Form(form): Form<AccountForm>,
) -> Response {
    let chrome = Chrome::new(&headers, Some(&p), "/national/accounts");
    let given = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let chosen = given(&form.password).is_some();
    let request = accounts::Request {
        user: form.user.trim().to_owned(),
        role: form.role.clone(),
        municipality: given(&form.municipality),
        prefecture: given(&form.prefecture).and_then(|n| n.parse().ok()),
        venue: given(&form.venue),
        password: given(&form.password),
    };
    let issued = async {
        let (store, actor) = (state.store.clone(), api::actor(&p));
        let issued = blocking(move || accounts::issue(&*store, request, &actor)).await?;
        let device = !issued.account.binding.uses_password();
        let shown = match issued.shown_once {
            Some(secret) => secret,
            None if chosen => chrome.lang.t("(入力したもの)", "(as typed)").to_owned(),
            None => String::new(),
        };
        Ok::<_, ApiError>((issued.account.id.to_string(), shown, device))
    };
    let (error, shown, status) = match issued.await {
        Ok(shown) => (None, Some(shown), StatusCode::CREATED),
        Err(e) => (Some(chrome.lang.pick(&e.message)), None, e.status),
    };
    match accounts_view(&state, chrome.clone(), error, shown).await {
        Ok(page) => (status, page).into_response(),
        Err(e) => error_page(chrome, e),
    }
}

/// `POST /national/accounts/{user}/disable`: at once (a device token cached elsewhere stops
/// within the cache's seconds).
pub async fn disable_account(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path(user): Path<String>,
) -> Response {
    let chrome = Chrome::new(&headers, Some(&p), "/national/accounts");
    let done = async {
        let id =
            openvrs_domain::account::UserId::parse(&user).map_err(|_| ApiError::not_found())?;
        let (store, actor) = (state.store.clone(), api::actor(&p));
        let disabled = id.clone();
        blocking(move || store.disable_account(&id, &actor)).await?;
        state.tokens.forget(&disabled);
        Ok(())
    };
    match done.await {
        Ok(()) => Redirect::to("/national/accounts").into_response(),
        Err(e) => error_page(chrome, e),
    }
}

/// `GET /national/municipalities`: every registered municipality and whether it issues at
/// convenience-store kiosks (each municipality's staff decide that).
pub async fn municipalities_page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let chrome = Chrome::new(&headers, Some(&p), "/national/municipalities");
    let lang = chrome.lang;
    let store = state.store.clone();
    let list = blocking(move || store.municipalities()).await?;
    let mut l = Listing::new(
        &chrome,
        ("市区町村", "Municipalities"),
        &[
            ("コード", "Code"),
            ("名称", "Name"),
            ("都道府県", "Prefecture"),
            ("コンビニ交付", "Kiosk issuance"),
        ],
    );
    l.rows = list
        .iter()
        .map(|m| {
            let pref = m.code.prefecture();
            vec![
                cell(m.code.to_string()),
                cell(m.name.clone()),
                cell(lang.t(pref.name_ja(), pref.name_en())),
                cell(if m.kiosk {
                    lang.t("実施", "on")
                } else {
                    lang.t("停止", "off")
                }),
            ]
        })
        .collect();
    render(&l)
}

/// `GET /national/products`: the vaccine product catalogue with its codes.
pub async fn products_page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let chrome = Chrome::new(&headers, Some(&p), "/national/products");
    let store = state.store.clone();
    let list = blocking(move || store.products()).await?;
    let mut l = Listing::new(
        &chrome,
        ("ワクチン製品", "Vaccine products"),
        &[
            ("コード", "Code"),
            ("名称", "Name"),
            ("台帳のメーカー", "Ledger maker"),
            ("CVX", "CVX"),
            ("ICD-11", "ICD-11"),
            ("EU 製品", "EU product"),
            ("最短間隔(日)", "Minimum interval (days)"),
            ("ロット書式", "Lot format"),
        ],
    );
    l.intro = chrome
        .lang
        .t(
            "製品はデータベースの移行で管理されます。",
            "Products are managed through database migrations.",
        )
        .to_owned();
    l.rows = list
        .into_iter()
        .map(|p| {
            vec![
                cell(p.code),
                cell(p.name),
                cell(p.ledger_maker),
                cell(p.cvx),
                cell(p.icd11),
                cell(p.eu_mp),
                cell(p.min_interval_days.to_string()),
                cell(p.lot_pattern),
            ]
        })
        .collect();
    render(&l)
}

/// `GET /national/security-events`: security events across the country.
pub async fn all_security_page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let chrome = Chrome::new(&headers, Some(&p), "/national/security-events");
    let store = state.store.clone();
    let events = blocking(move || store.security_events(None, 500)).await?;
    render(&events_listing(&chrome, &events))
}
