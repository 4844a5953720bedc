//! The disclosure document (開示): everything held about one person, as JSON and as a printable
//! HTML page. It holds personal data by design; it goes to the person, never to a log.

use askama::Template;
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

/// A table of the document: its head and its rows of cells, as text (the template escapes
/// them); no rows reads "none".
struct Table {
    head: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

fn table(head: &[&'static str], rows: Vec<Vec<String>>) -> Table {
    Table {
        head: head.to_vec(),
        rows,
    }
}

/// The page: `templates/disclosure.html`.
#[derive(Template)]
#[template(path = "disclosure.html")]
struct Page<'a> {
    style_nonce: &'a str,
    identity: Table,
    vouchers: Table,
    doses: Table,
    history: Table,
    changes: Table,
    certificates: Table,
    exchanges: Table,
    audit: Table,
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

/// The document as a page to print (`templates/disclosure.html`, which escapes every value);
/// `style_nonce` marks its one `<style>` block for the page's Content-Security-Policy (empty
/// when it is written to a file).
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
        vec![
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
        p.vouchers
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
        d.doses
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
        d.history
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
        d.changes
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
        d.inquiries
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
        d.certificates
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
        d.audit
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
    Page {
        style_nonce,
        identity,
        vouchers,
        doses,
        history,
        changes,
        certificates,
        exchanges,
        audit,
    }
    .render()
    .expect("a page of strings renders into a String")
}

#[cfg(test)]
mod tests {
    use super::*;
    use openvrs_domain::{
        audit::{Outcome, Role, Zone},
        certificate::{Channel, Format, Kind},
        dose::{Dose, DoseNumber, DoseSource, DoseStatus, Short},
        ids::{AddressNumber, VoucherNumber},
        name::{KanaName, Name},
        person::{BirthDate, Flags, MovedOut, Person, Voucher},
        product::Product,
    };
    use openvrs_store::{
        AuditEntry, CertificateRecord, DoseChange, DoseVersion, Inquiry, InquiryStatus,
        PersonChange, Provision,
    };
    use time::macros::date;

    const HOSTILE: &str = r#"<script>alert("x")</script> & 'y'"#;
    const ESCAPED: &str = "&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62; &#38; &#39;y&#39;";

    fn catalogue() -> Catalogue {
        Catalogue::new(vec![Product {
            code: "comirnaty".into(),
            name: "コミナティ <筋注>".into(),
            ledger_maker: "ファイザー".into(),
            cvx: "208".into(),
            icd11: "XM0GQ8".into(),
            eu_mp: "EU/1/20/1528".into(),
            eu_ma: "ORG-100030215".into(),
            eu_vp: "1119349007".into(),
            min_interval_days: 18,
            lot_pattern: "[A-Z0-9]+".into(),
        }])
        .unwrap()
    }

    fn dose(id: i64, n: u32, lot: &str) -> StoredDose {
        StoredDose {
            id,
            version: 2,
            dose: Dose {
                number: DoseNumber::new(n).unwrap(),
                status: DoseStatus::Given,
                date: date!(2021 - 06 - 01),
                product: Short::parse("comirnaty").unwrap(),
                lot: Short::parse(lot).unwrap(),
                venue: Short::parse("会場 <A> & \"B\"").unwrap(),
                doctor: Short::parse("医師 'C'").unwrap(),
                source: DoseSource::Staff,
                voucher: None,
                given_in: None,
            },
            recorded_at: 1_622_505_600_000_000,
            recorded_by: "staff-1".into(),
        }
    }

    /// One person with something in every table, and hostile text wherever text is free.
    fn disclosure() -> Disclosure {
        Disclosure {
            person: Person {
                address_number: AddressNumber::parse("000123").unwrap(),
                name: Name::parse(HOSTILE).unwrap(),
                name_kana: KanaName::parse("ウルマ タロウ").unwrap(),
                birth_date: BirthDate(date!(1960 - 04 - 01)),
                sex: openvrs_domain::sex::Sex::Male,
                my_number: Some(MyNumber::parse("123456789018").unwrap()),
                flags: Flags {
                    moved_out: Some(MovedOut {
                        on: date!(2022 - 01 - 05),
                        to: Some(MunicipalityCode::parse("131016").unwrap()),
                    }),
                    deceased_on: None,
                    use_suspended: true,
                },
                vouchers: vec![Voucher {
                    number: VoucherNumber::parse("0000000019").unwrap(),
                    voucher_type: Some(1),
                    dose_number: Some(DoseNumber::new(1).unwrap()),
                    issued_on: Some(date!(2021 - 05 - 01)),
                }],
            },
            doses: vec![dose(7, 1, "FA1234")],
            history: vec![DoseVersion {
                was: dose(7, 1, "FA0000"),
                change: DoseChange::Corrected,
                reason: HOSTILE.into(),
                changed_at: 1_622_592_000_000_000,
                changed_by: "staff-2".into(),
            }],
            changes: vec![PersonChange {
                id: 3,
                at: 1_622_592_000_000_000,
                actor: "staff-2".into(),
                kind: "correct".into(),
                fields: vec!["name".into(), "sex".into()],
                reason: HOSTILE.into(),
            }],
            inquiries: vec![Inquiry {
                id: 4,
                job: None,
                row: None,
                source: Some(MunicipalityCode::parse("131016").unwrap()),
                address: None,
                basis: "番号法第19条 <8>".into(),
                status: InquiryStatus::Found,
                message: None,
                doses: vec![dose(8, 1, "FA1234")],
                asked_by: "staff-3".into(),
                at: 1_622_592_000_000_000,
                attached_at: None,
            }],
            provisions: vec![Provision {
                id: 5,
                asked_by_municipality: MunicipalityCode::parse("472018").unwrap(),
                asked_by: "staff-naha".into(),
                inquiry_id: 9,
                address: AddressNumber::parse("000123").unwrap(),
                status: InquiryStatus::Suspended,
                record_count: 0,
                basis: "basis & more".into(),
                at: 1_622_592_000_000_000,
            }],
            certificates: vec![CertificateRecord {
                id: "ABC123".into(),
                address_number: AddressNumber::parse("000123").unwrap(),
                kind: Kind::Domestic,
                format: Format::Pdf,
                channel: Channel::Counter,
                kid: "k1".into(),
                rid: None,
                issued_at: 1_622_592_000_000_000,
                issued_by: "staff-1".into(),
                revoked_at: Some(1_622_678_400_000_000),
                revoked_by: Some("staff-2".into()),
                revocation_reason: Some(HOSTILE.into()),
                application: None,
            }],
            audit: vec![AuditEntry {
                seq: 42,
                at: 1_622_592_000_000_000,
                actor: "staff-1".into(),
                role: Role::MunicipalStaff,
                zone: Zone::Lgwan,
                action: "person.read".into(),
                object: "472131/000123".into(),
                outcome: Outcome::Ok,
            }],
        }
    }

    fn render(d: &Disclosure, style_nonce: &str) -> String {
        html(
            d,
            &catalogue(),
            MunicipalityCode::parse("472131").unwrap(),
            style_nonce,
        )
    }

    #[test]
    fn html_is_escaped() {
        let page = render(&disclosure(), r#"n0"nce"#);
        // Free text (a name, a reason, a venue, a product's name, the nonce) is text, never
        // markup: `&`, `<`, `>`, `"` and `'` come out as references.
        assert!(
            !page.contains("<script>") && !page.contains(r#""x""#),
            "{page}"
        );
        assert!(
            page.contains(&format!("<td>{ESCAPED}</td>")),
            "the reasons: {page}"
        );
        assert!(
            page.contains("<td>&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;\u{3000}&#38;\u{3000}&#39;y&#39;</td>"),
            "the name, normalised: {page}"
        );
        assert!(
            page.contains(&format!("({ESCAPED})</td>")),
            "the revocation"
        );
        assert!(
            page.contains("<td>会場 &#60;A&#62; &#38; &#34;B&#34;</td><td>医師 &#39;C&#39;</td>")
        );
        assert!(page.contains("<td>コミナティ &#60;筋注&#62;</td>"));
        assert!(page.contains(r#"<style nonce="n0&#34;nce">"#), "{page}");
    }

    #[test]
    fn every_section_is_a_table_or_says_none() {
        let page = render(&disclosure(), "");
        assert!(page.starts_with("<!DOCTYPE html>\n") && page.ends_with("</body>\n</html>\n"));
        assert!(
            page.contains("<style>\n") && !page.contains("nonce"),
            "{page}"
        );
        assert_eq!(page.matches("<table>").count(), 8, "{page}");
        assert!(!page.contains("なし / none</p>"), "{page}");
        assert!(page.contains(
            "<tr><td>1回目</td><td>2021-06-01</td><td>コミナティ &#60;筋注&#62;</td><td>FA1234</td>"
        ));
        assert!(
            page.contains("<td>提供 / provision</td><td>472018</td><td>利用停止</td><td>0</td>")
        );
        assert!(page.contains("<tr><td>42</td><td>2021-06-02 09:00:00</td><td>staff-1</td>"));

        let mut d = disclosure();
        d.person.vouchers.clear();
        d.doses.clear();
        d.history.clear();
        d.changes.clear();
        d.inquiries.clear();
        d.provisions.clear();
        d.certificates.clear();
        d.audit.clear();
        let page = render(&d, "");
        assert_eq!(page.matches("<table>").count(), 1, "{page}");
        assert_eq!(page.matches("<p>なし / none</p>\n").count(), 7, "{page}");
    }
}
