//! Vaccination certificates: issued by `certificate issue` in every format (SMART Health Card,
//! ICAO VDS-NC, EU DCC, PDF), verified by `verify` - ours and the official test vectors of
//! others - and revoked.

use std::path::Path;

use crate::{
    common::{fails, ok, ok_or_fail_stdout},
    fixtures::{disclosure, town_with_keys},
};

#[test]
fn verify_reads_the_official_smart_health_cards() {
    let dir = tempfile::tempdir().unwrap();
    let v = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/shc");
    let jwks = v.join("issuer/.well-known/jwks.json");
    let crl = v.join("issuer/.well-known/crl/3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s.json");
    let (jwks, crl) = (jwks.to_str().unwrap(), crl.to_str().unwrap());
    for n in ["00", "01", "02"] {
        let file = v.join(format!("example-{n}-e-file.smart-health-card"));
        let out = ok(
            dir.path(),
            &[
                "verify",
                file.to_str().unwrap(),
                "--jwks",
                jwks,
                "--crl",
                crl,
            ],
        );
        assert!(out.contains("[OK] signature"), "{out}");
        let jws = std::fs::read_to_string(v.join(format!("example-{n}-d-jws.txt"))).unwrap();
        let json = ok(
            dir.path(),
            &["verify", jws.trim(), "--jwks", jwks, "--json"],
        );
        let report: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(report["passed"], true, "{json}");
    }
    // The official QR image (SVG).
    let svg = v.join("example-00-g-qr-code-0.svg");
    let out = ok(
        dir.path(),
        &["verify", svg.to_str().unwrap(), "--jwks", jwks],
    );
    assert!(
        out.contains("qr-svg") && out.contains("[OK] signature"),
        "{out}"
    );
    // The chunked example, its three QR texts pasted together.
    let chunks: String = (0..3)
        .map(|i| {
            std::fs::read_to_string(v.join(format!("example-02-f-qr-code-numeric-value-{i}.txt")))
                .unwrap()
        })
        .collect();
    ok(dir.path(), &["verify", &chunks, "--jwks", jwks]);
    // Without the issuer's keys, with a tampered signature, or garbage: a failure, said once.
    let jws = std::fs::read_to_string(v.join("example-00-d-jws.txt")).unwrap();
    let jws = jws.trim();
    fails(dir.path(), &["verify", jws]);
    let tampered = format!(
        "{}{}",
        &jws[..jws.len() - 2],
        if jws.ends_with('A') { "BB" } else { "AA" }
    );
    fails(dir.path(), &["verify", &tampered, "--jwks", jwks]);
    fails(dir.path(), &["verify", "shc:/12345", "--jwks", jwks]);
    // As of a time before the card was issued, it is not valid yet.
    let early = ok_or_fail_stdout(
        dir.path(),
        &[
            "verify",
            jws,
            "--jwks",
            jwks,
            "--at",
            "2020-01-01T00:00:00Z",
        ],
    );
    assert!(early.contains("[NG] expiry"), "{early}");
}

#[test]
fn verify_reads_eu_dccs_and_icao_seals_against_trusted_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    // A real Australian VDS-NC and Australia's CSCA (DER).
    let au = here.join("../openvrs-cert/tests/data/vds-au");
    let (seal, csca) = (au.join("valid.json"), au.join("csca.der"));
    let (seal, csca) = (seal.to_str().unwrap(), csca.to_str().unwrap());
    let out = ok(d, &["verify", seal, "--trust", csca]);
    assert!(
        out.contains("[OK] trust") && out.contains("CITIZEN"),
        "{out}"
    );
    // Without a trusted CSCA the chain cannot be checked: not a pass.
    assert!(ok_or_fail_stdout(d, &["verify", seal]).contains("[NG] trust"));

    // EU DCCs from the EU test data (ES256 and PS256), the signer certificate given as PEM.
    let eu = here.join("../../../shared/vectors/dcc/testdata");
    for file in ["common/CO3.json", "CH/1.json", "common/CO28.json"] {
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(eu.join(file)).unwrap()).unwrap();
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            doc["TESTCTX"]["CERTIFICATE"].as_str().unwrap()
        );
        std::fs::write(d.join("signer.pem"), pem).unwrap();
        let text = doc["PREFIX"].as_str().unwrap();
        let at = doc["TESTCTX"]["VALIDATIONCLOCK"].as_str().unwrap();
        let json = ok(
            d,
            &[
                "verify",
                text,
                "--trust",
                "signer.pem",
                "--at",
                at,
                "--json",
            ],
        );
        let report: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(report["passed"], true, "{file}: {json}");
        assert_eq!(report["content"][0]["kind"], "dcc");
        // The same clock as other EU test data writes its clocks: the offset without a colon
        // (`+0000`, `+0200`) and fractional seconds.
        let (time, offset) = match at.strip_suffix('Z') {
            Some(t) => (t.to_owned(), "+0000".to_owned()),
            None => (
                at[..at.len() - 6].to_owned(),
                at[at.len() - 6..].replace(':', ""),
            ),
        };
        let time = if time.contains('.') {
            time
        } else {
            format!("{time}.686")
        };
        let compact = format!("{time}{offset}");
        let json = ok(
            d,
            &[
                "verify",
                text,
                "--trust",
                "signer.pem",
                "--at",
                &compact,
                "--json",
            ],
        );
        let report: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(report["passed"], true, "{file} at {compact}: {json}");
        // Today, years later, the same certificate has expired.
        assert!(
            ok_or_fail_stdout(d, &["verify", text, "--trust", "signer.pem"])
                .contains("[NG] expiry")
        );
    }
    fails(d, &["verify", "HC1:not-base45~"]);
}

#[test]
fn certificates_are_issued_verified_by_their_formats_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (vaccinated, unvaccinated) = town_with_keys(d);
    let a = vaccinated[0].as_str();
    std::fs::write(d.join("jwks.json"), ok(d, &["keys", "jwks"])).unwrap();
    let certs = ok(d, &["keys", "certs"]);
    assert_eq!(certs.matches("BEGIN CERTIFICATE").count(), 3, "{certs}");
    std::fs::write(d.join("trust.pem"), &certs).unwrap();
    let issue = |extra: &[&str]| -> String {
        let mut args = vec![
            "certificate",
            "issue",
            "--municipality",
            "472131",
            "--address-number",
        ];
        args.extend_from_slice(extra);
        ok(d, &args)
    };
    let passport = "TANAKA HANAKO,JPN,TR1234567";

    // Domestic SMART Health Card, its QR image too; both verify against the published keys.
    let out = issue(&[
        a,
        "--kind",
        "domestic",
        "--format",
        "shc",
        "--out",
        "c.smart-health-card",
        "--qr-png",
        "c.png",
    ]);
    assert!(out.contains("issued: certificate "), "{out}");
    let shc_id = out.split_whitespace().nth(4).unwrap().to_owned();
    for file in ["c.smart-health-card", "c.png"] {
        let report: serde_json::Value =
            serde_json::from_str(&ok(d, &["verify", file, "--jwks", "jwks.json", "--json"]))
                .unwrap();
        assert_eq!(report["passed"], true, "{report}");
        let bundle = &report["content"][0]["fhirBundle"];
        assert_eq!(bundle["entry"][0]["resource"]["resourceType"], "Patient");
        assert!(
            bundle["entry"].as_array().unwrap().len() >= 2,
            "at least one dose"
        );
    }
    // Overseas: ICAO VDS-NC and EU DCC, with the passport's name, chained to our CSCA / signer.
    issue(&[
        a,
        "--kind",
        "overseas",
        "--passport",
        passport,
        "--format",
        "vds",
        "--out",
        "c.vds.json",
        "--qr-png",
        "vds.png",
    ]);
    issue(&[
        a,
        "--kind",
        "overseas",
        "--passport",
        passport,
        "--format",
        "dcc",
        "--out",
        "c.dcc.txt",
        "--qr-png",
        "dcc.png",
    ]);
    for (file, kind) in [
        ("c.vds.json", "vds"),
        ("vds.png", "vds"),
        ("c.dcc.txt", "dcc"),
        ("dcc.png", "dcc"),
    ] {
        let json = ok(d, &["verify", file, "--trust", "trust.pem", "--json"]);
        let report: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(report["passed"], true, "{file}: {json}");
        assert_eq!(report["content"][0]["kind"], kind);
        assert!(json.contains("TANAKA"), "{json}");
    }
    // The paper certificate: a PDF with the font subset embedded.
    issue(&[
        a,
        "--kind",
        "overseas",
        "--passport",
        passport,
        "--format",
        "pdf",
        "--out",
        "c.pdf",
    ]);
    let pdf = std::fs::read(d.join("c.pdf")).unwrap();
    assert!(
        pdf.starts_with(b"%PDF-") && pdf.len() < 300_000,
        "{} bytes",
        pdf.len()
    );
    assert!(
        pdf.windows(9).any(|w| w == b"FontFile2"),
        "the font is embedded"
    );
    // Refusals, each clear, nothing recorded.
    let refused = |extra: &[&str]| -> String {
        let mut args = vec![
            "certificate",
            "issue",
            "--municipality",
            "472131",
            "--address-number",
        ];
        args.extend_from_slice(extra);
        fails(d, &args)
    };
    // The passport's MRZ instead of typed fields (the ICAO specimen), check digits verified.
    std::fs::write(
        d.join("mrz.txt"),
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10\n",
    )
    .unwrap();
    issue(&[
        a,
        "--kind",
        "overseas",
        "--passport-mrz",
        "mrz.txt",
        "--format",
        "vds",
        "--out",
        "mrz.vds.json",
    ]);
    assert!(
        std::fs::read_to_string(d.join("mrz.vds.json"))
            .unwrap()
            .contains("ERIKSSON ANNA MARIA")
    );
    std::fs::write(
        d.join("bad-mrz.txt"),
        "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C46UTO7408122F1204159ZE184226B<<<<<10\n",
    )
    .unwrap();
    let e = refused(&[
        a,
        "--kind",
        "overseas",
        "--passport-mrz",
        "bad-mrz.txt",
        "--format",
        "vds",
        "--out",
        "x",
    ]);
    assert!(e.contains("check digit"), "{e}");
    let e = refused(&[a, "--kind", "domestic", "--format", "vds", "--out", "x"]);
    assert!(e.contains("passport"), "{e}");
    let e = refused(&[
        &unvaccinated[0],
        "--kind",
        "domestic",
        "--format",
        "shc",
        "--out",
        "x",
    ]);
    assert!(
        e.contains("接種済みの記録がない") && e.contains("completed dose"),
        "{e}"
    );
    let e = refused(&[
        a,
        "--kind",
        "overseas",
        "--passport",
        "TANAKA,JPN,TR1234567",
        "--format",
        "vds",
        "--out",
        "x",
    ]);
    assert!(e.contains("romanized name"), "{e}");
    let e = refused(&[
        "0000000001",
        "--kind",
        "domestic",
        "--format",
        "shc",
        "--out",
        "x",
    ]);
    assert!(e.contains("no such person"), "{e}");
    for (flag, value, why) in [
        ("--deceased", Some("20230101"), "deceased"),
        ("--suspend", None, "suspended"),
    ] {
        let b = vaccinated[1].as_str();
        let mut args = vec![
            "person",
            "flags",
            "--municipality",
            "472131",
            "--address-number",
            b,
            flag,
        ];
        args.extend(value);
        args.extend(["--reason", "テスト"]);
        ok(d, &args);
        let e = refused(&[b, "--kind", "domestic", "--format", "shc", "--out", "x"]);
        assert!(e.contains(why), "{e}");
        let mut clear = vec![
            "person",
            "flags",
            "--municipality",
            "472131",
            "--address-number",
            b,
        ];
        clear.extend(if flag == "--deceased" {
            vec!["--deceased", "clear"]
        } else {
            vec!["--lift-suspension"]
        });
        clear.extend(["--reason", "テスト"]);
        ok(d, &clear);
    }
    assert!(!d.join("x").exists());
    let list = ok(d, &["certificate", "list", "--municipality", "472131"]);
    assert_eq!(
        list.lines().count(),
        6,
        "a header and the five issued: {list}"
    );
    assert!(
        !list.contains("TANAKA"),
        "no personal value in the list: {list}"
    );

    // Revocation: the card's rid joins the published list and verification says revoked.
    ok(
        d,
        &[
            "certificate",
            "revoke",
            "--municipality",
            "472131",
            "--id",
            &shc_id,
            "--reason",
            "再発行のため",
        ],
    );
    fails(
        d,
        &[
            "certificate",
            "revoke",
            "--municipality",
            "472131",
            "--id",
            &shc_id,
            "--reason",
            "again",
        ],
    );
    fails(
        d,
        &[
            "certificate",
            "revoke",
            "--municipality",
            "472131",
            "--id",
            "NOSUCHID0000",
            "--reason",
            "x",
        ],
    );
    let crl = ok(d, &["certificate", "crl"]);
    std::fs::write(d.join("crl.json"), &crl).unwrap();
    let crl: serde_json::Value = serde_json::from_str(&crl).unwrap();
    assert_eq!(
        (crl["ctr"].as_u64(), crl["rids"].as_array().map(Vec::len)),
        (Some(1), Some(1))
    );
    let jwks: serde_json::Value = serde_json::from_str(&ok(d, &["keys", "jwks"])).unwrap();
    assert_eq!(jwks["keys"][0]["crlVersion"], 1);
    let out = ok_or_fail_stdout(
        d,
        &[
            "verify",
            "c.smart-health-card",
            "--jwks",
            "jwks.json",
            "--crl",
            "crl.json",
        ],
    );
    assert!(out.contains("[NG] revocation"), "{out}");
    fails(
        d,
        &[
            "verify",
            "c.smart-health-card",
            "--jwks",
            "jwks.json",
            "--crl",
            "crl.json",
        ],
    );

    // The person's disclosure lists what was issued to them, and the revocation.
    let me = disclosure(d, a);
    let issued = me["certificates"].as_array().unwrap();
    assert_eq!(issued.len(), 5, "{me}");
    assert!(
        issued
            .iter()
            .any(|c| c["id"] == shc_id.as_str() && c["revocation_reason"] == "再発行のため")
    );

    // Every act is in the municipality's chain, which still verifies.
    ok(d, &["audit", "verify", "--municipality", "472131"]);
}
