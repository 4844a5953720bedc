//! The pages of municipal staff: home, persons, doses, imports, inquiries, certificates,
//! conflicts, quality, provisions, the operation log, security events, individual rights,
//! deletion.

use super::*;

#[derive(Template)]
#[template(path = "staff_home.html")]
struct StaffHome {
    chrome: Chrome,
    code: String,
    name: String,
    persons: u64,
    vouchers: u64,
    doses: Vec<(u32, u64)>,
    moved_out: u64,
    deceased: u64,
    suspended: u64,
    conflicts: usize,
    /// Data-quality warnings over the current doses.
    warnings: usize,
    /// The latest bulk inquiries: (started, state, rows done, summary).
    jobs: Vec<(String, String, String, String)>,
    kiosk: bool,
    /// (when, kind, user)
    events: Vec<(String, String, String)>,
}

/// `GET /m/{municipality}/`: today's counts and what is waiting.
pub async fn staff_home(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let chrome = Chrome::new(&headers, Some(&p), &format!("/m/{code}/"));
    let m = municipality(&code)?;
    let store = state.store.clone();
    let (stats, conflicts, events, town, jobs) = blocking(move || {
        Ok((
            store.stats(m)?,
            store.dose_conflicts(m)?.len(),
            store.security_events(Some(m), 10)?,
            store.municipalities()?.into_iter().find(|t| t.code == m),
            store.inquiry_jobs(m, 5)?,
        ))
    })
    .await?;
    let warnings = state.quality_counts.get(&state, &p, m).await?;
    let town = town.ok_or_else(ApiError::not_found)?;
    render(&StaffHome {
        chrome: chrome.clone(),
        code: code.clone(),
        name: town.name,
        persons: stats.persons,
        vouchers: stats.vouchers,
        doses: stats.doses_by_number,
        moved_out: stats.moved_out,
        deceased: stats.deceased,
        suspended: stats.use_suspended,
        conflicts,
        warnings,
        jobs: jobs
            .iter()
            .map(|j| {
                (
                    when(j.created_at),
                    labels::label(chrome.lang, &j.state),
                    format!("{} / {}", j.done_rows, j.total_rows),
                    openvrs_service::inquiry::summary(&j.counts),
                )
            })
            .collect(),
        kiosk: town.kiosk,
        events: events
            .into_iter()
            .map(|e| {
                let kind = labels::label(chrome.lang, e.kind.code());
                (when(e.at), kind, e.user.unwrap_or_default())
            })
            .collect(),
    })
}

#[derive(Template)]
#[template(path = "search.html")]
struct Search {
    chrome: Chrome,
    code: String,
    error: Option<String>,
    by: String,
}

/// `GET /m/{municipality}/persons`: the search form.
pub async fn search_page(
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let chrome = Chrome::new(&headers, Some(&p), &format!("/m/{code}/persons"));
    render(&Search {
        chrome: chrome.clone(),
        code,
        error: None,
        by: "address".into(),
    })
}

/// Not `Debug`: `q` may be a My Number.
#[derive(Deserialize)]
#[allow(missing_debug_implementations)]
pub struct SearchForm {
    by: String,
    q: String,
}

/// `POST /m/{municipality}/persons`: finds one person by address number, voucher number or My
/// Number (exact; audited like every read) and opens their page, or says nobody was found.
pub async fn search(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path(code): Path<String>,
    Form(form): Form<SearchForm>,
) -> Response {
    let chrome = Chrome::new(&headers, Some(&p), &format!("/m/{code}/persons"));
    let lang = chrome.lang;
    let again = |error: &str| {
        render(&Search {
            chrome: chrome.clone(),
            code: code.clone(),
            error: Some(error.to_owned()),
            by: form.by.clone(),
        })
        .map(|r| (StatusCode::UNPROCESSABLE_ENTITY, r).into_response())
    };
    let found = async {
        let m = municipality(&code)?;
        let store = state.store.clone();
        let actor = api::actor(&p);
        let q = form.q.trim().to_owned();
        let address = match form.by.as_str() {
            "address" => AddressNumber::parse(&q).ok(),
            "voucher" => match VoucherNumber::parse(&q) {
                Ok(v) => blocking(move || store.person_by_voucher(m, &v, &actor))
                    .await?
                    .map(|p| p.address_number),
                Err(_) => None,
            },
            "my_number" => match MyNumber::parse(&q) {
                Ok(n) => blocking(move || store.person_by_my_number(m, &n, &actor))
                    .await?
                    .map(|p| p.address_number),
                Err(_) => None,
            },
            _ => None,
        };
        Ok(address)
    };
    match found.await {
        Ok(Some(a)) => Redirect::to(&format!("/m/{code}/persons/{a}")).into_response(),
        Ok(None) => again(lang.t(
            "該当する住民はいません(番号の形式も確認してください)",
            "nobody found (check the number's format too)",
        ))
        .unwrap_or_else(|e| error_page(chrome.clone(), e)),
        Err(e) => error_page(chrome.clone(), e),
    }
}

/// A person as the page shows them.
#[derive(Debug)]
pub struct PersonView {
    pub address_number: String,
    pub name: String,
    pub name_kana: String,
    pub birth_date: String,
    pub sex: String,
    /// Only its last four digits.
    pub my_number: String,
    pub flags: Vec<String>,
    pub vouchers: Vec<String>,
    /// The flags as the form edits them.
    pub moved_out_on: String,
    pub moved_out_to: String,
    pub deceased_on: String,
    pub suspended: bool,
    pub sex_code: u8,
}

impl PersonView {
    fn new(p: &Person, lang: Lang) -> Self {
        let mut flags = Vec::new();
        if let Some(m) = p.flags.moved_out {
            flags.push(format!("{} {}", lang.t("転出", "moved out"), m.on));
        }
        if let Some(d) = p.flags.deceased_on {
            flags.push(format!("{} {d}", lang.t("死亡", "deceased")));
        }
        if p.flags.use_suspended {
            flags.push(lang.t("利用停止", "use suspended").to_owned());
        }
        Self {
            address_number: p.address_number.as_str().to_owned(),
            name: p.name.as_str().to_owned(),
            name_kana: p.name_kana.as_str().to_owned(),
            birth_date: p.birth_date.0.to_string(),
            sex: sex_label(lang, p.sex.open_data()).to_owned(),
            my_number: p.my_number.as_ref().map_or_else(
                || lang.t("なし", "none").to_owned(),
                |n| format!("********{}", &n.expose()[8..]),
            ),
            flags,
            moved_out_on: p
                .flags
                .moved_out
                .map(|m| m.on.to_string())
                .unwrap_or_default(),
            moved_out_to: p
                .flags
                .moved_out
                .and_then(|m| m.to)
                .map(|c| c.to_string())
                .unwrap_or_default(),
            deceased_on: p
                .flags
                .deceased_on
                .map(|d| d.to_string())
                .unwrap_or_default(),
            suspended: p.flags.use_suspended,
            sex_code: p.sex.iso5218(),
            vouchers: p
                .vouchers
                .iter()
                .map(|v| match v.dose_number {
                    Some(d) => format!("{} ({} {d})", v.number.as_str(), lang.t("接種", "dose")),
                    None => v.number.as_str().to_owned(),
                })
                .collect(),
        }
    }
}

/// A dose as the page shows it.
#[derive(Debug)]
pub struct DoseRow {
    pub id: i64,
    pub number: u32,
    pub date: String,
    pub product: String,
    pub lot: String,
    pub venue: String,
    pub recorded: String,
    pub version: i64,
}

impl DoseRow {
    fn new(d: &StoredDose, catalogue: &Catalogue) -> Self {
        let x = &d.dose;
        Self {
            id: d.id,
            number: x.number.get(),
            date: x.date.to_string(),
            product: catalogue
                .get(x.product.as_str())
                .map_or_else(|| x.product.as_str().to_owned(), |p| p.name.clone()),
            lot: x.lot.as_str().to_owned(),
            venue: x.venue.as_str().to_owned(),
            recorded: format!("{} {}", when(d.recorded_at), d.recorded_by),
            version: d.version,
        }
    }
}

#[derive(Template)]
#[template(path = "person.html")]
struct PersonPage {
    chrome: Chrome,
    /// What the last form did, said after its redirect.
    done: Option<String>,
    p: PersonView,
    doses: Vec<DoseRow>,
    /// (when, change, reason, before, by)
    history: Vec<(String, String, String, String, String)>,
    /// (id, kind, format, channel, issued, revoked)
    certificates: Vec<(String, String, String, String, String, String)>,
    /// (when, by, action, object, outcome)
    trail: Vec<(String, String, String, String, String)>,
}

/// How many of a person's audit entries the page shows.
const TRAIL: u32 = 200;

/// `GET /m/{municipality}/persons/{address_number}`: everything about one person (the read is
/// audited and counted like the API's).
pub async fn person_page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path((code, address)): Path<(String, String)>,
    Query(done): Query<Done>,
) -> Result<Response, ApiError> {
    let chrome = Chrome::new(&headers, Some(&p), &format!("/m/{code}/persons/{address}"));
    let lang = chrome.lang;
    let m = municipality(&code)?;
    let a = AddressNumber::parse(&address).map_err(|_| ApiError::not_found())?;
    let person = api::read_person(&state, &p, m, a.clone()).await?;
    let store = state.store.clone();
    let (doses, history, certificates, trail, catalogue) = blocking(move || {
        let filter = AuditFilter {
            person: Some(a.clone()),
            ..Default::default()
        };
        Ok((
            store.doses(m, &a)?,
            store.dose_history(m, &a)?,
            store.certificates(m, Some(&a))?,
            store.audit_search(m, &filter, TRAIL)?,
            Catalogue::new(store.products()?)?,
        ))
    })
    .await?;
    render(&PersonPage {
        chrome: chrome.clone(),
        done: done.said(lang),
        p: PersonView::new(&person, lang),
        doses: doses.iter().map(|d| DoseRow::new(d, &catalogue)).collect(),
        history: history
            .iter()
            .map(|h| {
                let was = DoseRow::new(&h.was, &catalogue);
                (
                    when(h.changed_at),
                    match h.change.code() {
                        "corrected" => lang.t("訂正", "corrected"),
                        "deleted" => lang.t("削除", "deleted"),
                        other => other,
                    }
                    .to_owned(),
                    h.reason.clone(),
                    format!("{} {} {} {}", was.number, was.date, was.product, was.lot),
                    h.changed_by.clone(),
                )
            })
            .collect(),
        certificates: certificates
            .iter()
            .map(|c| {
                (
                    c.id.clone(),
                    labels::label(lang, c.kind.code()),
                    labels::label(lang, c.format.code()),
                    labels::label(lang, c.channel.code()),
                    when(c.issued_at),
                    c.revoked_at.map(when).unwrap_or_default(),
                )
            })
            .collect(),
        trail: trail
            .into_iter()
            .map(|e| {
                (
                    when(e.at),
                    e.actor,
                    labels::label(lang, &e.action),
                    labels::object(lang, &e.object),
                    labels::label(lang, e.outcome.code()),
                )
            })
            .collect(),
    })
}

/// What a form did, carried by its redirect (codes and counts only).
#[derive(Debug, Default, Deserialize)]
pub struct Done {
    done: Option<String>,
    warnings: Option<usize>,
}

impl Done {
    fn said(&self, lang: Lang) -> Option<String> {
        let what = match self.done.as_deref()? {
            "added" => lang.t("接種記録を登録しました", "The dose was recorded"),
            "corrected" => lang.t("接種記録を訂正しました", "The dose was corrected"),
            "deleted" => lang.t("接種記録を削除しました", "The dose was deleted"),
            "revoked" => lang.t("証明書を失効させました", "The certificate was revoked"),
            "flags" => lang.t(
                "転出・死亡・利用停止を更新しました",
                "The flags were updated",
            ),
            "identity" => lang.t("本人情報を訂正しました", "The identity was corrected"),
            _ => return None,
        };
        Some(match self.warnings.filter(|n| *n > 0) {
            Some(n) => format!(
                "{what}{}",
                match lang {
                    Lang::Ja => format!("(品質の警告 {n} 件: 品質レポートを確認してください)"),
                    Lang::En => format!(" ({n} data-quality warnings: see the quality report)"),
                }
            ),
            None => what.to_owned(),
        })
    }
}

/// The fields of the dose form, as typed.
#[derive(Debug, Default, Deserialize)]
pub struct DoseForm {
    #[serde(default)]
    dose_number: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    product: String,
    #[serde(default)]
    lot: String,
    #[serde(default)]
    venue: String,
    #[serde(default)]
    doctor: String,
    #[serde(default)]
    voucher_number: String,
    #[serde(default)]
    reason: String,
}

impl DoseForm {
    fn of(d: &StoredDose) -> Self {
        let x = &d.dose;
        Self {
            dose_number: x.number.get().to_string(),
            date: x.date.to_string(),
            product: x.product.as_str().to_owned(),
            lot: x.lot.as_str().to_owned(),
            venue: x.venue.as_str().to_owned(),
            doctor: x.doctor.as_str().to_owned(),
            voucher_number: x.voucher.map(|v| v.to_string()).unwrap_or_default(),
            reason: String::new(),
        }
    }

    fn dose(&self) -> Result<openvrs_domain::dose::Dose, ApiError> {
        crate::records::DoseInput {
            dose_number: self.dose_number.trim().parse().map_err(|_| {
                ApiError::bad_request(
                    "接種回は1以上の数字です",
                    "the dose number is a number from 1",
                )
            })?,
            date: self.date.clone(),
            product: self.product.clone(),
            lot: self.lot.clone(),
            venue: self.venue.clone(),
            doctor: self.doctor.clone(),
            voucher_number: Some(self.voucher_number.clone()),
            given_in: None,
            status: None,
        }
        .dose()
    }
}

#[derive(Template)]
#[template(path = "dose_form.html")]
struct DoseFormPage {
    chrome: Chrome,
    title: String,
    code: String,
    address: String,
    action: String,
    delete_action: Option<String>,
    editing: bool,
    error: Option<String>,
    f: DoseForm,
    /// (code, name) of every product.
    products: Vec<(String, String)>,
}

/// Which dose form: a new dose, or an existing one (`Some(id)`).
async fn dose_form(
    state: &AppState,
    chrome: Chrome,
    code: &str,
    address: &str,
    id: Option<i64>,
    typed: Option<DoseForm>,
    error: Option<String>,
) -> Result<Response, ApiError> {
    let (m, a) = crate::records::target(code, address)?;
    let store = state.store.clone();
    let (products, doses) = blocking(move || Ok((store.products()?, store.doses(m, &a)?))).await?;
    let f = match (typed, id) {
        (Some(f), _) => f,
        (None, Some(id)) => DoseForm::of(
            doses
                .iter()
                .find(|d| d.id == id)
                .ok_or_else(ApiError::not_found)?,
        ),
        (None, None) => DoseForm {
            dose_number: (doses.iter().map(|d| d.dose.number.get()).max().unwrap_or(0) + 1)
                .to_string(),
            ..Default::default()
        },
    };
    let base = format!("/m/{code}/persons/{address}/doses");
    let lang = chrome.lang;
    let page = DoseFormPage {
        title: match id {
            Some(_) => lang.t("接種記録の訂正・削除", "Correct or delete a dose"),
            None => lang.t("接種記録の追加", "Add a dose"),
        }
        .to_owned(),
        code: code.to_owned(),
        address: address.to_owned(),
        action: id.map_or_else(|| base.clone(), |id| format!("{base}/{id}")),
        delete_action: id.map(|id| format!("{base}/{id}/delete")),
        editing: id.is_some(),
        error,
        f,
        products: products.into_iter().map(|p| (p.code, p.name)).collect(),
        chrome,
    };
    render(&page)
}

/// `GET /m/{municipality}/persons/{address_number}/doses/new`.
pub async fn new_dose_page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path((code, address)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let chrome = Chrome::new(
        &headers,
        Some(&p),
        &format!("/m/{code}/persons/{address}/doses/new"),
    );
    dose_form(&state, chrome.clone(), &code, &address, None, None, None).await
}

/// `GET /m/{municipality}/persons/{address_number}/doses/{dose_id}`: the form to correct or
/// delete one dose.
pub async fn dose_page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path((code, address, id)): Path<(String, String, i64)>,
) -> Result<Response, ApiError> {
    let here = format!("/m/{code}/persons/{address}/doses/{id}");
    let chrome = Chrome::new(&headers, Some(&p), &here);
    dose_form(
        &state,
        chrome.clone(),
        &code,
        &address,
        Some(id),
        None,
        None,
    )
    .await
}

/// Writes what a dose form asked for; back to the person's page, or the form again with why
/// not (quality rules, a bad date, a missing reason).
async fn dose_write(
    state: AppState,
    p: Principal,
    headers: HeaderMap,
    (code, address, id): (String, String, Option<i64>),
    form: DoseForm,
    delete: bool,
) -> Response {
    let here = format!("/m/{code}/persons/{address}");
    let chrome = Chrome::new(&headers, Some(&p), &here);
    let written = async {
        let (m, a) = crate::records::target(&code, &address)?;
        let store = state.store.clone();
        let actor = api::actor(&p);
        // A new dose needs no reason; a change does.
        let reason = match id {
            Some(_) => reason(&form.reason)?,
            None => String::new(),
        };
        match (id, delete) {
            (Some(id), true) => {
                blocking(move || store.delete_dose(m, &a, id, &reason, &actor)).await?;
                Ok(("deleted", 0))
            }
            (Some(id), false) => {
                let dose = form.dose()?;
                let w =
                    blocking(move || store.correct_dose(m, &a, id, &dose, &reason, &actor)).await?;
                Ok(("corrected", w.warnings.len()))
            }
            (None, _) => {
                let dose = form.dose()?;
                let w = blocking(move || store.add_dose(m, &a, &dose, &actor)).await?;
                Ok(("added", w.warnings.len()))
            }
        }
    };
    match written.await {
        Ok((done, warnings)) => {
            Redirect::to(&format!("{here}?done={done}&warnings={warnings}")).into_response()
        }
        Err(e) => {
            let typed = (!delete).then_some(form);
            form_again(chrome.clone(), e, |chrome, why| {
                dose_form(&state, chrome, &code, &address, id, typed, Some(why))
            })
            .await
        }
    }
}

/// `POST /m/{municipality}/persons/{address_number}/doses`: a new dose (quality rules apply).
pub async fn add_dose(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path((code, address)): Path<(String, String)>,
    Form(form): Form<DoseForm>,
) -> Response {
    dose_write(state, p, headers, (code, address, None), form, false).await
}

/// `POST /m/{municipality}/persons/{address_number}/doses/{dose_id}`: a correction, with its
/// reason (the previous version is kept).
pub async fn correct_dose(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path((code, address, id)): Path<(String, String, i64)>,
    Form(form): Form<DoseForm>,
) -> Response {
    dose_write(state, p, headers, (code, address, Some(id)), form, false).await
}

/// `POST /m/{municipality}/persons/{address_number}/doses/{dose_id}/delete`, with its reason.
pub async fn delete_dose(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path((code, address, id)): Path<(String, String, i64)>,
    Form(form): Form<DoseForm>,
) -> Response {
    dose_write(state, p, headers, (code, address, Some(id)), form, true).await
}

#[derive(Template)]
#[template(path = "imports.html")]
struct Imports {
    chrome: Chrome,
    code: String,
    csrf: String,
    /// (kind, title, what the file holds)
    kinds: Vec<(&'static str, &'static str, &'static str)>,
}

/// `GET /m/{municipality}/imports`: the three imports (with a progress bar and every wrong row)
/// and the ledger export.
pub async fn imports_page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let chrome = Chrome::new(&headers, Some(&p), &format!("/m/{code}/imports"));
    let lang = chrome.lang;
    municipality(&code)?;
    let csrf = csrf_token(&state, &p).await?;
    render(&Imports {
        chrome: chrome.clone(),
        code: code.clone(),
        csrf,
        kinds: vec![
            (
                "targets",
                lang.t("接種対象者・接種券", "Targets and vouchers"),
                lang.t(
                    "住民基本台帳などから抽出したファイル(自治体コード、宛名番号、券番号、氏名、氏名カナ、生年月日、性別、…)",
                    "Extracted from the resident registry (municipality code, address number, voucher number, name, kana, birth date, sex, ...)",
                ),
            ),
            (
                "ledger",
                lang.t("接種記録(予防接種台帳レイアウト)", "Dose records (immunization ledger layout)"),
                lang.t(
                    "個別宛名番号と接種回ごとの列。同じ記録は二度登録されません。",
                    "The address number and a block of columns per dose. A dose already recorded is left alone.",
                ),
            ),
            (
                "flags",
                lang.t("転出・死亡・利用停止", "Moved out, deceased, use suspended"),
                lang.t(
                    "宛名番号、転出日、転出先自治体コード、死亡日、利用停止、理由",
                    "Address number, moved-out date, destination, date of death, suspension, reason",
                ),
            ),
        ],
    })
}

/// One inquiry as the page lists it.
#[derive(Debug)]
pub struct InquiryRow {
    pub id: i64,
    pub at: String,
    pub source: String,
    pub address: String,
    pub status: String,
    pub doses: Vec<String>,
    pub attached: String,
    /// Found, with doses, not yet attached.
    pub attachable: bool,
}

#[derive(Template)]
#[template(path = "inquiries.html")]
struct Inquiries {
    chrome: Chrome,
    code: String,
    /// For the bulk inquiry's script (the API asks for it).
    csrf: String,
    error: Option<String>,
    done: Option<String>,
    rows: Vec<InquiryRow>,
}

/// What the inquiry forms did, carried by their redirect.
#[derive(Debug, Default, Deserialize)]
pub struct InquiryDone {
    asked: Option<i64>,
    attached: Option<u64>,
    doses: Option<u64>,
}

async fn inquiries_view(
    state: &AppState,
    p: &Principal,
    chrome: Chrome,
    code: &str,
    done: &InquiryDone,
    error: Option<String>,
) -> Result<Response, ApiError> {
    let m = municipality(code)?;
    let csrf = csrf_token(state, p).await?;
    let store = state.store.clone();
    let (all, catalogue) = blocking(move || {
        Ok((
            store.inquiries(m, None)?,
            Catalogue::new(store.products()?)?,
        ))
    })
    .await?;
    let lang = chrome.lang;
    let label = |s| status_label(lang, s);
    let said = match (done.asked, done.attached) {
        (Some(id), _) => all.iter().find(|i| i.id == id).map(|i| {
            format!(
                "{}: {} ({} {})",
                lang.t("照会しました", "Asked"),
                label(i.status),
                i.doses.len(),
                lang.t("件の接種記録", "doses")
            )
        }),
        (None, Some(n)) => Some(format!(
            "{}: {n} / {} {}",
            lang.t("取り込みました", "Attached"),
            done.doses.unwrap_or(0),
            lang.t("件の接種記録", "doses")
        )),
        _ => None,
    };
    render(&Inquiries {
        chrome: chrome.clone(),
        code: code.to_owned(),
        csrf,
        error,
        done: said,
        rows: all
            .iter()
            .filter(|i| i.job.is_none())
            .map(|i| InquiryRow {
                id: i.id,
                at: when(i.at),
                source: i.source.map(|s| s.to_string()).unwrap_or_default(),
                address: i
                    .address
                    .as_ref()
                    .map(|a| a.as_str().to_owned())
                    .unwrap_or_default(),
                status: label(i.status),
                doses: i
                    .doses
                    .iter()
                    .map(|d| {
                        let r = DoseRow::new(d, &catalogue);
                        format!("{} {} {} {}", r.number, r.date, r.product, r.lot)
                    })
                    .collect(),
                attached: i.attached_at.map(when).unwrap_or_default(),
                attachable: i.attached_at.is_none() && !i.doses.is_empty(),
            })
            .collect(),
    })
}

/// `GET /m/{municipality}/inquiries`: ask another municipality, see the answers, attach them.
pub async fn inquiries_page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path(code): Path<String>,
    Query(done): Query<InquiryDone>,
) -> Result<Response, ApiError> {
    let chrome = Chrome::new(&headers, Some(&p), &format!("/m/{code}/inquiries"));
    inquiries_view(&state, &p, chrome.clone(), &code, &done, None).await
}

/// `POST /m/{municipality}/inquiries`: one inquiry (the My Number in the form body only), with
/// the API's guard rails; back to the list with its result.
pub async fn ask(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Path(code): Path<String>,
    Form(input): Form<crate::inquiries::InquiryInput>,
) -> Response {
    let chrome = Chrome::new(&headers, Some(&p), &format!("/m/{code}/inquiries"));
    match crate::inquiries::single(&state, &p, client(&extensions), &code, input).await {
        Ok((answer, _)) => {
            Redirect::to(&format!("/m/{code}/inquiries?asked={}", answer.id)).into_response()
        }
        Err(e) => {
            let none = InquiryDone::default();
            form_again(chrome.clone(), e, |chrome, why| {
                inquiries_view(&state, &p, chrome, &code, &none, Some(why))
            })
            .await
        }
    }
}

/// `POST /m/{municipality}/inquiries/attach`: the ticked answers into our own records.
pub async fn attach(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path(code): Path<String>,
    body: String,
) -> Response {
    let chrome = Chrome::new(&headers, Some(&p), &format!("/m/{code}/inquiries"));
    // Repeated `inquiry_id=N` fields (numbers: nothing to decode).
    let ids: Vec<i64> = body
        .split('&')
        .filter_map(|kv| kv.strip_prefix("inquiry_id="))
        .filter_map(|v| v.parse().ok())
        .collect();
    let done = async {
        let m = municipality(&code)?;
        let (store, actor) = (state.store.clone(), api::actor(&p));
        blocking(move || store.attach_inquiries(m, &ids, None, &actor)).await
    };
    match done.await {
        Ok(d) => Redirect::to(&format!(
            "/m/{code}/inquiries?attached={}&doses={}",
            d.inquiries, d.doses
        ))
        .into_response(),
        Err(e) => {
            // Nothing was attached (all or nothing): the list again, with why.
            let none = InquiryDone::default();
            form_again(chrome.clone(), e, |chrome, why| {
                inquiries_view(&state, &p, chrome, &code, &none, Some(why))
            })
            .await
        }
    }
}

/// `POST /m/{municipality}/persons/{address_number}/certificates`: a certificate issued at the
/// counter, answered with the file itself (the PDF to print, or the card's file).
pub async fn issue_certificate(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path((code, address)): Path<(String, String)>,
    Form(input): Form<crate::certificates::CertificateRequest>,
) -> Response {
    use openvrs_domain::certificate::Format;
    let chrome = Chrome::new(&headers, Some(&p), &format!("/m/{code}/persons/{address}"));
    match crate::certificates::counter(&state, &p, &code, &address, &input).await {
        Ok((c, _)) => {
            let (kind, ext) = match c.record.format {
                Format::Pdf => ("application/pdf", "pdf"),
                Format::Shc => ("application/smart-health-card", "smart-health-card"),
                Format::Vds => ("application/json", "vds.json"),
                Format::Dcc => ("text/plain; charset=utf-8", "dcc.txt"),
            };
            (
                [
                    (header::CONTENT_TYPE, kind.to_owned()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"certificate-{}.{ext}\"", c.record.id),
                    ),
                    (header::CACHE_CONTROL, "no-store".to_owned()),
                ],
                c.payload,
            )
                .into_response()
        }
        Err(e) => error_page(chrome, e),
    }
}

#[derive(Debug, Deserialize)]
pub struct ReasonForm {
    reason: String,
}

/// `POST /m/{municipality}/certificates/{certificate_id}/revoke`: with its reason; back to the
/// person's page.
pub async fn revoke_certificate(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path((code, id)): Path<(String, String)>,
    Form(form): Form<ReasonForm>,
) -> Response {
    let chrome = Chrome::new(&headers, Some(&p), &format!("/m/{code}/"));
    let revoked = async {
        let m = municipality(&code)?;
        let reason = reason(&form.reason)?;
        let (store, actor) = (state.store.clone(), api::actor(&p));
        blocking(move || store.revoke_certificate(m, &id, &reason, &actor)).await
    };
    match revoked.await {
        Ok(r) => Redirect::to(&format!(
            "/m/{code}/persons/{}?done=revoked",
            r.address_number
        ))
        .into_response(),
        Err(e) => error_page(chrome, e),
    }
}

fn person_cell(code: &str, a: &AddressNumber) -> Cell {
    link(a.as_str(), format!("/m/{code}/persons/{a}"))
}

/// `GET /m/{municipality}/quality`: every data-quality finding over the current doses.
pub async fn quality_page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let chrome = Chrome::new(&headers, Some(&p), &format!("/m/{code}/quality"));
    let m = municipality(&code)?;
    let (store, actor) = (state.store.clone(), api::actor(&p));
    let lines = blocking(move || store.quality_report(m, &actor)).await?;
    let mut l = Listing::new(
        &chrome,
        ("データ品質レポート", "Data-quality report"),
        &[
            ("住民", "Person"),
            ("接種回", "Dose"),
            ("重大度", "Severity"),
            ("内容", "Finding"),
        ],
    );
    l.intro = chrome
        .lang
        .t(
            "誤り(error)は登録時に拒否されます。警告(warning)は記録されていますが確認が必要です。",
            "Errors are refused when written; warnings were recorded and need a look.",
        )
        .to_owned();
    l.rows = lines
        .iter()
        .map(|q| {
            vec![
                person_cell(&code, &q.address),
                cell(q.dose_number.to_string()),
                cell(q.finding.severity.code()),
                cell(chrome.lang.pick(&q.finding.to_string())),
            ]
        })
        .collect();
    render(&l)
}

/// `GET /m/{municipality}/provisions`: 情報提供等の記録, what other municipalities were given.
pub async fn provisions_page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let chrome = Chrome::new(&headers, Some(&p), &format!("/m/{code}/provisions"));
    let m = municipality(&code)?;
    let store = state.store.clone();
    let list = blocking(move || store.provisions(m, None)).await?;
    let mut l = Listing::new(
        &chrome,
        ("情報提供等の記録", "Provision records"),
        &[
            ("日時", "When"),
            ("照会元", "Asked by"),
            ("担当", "Account"),
            ("住民", "Person"),
            ("結果", "Result"),
            ("件数", "Records"),
            ("根拠", "Basis"),
        ],
    );
    l.rows = list
        .iter()
        .map(|v| {
            vec![
                cell(when(v.at)),
                cell(v.asked_by_municipality.to_string()),
                cell(v.asked_by.clone()),
                person_cell(&code, &v.address),
                cell(status_label(chrome.lang, v.status)),
                cell(v.record_count.to_string()),
                cell(v.basis.clone()),
            ]
        })
        .collect();
    render(&l)
}

/// `GET /m/{municipality}/security-events`: the municipality's own security events.
pub async fn security_page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let chrome = Chrome::new(&headers, Some(&p), &format!("/m/{code}/security-events"));
    let m = municipality(&code)?;
    let store = state.store.clone();
    let events = blocking(move || store.security_events(Some(m), 500)).await?;
    render(&events_listing(&chrome, &events))
}

/// The audit log's filters, as typed.
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    person: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    before: Option<i64>,
    /// Verify the whole chain first.
    verify: Option<String>,
}

/// Entries of the audit log a page shows at once.
const AUDIT_PAGE: u32 = 200;

/// `GET /m/{municipality}/audit`: the operation log, newest first, filtered by person, account
/// or action.
pub async fn audit_page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path(code): Path<String>,
    Query(q): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    let chrome = Chrome::new(&headers, Some(&p), &format!("/m/{code}/audit"));
    let lang = chrome.lang;
    let m = municipality(&code)?;
    let given = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let filter = AuditFilter {
        person: given(&q.person)
            .map(|a| AddressNumber::parse(&a))
            .transpose()?,
        actor: given(&q.actor),
        action: given(&q.action),
        before: q.before,
    };
    let store = state.store.clone();
    let verify = q.verify.is_some();
    let (entries, verified) = blocking(move || {
        let verified = verify.then(|| store.verify_audit(m));
        Ok((store.audit_search(m, &filter, AUDIT_PAGE)?, verified))
    })
    .await?;
    let mut l = Listing::new(
        &chrome,
        ("操作ログ", "Operation log"),
        &[
            ("番号", "Seq"),
            ("日時", "When"),
            ("担当", "By"),
            ("役割", "Role"),
            ("区域", "Zone"),
            ("操作", "Action"),
            ("対象", "Object"),
            ("結果", "Outcome"),
        ],
    );
    l.intro = lang
        .t(
            "改ざんはハッシュチェーンで検出されます(openvrs audit verify)。",
            "Tampering is detected by the hash chain (openvrs audit verify).",
        )
        .to_owned();
    l.done = verified.map(|v| match v {
        Ok(head) => format!(
            "{}: {} {}, {} {}",
            lang.t("ハッシュチェーンは正常です", "The hash chain is intact"),
            head.seq,
            lang.t("件", "entries"),
            lang.t("末尾", "head"),
            head.link
        ),
        Err(e) => format!(
            "{}: {}",
            lang.t(
                "ハッシュチェーンに異常があります",
                "The hash chain is broken"
            ),
            lang.pick(&e.to_string())
        ),
    });
    l.verify = Some(format!("/m/{code}/audit?verify=1"));
    l.filters = vec![
        (
            "person",
            lang.t("宛名番号", "Address number").to_owned(),
            q.person.clone(),
        ),
        (
            "actor",
            lang.t("担当(アカウントID)", "Account id").to_owned(),
            q.actor.clone(),
        ),
        (
            "action",
            lang.t("操作(前方一致)", "Action (starts with)").to_owned(),
            q.action.clone(),
        ),
    ];
    if entries.len() == AUDIT_PAGE as usize {
        l.more = entries.last().map(|e| {
            format!(
                "/m/{code}/audit?person={}&actor={}&action={}&before={}",
                q.person, q.actor, q.action, e.seq
            )
        });
    }
    l.rows = entries
        .into_iter()
        .map(|e| {
            vec![
                cell(e.seq.to_string()),
                cell(when(e.at)),
                cell(e.actor),
                cell(labels::label(lang, e.role.code())),
                cell(labels::label(lang, e.zone.code())),
                cell(labels::label(lang, &e.action)),
                cell(labels::object(lang, &e.object)),
                cell(labels::label(lang, e.outcome.code())),
            ]
        })
        .collect();
    render(&l)
}

/// One tablet conflict as the page shows it.
#[derive(Debug)]
pub struct ConflictRow {
    pub id: i64,
    pub at: String,
    pub address: String,
    pub recorded: String,
    pub proposed: String,
    pub device: String,
}

#[derive(Template)]
#[template(path = "conflicts.html")]
struct Conflicts {
    chrome: Chrome,
    code: String,
    done: Option<String>,
    error: Option<String>,
    rows: Vec<ConflictRow>,
}

async fn conflicts_view(
    state: &AppState,
    chrome: Chrome,
    code: &str,
    done: Option<String>,
    error: Option<String>,
) -> Result<Response, ApiError> {
    let m = municipality(code)?;
    let store = state.store.clone();
    let (list, recorded, catalogue) = blocking(move || {
        let list = store.dose_conflicts(m)?;
        let mut recorded = std::collections::HashMap::new();
        for c in &list {
            if !recorded.contains_key(&c.existing_dose_id) {
                for d in store.doses(m, &c.address)? {
                    recorded.insert(d.id, d);
                }
            }
        }
        Ok((list, recorded, Catalogue::new(store.products()?)?))
    })
    .await?;
    let show = |d: &openvrs_domain::dose::Dose| {
        let name = catalogue
            .get(d.product.as_str())
            .map_or_else(|| d.product.as_str().to_owned(), |p| p.name.clone());
        format!("{} {} {name} {}", d.number.get(), d.date, d.lot.as_str())
    };
    render(&Conflicts {
        chrome: chrome.clone(),
        code: code.to_owned(),
        done,
        error,
        rows: list
            .iter()
            .map(|c| ConflictRow {
                id: c.id,
                at: when(c.at),
                address: c.address.as_str().to_owned(),
                recorded: recorded
                    .get(&c.existing_dose_id)
                    .map(|d| show(&d.dose))
                    .unwrap_or_default(),
                proposed: show(&c.proposed),
                device: c.device.clone(),
            })
            .collect(),
    })
}

/// `GET /m/{municipality}/conflicts`: the tablet conflict queue.
pub async fn conflicts_page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path(code): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, ApiError> {
    let chrome = Chrome::new(&headers, Some(&p), &format!("/m/{code}/conflicts"));
    let said = done
        .done
        .as_deref()
        .filter(|d| *d == "resolved")
        .map(|_| chrome.lang.t("解決しました", "Resolved").to_owned());
    conflicts_view(&state, chrome.clone(), &code, said, None).await
}

#[derive(Debug, Deserialize)]
pub struct ResolveForm {
    action: String,
    #[serde(default)]
    reason: String,
}

/// `POST /m/{municipality}/conflicts/{conflict_id}`: keep the recorded dose or replace it with
/// the tablet's, with the reason.
pub async fn resolve_conflict(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path((code, id)): Path<(String, i64)>,
    Form(form): Form<ResolveForm>,
) -> Response {
    let chrome = Chrome::new(&headers, Some(&p), &format!("/m/{code}/conflicts"));
    let resolved = async {
        let m = municipality(&code)?;
        let replace = match form.action.as_str() {
            "keep" => false,
            "replace" => true,
            _ => {
                return Err(ApiError::bad_request(
                    "維持か置換を選んでください",
                    "choose keep or replace",
                ));
            }
        };
        let reason = reason(&form.reason)?;
        let (store, actor) = (state.store.clone(), api::actor(&p));
        blocking(move || store.resolve_dose_conflict(m, id, replace, &reason, &actor)).await
    };
    match resolved.await {
        Ok(()) => Redirect::to(&format!("/m/{code}/conflicts?done=resolved")).into_response(),
        Err(e) => {
            form_again(chrome.clone(), e, |chrome, why| {
                conflicts_view(&state, chrome, &code, None, Some(why))
            })
            .await
        }
    }
}

/// `GET /m/{municipality}/persons/{address_number}/disclosure`: the disclosure document
/// (開示), everything held about the person, to print (the read is audited).
pub async fn disclosure_page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((code, address)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (m, a) = crate::records::target(&code, &address)?;
    let (store, actor) = (state.store.clone(), api::actor(&p));
    let (d, catalogue) = blocking(move || {
        Ok((
            store.disclosure(m, &a, &actor)?,
            Catalogue::new(store.products()?)?,
        ))
    })
    .await?;
    let d = d.ok_or_else(ApiError::not_found)?;
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Html(openvrs_service::disclosure::html(
            &d,
            &catalogue,
            m,
            &crate::headers::nonce(),
        )),
    )
        .into_response())
}

/// The flags form (a ticked box sends `on`).
#[derive(Debug, Deserialize)]
pub struct FlagsForm {
    #[serde(default)]
    moved_out_on: String,
    #[serde(default)]
    moved_out_to: String,
    #[serde(default)]
    deceased_on: String,
    use_suspended: Option<String>,
    #[serde(default)]
    reason: String,
}

/// After a person's form: to their page with what was done, or an error page with why.
fn back_to_person(
    chrome: Chrome,
    code: &str,
    address: &str,
    done: Result<&str, ApiError>,
) -> Response {
    match done {
        Ok(done) => {
            Redirect::to(&format!("/m/{code}/persons/{address}?done={done}")).into_response()
        }
        Err(e) => error_page(chrome, e),
    }
}

/// `POST /m/{municipality}/persons/{address_number}/flags`: moved out, deceased, use suspended
/// (利用停止), with the reason.
pub async fn set_flags(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path((code, address)): Path<(String, String)>,
    Form(form): Form<FlagsForm>,
) -> Response {
    let chrome = Chrome::new(&headers, Some(&p), &format!("/m/{code}/persons/{address}"));
    let done = async {
        let (m, a) = crate::records::target(&code, &address)?;
        let input = crate::records::FlagsInput {
            moved_out_on: Some(form.moved_out_on),
            moved_out_to: Some(form.moved_out_to),
            deceased_on: Some(form.deceased_on),
            use_suspended: form.use_suspended.is_some(),
            reason: reason(&form.reason)?,
        };
        let flags = input.flags()?;
        let (store, actor) = (state.store.clone(), api::actor(&p));
        blocking(move || store.set_flags(m, &a, flags, &input.reason, &actor)).await?;
        Ok("flags")
    };
    back_to_person(chrome, &code, &address, done.await)
}

/// `POST /m/{municipality}/persons/{address_number}/correction`: the identity corrected (訂正),
/// with the reason; a blank My Number keeps the one recorded.
pub async fn correct_identity(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path((code, address)): Path<(String, String)>,
    Form(mut input): Form<crate::records::PersonCorrection>,
) -> Response {
    let chrome = Chrome::new(&headers, Some(&p), &format!("/m/{code}/persons/{address}"));
    let done = async {
        let (m, a) = crate::records::target(&code, &address)?;
        input.reason = reason(&input.reason)?;
        if input
            .my_number
            .as_deref()
            .is_none_or(|n| n.trim().is_empty())
        {
            let current = api::read_person(&state, &p, m, a.clone()).await?;
            input.my_number = current.my_number.map(|n| n.expose().to_owned());
        }
        let corrected = input.person(a)?;
        let (store, actor) = (state.store.clone(), api::actor(&p));
        blocking(move || store.correct_person(m, &corrected, &input.reason, &actor)).await?;
        Ok("identity")
    };
    back_to_person(chrome, &code, &address, done.await)
}

#[derive(Debug, Deserialize)]
pub struct KioskForm {
    enabled: String,
}

/// `POST /m/{municipality}/kiosk`: turns certificate issuance at convenience-store kiosks on
/// or off (audited); back home.
pub async fn set_kiosk(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path(code): Path<String>,
    Form(form): Form<KioskForm>,
) -> Response {
    let chrome = Chrome::new(&headers, Some(&p), &format!("/m/{code}/"));
    let done = async {
        let m = municipality(&code)?;
        let on = form.enabled == "on";
        let (store, actor) = (state.store.clone(), api::actor(&p));
        blocking(move || store.set_kiosk(m, on, &actor)).await
    };
    match done.await {
        Ok(()) => Redirect::to(&format!("/m/{code}/")).into_response(),
        Err(e) => error_page(chrome, e),
    }
}

#[derive(Template)]
#[template(path = "delete.html")]
struct Delete {
    chrome: Chrome,
    code: String,
    error: Option<String>,
}

/// `GET /m/{municipality}/delete`: what deleting the municipality's data means, and the form.
pub async fn delete_page(
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let chrome = Chrome::new(&headers, Some(&p), &format!("/m/{code}/delete"));
    render(&Delete {
        chrome: chrome.clone(),
        code,
        error: None,
    })
}

#[derive(Debug, Deserialize)]
pub struct DeleteForm {
    confirm: String,
}

/// `POST /m/{municipality}/delete`: crypto-shreds the municipality's personal data - its own
/// staff only (the guard), and only when the code is typed again.
pub async fn delete(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path(code): Path<String>,
    Form(form): Form<DeleteForm>,
) -> Response {
    let chrome = Chrome::new(&headers, Some(&p), &format!("/m/{code}/delete"));
    if form.confirm.trim() != code {
        let page = Delete {
            error: Some(
                chrome
                    .lang
                    .t(
                        "自治体コードが一致しません。何も削除していません。",
                        "The code does not match: nothing was deleted.",
                    )
                    .to_owned(),
            ),
            chrome: chrome.clone(),
            code,
        };
        return match render(&page) {
            Ok(r) => (StatusCode::UNPROCESSABLE_ENTITY, r).into_response(),
            Err(e) => error_page(chrome, e),
        };
    }
    let done = async {
        let m = municipality(&code)?;
        let (store, actor) = (state.store.clone(), api::actor(&p));
        blocking(move || store.shred(m, &actor)).await
    };
    match done.await {
        Ok(()) => Redirect::to(&format!("/m/{code}/")).into_response(),
        Err(e) => error_page(chrome, e),
    }
}

/// Data-quality warnings per municipality, counted at most every few minutes.
#[derive(Debug, Default)]
pub struct QualityCounts {
    last:
        std::sync::Mutex<std::collections::HashMap<MunicipalityCode, (std::time::Instant, usize)>>,
}

impl QualityCounts {
    const FRESH: std::time::Duration = std::time::Duration::from_secs(300);

    async fn get(
        &self,
        state: &AppState,
        p: &Principal,
        m: MunicipalityCode,
    ) -> Result<usize, ApiError> {
        if let Some((at, n)) = self.last.lock().unwrap_or_else(|e| e.into_inner()).get(&m)
            && at.elapsed() < Self::FRESH
        {
            return Ok(*n);
        }
        let (store, actor) = (state.store.clone(), api::actor(p));
        let n = blocking(move || store.quality_report(m, &actor))
            .await?
            .len();
        self.last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(m, (std::time::Instant::now(), n));
        Ok(n)
    }
}
