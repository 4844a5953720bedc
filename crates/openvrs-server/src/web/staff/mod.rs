//! The pages of municipal staff, one file per area: the home page (`home`), finding a person,
//! their page and their rights (`people`), doses and tablet conflicts (`doses`), imports
//! (`imports`), inquiries and provisions (`inquiries`), certificates and the kiosk switch
//! (`certificates`), quality, security events and the operation log (`oversight`), and deleting
//! the municipality's data (`erasure`). Here: what several of them share.

use super::*;

mod certificates;
mod doses;
mod erasure;
mod home;
mod imports;
mod inquiries;
mod oversight;
mod people;

pub(crate) use certificates::{issue_certificate, revoke_certificate, set_kiosk};
pub(crate) use doses::{
    add_dose, conflicts_page, correct_dose, delete_dose, dose_page, new_dose_page, resolve_conflict,
};
pub(crate) use erasure::{delete, delete_page};
pub use home::QualityCounts;
pub(crate) use home::staff_home;
pub(crate) use imports::imports_page;
pub(crate) use inquiries::{ask, attach, inquiries_page, provisions_page};
pub(crate) use oversight::{audit_page, quality_page, security_page};
pub(crate) use people::{
    correct_identity, disclosure_page, person_page, search, search_page, set_flags,
};

/// A dose as the page shows it.
#[derive(Debug)]
struct DoseRow {
    id: i64,
    number: u32,
    date: String,
    product: String,
    lot: String,
    venue: String,
    recorded: String,
    version: i64,
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

/// What a form did, carried by its redirect (codes and counts only).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Done {
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

/// A person's address number, linking to their page (a listing's cell).
fn person_cell(code: &str, a: &AddressNumber) -> Cell {
    link(a.as_str(), format!("/m/{code}/persons/{a}"))
}

/// After a form: to `to` when it was done, or an error page with why.
fn redirect_or_error(chrome: Chrome, to: Result<String, ApiError>) -> Response {
    match to {
        Ok(to) => Redirect::to(&to).into_response(),
        Err(e) => error_page(chrome, e),
    }
}

/// A form's page again, under 422, saying why what was typed cannot be done (or an error page
/// when the page cannot be drawn).
fn unprocessable(chrome: &Chrome, page: &impl Template) -> Response {
    match render(page) {
        Ok(r) => (StatusCode::UNPROCESSABLE_ENTITY, r).into_response(),
        Err(e) => error_page(chrome.clone(), e),
    }
}
