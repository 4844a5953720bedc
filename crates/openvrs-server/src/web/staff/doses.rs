//! Dose records by form - added, corrected, deleted - and the queue of venue-tablet records
//! that disagree with a recorded dose (conflicts), resolved by keeping or replacing it.

use super::*;

/// The fields of the dose form, as typed.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct DoseForm {
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
pub(crate) async fn new_dose_page(
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
pub(crate) async fn dose_page(
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
pub(crate) async fn add_dose(
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
pub(crate) async fn correct_dose(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path((code, address, id)): Path<(String, String, i64)>,
    Form(form): Form<DoseForm>,
) -> Response {
    dose_write(state, p, headers, (code, address, Some(id)), form, false).await
}

/// `POST /m/{municipality}/persons/{address_number}/doses/{dose_id}/delete`, with its reason.
pub(crate) async fn delete_dose(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
    Path((code, address, id)): Path<(String, String, i64)>,
    Form(form): Form<DoseForm>,
) -> Response {
    dose_write(state, p, headers, (code, address, Some(id)), form, true).await
}

/// One tablet conflict as the page shows it.
#[derive(Debug)]
struct ConflictRow {
    id: i64,
    at: String,
    address: String,
    recorded: String,
    proposed: String,
    device: String,
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
pub(crate) async fn conflicts_page(
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
pub(crate) struct ResolveForm {
    action: String,
    #[serde(default)]
    reason: String,
}

/// `POST /m/{municipality}/conflicts/{conflict_id}`: keep the recorded dose or replace it with
/// the tablet's, with the reason.
pub(crate) async fn resolve_conflict(
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
