//! The resident's channels to a certificate, with a simulated My Number card: the card itself,
//! the counter (staff on the LGWAN), the resident app and the convenience-store kiosk through
//! its center.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Output, Stdio},
};

use crate::{
    common::{Running, SERVE_TLS, fails, ok, on_postgres, openvrs, start},
    fixtures::town_with_keys_on,
};

#[test]
fn a_simulated_card_gives_its_signed_data_for_the_pin_and_locks_after_three_wrong_ones() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["init"]);
    fails(
        d,
        &[
            "card",
            "new",
            "--my-number",
            "123456789018",
            "--name",
            "宇留間 花子",
            "--birth-date",
            "1980-04-01",
            "--pin",
            "1234",
            "--out",
            "card.json",
        ],
    );
    ok(d, &["card", "issuer-init"]);
    fails(d, &["card", "issuer-init"]);
    // Bad face data is refused before a card is made.
    let e = fails(
        d,
        &[
            "card",
            "new",
            "--my-number",
            "123456789012",
            "--name",
            "宇留間 花子",
            "--birth-date",
            "1980-04-01",
            "--pin",
            "1234",
            "--out",
            "bad.json",
        ],
    );
    assert!(!e.contains("123456789012"), "{e}");
    fails(
        d,
        &[
            "card",
            "new",
            "--my-number",
            "123456789018",
            "--name",
            "宇留間 花子",
            "--birth-date",
            "1980-04-01",
            "--pin",
            "12",
            "--out",
            "bad.json",
        ],
    );
    assert!(!d.join("bad.json").exists());
    ok(
        d,
        &[
            "card",
            "new",
            "--my-number",
            "123456789018",
            "--name",
            "宇留間 花子",
            "--birth-date",
            "昭和55年4月1日",
            "--sex",
            "2",
            "--address",
            "沖縄県うるま市",
            "--pin",
            "1234",
            "--out",
            "card.json",
        ],
    );
    let file = std::fs::read_to_string(d.join("card.json")).unwrap();
    assert!(
        !file.contains("123456789018") && !file.contains("宇留間"),
        "sealed: {file}"
    );

    let e = fails(
        d,
        &[
            "card",
            "read",
            "--card",
            "card.json",
            "--pin",
            "0000",
            "--out",
            "data.json",
        ],
    );
    assert!(e.contains("2 tries left"), "{e}");
    ok(
        d,
        &[
            "card",
            "read",
            "--card",
            "card.json",
            "--pin",
            "1234",
            "--out",
            "data.json",
        ],
    );
    let data: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("data.json")).unwrap()).unwrap();
    assert_eq!(data["data"]["my_number"], "123456789018");
    assert_eq!(data["data"]["birth_date"], "1980-04-01");
    ok(d, &["card", "verify", "--data", "data.json"]);
    // Altered data does not verify.
    let text = std::fs::read_to_string(d.join("data.json")).unwrap();
    std::fs::write(
        d.join("altered.json"),
        text.replace("1980-04-01", "1990-04-01"),
    )
    .unwrap();
    let e = fails(d, &["card", "verify", "--data", "altered.json"]);
    assert!(e.contains("signature"), "{e}");
    // Three wrong PINs in a row lock it for good.
    for left in ["2 tries left", "1 tries left"] {
        let e = fails(
            d,
            &[
                "card",
                "read",
                "--card",
                "card.json",
                "--pin",
                "9999",
                "--out",
                "x.json",
            ],
        );
        assert!(e.contains(left), "{e}");
    }
    let e = fails(
        d,
        &[
            "card",
            "read",
            "--card",
            "card.json",
            "--pin",
            "9999",
            "--out",
            "x.json",
        ],
    );
    assert!(e.contains("locked"), "{e}");
    let e = fails(
        d,
        &[
            "card",
            "read",
            "--card",
            "card.json",
            "--pin",
            "1234",
            "--out",
            "x.json",
        ],
    );
    assert!(e.contains("locked"), "{e}");
    assert!(!d.join("x.json").exists());
}

#[test]
fn counter_app_and_kiosk_channels_end_to_end_sqlite() {
    channels_end_to_end(None);
}

/// The same on PostgreSQL.
#[test]
fn counter_app_and_kiosk_channels_end_to_end_postgres() {
    on_postgres(channels_end_to_end);
}

/// Starts `openvrs center serve ARGS` in `work` with `TMPDIR=temp`; its address, and what it
/// logs, gathered as it runs.
fn start_center(
    work: &Path,
    temp: &Path,
    args: &[&str],
) -> (Running, String, std::sync::Arc<std::sync::Mutex<String>>) {
    let child = Command::new(env!("CARGO_BIN_EXE_openvrs"))
        .current_dir(work)
        .env("TMPDIR", temp)
        .env("RUST_LOG", "debug")
        .env_remove("OPENVRS_DATA_DIR")
        .args(["center", "serve"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let stderr = running.0.stderr.take().unwrap();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    let mut url = None;
    let mut reader = BufReader::new(running.0.stdout.take().unwrap()).lines();
    for line in reader.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("center ") {
            url = rest
                .split_whitespace()
                .next()
                .map(|u| u.trim_end_matches('/').to_owned());
        }
        if line.contains("Ctrl-C") {
            break;
        }
    }
    std::thread::spawn(move || reader.for_each(drop));
    (running, url.expect("the center printed its address"), log)
}

fn channels_end_to_end(database_url: Option<&str>) {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (vaccinated, _) = town_with_keys_on(d, database_url);
    ok(d, &["card", "issuer-init"]);
    let targets = std::fs::read_to_string(d.join("t.csv")).unwrap();
    // Residents with a My Number and no flag: (address number, My Number, name, birth date).
    let residents: Vec<Vec<String>> = targets
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_owned).collect::<Vec<_>>())
        .filter(|c| !c[9].is_empty() && c[11].is_empty() && c[12].is_empty())
        .collect();
    let with_dose = residents
        .iter()
        .find(|c| vaccinated.contains(&c[1]))
        .unwrap();
    let without_dose = residents
        .iter()
        .find(|c| !vaccinated.contains(&c[1]))
        .unwrap();
    let card = |c: &[String], out: &str| {
        ok(
            d,
            &[
                "card",
                "new",
                "--my-number",
                &c[9],
                "--name",
                &c[5],
                "--birth-date",
                &c[7],
                "--pin",
                "1234",
                "--out",
                out,
            ],
        );
    };
    card(with_dose, "a.json");
    card(without_dose, "b.json");
    assert!(!targets.contains("123456789018"));
    ok(
        d,
        &[
            "card",
            "new",
            "--my-number",
            "123456789018",
            "--name",
            "宇留間 花子",
            "--birth-date",
            "1980-04-01",
            "--pin",
            "1234",
            "--out",
            "stranger.json",
        ],
    );
    // A card made by an issuer the system does not trust.
    let elsewhere = tempfile::tempdir().unwrap();
    let e = elsewhere.path();
    ok(e, &["init"]);
    ok(e, &["card", "issuer-init"]);
    let forged = d.join("forged.json");
    ok(
        e,
        &[
            "card",
            "new",
            "--my-number",
            &with_dose[9],
            "--name",
            &with_dose[5],
            "--birth-date",
            &with_dose[7],
            "--pin",
            "1234",
            "--out",
            forged.to_str().unwrap(),
        ],
    );

    // The center's account and configuration (read-only, outside its working directory).
    let issued = ok(d, &["user", "add", "--id", "center-1", "--role", "center"]);
    let config = tempfile::tempdir().unwrap();
    let cfg = config.path();
    std::fs::write(
        cfg.join("center.token"),
        issued.trim().rsplit(' ').next().unwrap(),
    )
    .unwrap();
    let kiosks = cfg.join("kiosks.txt");
    let kiosks = kiosks.to_str().unwrap();
    let kiosk_token = ok(
        d,
        &["center", "kiosk-add", "--kiosks", kiosks, "--id", "kiosk-1"],
    );
    std::fs::write(cfg.join("kiosk.token"), kiosk_token.trim()).unwrap();
    fails(
        d,
        &["center", "kiosk-add", "--kiosks", kiosks, "--id", "kiosk-1"],
    );
    std::fs::write(cfg.join("stolen.token"), "0".repeat(64)).unwrap();

    let (_server, lgwan, internet, _) = start(d, &SERVE_TLS);
    let work = tempfile::tempdir().unwrap();
    let temp = tempfile::tempdir().unwrap();
    let data = d.join("openvrs-data");
    let issuer_pem = data.join("card-issuer.pem");
    // Real TLS everywhere, with the development CA: system, center, their clients.
    let ca = data.join("tls/dev-ca.pem");
    let ca = ca.to_str().unwrap();
    let (_center, center, center_log) = start_center(
        work.path(),
        temp.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--system",
            &format!("https://{lgwan}"),
            "--system-ca",
            ca,
            "--tls-cert",
            data.join("tls/server.pem").to_str().unwrap(),
            "--tls-key",
            data.join("tls/server.key").to_str().unwrap(),
            "--token-file",
            cfg.join("center.token").to_str().unwrap(),
            "--kiosks",
            kiosks,
            "--card-issuer",
            issuer_pem.to_str().unwrap(),
        ],
    );
    assert!(center.starts_with("https://"), "{center}");
    let server = format!("https://{internet}");
    let kiosk = |card: &str, token: &str, pin: &str, out: &str| -> Output {
        openvrs(
            d,
            &[
                "kiosk",
                "--center",
                &center,
                "--center-ca",
                ca,
                "--token-file",
                cfg.join(token).to_str().unwrap(),
                "--card",
                card,
                "--pin",
                pin,
                "--municipality",
                "472131",
                "--out",
                out,
            ],
        )
    };
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();

    // Kiosk: refused while the town does not offer it; then the PDF, and the reminders.
    let o = kiosk("a.json", "kiosk.token", "1234", "k.pdf");
    assert!(
        !o.status.success() && stderr(&o).contains("kiosk"),
        "{}",
        stderr(&o)
    );
    ok(
        d,
        &["municipality", "kiosk", "--code", "472131", "--set", "on"],
    );
    assert!(ok(d, &["municipality", "list"]).contains("kiosk"));
    let o = kiosk("a.json", "kiosk.token", "1234", "k.pdf");
    assert!(o.status.success(), "{}", stderr(&o));
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(
        said.contains("take your card") && said.contains("take it with you"),
        "{said}"
    );
    assert!(
        std::fs::read(d.join("k.pdf"))
            .unwrap()
            .starts_with(b"%PDF-")
    );
    for (card, token, expected) in [
        ("a.json", "stolen.token", "not a registered kiosk"),
        (forged.to_str().unwrap(), "kiosk.token", "card issuer"),
        ("b.json", "kiosk.token", "dose"),
        (
            "stranger.json",
            "kiosk.token",
            "no record in the chosen municipality",
        ),
    ] {
        let o = kiosk(card, token, "1234", "x.pdf");
        assert!(!o.status.success(), "{card} {token}");
        assert!(stderr(&o).contains(expected), "{card}: {}", stderr(&o));
    }
    assert!(!d.join("x.pdf").exists());

    // The counter: staff sign in on the LGWAN listener and print the PDF.
    let issued = ok(
        d,
        &[
            "user",
            "add",
            "--id",
            "staff-1",
            "--role",
            "staff",
            "--municipality",
            "472131",
        ],
    );
    let password = issued.trim().rsplit(' ').next().unwrap();
    let roots = openvrs_cert::pki::read_certificates(&std::fs::read(ca).unwrap())
        .unwrap()
        .iter()
        .map(|der| ureq::tls::Certificate::from_der(der).to_owned())
        .collect();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(roots)))
                .build(),
        )
        .build()
        .into();
    let login = serde_json::json!({"user": "staff-1", "password": password}).to_string();
    let mut answer = agent
        .post(&format!("https://{lgwan}/api/login"))
        .header("content-type", "application/json")
        .send(login.as_bytes())
        .unwrap();
    assert_eq!(answer.status(), 200);
    let cookie = answer.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let body: serde_json::Value =
        serde_json::from_slice(&answer.body_mut().read_to_vec().unwrap()).unwrap();
    let ask = r#"{"kind": "overseas", "format": "pdf", "passport_name": "TANAKA HANAKO", "nationality": "JPN", "passport_number": "TR1234567"}"#;
    let mut answer = agent
        .post(&format!(
            "https://{lgwan}/api/municipalities/472131/persons/{}/certificates",
            with_dose[1]
        ))
        .header("cookie", &cookie)
        .header("x-csrf-token", body["csrf_token"].as_str().unwrap())
        .header("content-type", "application/json")
        .send(ask.as_bytes())
        .unwrap();
    assert_eq!(answer.status(), 201);
    assert_eq!(answer.headers()["content-type"], "application/pdf");
    assert!(
        answer
            .body_mut()
            .read_to_vec()
            .unwrap()
            .starts_with(b"%PDF-")
    );

    // The resident app: the card file, then verified as anyone would.
    let app = |card: &str, pin: &str, extra: &[&str]| -> Output {
        let mut args = vec![
            "app",
            "request",
            "--server",
            &server,
            "--server-ca",
            ca,
            "--card",
            card,
            "--pin",
            pin,
            "--municipality",
            "472131",
            "--out",
            "a.smart-health-card",
        ];
        args.extend_from_slice(extra);
        openvrs(d, &args)
    };
    let o = app("a.json", "1234", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(d.join("jwks.json"), ok(d, &["keys", "jwks"])).unwrap();
    std::fs::write(d.join("trust.pem"), ok(d, &["keys", "certs"])).unwrap();
    ok(d, &["verify", "a.smart-health-card", "--jwks", "jwks.json"]);
    let o = app(
        "a.json",
        "1234",
        &["--overseas", "--passport", "TANAKA HANAKO,JPN,TR1234567"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let report = ok(
        d,
        &["verify", "a.vds.json", "--trust", "trust.pem", "--json"],
    );
    assert!(report.contains("TANAKA"), "{report}");
    for (card, pin, expected) in [
        (forged.to_str().unwrap(), "1234", "card issuer"),
        ("b.json", "1234", "dose"),
        (
            "stranger.json",
            "1234",
            "no record in the chosen municipality",
        ),
        ("a.json", "0000", "2 tries left"),
    ] {
        let o = app(card, pin, &[]);
        assert!(!o.status.success());
        assert!(stderr(&o).contains(expected), "{card}: {}", stderr(&o));
    }
    let o = app("a.json", "1234", &["--overseas"]);
    assert!(stderr(&o).contains("passport"), "{}", stderr(&o));
    // Three wrong PINs in a row lock the card: the right one no longer opens it.
    for _ in 0..3 {
        app("b.json", "9999", &[]);
    }
    let o = app("b.json", "1234", &[]);
    assert!(stderr(&o).contains("locked"), "{}", stderr(&o));

    // Every channel is in the record: console-free, with app and kiosk channels.
    let list = ok(d, &["certificate", "list", "--municipality", "472131"]);
    assert_eq!(list.matches("\tkiosk\t").count(), 1, "{list}");
    assert_eq!(list.matches("\tcounter\t").count(), 1, "{list}");
    assert_eq!(list.matches("\tapp\t").count(), 3, "{list}");

    // The center kept nothing: its working and temporary directories are empty, and its log
    // holds no My Number, name or birth date - only the security events, by kiosk and client.
    for dir in [work.path(), temp.path()] {
        assert_eq!(
            std::fs::read_dir(dir).unwrap().count(),
            0,
            "{}",
            dir.display()
        );
    }
    let log = center_log.lock().unwrap().clone();
    assert!(
        log.contains("unknown_kiosk") && log.contains("forged_card"),
        "{log}"
    );
    for c in [with_dose, without_dose] {
        for value in [&c[9], &c[5], &c[7]] {
            assert!(!log.contains(value.as_str()), "{value} in the center's log");
        }
    }
}
