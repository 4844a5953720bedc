//! The web application for municipal staff, the state and prefectures (LGWAN listener):
//! server-rendered pages, templates compiled into the binary (askama), Japanese by default with
//! an English switch. Every page is a row of `routes::ROUTES` like any API route, so the guard
//! decides who may see it and the access-matrix test covers it. Forms post back to the page's
//! own origin (the guard checks `Origin`); a My Number is only ever in a form body, never in a
//! URL.

use askama::Template;
use axum::{
    Extension, Form,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
};
use openvrs_domain::{
    account::Binding,
    ids::{AddressNumber, MunicipalityCode, MyNumber, VoucherNumber},
    person::Person,
    product::Catalogue,
};
use openvrs_store::{AuditFilter, StoredDose};
use serde::Deserialize;

use crate::{
    AppState, api,
    auth::{Principal, client},
    blocking,
    error::ApiError,
};

mod labels;
mod national;
mod staff;

pub use national::*;
pub use staff::*;

/// The templates' own filters.
pub mod filters {
    /// `{{ n|thousands }}`: a count with its digits grouped (`12,345`); anything that is not a
    /// count as it is.
    pub fn thousands<T: std::fmt::Display>(n: T, _: &dyn askama::Values) -> askama::Result<String> {
        let text = n.to_string();
        Ok(match text.parse::<u64>() {
            Ok(n) => openvrs_service::opendata::thousands(n),
            Err(_) => text,
        })
    }
}

/// The language of the pages: Japanese unless the `lang` cookie says English.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ja,
    En,
}

const LANG_COOKIE: &str = "lang";

impl Lang {
    fn from_headers(headers: &HeaderMap) -> Self {
        let english = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(cookie::Cookie::split_parse)
            .flatten()
            .any(|c| c.name() == LANG_COOKIE && c.value() == "en");
        if english { Lang::En } else { Lang::Ja }
    }

    /// The text in this language: both are written side by side where they are used.
    pub fn t<'a>(&self, ja: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Ja => ja,
            Lang::En => en,
        }
    }

    pub fn code(&self) -> &'static str {
        self.t("ja", "en")
    }

    pub fn other(&self) -> Lang {
        match self {
            Lang::Ja => Lang::En,
            Lang::En => Lang::Ja,
        }
    }

    /// Its own name, for the switch.
    pub fn name(&self) -> &'static str {
        self.t("日本語", "English")
    }

    /// One half of a bilingual "日本語 / English" message (the whole of one that joins several).
    fn pick(&self, message: &str) -> String {
        match message.split_once(" / ") {
            Some((ja, en)) if !en.contains(" / ") => self.t(ja, en).to_owned(),
            _ => message.to_owned(),
        }
    }
}

/// What every page shows around its content.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub lang: Lang,
    pub user: Option<String>,
    /// The staff member's municipality, for the menu.
    pub municipality: Option<String>,
    /// Switches the language and comes back here.
    pub lang_href: String,
    /// The account may see the aggregates (the state, a prefecture).
    pub aggregates: bool,
    /// The national administrator's menu.
    pub national: bool,
    /// This response's Content-Security-Policy nonce, for the template's own `<script>` and
    /// `<style>` blocks.
    pub nonce: String,
}

impl Chrome {
    fn new(headers: &HeaderMap, p: Option<&Principal>, here: &str) -> Self {
        let lang = Lang::from_headers(headers);
        Self {
            lang,
            user: p.map(|p| p.account.id.to_string()),
            municipality: p
                .and_then(|p| p.account.binding.municipality())
                .map(|m| m.to_string()),
            lang_href: format!("/lang/{}?next={here}", lang.other().code()),
            aggregates: p.is_some_and(|p| {
                matches!(
                    p.account.binding,
                    Binding::National | Binding::Prefecture(_)
                )
            }),
            national: p.is_some_and(|p| matches!(p.account.binding, Binding::National)),
            nonce: crate::headers::nonce(),
        }
    }
}

fn render(page: &impl Template) -> Result<Response, ApiError> {
    let html = page.render().map_err(|e| {
        tracing::error!(error = %e, "template");
        ApiError::internal()
    })?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response())
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    status: u16,
    message: String,
}

/// An error as a page in the reader's language.
fn error_page(chrome: Chrome, e: ApiError) -> Response {
    let page = ErrorPage {
        message: chrome.lang.pick(&e.message),
        status: e.status.as_u16(),
        chrome,
    };
    match page.render() {
        Ok(html) => (e.status, Html(html)).into_response(),
        Err(_) => e.into_response(),
    }
}

/// The one page wrapper: every page route's errors (a handler's `Err(ApiError)`) are shown as
/// a page in the reader's language, with the page's menu; handlers just use `?`. Runs inside
/// the guard, so the signed-in account is known.
pub async fn error_pages(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let chrome = Chrome::new(
        req.headers(),
        req.extensions().get::<Principal>(),
        req.uri().path(),
    );
    let response = next.run(req).await;
    match response.extensions().get::<crate::error::Shown>() {
        Some(crate::error::Shown(message)) => {
            let e = ApiError {
                status: response.status(),
                code: "page",
                message: message.clone(),
                details: None,
            };
            error_page(chrome, e)
        }
        None => response,
    }
}

/// A form that could not be done: its page again with why, under the error's status - or an
/// error page when what it was about does not exist.
async fn form_again<F, Fut>(chrome: Chrome, e: ApiError, page: F) -> Response
where
    F: FnOnce(Chrome, String) -> Fut,
    Fut: std::future::Future<Output = Result<Response, ApiError>>,
{
    if e.status == StatusCode::NOT_FOUND {
        return error_page(chrome, e);
    }
    let (status, why) = (e.status, chrome.lang.pick(&e.message));
    match page(chrome.clone(), why).await {
        Ok(page) => (status, page).into_response(),
        Err(e) => error_page(chrome, e),
    }
}

/// `GET /`: the signed-in account's home, or the sign-in page.
pub async fn root(p: Option<Extension<Principal>>) -> Redirect {
    let to = match p.map(|p| p.0.account.binding) {
        Some(Binding::Municipality(m)) => format!("/m/{m}/"),
        Some(Binding::National | Binding::Prefecture(_)) => "/aggregates".to_owned(),
        Some(_) | None => "/signin".to_owned(),
    };
    Redirect::to(&to)
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SignIn {
    chrome: Chrome,
    error: Option<String>,
    user: String,
}

pub async fn signin_page(headers: HeaderMap) -> Result<Response, ApiError> {
    render(&SignIn {
        chrome: Chrome::new(&headers, None, "/signin"),
        error: None,
        user: String::new(),
    })
}

#[derive(Deserialize)]
pub struct SignInForm {
    user: String,
    password: String,
}

impl std::fmt::Debug for SignInForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignInForm({}, ..)", self.user)
    }
}

/// `POST /signin`: the same checks as the API's sign-in; a session cookie and the home page, or
/// the form again with the reason.
pub async fn signin(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    Form(form): Form<SignInForm>,
) -> Response {
    let client = client(&extensions);
    match api::sign_in(&state, client, &form.user, form.password).await {
        Ok((_, cookie, _)) => ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response(),
        Err(e) => {
            let chrome = Chrome::new(&headers, None, "/signin");
            let page = SignIn {
                error: Some(chrome.lang.pick(&e.message)),
                user: form.user,
                chrome,
            };
            match render(&page) {
                Ok(r) => (e.status, r).into_response(),
                Err(e) => e.into_response(),
            }
        }
    }
}

/// `POST /signout`.
pub async fn signout(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Response, ApiError> {
    let cookie = api::sign_out(&state, &p).await?;
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/signin")).into_response())
}

#[derive(Debug, Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// `GET /lang/{code}?next=/path`: remembers the language and goes back (to a path of this site
/// only).
pub async fn set_lang(Path(code): Path<String>, Query(q): Query<Next>) -> Response {
    let lang = if code == "en" { "en" } else { "ja" };
    let next = q
        .next
        .filter(|n| {
            // A path of this site only: not `//host`, and no backslash or control character a
            // browser would drop to make one (`/\t/evil.example`).
            n.starts_with('/')
                && !n.starts_with("//")
                && !n.chars().any(|c| c == '\\' || c.is_control())
        })
        .unwrap_or_else(|| "/".to_owned());
    let cookie = cookie::Cookie::build((LANG_COOKIE, lang))
        .path("/")
        .same_site(cookie::SameSite::Lax)
        .max_age(cookie::time::Duration::days(365))
        .build();
    (
        [(header::SET_COOKIE, cookie.to_string())],
        Redirect::to(&next),
    )
        .into_response()
}

fn municipality(code: &str) -> Result<MunicipalityCode, ApiError> {
    MunicipalityCode::parse(code).map_err(|_| ApiError::not_found())
}

/// Unix microseconds as Japan's local time, to the minute.
fn when(micros: i64) -> String {
    openvrs_domain::date::jst_from_micros(micros).map_or_else(String::new, |t| {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        )
    })
}

/// A table cell, a link when `href` is given.
#[derive(Debug, Clone)]
pub struct Cell {
    pub text: String,
    pub href: Option<String>,
}

fn cell(text: impl Into<String>) -> Cell {
    Cell {
        text: text.into(),
        href: None,
    }
}

fn link(text: impl Into<String>, href: String) -> Cell {
    Cell {
        text: text.into(),
        href: Some(href),
    }
}

/// A page that is one table (with filters, newest first, and a link to older rows).
#[derive(Template)]
#[template(path = "listing.html")]
struct Listing {
    chrome: Chrome,
    title: String,
    intro: String,
    done: Option<String>,
    /// (name, label, value) of each filter field.
    filters: Vec<(&'static str, String, String)>,
    headers: Vec<String>,
    rows: Vec<Vec<Cell>>,
    more: Option<String>,
    /// A link that verifies the audit chain (the log page).
    verify: Option<String>,
}

impl Listing {
    fn new(chrome: &Chrome, title: (&str, &str), headers: &[(&str, &str)]) -> Self {
        let lang = chrome.lang;
        Self {
            chrome: chrome.clone(),
            title: lang.t(title.0, title.1).to_owned(),
            intro: String::new(),
            done: None,
            filters: Vec::new(),
            headers: headers
                .iter()
                .map(|(ja, en)| lang.t(ja, en).to_owned())
                .collect(),
            rows: Vec::new(),
            more: None,
            verify: None,
        }
    }
}

fn events_listing(chrome: &Chrome, events: &[openvrs_store::SecurityEvent]) -> Listing {
    let mut l = Listing::new(
        chrome,
        ("セキュリティイベント", "Security events"),
        &[
            ("日時", "When"),
            ("種類", "Kind"),
            ("自治体", "Municipality"),
            ("ユーザー", "User"),
            ("接続元", "Client"),
            ("内容", "Detail"),
        ],
    );
    l.rows = events
        .iter()
        .map(|e| {
            vec![
                cell(when(e.at)),
                cell(labels::label(chrome.lang, e.kind.code())),
                cell(e.municipality.map(|m| m.to_string()).unwrap_or_default()),
                cell(e.user.clone().unwrap_or_default()),
                cell(e.client.clone().unwrap_or_default()),
                cell(e.detail.clone()),
            ]
        })
        .collect();
    l
}

/// An inquiry's or provision's result in the reader's language.
fn status_label(lang: Lang, s: openvrs_store::InquiryStatus) -> String {
    labels::label(lang, s.code())
}

/// Sex as the open data writes it (`M`, `F`, `U`), in the reader's language.
fn sex_label(lang: Lang, open_data: char) -> &'static str {
    match open_data {
        'M' => lang.t("男", "male"),
        'F' => lang.t("女", "female"),
        _ => lang.t("不明", "not known"),
    }
}

/// The reason a change needs, trimmed; refused when there is none.
fn reason(r: &str) -> Result<String, ApiError> {
    let r = r.trim();
    if r.is_empty() {
        return Err(ApiError::bad_request(
            "理由を入力してください",
            "give the reason",
        ));
    }
    Ok(r.to_owned())
}

/// The session's CSRF token, for a page whose script calls the API.
async fn csrf_token(state: &AppState, p: &Principal) -> Result<String, ApiError> {
    Ok(match p.session {
        Some(digest) => {
            let store = state.store.clone();
            blocking(move || Ok(store.session(&digest)?.map(|s| s.csrf_token)))
                .await?
                .unwrap_or_default()
        }
        None => String::new(),
    })
}
