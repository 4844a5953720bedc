//! What the codes the system keeps (certificate kinds and channels, audited actions and their
//! objects, roles, security events) are called where a clerk reads them. The codes stay as
//! they are in exports and the API; the pages show these words. One table, so that a code has
//! one name everywhere.

use super::Lang;

/// (code, Japanese, English).
const LABELS: &[(&str, &str, &str)] = &[
    // Certificates: kind, format, channel.
    ("domestic", "国内用", "domestic"),
    ("overseas", "海外用", "overseas"),
    ("pdf", "紙(PDF)", "paper (PDF)"),
    ("shc", "SMART Health Card", "SMART Health Card"),
    ("vds", "ICAO VDS-NC", "ICAO VDS-NC"),
    ("dcc", "EU DCC", "EU DCC"),
    ("counter", "窓口", "counter"),
    ("app", "電子交付アプリ", "resident app"),
    ("kiosk", "コンビニ交付", "convenience-store kiosk"),
    ("console", "コンソール", "console"),
    // Audited actions.
    ("account.add", "アカウント発行", "account issued"),
    ("account.disable", "アカウント停止", "account disabled"),
    ("certificate.issue", "証明書の発行", "certificate issued"),
    ("certificate.revoke", "証明書の失効", "certificate revoked"),
    ("dose.add", "接種記録の登録", "dose recorded"),
    ("dose.correct", "接種記録の訂正", "dose corrected"),
    ("dose.delete", "接種記録の削除", "dose deleted"),
    ("dose_conflict.resolve", "競合の解決", "conflict resolved"),
    ("inquiry.ask", "照会", "inquiry"),
    ("inquiry.attach", "照会結果の取込", "inquiry attached"),
    ("inquiry.bulk", "一括照会", "bulk inquiry"),
    ("inquiry.provide", "情報提供", "provision"),
    ("keys.data.rotate", "データ鍵の更新", "data key rotated"),
    (
        "keys.master.rotate",
        "マスター鍵の更新",
        "master key rotated",
    ),
    ("keys.signing.add", "署名鍵の追加", "signing key added"),
    ("ledger.export", "台帳の出力", "ledger exported"),
    ("ledger.import", "台帳の取込", "ledger imported"),
    ("municipality.add", "自治体の登録", "municipality added"),
    (
        "municipality.kiosk",
        "コンビニ交付の切替",
        "kiosk issuance switched",
    ),
    ("municipality.shred", "データの消去", "data deleted"),
    ("person.correct", "本人情報の訂正", "identity corrected"),
    ("person.disclose", "開示", "disclosure"),
    ("person.flags", "転出・死亡・利用停止", "flags changed"),
    ("person.read", "閲覧", "read"),
    ("persons.flags", "転出・死亡の取込", "flags imported"),
    ("persons.put", "対象者の取込", "targets imported"),
    ("quality.report", "品質レポート", "quality report"),
    ("tablet.record", "会場端末からの記録", "tablet record"),
    // How an action ended.
    ("ok", "成功", "ok"),
    ("denied", "拒否", "denied"),
    ("failed", "失敗", "failed"),
    // Inquiry answers (the CSV keeps InquiryStatus's own labels).
    ("found", "該当あり", "found"),
    ("not_found", "該当なし", "not found"),
    ("suspended", "利用停止", "suspended"),
    ("format_error", "形式エラー", "format error"),
    ("refused", "照会不可", "refused"),
    // A bulk job.
    ("running", "実行中", "running"),
    ("done", "完了", "done"),
    // Roles and zones.
    ("operator", "運用者", "operator"),
    ("national", "国", "national"),
    ("prefecture", "都道府県", "prefecture"),
    ("staff", "市区町村職員", "municipal staff"),
    ("venue", "接種会場", "venue"),
    ("center", "交付センター", "issuance center"),
    ("resident", "住民", "resident"),
    ("lgwan", "LGWAN", "LGWAN"),
    ("internet", "インターネット", "internet"),
    // Security events.
    ("login_failed", "サインイン失敗", "failed sign-in"),
    ("locked_out", "アカウントのロック", "account locked"),
    ("rate_limited", "要求過多", "rate limited"),
    (
        "csrf_rejected",
        "不正な送信元(CSRF)",
        "cross-site request refused",
    ),
    (
        "cross_municipality",
        "他自治体へのアクセス",
        "another municipality's data",
    ),
    (
        "wrong_zone",
        "別ネットワークの経路",
        "route of the other network",
    ),
    (
        "wrong_zone_account",
        "別ネットワークでのアカウント使用",
        "account used on the wrong network",
    ),
    (
        "malformed_burst",
        "不正な要求の多発",
        "burst of malformed requests",
    ),
    ("read_volume", "大量閲覧", "many reads"),
    ("inquiry_volume", "照会件数の上限", "inquiry limit"),
    (
        "inquiry_fishing",
        "同一人への多数照会",
        "one person asked of many towns",
    ),
    (
        "inquiry_not_own_resident",
        "自団体住民以外の照会",
        "inquiry about a non-resident",
    ),
    ("forged_card", "不正なカード", "forged card"),
    (
        "replayed_application",
        "申請の再送(リプレイ)",
        "replayed application",
    ),
    ("unknown_kiosk", "未登録の端末", "unknown kiosk"),
];

/// The name of `code` in the reader's language; a code without one as it is.
pub fn label(lang: Lang, code: &str) -> String {
    LABELS
        .iter()
        .find(|(c, ..)| *c == code)
        .map_or_else(|| code.to_owned(), |(_, ja, en)| lang.t(ja, en).to_owned())
}

/// The names of an audit entry's object parts (`kind:id` words).
const OBJECTS: &[(&str, &str, &str)] = &[
    ("person", "住民", "person"),
    ("voucher", "券", "voucher"),
    ("account", "アカウント", "account"),
    ("municipality", "自治体", "municipality"),
    ("job", "一括照会", "bulk job"),
    ("inquiry", "照会", "inquiry"),
    ("inquiries", "照会", "inquiries"),
    ("provision", "提供", "provision"),
    ("certificate", "証明書", "certificate"),
    ("dose", "接種記録", "dose"),
    ("to", "提供先", "to"),
    ("from", "照会先", "from"),
    ("records", "件数", "records"),
    ("rows", "行数", "rows"),
];

/// An audit entry's object as a clerk reads it: `person:0001813736 records:2` becomes
/// 「住民 0001813736 件数 2」; words that are codes get their names.
pub fn object(lang: Lang, object: &str) -> String {
    object
        .split(' ')
        .map(|word| match word.split_once(':') {
            Some((kind, id)) => match OBJECTS.iter().find(|(k, ..)| *k == kind) {
                Some((_, ja, en)) => format!("{} {id}", lang.t(ja, en)),
                None => word.to_owned(),
            },
            None => label(lang, word),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_one_name_each_and_objects_read_as_words() {
        let mut codes: Vec<&str> = LABELS.iter().map(|(c, ..)| *c).collect();
        codes.sort_unstable();
        let n = codes.len();
        codes.dedup();
        assert_eq!(codes.len(), n, "a code listed twice");
        assert_eq!(label(Lang::Ja, "domestic"), "国内用");
        assert_eq!(label(Lang::En, "person.read"), "read");
        assert_eq!(label(Lang::Ja, "something.new"), "something.new");
        assert_eq!(
            object(
                Lang::Ja,
                "person:0001813736 provision:4 to:472018 found records:2"
            ),
            "住民 0001813736 提供 4 提供先 472018 該当あり 件数 2"
        );
        assert_eq!(object(Lang::En, "person:12"), "person 12");
        // Every kind of security event has its name.
        for kind in openvrs_domain::audit::SecurityEventKind::ALL {
            assert_ne!(label(Lang::Ja, kind.code()), kind.code(), "{kind:?}");
        }
    }
}
