//! Normalisation of text typed by people and spreadsheets: full-width forms, odd spaces.

use unicode_normalization::UnicodeNormalization;

/// NFKC (full-width digits and Latin to ASCII, half-width katakana to full-width), then every run of
/// white space becomes one ASCII space, and the ends are trimmed.
pub fn normalize(input: &str) -> String {
    // Most cells are already NFKC (ASCII digits, full-width kanji and katakana): the quick check
    // answers that without decomposing.
    let nfkc: std::borrow::Cow<'_, str> = if unicode_normalization::is_nfkc_quick(input.chars())
        == unicode_normalization::IsNormalized::Yes
    {
        input.into()
    } else {
        input.nfkc().collect::<String>().into()
    };
    let mut out = String::with_capacity(nfkc.len());
    for word in nfkc
        .split(|c: char| c.is_whitespace())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Normalised digits of a code-like field: NFKC, and spaces and hyphens (of any width) removed.
/// Returns `None` when anything other than ASCII digits remains.
pub fn digits(input: &str) -> Option<String> {
    let s: String = input
        .nfkc()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '‐' | '−' | 'ー' | '―'))
        .collect();
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_widths_and_spaces() {
        let cases = [
            ("１２３", "123"),
            ("  ｳﾙﾏ　ﾀﾛｳ ", "ウルマ タロウ"),
            ("山田\u{3000}\u{3000}太郎", "山田 太郎"),
            ("ＡＢＣ", "ABC"),
            ("ｶﾞｷﾞ", "ガギ"),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize(input), expected, "{input}");
        }
    }

    #[test]
    fn digits_strips_separators_only() {
        assert_eq!(digits("１２３４－５６").as_deref(), Some("123456"));
        assert_eq!(digits(" 0012 ").as_deref(), Some("0012"));
        assert_eq!(digits("12a"), None);
        assert_eq!(digits(""), None);
        assert_eq!(digits("--"), None);
    }
}
