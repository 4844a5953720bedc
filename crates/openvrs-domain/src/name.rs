//! Personal names: kanji (氏名) and katakana (氏名カナ), normalised; never shown in `Debug`.

use std::fmt;

use crate::{Invalid, text};

const MAX_CHARS: usize = 100;

/// Normalises a name: NFKC, one space between parts, trimmed; the parts are joined with the
/// full-width space that Japanese registries use.
fn normalize_parts(input: &str) -> Result<String, Invalid> {
    let n = text::normalize(input);
    if n.is_empty() {
        return Err(Invalid::new(
            "name.empty",
            "氏名が空です",
            "the name is empty",
        ));
    }
    if n.chars().count() > MAX_CHARS {
        return Err(Invalid::new(
            "name.too_long",
            "氏名が長すぎます(100文字まで)",
            "the name is too long (100 characters at most)",
        ));
    }
    if n.chars().any(char::is_control) {
        return Err(Invalid::new(
            "name.control",
            "氏名に制御文字が含まれています",
            "the name contains control characters",
        ));
    }
    Ok(n.replace(' ', "\u{3000}"))
}

/// 氏名 in kanji (or as registered), family and given name separated by a full-width space.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Name(String);

impl Name {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        normalize_parts(input).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 氏名カナ: full-width katakana; half-width katakana and hiragana are converted.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KanaName(String);

impl KanaName {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let n: String = normalize_parts(input)?
            .chars()
            .map(|c| match c {
                // Hiragana to katakana: the blocks are 0x60 apart.
                'ぁ'..='ゖ' => char::from_u32(c as u32 + 0x60).unwrap_or(c),
                _ => c,
            })
            .collect();
        let katakana = |c: char| {
            matches!(
                c,
                '\u{30A1}'..='\u{30FA}' | 'ー' | '・' | 'ヽ' | 'ヾ' | '\u{3000}'
            )
        };
        if !n.chars().all(katakana) {
            return Err(Invalid::new(
                "name_kana.format",
                "氏名カナはカタカナで入力してください",
                "the kana name must be katakana",
            ));
        }
        Ok(Self(n))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What a venue operator may see: the first character of each part, e.g. `ウ** タ**`.
    pub fn masked(&self) -> String {
        initials(&self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Name(..)")
    }
}

impl fmt::Debug for KanaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KanaName(..)")
    }
}

/// A name as those who must not see it may: the first character of each part (parts split at
/// any space, the full-width one too), e.g. `ウ** タ**` or `T** H**`.
pub fn initials(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|part| part.chars().next())
        .map(|c| format!("{c}**"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn initials_keep_one_character_of_each_part() {
        assert_eq!(super::initials("宇留間\u{3000}花子"), "宇** 花**");
        assert_eq!(super::initials("TANAKA HANAKO MARIA"), "T** H** M**");
        assert_eq!(super::initials("  "), "");
    }

    use super::*;

    #[test]
    fn names_normalise() {
        let cases = [
            ("山田 太郎", "山田\u{3000}太郎"),
            ("  山田\u{3000}\u{3000}太郎 ", "山田\u{3000}太郎"),
            ("ＡＢＣ　花子", "ABC\u{3000}花子"),
        ];
        for (input, expected) in cases {
            assert_eq!(Name::parse(input).unwrap().as_str(), expected);
        }
        assert_eq!(Name::parse(" ").unwrap_err().kind, "name.empty");
        assert_eq!(
            Name::parse(&"あ".repeat(101)).unwrap_err().kind,
            "name.too_long"
        );
        assert_eq!(Name::parse("a\u{7}b").unwrap_err().kind, "name.control");
    }

    #[test]
    fn kana_normalises_and_masks() {
        let cases = [
            ("ｳﾙﾏ ﾀﾛｳ", "ウルマ\u{3000}タロウ"),
            ("うるま　たろう", "ウルマ\u{3000}タロウ"),
            ("ｶﾞｸ ｼﾞｭﾝ", "ガク\u{3000}ジュン"),
            ("ヴァン・ダイク", "ヴァン・ダイク"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                KanaName::parse(input).unwrap().as_str(),
                expected,
                "{input}"
            );
        }
        assert_eq!(
            KanaName::parse("山田").unwrap_err().kind,
            "name_kana.format"
        );
        assert_eq!(
            KanaName::parse("ウルマ タロウ").unwrap().masked(),
            "ウ** タ**"
        );
    }

    #[test]
    fn debug_hides_names() {
        let n = Name::parse("山田 太郎").unwrap();
        let k = KanaName::parse("ヤマダ タロウ").unwrap();
        assert!(!format!("{n:?}{k:?}").contains("山田"));
        assert!(!format!("{k:?}").contains("ヤマダ"));
    }
}
