//! Finding a person and their page (identity, doses, history, certificates, log), and the
//! individual's rights on it: disclosure (開示), the flags - moved out, deceased, use suspended
//! (利用停止) - and the identity corrected (訂正).

use super::*;

#[derive(Template)]
#[template(path = "search.html")]
struct Search {
    chrome: Chrome,
    code: String,
    error: Option<String>,
    by: String,
}

/// `GET /m/{municipality}/persons`: the search form.
pub(crate) async fn search_page(
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
pub(crate) struct SearchForm {
    by: String,
    q: String,
}

/// `POST /m/{municipality}/persons`: finds one person by address number, voucher number or My
/// Number (exact; audited like every read) and opens their page, or says nobody was found.
pub(crate) async fn search(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path(code): Path<String>,
    Form(form): Form<SearchForm>,
) -> Response {
    let chrome = Chrome::new(&headers, Some(&p), &format!("/m/{code}/persons"));
    let lang = chrome.lang;
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
        Ok(None) => {
            let page = Search {
                chrome: chrome.clone(),
                code: code.clone(),
                error: Some(
                    lang.t(
                        "該当する住民はいません(番号の形式も確認してください)",
                        "nobody found (check the number's format too)",
                    )
                    .to_owned(),
                ),
                by: form.by.clone(),
            };
            unprocessable(&chrome, &page)
        }
        Err(e) => error_page(chrome.clone(), e),
    }
}

/// A person as the page shows them.
#[derive(Debug)]
struct PersonView {
    address_number: String,
    name: String,
    name_kana: String,
    birth_date: String,
    sex: String,
    /// Only its last four digits.
    my_number: String,
    flags: Vec<String>,
    vouchers: Vec<String>,
    /// The flags as the form edits them.
    moved_out_on: String,
    moved_out_to: String,
    deceased_on: String,
    suspended: bool,
    sex_code: u8,
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
pub(crate) async fn person_page(
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

/// `GET /m/{municipality}/persons/{address_number}/disclosure`: the disclosure document
/// (開示), everything held about the person, to print (the read is audited).
pub(crate) async fn disclosure_page(
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
pub(crate) struct FlagsForm {
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
    let to = done.map(|done| format!("/m/{code}/persons/{address}?done={done}"));
    redirect_or_error(chrome, to)
}

/// `POST /m/{municipality}/persons/{address_number}/flags`: moved out, deceased, use suspended
/// (利用停止), with the reason.
pub(crate) async fn set_flags(
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
pub(crate) async fn correct_identity(
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
