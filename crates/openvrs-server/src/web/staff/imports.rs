//! The imports page: the three CSV imports (targets and vouchers, the ledger, the flags), run
//! by the page's script against the API, and the ledger export.

use super::*;

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
pub(crate) async fn imports_page(
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
