//! Certificates from the staff's pages: issued at the counter, revoked, and issuance at
//! convenience-store kiosks turned on or off.

use super::*;

/// `POST /m/{municipality}/persons/{address_number}/certificates`: a certificate issued at the
/// counter, answered with the file itself (the PDF to print, or the card's file).
pub(crate) async fn issue_certificate(
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
pub(crate) struct ReasonForm {
    reason: String,
}

/// `POST /m/{municipality}/certificates/{certificate_id}/revoke`: with its reason; back to the
/// person's page.
pub(crate) async fn revoke_certificate(
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
    let to = revoked
        .await
        .map(|r| format!("/m/{code}/persons/{}?done=revoked", r.address_number));
    redirect_or_error(chrome, to)
}

#[derive(Debug, Deserialize)]
pub(crate) struct KioskForm {
    enabled: String,
}

/// `POST /m/{municipality}/kiosk`: turns certificate issuance at convenience-store kiosks on
/// or off (audited); back home.
pub(crate) async fn set_kiosk(
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
    let to = done.await.map(|()| format!("/m/{code}/"));
    redirect_or_error(chrome, to)
}
