//! Deleting the municipality's data (crypto-shredding): the page that says what it means, and
//! the form, confirmed by typing the municipality code again.

use super::*;

#[derive(Template)]
#[template(path = "delete.html")]
struct Delete {
    chrome: Chrome,
    code: String,
    error: Option<String>,
}

/// `GET /m/{municipality}/delete`: what deleting the municipality's data means, and the form.
pub(crate) async fn delete_page(
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
pub(crate) struct DeleteForm {
    confirm: String,
}

/// `POST /m/{municipality}/delete`: crypto-shreds the municipality's personal data - its own
/// staff only (the guard), and only when the code is typed again.
pub(crate) async fn delete(
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
        return unprocessable(&chrome, &page);
    }
    let done = async {
        let m = municipality(&code)?;
        let (store, actor) = (state.store.clone(), api::actor(&p));
        blocking(move || store.shred(m, &actor)).await
    };
    let to = done.await.map(|()| format!("/m/{code}/"));
    redirect_or_error(chrome, to)
}
