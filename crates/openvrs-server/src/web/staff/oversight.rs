//! Looking over the municipality's data and its handling: the data-quality report, the
//! security events and the operation log (audit, with the hash chain verified on request).

use super::*;

/// `GET /m/{municipality}/quality`: every data-quality finding over the current doses.
pub(crate) async fn quality_page(
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

/// `GET /m/{municipality}/security-events`: the municipality's own security events.
pub(crate) async fn security_page(
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
pub(crate) struct AuditQuery {
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
pub(crate) async fn audit_page(
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
