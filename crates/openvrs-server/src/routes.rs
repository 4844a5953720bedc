//! Every route of both listeners, in one table. The routers, the guard and the access-matrix
//! test are all built from [`ROUTES`]; a route exists nowhere else.

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::Method,
    middleware::from_fn_with_state,
    routing::{MethodRouter, get, post, put},
};

use crate::{AppState, Zone, api, auth::Access, records, web};

/// One route: where it is mounted, who may call it, whether it touches personal data, and what
/// the API description says of it.
#[derive(Debug)]
pub struct RouteSpec {
    pub zone: Zone,
    pub method: Method,
    /// The axum path template, e.g. `/api/municipalities/{municipality}/persons/{address_number}`.
    pub path: &'static str,
    pub access: Access,
    /// Accepts a My Number, or returns a My Number or other identity data: never on the internet
    /// listener. (The venue route takes a date of birth only to check it, and answers with a
    /// masked name.)
    pub personal: bool,
    /// The status of a successful call.
    pub ok: u16,
    /// The JSON request body's schema, by name (`openapi::schemas`), if the route takes one.
    pub body: Option<&'static str>,
    /// The schema of the JSON a successful call answers, by name (`openapi::schemas`); none
    /// for a route that answers nothing, a page, a file or plain text.
    pub answer: Option<&'static str>,
    /// One line, Japanese / English.
    pub summary: &'static str,
    pub handler: fn() -> MethodRouter<AppState>,
}

macro_rules! route {
    ($zone:ident $method:ident $path:literal, $access:ident, personal: $personal:expr, ok: $ok:literal, body: $body:expr, answer: $answer:expr, $summary:literal, $handler:expr) => {
        RouteSpec {
            zone: Zone::$zone,
            method: Method::$method,
            path: $path,
            access: Access::$access,
            personal: $personal,
            ok: $ok,
            body: $body,
            answer: $answer,
            summary: $summary,
            handler: || $handler,
        }
    };
}

pub static ROUTES: &[RouteSpec] = &[
    route!(Lgwan GET "/healthz", Public, personal: false, ok: 200, body: None, answer: None, "稼働確認 / liveness", get(api::healthz)),
    route!(Lgwan GET "/readyz", Public, personal: false, ok: 200, body: None, answer: None, "受付可能か(データベース応答) / readiness (the database answers)", get(api::readyz)),
    route!(Lgwan GET "/version", Public, personal: false, ok: 200, body: None, answer: Some("Version"), "版 / version", get(api::version_lgwan)),
    route!(Lgwan GET "/api/openapi.json", Public, personal: false, ok: 200, body: None, answer: None, "API 記述 / API description", get(crate::openapi::lgwan)),
    route!(Lgwan GET "/", Public, personal: false, ok: 303, body: None, answer: None, "ホーム(アカウントの画面へ) / home (to the account's pages)", get(web::root)),
    route!(Lgwan GET "/signin", Public, personal: false, ok: 200, body: None, answer: None, "サインイン画面 / the sign-in page", get(web::signin_page)),
    route!(Lgwan POST "/signin", Public, personal: false, ok: 303, body: None, answer: None, "サインイン(フォーム) / sign in (form)", post(web::signin)),
    route!(Lgwan POST "/signout", Signed, personal: false, ok: 303, body: None, answer: None, "サインアウト(フォーム) / sign out (form)", post(web::signout)),
    route!(Lgwan GET "/lang/{lang}", Public, personal: false, ok: 303, body: None, answer: None, "画面の言語の切替 / switch the pages' language", get(web::set_lang)),
    route!(Lgwan GET "/m/{municipality}/", Staff, personal: false, ok: 200, body: None, answer: None, "職員のホーム(件数・対応待ち) / staff home (counts, what is waiting)", get(web::staff_home)),
    route!(Lgwan GET "/m/{municipality}/persons", Staff, personal: false, ok: 200, body: None, answer: None, "住民の検索画面 / find a person", get(web::search_page)),
    route!(Lgwan POST "/m/{municipality}/persons", Staff, personal: true, ok: 303, body: None, answer: None, "住民の検索(宛名番号・券番号・個人番号) / find a person (address, voucher or My Number)", post(web::search)),
    route!(Lgwan GET "/m/{municipality}/persons/{address_number}", Staff, personal: true, ok: 200, body: None, answer: None, "住民の画面(本人情報・接種・証明書・操作ログ) / a person's page (identity, doses, certificates, log)", get(web::person_page)),
    route!(Lgwan GET "/m/{municipality}/persons/{address_number}/doses/new", Staff, personal: false, ok: 200, body: None, answer: None, "接種記録の追加画面 / the form to add a dose", get(web::new_dose_page)),
    route!(Lgwan POST "/m/{municipality}/persons/{address_number}/doses", Staff, personal: false, ok: 303, body: None, answer: None, "接種記録の追加(フォーム、品質規則を適用) / add a dose (form; quality rules apply)", post(web::add_dose)),
    route!(Lgwan GET "/m/{municipality}/persons/{address_number}/doses/{dose_id}", Staff, personal: false, ok: 200, body: None, answer: None, "接種記録の訂正・削除画面 / the form to correct or delete a dose", get(web::dose_page)),
    route!(Lgwan POST "/m/{municipality}/persons/{address_number}/doses/{dose_id}", Staff, personal: false, ok: 303, body: None, answer: None, "接種記録の訂正(フォーム、理由必須) / correct a dose (form; reason required)", post(web::correct_dose)),
    route!(Lgwan POST "/m/{municipality}/persons/{address_number}/doses/{dose_id}/delete", Staff, personal: false, ok: 303, body: None, answer: None, "接種記録の削除(フォーム、理由必須) / delete a dose (form; reason required)", post(web::delete_dose)),
    route!(Lgwan GET "/m/{municipality}/imports", Staff, personal: false, ok: 200, body: None, answer: None, "取込(進捗と全エラー行)・出力の画面 / imports (progress, every wrong row) and exports", get(web::imports_page)),
    route!(Lgwan GET "/m/{municipality}/inquiries", Staff, personal: false, ok: 200, body: None, answer: None, "他市区町村への照会の画面(結果と取込) / inquiries to other municipalities (results, attaching)", get(web::inquiries_page)),
    route!(Lgwan POST "/m/{municipality}/inquiries", Staff, personal: true, ok: 303, body: None, answer: None, "照会(フォーム) / ask another municipality (form)", post(web::ask)),
    route!(Lgwan POST "/m/{municipality}/inquiries/attach", Staff, personal: false, ok: 303, body: None, answer: None, "照会結果の取込(フォーム) / attach inquiry results (form)", post(web::attach)),
    route!(Lgwan POST "/m/{municipality}/persons/{address_number}/certificates", Staff, personal: true, ok: 200, body: None, answer: None, "窓口での証明書発行(フォーム、ファイルで返す) / issue a certificate at the counter (form; the file comes back)", post(web::issue_certificate)),
    route!(Lgwan POST "/m/{municipality}/certificates/{certificate_id}/revoke", Staff, personal: false, ok: 303, body: None, answer: None, "証明書の失効(フォーム、理由必須) / revoke a certificate (form; reason required)", post(web::revoke_certificate)),
    route!(Lgwan GET "/m/{municipality}/conflicts", Staff, personal: false, ok: 200, body: None, answer: None, "接種会場端末との競合の一覧 / the tablet conflict queue", get(web::conflicts_page)),
    route!(Lgwan POST "/m/{municipality}/conflicts/{conflict_id}", Staff, personal: false, ok: 303, body: None, answer: None, "競合の解決(フォーム、理由必須) / resolve a conflict (form; reason required)", post(web::resolve_conflict)),
    route!(Lgwan GET "/m/{municipality}/quality", Staff, personal: false, ok: 200, body: None, answer: None, "データ品質レポートの画面 / the data-quality report", get(web::quality_page)),
    route!(Lgwan GET "/m/{municipality}/provisions", Staff, personal: false, ok: 200, body: None, answer: None, "情報提供等の記録の画面 / provision records", get(web::provisions_page)),
    route!(Lgwan GET "/m/{municipality}/audit", Staff, personal: false, ok: 200, body: None, answer: None, "操作ログ(住民・担当・操作で絞込) / the operation log (by person, account, action)", get(web::audit_page)),
    route!(Lgwan GET "/m/{municipality}/security-events", Staff, personal: false, ok: 200, body: None, answer: None, "自団体のセキュリティイベントの画面 / own security events", get(web::security_page)),
    route!(Lgwan GET "/m/{municipality}/persons/{address_number}/disclosure", Staff, personal: true, ok: 200, body: None, answer: None, "開示文書(印刷用) / the disclosure document (to print)", get(web::disclosure_page)),
    route!(Lgwan POST "/m/{municipality}/persons/{address_number}/flags", Staff, personal: false, ok: 303, body: None, answer: None, "転出・死亡・利用停止(フォーム、理由必須) / moved out, deceased, use suspended (form; reason required)", post(web::set_flags)),
    route!(Lgwan POST "/m/{municipality}/persons/{address_number}/correction", Staff, personal: true, ok: 303, body: None, answer: None, "本人情報の訂正(フォーム、理由必須) / correct the identity (form; reason required)", post(web::correct_identity)),
    route!(Lgwan GET "/aggregates", Aggregates, personal: false, ok: 200, body: None, answer: None, "接種状況の集計(グラフ、国は全国・都道府県は自県のみ) / vaccination counts (chart; the state all, a prefecture its own)", get(web::aggregates_page)),
    route!(Lgwan GET "/national/accounts", National, personal: false, ok: 200, body: None, answer: None, "アカウントの一覧・発行・無効化 / accounts: list, issue, disable", get(web::accounts_page)),
    route!(Lgwan POST "/national/accounts", National, personal: false, ok: 201, body: None, answer: None, "アカウント発行(フォーム、パスワード・トークンは一度だけ表示) / issue an account (form; password or token shown once)", post(web::add_account)),
    route!(Lgwan POST "/national/accounts/{user}/disable", National, personal: false, ok: 303, body: None, answer: None, "アカウントの無効化(フォーム) / disable an account (form)", post(web::disable_account)),
    route!(Lgwan GET "/national/municipalities", National, personal: false, ok: 200, body: None, answer: None, "市区町村の一覧(コンビニ交付の実施) / municipalities (kiosk issuance)", get(web::municipalities_page)),
    route!(Lgwan GET "/national/products", National, personal: false, ok: 200, body: None, answer: None, "ワクチン製品の一覧 / the vaccine product catalogue", get(web::products_page)),
    route!(Lgwan GET "/national/security-events", National, personal: false, ok: 200, body: None, answer: None, "全国のセキュリティイベントの画面 / security events, all", get(web::all_security_page)),
    route!(Lgwan POST "/m/{municipality}/kiosk", Staff, personal: false, ok: 303, body: None, answer: None, "コンビニ交付の実施・停止(フォーム) / kiosk issuance on or off (form)", post(web::set_kiosk)),
    route!(Lgwan GET "/m/{municipality}/delete", Staff, personal: false, ok: 200, body: None, answer: None, "自団体のデータの削除(暗号消去)の画面 / deleting our data (crypto-shredding)", get(web::delete_page)),
    route!(Lgwan POST "/m/{municipality}/delete", Staff, personal: false, ok: 303, body: None, answer: None, "自団体のデータの削除(フォーム、自治体コードで確認) / delete our data (form; confirmed by typing the code)", post(web::delete)),
    route!(Lgwan POST "/api/login", Public, personal: false, ok: 200, body: Some("Login"), answer: Some("SignedIn"), "ログイン(セッション Cookie と CSRF トークン) / sign in (session cookie and CSRF token)", post(api::login)),
    route!(Lgwan POST "/api/logout", Signed, personal: false, ok: 204, body: None, answer: None, "ログアウト / sign out", post(api::logout)),
    route!(Lgwan GET "/api/me", Signed, personal: false, ok: 200, body: None, answer: Some("Account"), "自分のアカウント / own account", get(api::me)),
    route!(Lgwan GET "/api/accounts", National, personal: false, ok: 200, body: None, answer: Some("Accounts"), "アカウント一覧 / list accounts", get(api::list_accounts)),
    route!(Lgwan POST "/api/accounts", National, personal: false, ok: 201, body: Some("NewAccount"), answer: Some("IssuedAccount"), "アカウント発行 / issue an account", post(api::add_account)),
    route!(Lgwan POST "/api/accounts/{user}/disable", National, personal: false, ok: 204, body: None, answer: None, "アカウント無効化 / disable an account", post(api::disable_account)),
    route!(Lgwan GET "/api/security-events", National, personal: false, ok: 200, body: None, answer: Some("SecurityEvents"), "全国のセキュリティイベント / security events, all", get(api::all_security_events)),
    route!(Lgwan GET "/api/aggregates/persons", Aggregates, personal: false, ok: 200, body: None, answer: Some("PersonCounts"), "自治体別の登録者数 / persons per municipality", get(api::person_counts)),
    route!(Lgwan GET "/api/municipalities/{municipality}/security-events", Staff, personal: false, ok: 200, body: None, answer: Some("SecurityEvents"), "自団体のセキュリティイベント / own security events", get(api::own_security_events)),
    route!(Lgwan GET "/api/municipalities/{municipality}/persons/{address_number}", Staff, personal: true, ok: 200, body: None, answer: Some("Person"), "宛名番号で個人を表示 / a person by address number", get(api::person)),
    route!(Lgwan GET "/api/municipalities/{municipality}/persons/{address_number}/doses", Staff, personal: true, ok: 200, body: None, answer: Some("PersonDoses"), "接種記録と変更履歴 / doses and their history", get(records::doses)),
    route!(Lgwan POST "/api/municipalities/{municipality}/persons/{address_number}/doses", Staff, personal: true, ok: 201, body: Some("DoseInput"), answer: Some("WrittenDose"), "接種記録の登録(品質規則を適用) / record a dose (quality rules apply)", post(records::add_dose)),
    route!(Lgwan PUT "/api/municipalities/{municipality}/persons/{address_number}/doses/{dose_id}", Staff, personal: true, ok: 200, body: Some("DoseCorrection"), answer: Some("WrittenDose"), "接種記録の訂正(理由必須・旧版を保存) / correct a dose (reason required, previous version kept)", put(records::correct_dose)),
    route!(Lgwan POST "/api/municipalities/{municipality}/persons/{address_number}/doses/{dose_id}/delete", Staff, personal: true, ok: 204, body: Some("Reason"), answer: None, "接種記録の削除(理由必須・履歴に保存) / delete a dose (reason required, kept in the history)", post(records::delete_dose)),
    route!(Lgwan PUT "/api/municipalities/{municipality}/persons/{address_number}/flags", Staff, personal: true, ok: 204, body: Some("FlagsInput"), answer: None, "転出・死亡・利用停止(理由必須) / moved out, deceased, use suspended (reason required)", put(records::set_flags)),
    route!(Lgwan POST "/api/municipalities/{municipality}/persons/{address_number}/correction", Staff, personal: true, ok: 200, body: Some("PersonCorrection"), answer: Some("ChangedFields"), "本人情報の訂正(理由必須) / correct identity (reason required)", post(records::correct_person)),
    route!(Lgwan GET "/api/municipalities/{municipality}/persons/{address_number}/disclosure", Staff, personal: true, ok: 200, body: None, answer: Some("Disclosure"), "保有個人情報の開示 / disclosure of everything held", get(records::disclose)),
    route!(Lgwan GET "/api/municipalities/{municipality}/dose-conflicts", Staff, personal: false, ok: 200, body: None, answer: Some("DoseConflicts"), "接種会場端末からの競合記録 / tablet records that disagree with a recorded dose", get(records::conflicts)),
    route!(Lgwan POST "/api/municipalities/{municipality}/dose-conflicts/{conflict_id}/resolve", Staff, personal: false, ok: 204, body: Some("ConflictResolution"), answer: None, "競合の解決(維持または置換、理由必須) / resolve a conflict (keep or replace, reason required)", post(records::resolve_conflict)),
    route!(Lgwan GET "/api/municipalities/{municipality}/quality", Staff, personal: false, ok: 200, body: None, answer: Some("QualityReport"), "データ品質レポート / data-quality report", get(records::quality)),
    route!(Lgwan GET "/api/municipalities/{municipality}/ledger.csv", Staff, personal: false, ok: 200, body: None, answer: None, "予防接種台帳CSV(個人番号なし) / the immunization ledger CSV (no My Number)", get(records::ledger)),
    route!(Lgwan POST "/api/municipalities/{municipality}/imports/targets", Staff, personal: true, ok: 200, body: None, answer: Some("TargetsImported"), "接種対象者・接種券CSVの取込(全件か無か) / import a targets CSV (all or nothing)", post(records::upload_targets).layer(DefaultBodyLimit::max(records::MAX_UPLOAD))),
    route!(Lgwan POST "/api/municipalities/{municipality}/imports/ledger", Staff, personal: false, ok: 200, body: None, answer: Some("LedgerImported"), "台帳CSVの取込(全件か無か) / import a ledger CSV (all or nothing)", post(records::upload_ledger).layer(DefaultBodyLimit::max(records::MAX_UPLOAD))),
    route!(Lgwan POST "/api/municipalities/{municipality}/imports/flags", Staff, personal: false, ok: 200, body: None, answer: Some("FlagsImported"), "転出・死亡・利用停止CSVの取込 / import a flags CSV", post(records::upload_flags).layer(DefaultBodyLimit::max(records::MAX_UPLOAD))),
    route!(Lgwan POST "/api/municipalities/{municipality}/inquiries", Staff, personal: true, ok: 200, body: Some("InquiryInput"), answer: Some("InquiryResult"), "他市区町村への照会(接種記録のみ返る・提供記録が残る) / ask another municipality for a person's doses (only doses come back; the provision is recorded)", post(crate::inquiries::ask)),
    route!(Lgwan GET "/api/municipalities/{municipality}/inquiries", Staff, personal: false, ok: 200, body: None, answer: Some("Inquiries"), "照会の一覧 / single inquiries made", get(crate::inquiries::list)),
    route!(Lgwan POST "/api/municipalities/{municipality}/inquiries/attach", Staff, personal: false, ok: 200, body: Some("AttachInput"), answer: Some("AttachResult"), "照会結果を自団体の記録に取り込む / attach what inquiries brought back", post(crate::inquiries::attach)),
    route!(Lgwan POST "/api/municipalities/{municipality}/inquiry-jobs", Staff, personal: true, ok: 202, body: None, answer: Some("JobStarted"), "一括照会CSVの登録(バックグラウンドで実行) / start a bulk inquiry (runs in the background)", post(crate::inquiries::start_job).layer(DefaultBodyLimit::max(records::MAX_UPLOAD))),
    route!(Lgwan GET "/api/municipalities/{municipality}/inquiry-jobs/{job}", Staff, personal: false, ok: 200, body: None, answer: Some("InquiryJobProgress"), "一括照会の進捗 / a bulk inquiry's progress", get(crate::inquiries::job)),
    route!(Lgwan GET "/api/municipalities/{municipality}/inquiry-jobs/{job}/result.csv", Staff, personal: false, ok: 200, body: None, answer: None, "一括照会の結果CSV(個人番号なし) / a bulk inquiry's result file (no My Number)", get(crate::inquiries::result)),
    route!(Lgwan POST "/api/municipalities/{municipality}/inquiry-jobs/{job}/attach", Staff, personal: false, ok: 200, body: None, answer: Some("AttachResult"), "一括照会の該当ありを一括で取り込む / attach every found row of a bulk inquiry", post(crate::inquiries::attach_job)),
    route!(Lgwan GET "/api/municipalities/{municipality}/provisions", Staff, personal: false, ok: 200, body: None, answer: Some("Provisions"), "情報提供等の記録 / provision records", get(crate::inquiries::provisions)),
    route!(Lgwan POST "/api/municipalities/{municipality}/persons/{address_number}/certificates", Staff, personal: true, ok: 201, body: Some("CertificateRequest"), answer: Some("CounterCertificate"), "窓口での証明書発行(PDF は印刷用) / issue a certificate at the counter (PDF to print)", post(crate::certificates::issue_at_counter)),
    route!(Lgwan PUT "/api/municipalities/{municipality}/kiosk", Staff, personal: false, ok: 204, body: Some("KioskSetting"), answer: None, "コンビニ交付の実施・停止 / turn kiosk issuance on or off", put(crate::channels::set_kiosk)),
    route!(Lgwan POST "/api/center/certificates", Center, personal: true, ok: 201, body: Some("KioskApplication"), answer: None, "証明書交付センター経由のコンビニ交付(PDF) / a kiosk's application relayed by the issuance center (PDF)", post(crate::channels::kiosk_apply)),
    route!(Lgwan GET "/api/municipalities/{municipality}/certificates", Staff, personal: false, ok: 200, body: None, answer: Some("Certificates"), "発行した証明書の一覧 / certificates issued", get(crate::certificates::list)),
    route!(Lgwan POST "/api/municipalities/{municipality}/certificates/{certificate_id}/revoke", Staff, personal: false, ok: 200, body: Some("Reason"), answer: Some("CertificateEntry"), "証明書の失効(理由必須) / revoke a certificate (reason required)", post(crate::certificates::revoke)),
    route!(Internet GET "/", Public, personal: false, ok: 200, body: None, answer: None, "案内(検証・アプリ・会場・オープンデータへのリンク) / the landing page (links to the verifier, the app, the venue page and the open data)", get(crate::certificates::landing)),
    route!(Internet GET "/healthz", Public, personal: false, ok: 200, body: None, answer: None, "稼働確認 / liveness", get(api::healthz)),
    route!(Internet GET "/version", Public, personal: false, ok: 200, body: None, answer: Some("Version"), "版 / version", get(api::version_internet)),
    route!(Internet GET "/api/openapi.json", Public, personal: false, ok: 200, body: None, answer: None, "API 記述 / API description", get(crate::openapi::internet)),
    route!(Internet POST "/api/venue/doses", Venue, personal: false, ok: 201, body: Some("VenueDose"), answer: Some("VenueRecorded"), "接種記録(OCRラインと生年月日、冪等キー) / record a dose (OCR line, date of birth, idempotency key)", post(crate::venue::record)),
    route!(Internet GET "/api/venue/products", Venue, personal: false, ok: 200, body: None, answer: Some("VenueProducts"), "ワクチン製品(コード・名称・ロット書式) / vaccine products (code, name, lot format)", get(crate::venue::products)),
    route!(Internet GET "/venue/", Public, personal: false, ok: 200, body: None, answer: None, "接種会場の記録画面 / the venue tablet page", get(crate::venue::page)),
    route!(Internet GET "/venue/{file}", Public, personal: false, ok: 200, body: None, answer: None, "記録画面のスクリプト・スタイル・サービスワーカー / the tablet page's script, style and service worker", get(crate::venue::page_file)),
    route!(Internet GET "/.well-known/openvrs-app-key.json", Public, personal: false, ok: 200, body: None, answer: Some("IntakeKey"), "電子交付アプリが申請を暗号化する鍵(CORS) / the key the resident app seals its application to (CORS)", get(crate::channels::intake_key)),
    route!(Internet POST "/api/app/certificates", Public, personal: false, ok: 201, body: Some("SealedApplication"), answer: Some("SealedAnswer"), "電子交付アプリからの申請(暗号化された申請と回答のみが通る) / the resident app's application (only sealed application and answer pass)", post(crate::channels::app_apply)),
    route!(Internet GET "/app/", Public, personal: false, ok: 200, body: None, answer: None, "電子交付アプリ(参照実装) / the reference resident app page", get(crate::channels::page)),
    route!(Internet GET "/app/{file}", Public, personal: false, ok: 200, body: None, answer: None, "電子交付アプリのスクリプト・スタイル / the resident app page's script and style", get(crate::channels::page_file)),
    route!(Internet GET "/.well-known/jwks.json", Public, personal: false, ok: 200, body: None, answer: Some("Jwks"), "発行者の公開鍵(JWKS、CORS) / the issuer's public keys (JWKS, CORS)", get(crate::certificates::jwks)),
    route!(Internet GET "/issuer/.well-known/jwks.json", Public, personal: false, ok: 200, body: None, answer: Some("Jwks"), "発行者の公開鍵(JWKS、CORS) / the issuer's public keys (JWKS, CORS)", get(crate::certificates::jwks)),
    route!(Internet GET "/.well-known/crl/{file}", Public, personal: false, ok: 200, body: None, answer: Some("RevocationList"), "失効リスト(CORS) / a key's revocation list (CORS)", get(crate::certificates::crl)),
    route!(Internet GET "/issuer/.well-known/crl/{file}", Public, personal: false, ok: 200, body: None, answer: Some("RevocationList"), "失効リスト(CORS) / a key's revocation list (CORS)", get(crate::certificates::crl)),
    route!(Internet POST "/api/verify", Public, personal: false, ok: 200, body: None, answer: Some("Verification"), "証明書の検証(氏名・生年月日は返さない) / verify a certificate (no name or birth date in the answer)", post(crate::certificates::verify_payload)),
    route!(Internet GET "/verify/", Public, personal: false, ok: 200, body: None, answer: None, "証明書の検証画面 / the verifier page", get(crate::certificates::page)),
    route!(Internet GET "/verify/{file}", Public, personal: false, ok: 200, body: None, answer: None, "検証画面のスクリプト・スタイル / the verifier page's script and style", get(crate::certificates::page_file)),
    route!(Internet GET "/opendata/{day}/{file}", Public, personal: false, ok: 200, body: None, answer: None, "オープンデータ(prefecture.ndjson、summary_by_date.csv、summary_by_prefecture.csv; latest または日付) / open data (latest, or as of a date)", get(crate::opendata::file)),
    route!(Internet GET "/api/venue/me", Venue, personal: false, ok: 200, body: None, answer: Some("Account"), "接種会場端末のアカウント / the venue device's account", get(api::venue_me)),
];

impl RouteSpec {
    /// A page of the web application (HTML for people), not the API or a probe.
    pub fn is_page(&self) -> bool {
        self.zone == Zone::Lgwan
            && !self.path.starts_with("/api/")
            && !matches!(self.path, "/healthz" | "/readyz" | "/version")
    }
}

/// The routes of one zone.
pub fn routes(zone: Zone) -> impl Iterator<Item = &'static RouteSpec> {
    ROUTES.iter().filter(move |r| r.zone == zone)
}

/// Whether `path` matches a template's shape (`{x}` matches one segment).
pub fn matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && !p.is_empty()) || t == p)
}

/// Builds a zone's router from the table. Refuses (panics at start-up) to mount a personal
/// route on the internet listener: that is a property of building, not of each handler.
pub fn router(zone: Zone, state: AppState) -> Router {
    let mut router = Router::new();
    for spec in routes(zone) {
        assert!(
            !(zone == Zone::Internet && spec.personal),
            "personal route {} must not be mounted on the internet listener",
            spec.path
        );
        let mut method_router = (spec.handler)();
        if spec.is_page() {
            method_router = method_router.route_layer(axum::middleware::from_fn(web::error_pages));
        }
        let method_router = method_router.route_layer(from_fn_with_state(
            (state.clone(), spec),
            crate::auth::guard,
        ));
        router = router.route(spec.path, method_router);
    }
    router
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .fallback(
            move |axum::extract::State(s): axum::extract::State<AppState>,
                  req: axum::extract::Request| { api::fallback(s, zone, req) },
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::watch_malformed,
        ))
        .layer(axum::middleware::from_fn(crate::headers::secure))
        .with_state(state)
}

/// The largest request body of a route without its own limit (uploads have theirs).
pub const MAX_BODY: usize = 1 << 20;
