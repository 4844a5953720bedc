//! Inquiries to other municipalities (asking, the answers, attaching them to our own records)
//! and the provision records (情報提供等の記録): what others were given when they asked us.

use super::*;

/// One inquiry as the page lists it.
#[derive(Debug)]
struct InquiryRow {
    id: i64,
    at: String,
    source: String,
    address: String,
    status: String,
    doses: Vec<String>,
    attached: String,
    /// Found, with doses, not yet attached.
    attachable: bool,
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
pub(crate) struct InquiryDone {
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
pub(crate) async fn inquiries_page(
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
pub(crate) async fn ask(
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
pub(crate) async fn attach(
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

/// `GET /m/{municipality}/provisions`: 情報提供等の記録, what other municipalities were given.
pub(crate) async fn provisions_page(
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
