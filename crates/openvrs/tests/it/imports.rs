//! Files in and out of a town: the targets file (residents and vouchers), the vaccination
//! ledger, flags, the quality report, a person's disclosure, bulk inquiries and exports - all or
//! nothing, idempotent, in the encodings municipalities use.

use std::collections::BTreeMap;

use crate::{
    common::{fails, ok, on_postgres, openvrs},
    fixtures::{Residents, stats, town, town_files},
};

#[test]
fn import_targets_all_or_nothing_and_idempotent() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    town(d, None, Residents::None);
    ok(
        d,
        &[
            "gen",
            "residents",
            "--municipality",
            "472131",
            "--count",
            "300",
            "--seed",
            "4",
            "--encoding",
            "sjis",
            "--out",
            "t.csv",
        ],
    );
    let csv = std::fs::read(d.join("t.csv")).unwrap();
    // A bad row at the end: nothing is written, and the row is named.
    let mut bad = csv.clone();
    bad.extend_from_slice(b"472131,9,1,X,X,2099-01-01,1,,,,,,\r\n");
    std::fs::write(d.join("bad.csv"), &bad).unwrap();
    let out = openvrs(
        d,
        &["import", "targets", "bad.csv", "--municipality", "472131"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("行目 氏名カナ") && err.contains("nothing imported"),
        "{err}"
    );
    assert_eq!(stats(d).persons, 0);
    // The good file: everything, then nothing more the second time.
    let first = ok(
        d,
        &["import", "targets", "t.csv", "--municipality", "472131"],
    );
    assert!(first.contains("300 new"), "{first}");
    assert_eq!(stats(d).persons, 300);
    let vouchers = stats(d).vouchers;
    let again = ok(
        d,
        &["import", "targets", "t.csv", "--municipality", "472131"],
    );
    assert!(
        again.contains("0 new") && again.contains("300 unchanged") && again.contains("0 vouchers"),
        "{again}"
    );
    // An updated file: one new voucher and one death are reported as changes.
    let text = encoding_rs::SHIFT_JIS.decode(&csv).0.into_owned();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut cells: Vec<String> = lines[1].split(',').map(str::to_owned).collect();
    cells[2] = "9999999999".into();
    lines.insert(2, cells.join(","));
    let mut dead: Vec<String> = lines[5].split(',').map(str::to_owned).collect();
    dead[12] = "2024-01-01".into();
    lines[5] = dead.join(",");
    let updated = encoding_rs::SHIFT_JIS
        .encode(&(lines.join("\r\n") + "\r\n"))
        .0
        .into_owned();
    std::fs::write(d.join("t2.csv"), updated).unwrap();
    let third = ok(
        d,
        &["import", "targets", "t2.csv", "--municipality", "472131"],
    );
    assert!(
        third.contains("1 updated") && third.contains("1 vouchers"),
        "{third}"
    );
    assert_eq!(stats(d).vouchers, vouchers + 1);
}

#[test]
fn ledger_round_trip_flags_quality_and_disclosure_sqlite() {
    ledger_round_trip_flags_quality_and_disclosure(None);
}

/// The same on PostgreSQL, in a schema of its own, when `OPENVRS_TEST_DATABASE_URL` is set
/// (`scripts/test` sets and requires it).
#[test]
fn ledger_round_trip_flags_quality_and_disclosure_postgres() {
    on_postgres(ledger_round_trip_flags_quality_and_disclosure);
}

fn ledger_round_trip_flags_quality_and_disclosure(database_url: Option<&str>) {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    town(
        d,
        database_url,
        Residents::WithLedger {
            count: 400,
            seed: 5,
        },
    );

    // A bad ledger: every bad row named, nothing written.
    let good = std::fs::read_to_string(d.join("l.csv")).unwrap();
    let first_address = good
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_owned();
    let mut bad = good.clone();
    bad.push_str("424242,,20210601,,,,,ファイザー,FA1234\r\n");
    bad.push_str(&format!(
        "{first_address}2,,平成31年5月1日,,,,,ファイザー,FA1234\r\n"
    ));
    std::fs::write(d.join("bad.csv"), bad).unwrap();
    let out = openvrs(
        d,
        &["import", "ledger", "bad.csv", "--municipality", "472131"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("1回目接種日") && err.contains("nothing imported"),
        "{err}"
    );
    assert_eq!(stats(d).doses_by_number, BTreeMap::new());
    let mut unknown = good.clone();
    unknown.push_str("424242,,20210601,,,,,ファイザー,FA1234\r\n");
    std::fs::write(d.join("unknown.csv"), unknown).unwrap();
    let out = openvrs(
        d,
        &[
            "import",
            "ledger",
            "unknown.csv",
            "--municipality",
            "472131",
        ],
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        !out.status.success() && err.contains("not registered"),
        "{err}"
    );
    assert_eq!(stats(d).doses_by_number, BTreeMap::new());

    // The good one, twice.
    let first = ok(
        d,
        &["import", "ledger", "l.csv", "--municipality", "472131"],
    );
    assert!(first.contains("0 unchanged"), "{first}");
    let again = ok(
        d,
        &["import", "ledger", "l.csv", "--municipality", "472131"],
    );
    assert!(again.contains(" 0 new doses"), "{again}");
    // Export gives back the same bytes (UTF-8 with a BOM), and no My Number.
    ok(
        d,
        &[
            "export",
            "ledger",
            "--municipality",
            "472131",
            "--encoding",
            "utf8",
            "--out",
            "e.csv",
        ],
    );
    let exported = std::fs::read_to_string(d.join("e.csv")).unwrap();
    assert_eq!(exported.strip_prefix('\u{feff}').unwrap(), good);
    let targets = std::fs::read_to_string(d.join("t.csv")).unwrap();
    for line in targets.lines().skip(1) {
        let my_number = line.split(',').nth(9).unwrap();
        assert!(my_number.is_empty() || !exported.contains(my_number));
    }

    // A death by flags file: the report shows the doses after it as errors.
    std::fs::write(
        d.join("flags.csv"),
        format!("宛名番号,死亡日,理由\n{first_address},2021-04-30,死亡届\n"),
    )
    .unwrap();
    let flagged = ok(
        d,
        &["import", "flags", "flags.csv", "--municipality", "472131"],
    );
    assert!(flagged.contains("1 persons changed"), "{flagged}");
    let report: serde_json::Value = serde_json::from_str(&ok(
        d,
        &["quality", "report", "--municipality", "472131", "--json"],
    ))
    .unwrap();
    let errors: Vec<&serde_json::Value> = report
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["severity"] == "error")
        .collect();
    assert!(!errors.is_empty());
    assert!(
        errors
            .iter()
            .all(|l| l["address_number"] == first_address.as_str() && l["rule"] == "after_death")
    );

    // Single flags with a reason; a missing person is an error.
    let lifted = ok(
        d,
        &[
            "person",
            "flags",
            "--municipality",
            "472131",
            "--address-number",
            &first_address,
            "--suspend",
            "--reason",
            "利用停止請求",
        ],
    );
    assert!(lifted.contains("updated"), "{lifted}");
    assert_eq!(stats(d).use_suspended, 1);
    // Disclosure: a private file with everything about the person.
    let out = openvrs(
        d,
        &[
            "person",
            "disclose",
            "--municipality",
            "472131",
            "--address-number",
            &first_address,
            "--format",
            "json",
            "--out",
            "me.json",
        ],
    );
    assert!(out.status.success());
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(d.join("me.json")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let me: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("me.json")).unwrap()).unwrap();
    assert_eq!(me["person"]["address_number"], first_address.as_str());
    assert!(!me["doses"].as_array().unwrap().is_empty());
    assert_eq!(me["changes"][0]["reason"], "死亡届");
    assert_eq!(me["changes"][1]["reason"], "利用停止請求");
    let actions: Vec<&str> = me["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"person.flags"), "{actions:?}");
    ok(
        d,
        &[
            "person",
            "disclose",
            "--municipality",
            "472131",
            "--address-number",
            &first_address,
            "--out",
            "me.html",
        ],
    );
    let html = std::fs::read_to_string(d.join("me.html")).unwrap();
    assert!(html.contains("保有個人情報開示書") && html.contains("死亡届"));
    // Nothing personal on the console.
    let console =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!console.contains(me["person"]["name"].as_str().unwrap()));
    fails(
        d,
        &[
            "person",
            "flags",
            "--municipality",
            "472131",
            "--address-number",
            "424242",
            "--suspend",
            "--reason",
            "x",
        ],
    );
}

/// A bulk inquiry (一括照会) from the console: found rows, a malformed row whose reason has
/// the wave dash of 「1～15桁」, and a row naming a 宛名番号 the asker does not hold (refused,
/// and a security event) - the others go on, and the default Shift_JIS result is whole.
#[test]
fn a_bulk_inquiry_writes_its_shift_jis_result_whole_whatever_its_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(d, &["init"]);
    for (code, name) in [("472131", "うるま市"), ("472018", "那覇市")] {
        ok(d, &["municipality", "add", "--code", code, "--name", name]);
        let file = format!("{code}.csv");
        ok(
            d,
            &[
                "gen",
                "residents",
                "--municipality",
                code,
                "--count",
                "5",
                "--seed",
                "3",
                "--out",
                &file,
            ],
        );
        ok(d, &["import", "targets", &file, "--municipality", code]);
    }
    let rows = |file: &str| -> Vec<Vec<String>> {
        std::fs::read_to_string(d.join(file))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').map(str::to_owned).collect())
            .collect()
    };
    let (uruma, naha) = (rows("472131.csv"), rows("472018.csv"));
    // Naha asks Uruma: one of Uruma's residents, for one of Naha's own 宛名番号.
    let input = format!(
        "照会先自治体コード,個人番号,宛名番号\n472131,{},{}\n472131,{},abc\n472131,{},999999999\n",
        uruma[0][9], naha[0][1], uruma[1][9], uruma[2][9]
    );
    std::fs::write(d.join("ask.csv"), input).unwrap();
    let out = openvrs(
        d,
        &[
            "inquiry",
            "bulk",
            "ask.csv",
            "--municipality",
            "472018",
            "--basis",
            "転入",
            "--out",
            "result.csv",
        ],
    );
    let (said, note) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    assert!(out.status.success(), "{note}");
    assert!(note.contains("照会不可としました"), "{note}");
    assert!(
        said.contains("該当あり 1") && said.contains("形式エラー 1") && said.contains("照会不可 1"),
        "{said}"
    );
    let bytes = std::fs::read(d.join("result.csv")).unwrap();
    let (text, _, malformed) = encoding_rs::SHIFT_JIS.decode(&bytes);
    assert!(!malformed, "Shift_JIS throughout");
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(text.contains("宛名番号は1～15桁の数字です"), "{text}");
    assert!(
        text.contains("照会不可") && text.contains("自団体の住民にありません"),
        "{text}"
    );
    assert!(!text.contains(&uruma[0][9]), "never a My Number");
    // Refused rows never reached the source, and the security officers can see them.
    let db = rusqlite::Connection::open(d.join("openvrs-data/openvrs.sqlite")).unwrap();
    let events: i64 = db
        .query_row(
            "SELECT count(*) FROM security_events WHERE kind = 'inquiry_not_own_resident' \
             AND municipality_code = '472018'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(events, 1);
    let provisions: i64 = db
        .query_row("SELECT count(*) FROM provisions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(provisions, 1, "only the found row was provided");
    let left: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A file that cannot be written whole is not written at all: a ledger holding a character
/// Shift_JIS lacks fails its Shift_JIS export (naming the flag that writes UTF-8), and neither
/// the file nor a piece of it is left; the old file stays as it was.
#[test]
fn an_export_that_fails_leaves_no_partial_file() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    town_files(d, None);
    let ledger = std::fs::read_to_string(d.join("l.csv")).unwrap();
    let mut lines: Vec<String> = ledger.lines().map(str::to_owned).collect();
    let first: Vec<String> = lines[1].split(',').map(str::to_owned).collect();
    // 会場 (venue) of the first dose: a character outside Shift_JIS.
    let mut changed = first.clone();
    changed[5] = "𠮷野家会場".into();
    lines[1] = changed.join(",");
    std::fs::write(d.join("l2.csv"), lines.join("\r\n") + "\r\n").unwrap();
    ok(
        d,
        &[
            "import",
            "ledger",
            "l2.csv",
            "--municipality",
            "472131",
            "--encoding",
            "utf8",
        ],
    );
    std::fs::write(d.join("out.csv"), "before").unwrap();
    let err = fails(
        d,
        &[
            "export",
            "ledger",
            "--municipality",
            "472131",
            "--out",
            "out.csv",
        ],
    );
    assert!(err.contains("--encoding utf8"), "{err}");
    assert_eq!(
        std::fs::read_to_string(d.join("out.csv")).unwrap(),
        "before"
    );
    let names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains(".partial")), "{names:?}");
    ok(
        d,
        &[
            "export",
            "ledger",
            "--municipality",
            "472131",
            "--out",
            "out.csv",
            "--encoding",
            "utf8",
        ],
    );
    assert!(
        std::fs::read_to_string(d.join("out.csv"))
            .unwrap()
            .contains("𠮷野家会場")
    );
}
