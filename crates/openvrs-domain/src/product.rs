//! The vaccine product catalogue: data the national administrator maintains, not code. The
//! seed rows live in the store's migrations; this module gives them a type and the lookups the
//! rules need.

use regex::Regex;

use crate::Invalid;

/// One product of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// Stable code, e.g. `comirnaty`, `spikevax-bivalent`.
    pub code: String,
    /// Product name as shown to staff (Japanese).
    pub name: String,
    /// ワクチンメーカー as the ledger CSV writes it (ファイザー, 武田/モデルナ, ...): unique, so
    /// that a ledger file names the product and its round trip is lossless.
    pub ledger_maker: String,
    /// CDC CVX code (`http://hl7.org/fhir/sid/cvx`).
    pub cvx: String,
    /// ICD-11 MMS vaccine code (VDS-NC `des`).
    pub icd11: String,
    /// EU DCC value sets: medicinal product, marketing authorisation holder, prophylaxis.
    pub eu_mp: String,
    pub eu_ma: String,
    pub eu_vp: String,
    /// Minimum days between the previous dose and a dose of this product.
    pub min_interval_days: u32,
    /// A regular expression the whole lot number must match.
    pub lot_pattern: String,
}

/// The catalogue with its lot patterns compiled.
#[derive(Debug, Clone)]
pub struct Catalogue {
    products: Vec<(Product, Regex)>,
}

impl Catalogue {
    pub fn new(products: Vec<Product>) -> Result<Self, Invalid> {
        let mut seen = std::collections::HashSet::new();
        if !products
            .iter()
            .all(|p| seen.insert(&p.code) && seen.insert(&p.ledger_maker))
        {
            return Err(Invalid::new(
                "product.duplicate",
                "製品コードまたは台帳のメーカー名が重複しています",
                "a product code or ledger maker name appears twice",
            ));
        }
        let products = products
            .into_iter()
            .map(|p| {
                let re = Regex::new(&format!("^(?:{})$", p.lot_pattern)).map_err(|_| {
                    Invalid::new(
                        "product.lot_pattern",
                        "ロット番号の書式が正規表現として不正です",
                        "the lot number pattern is not a valid regular expression",
                    )
                })?;
                Ok((p, re))
            })
            .collect::<Result<Vec<_>, Invalid>>()?;
        Ok(Self { products })
    }

    pub fn get(&self, code: &str) -> Option<&Product> {
        self.products
            .iter()
            .map(|(p, _)| p)
            .find(|p| p.code == code)
    }

    /// The product a ledger row's maker name stands for.
    pub fn by_ledger_maker(&self, maker: &str) -> Option<&Product> {
        self.products
            .iter()
            .map(|(p, _)| p)
            .find(|p| p.ledger_maker == maker)
    }

    /// Whether `lot` has the format of `product`'s lots; `None` for an unknown product.
    pub fn lot_matches(&self, product: &str, lot: &str) -> Option<bool> {
        self.products
            .iter()
            .find(|(p, _)| p.code == product)
            .map(|(_, re)| re.is_match(lot))
    }

    pub fn products(&self) -> impl Iterator<Item = &Product> {
        self.products.iter().map(|(p, _)| p)
    }
}

#[cfg(test)]
pub(crate) fn sample() -> Catalogue {
    let product = |code: &str, maker: &str, interval: u32, lot: &str| Product {
        code: code.into(),
        name: code.into(),
        ledger_maker: maker.into(),
        cvx: String::new(),
        icd11: String::new(),
        eu_mp: String::new(),
        eu_ma: String::new(),
        eu_vp: String::new(),
        min_interval_days: interval,
        lot_pattern: lot.into(),
    };
    Catalogue::new(vec![
        product("comirnaty", "ファイザー", 18, "[A-Z]{2}[0-9]{4}"),
        product(
            "comirnaty-bivalent",
            "ファイザー(2価)",
            90,
            "[A-Z]{2}[0-9]{4}",
        ),
        product("spikevax", "武田/モデルナ", 24, "[0-9A-Z]{6,10}"),
    ])
    .expect("sample catalogue")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let c = sample();
        assert_eq!(
            c.by_ledger_maker("ファイザー").map(|p| p.code.as_str()),
            Some("comirnaty")
        );
        assert!(c.by_ledger_maker("アストラゼネカ").is_none());
        assert_eq!(c.lot_matches("comirnaty", "FF1234"), Some(true));
        assert_eq!(c.lot_matches("comirnaty", "FF12345"), Some(false));
        assert_eq!(c.lot_matches("comirnaty", "xFF1234"), Some(false));
        assert_eq!(c.lot_matches("nothing", "FF1234"), None);
    }

    #[test]
    fn names_are_unique() {
        let p = sample().get("comirnaty").cloned().unwrap();
        let mut q = p.clone();
        q.code = "other".into();
        assert_eq!(
            Catalogue::new(vec![p, q]).unwrap_err().kind,
            "product.duplicate"
        );
    }

    #[test]
    fn a_bad_pattern_is_refused() {
        let mut p = sample().get("comirnaty").cloned().unwrap();
        p.lot_pattern = "(".into();
        assert_eq!(
            Catalogue::new(vec![p]).unwrap_err().kind,
            "product.lot_pattern"
        );
    }
}
