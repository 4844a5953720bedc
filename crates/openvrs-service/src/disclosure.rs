//! The disclosure document (開示): everything held about one person, as JSON and as a printable
//! HTML page. It holds personal data by design; it goes to the person, never to a log.

use openvrs_domain::{
    date::{Wareki, jst_from_micros},
    ids::{MunicipalityCode, MyNumber},
    product::Catalogue,
    sex::Sex,
};
use openvrs_store::{Disclosure, StoredDose};
use serde_json::{Value, json};

fn time(micros: i64) -> String {
    jst_from_micros(micros).map_or_else(String::new, |t| {
        format!(
            "{} {:02}:{:02}:{:02}",
            t.date(),
            t.hour(),
            t.minute(),
            t.second()
        )
    })
}

fn sex(s: Sex) -> &'static str {
    match s.iso5218() {
        1 => "男 / male",
        2 => "女 / female",
        _ => "不明 / not known",
    }
}

/// One dose as JSON (recorded time in Japan time), with its product's name.
pub fn dose_json(d: &StoredDose, catalogue: &Catalogue) -> Value {
    let x = &d.dose;
    json!({
        "dose_id": d.id,
        "version": d.version,
        "dose_number": x.number.get(),
        "status": x.status.code(),
        "date": x.date.to_string(),
        "product": x.product.as_str(),
        "product_name": catalogue.get(x.product.as_str()).map(|p| p.name.as_str()),
        "lot": x.lot.as_str(),
        "venue": x.venue.as_str(),
        "doctor": x.doctor.as_str(),
        "source": x.source.code(),
        "voucher_number": x.voucher.map(|v| v.to_string()),
        "given_in": x.given_in.map(|c| c.to_string()),
        "recorded_at": time(d.recorded_at),
        "recorded_by": d.recorded_by,
    })
}

pub fn json(d: &Disclosure, catalogue: &Catalogue) -> Value {
    let p = &d.person;
    json!({
        "person": {
            "address_number": p.address_number.as_str(),
            "name": p.name.as_str(),
            "name_kana": p.name_kana.as_str(),
            "birth_date": p.birth_date.0.to_string(),
            "sex": p.sex.iso5218(),
            "my_number": p.my_number.as_ref().map(MyNumber::expose),
            "flags": {
                "moved_out_on": p.flags.moved_out.map(|m| m.on.to_string()),
                "moved_out_to": p.flags.moved_out.and_then(|m| m.to).map(|c| c.to_string()),
                "deceased_on": p.flags.deceased_on.map(|d| d.to_string()),
                "use_suspended": p.flags.use_suspended,
            },
            "vouchers": p.vouchers.iter().map(|v| json!({
                "voucher_number": v.number.to_string(),
                "voucher_type": v.voucher_type,
                "dose_number": v.dose_number.map(|n| n.get()),
                "issued_on": v.issued_on.map(|d| d.to_string()),
            })).collect::<Vec<_>>(),
        },
        "doses": d.doses.iter().map(|x| dose_json(x, catalogue)).collect::<Vec<_>>(),
        "dose_history": d.history.iter().map(|h| json!({
            "was": dose_json(&h.was, catalogue),
            "change": h.change.code(),
            "reason": h.reason,
            "changed_at": time(h.changed_at),
            "changed_by": h.changed_by,
        })).collect::<Vec<_>>(),
        "changes": d.changes.iter().map(|c| json!({
            "id": c.id,
            "at": time(c.at),
            "actor": c.actor,
            "kind": c.kind,
            "fields": c.fields,
            "reason": c.reason,
        })).collect::<Vec<_>>(),
        // Issued by later parts of the system; empty until they exist.
        "certificates": d.certificates.iter().map(|c| json!({
            "id": c.id,
            "kind": c.kind.code(),
            "format": c.format.code(),
            "channel": c.channel.code(),
            "issued_at": time(c.issued_at),
            "issued_by": c.issued_by,
            "revoked_at": c.revoked_at.map(time),
            "revocation_reason": c.revocation_reason,
        })).collect::<Vec<_>>(),
        "inquiries": d.inquiries.iter().map(|i| json!({
            "id": i.id,
            "at": time(i.at),
            "source_municipality": i.source.map(|s| s.to_string()),
            "status": i.status.code(),
            "basis": i.basis,
            "records": i.doses.len(),
            "asked_by": i.asked_by,
            "attached_at": i.attached_at.map(time),
        })).collect::<Vec<_>>(),
        "provisions": d.provisions.iter().map(|p| json!({
            "id": p.id,
            "at": time(p.at),
            "to_municipality": p.asked_by_municipality.to_string(),
            "asked_by": p.asked_by,
            "status": p.status.code(),
            "records": p.record_count,
            "basis": p.basis,
        })).collect::<Vec<_>>(),
        "audit": d.audit.iter().map(|e| json!({
            "seq": e.seq,
            "at": time(e.at),
            "actor": e.actor,
            "role": e.role.code(),
            "zone": e.zone.code(),
            "action": e.action,
            "object": e.object,
            "outcome": e.outcome.code(),
        })).collect::<Vec<_>>(),
    })
}

/// HTML text with `&`, `<`, `>`, `"` and `'` escaped.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn row(cells: &[String]) -> String {
    let tds: String = cells
        .iter()
        .map(|c| format!("<td>{}</td>", esc(c)))
        .collect();
    format!("<tr>{tds}</tr>\n")
}

fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        return "<p>なし / none</p>\n".into();
    }
    let ths: String = head
        .iter()
        .map(|h| format!("<th>{}</th>", esc(h)))
        .collect();
    let body: String = rows.iter().map(|r| row(r)).collect();
    format!("<table><thead><tr>{ths}</tr></thead><tbody>\n{body}</tbody></table>\n")
}

fn dose_cells(d: &StoredDose, catalogue: &Catalogue) -> Vec<String> {
    let x = &d.dose;
    vec![
        format!("{}回目", x.number),
        x.date.to_string(),
        catalogue
            .get(x.product.as_str())
            .map_or_else(|| x.product.as_str().to_owned(), |p| p.name.clone()),
        x.lot.as_str().to_owned(),
        x.venue.as_str().to_owned(),
        x.doctor.as_str().to_owned(),
        x.source.code().to_owned(),
        time(d.recorded_at),
        format!("{} (v{})", d.id, d.version),
    ]
}

const DOSE_HEAD: [&str; 9] = [
    "接種回 / dose",
    "接種日 / date",
    "ワクチン / vaccine",
    "ロット / lot",
    "会場 / venue",
    "医師 / doctor",
    "記録方法 / source",
    "登録日時 / recorded",
    "記録番号 / record",
];

/// The document as a page to print; `style_nonce` marks its one `<style>` block for the
/// page's Content-Security-Policy (empty when it is written to a file).
pub fn html(
    d: &Disclosure,
    catalogue: &Catalogue,
    m: MunicipalityCode,
    style_nonce: &str,
) -> String {
    let p = &d.person;
    let birth = format!(
        "{} ({})",
        p.birth_date.0,
        Wareki {
            date: p.birth_date.0,
            gannen: true
        }
    );
    let identity = table(
        &["項目 / item", "内容 / value"],
        &[
            vec!["自治体コード / municipality".into(), m.to_string()],
            vec![
                "宛名番号 / address number".into(),
                p.address_number.to_string(),
            ],
            vec!["氏名 / name".into(), p.name.as_str().into()],
            vec!["氏名カナ / kana".into(), p.name_kana.as_str().into()],
            vec!["生年月日 / date of birth".into(), birth],
            vec!["性別 / sex".into(), sex(p.sex).into()],
            vec![
                "個人番号 / My Number".into(),
                p.my_number
                    .as_ref()
                    .map_or_else(|| "保有なし / not held".into(), |n| n.expose().to_owned()),
            ],
            vec![
                "転出 / moved out".into(),
                p.flags.moved_out.map_or_else(
                    || "なし / no".into(),
                    |mo| {
                        format!(
                            "{} → {}",
                            mo.on,
                            mo.to
                                .map_or_else(|| "不明 / unknown".into(), |c| c.to_string())
                        )
                    },
                ),
            ],
            vec![
                "死亡 / deceased".into(),
                p.flags
                    .deceased_on
                    .map_or_else(|| "なし / no".into(), |d| d.to_string()),
            ],
            vec![
                "利用停止 / use suspended".into(),
                if p.flags.use_suspended {
                    "あり / yes"
                } else {
                    "なし / no"
                }
                .into(),
            ],
        ],
    );
    let vouchers = table(
        &["券番号 / voucher", "接種回 / dose", "発行日 / issued"],
        &p.vouchers
            .iter()
            .map(|v| {
                vec![
                    v.number.to_string(),
                    v.dose_number.map_or_else(String::new, |n| n.to_string()),
                    v.issued_on.map_or_else(String::new, |d| d.to_string()),
                ]
            })
            .collect::<Vec<_>>(),
    );
    let doses = table(
        &DOSE_HEAD,
        &d.doses
            .iter()
            .map(|x| dose_cells(x, catalogue))
            .collect::<Vec<_>>(),
    );
    let mut head = DOSE_HEAD.to_vec();
    head.extend([
        "変更 / change",
        "理由 / reason",
        "変更日時 / changed",
        "変更者 / by",
    ]);
    let history = table(
        &head,
        &d.history
            .iter()
            .map(|h| {
                let mut cells = dose_cells(&h.was, catalogue);
                cells.extend([
                    h.change.code().to_owned(),
                    h.reason.clone(),
                    time(h.changed_at),
                    h.changed_by.clone(),
                ]);
                cells
            })
            .collect::<Vec<_>>(),
    );
    let changes = table(
        &[
            "日時 / at",
            "種類 / kind",
            "項目 / fields",
            "理由 / reason",
            "担当 / by",
        ],
        &d.changes
            .iter()
            .map(|c| {
                vec![
                    time(c.at),
                    c.kind.clone(),
                    c.fields.join(", "),
                    c.reason.clone(),
                    c.actor.clone(),
                ]
            })
            .collect::<Vec<_>>(),
    );
    let exchanges = table(
        &[
            "日時 / at",
            "種類 / kind",
            "相手方 / other municipality",
            "結果 / answer",
            "件数 / records",
            "根拠 / basis",
            "担当 / by",
        ],
        &d.inquiries
            .iter()
            .map(|i| {
                vec![
                    time(i.at),
                    "照会 / inquiry".to_owned(),
                    i.source.map(|s| s.to_string()).unwrap_or_default(),
                    i.status.label().to_owned(),
                    i.doses.len().to_string(),
                    i.basis.clone(),
                    i.asked_by.clone(),
                ]
            })
            .chain(d.provisions.iter().map(|p| {
                vec![
                    time(p.at),
                    "提供 / provision".to_owned(),
                    p.asked_by_municipality.to_string(),
                    p.status.label().to_owned(),
                    p.record_count.to_string(),
                    p.basis.clone(),
                    p.asked_by.clone(),
                ]
            }))
            .collect::<Vec<_>>(),
    );
    let certificates = table(
        &[
            "証明書ID / id",
            "種類 / kind",
            "形式 / format",
            "経路 / channel",
            "発行日時 / issued",
            "発行者 / by",
            "失効 / revoked",
        ],
        &d.certificates
            .iter()
            .map(|c| {
                vec![
                    c.id.clone(),
                    c.kind.code().to_owned(),
                    c.format.code().to_owned(),
                    c.channel.code().to_owned(),
                    time(c.issued_at),
                    c.issued_by.clone(),
                    c.revoked_at
                        .map(|t| {
                            format!(
                                "{} ({})",
                                time(t),
                                c.revocation_reason.clone().unwrap_or_default()
                            )
                        })
                        .unwrap_or_default(),
                ]
            })
            .collect::<Vec<_>>(),
    );
    let audit = table(
        &[
            "番号 / seq",
            "日時 / at",
            "利用者 / user",
            "区分 / zone",
            "操作 / action",
            "結果 / outcome",
        ],
        &d.audit
            .iter()
            .map(|e| {
                vec![
                    e.seq.to_string(),
                    time(e.at),
                    e.actor.clone(),
                    e.zone.code().to_owned(),
                    e.action.clone(),
                    e.outcome.code().to_owned(),
                ]
            })
            .collect::<Vec<_>>(),
    );
    let nonce = match style_nonce {
        "" => String::new(),
        n => format!(" nonce=\"{}\"", esc(n)),
    };
    format!(
        r#"<!DOCTYPE html>
<html lang="ja">
<head>
<meta charset="utf-8">
<title>保有個人情報開示 / Disclosure of personal data</title>
<style{nonce}>
body {{ font-family: "Noto Sans CJK JP", "Noto Sans JP", sans-serif; margin: 2em; color: #000; }}
h1 {{ font-size: 1.4em; }} h2 {{ font-size: 1.1em; margin-top: 1.5em; border-bottom: 1px solid #000; }}
table {{ border-collapse: collapse; width: 100%; font-size: 0.85em; }}
th, td {{ border: 1px solid #444; padding: 0.2em 0.4em; text-align: left; vertical-align: top; }}
@page {{ size: A4; margin: 15mm; }}
@media print {{ body {{ margin: 0; }} tr {{ break-inside: avoid; }} }}
</style>
</head>
<body>
<h1>保有個人情報開示書 / Disclosure of personal data held</h1>
<p>新型コロナウイルス感染症予防接種記録 / COVID-19 vaccination records</p>
<h2>本人情報 / Identity and flags</h2>
{identity}<h2>接種券 / Vouchers</h2>
{vouchers}<h2>接種記録 / Vaccinations</h2>
{doses}<h2>接種記録の変更履歴 / Earlier versions of records</h2>
{history}<h2>本人情報の訂正・利用停止 / Corrections and suspensions</h2>
{changes}<h2>証明書 / Certificates issued</h2>
{certificates}
<h2>照会・提供の記録 / Inquiries and provisions</h2>
{exchanges}
<h2>操作記録 / Operation log entries about this person</h2>
{audit}</body>
</html>
"#
    )
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            esc(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
