//! ICAO VDS-NC: a real seal issued by Australia verified against Australia's CSCA, and our own
//! seals read back, chained, and tampered with.

use openvrs_cert::{pki, qr, vds};
use serde_json::Value;
use std::path::PathBuf;

/// A file of `tests/data/vds-au` (Australia's real seal) or another folder there.
fn data_in(folder: &str, name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(folder)
            .join(name),
    )
    .unwrap()
}

fn data(name: &str) -> Vec<u8> {
    data_in("vds-au", name)
}

fn australia() -> (String, pki::Certificate) {
    let seal = String::from_utf8(data("valid.json")).unwrap();
    (seal, pki::Certificate::parse(&data("csca.der")).unwrap())
}

/// 2026-11-27, within the Australian signer's validity (2021-08-31 to 2031-09-30).
const NOW: i64 = 1_795_737_600;

#[test]
fn a_real_australian_seal_verifies_and_chains_to_its_csca() {
    let (text, csca) = australia();
    let seal = vds::parse(&text).unwrap();
    seal.verify_signature().unwrap();
    let ca = seal.verify_chain(std::slice::from_ref(&csca)).unwrap();
    assert_eq!(ca, &csca);
    seal.check_validity(ca, NOW).unwrap();
    assert_eq!(seal.data["msg"]["uvci"], "VB0009990038");
    // Its signer names the ICAO health-certificate signing usage, as ours do.
    assert_eq!(
        seal.signer.key_usages.as_ref().unwrap().oids,
        ["2.23.136.1.1.14.2"]
    );

    // The same seal with one letter of the name changed (the Australian library's own negative
    // case) fails its signature, and still chains: the two checks are separate verdicts.
    let forged = text.replace("CITIZEN  JANE", "CITIZEN  JANEX");
    let seal = vds::parse(&forged).unwrap();
    assert_eq!(seal.verify_signature().unwrap_err().kind, "pki.signature");
    seal.verify_chain(std::slice::from_ref(&csca)).unwrap();
    // Before the signer's validity began: refused.
    assert_eq!(
        seal.check_validity(&csca, 1_600_000_000).unwrap_err().kind,
        "vds.validity"
    );
}

fn vaccination() -> vds::Vaccination {
    vds::Vaccination {
        issuing_country: "JPN".into(),
        uvci: "472131000001".into(),
        name: "TANAKA HANAKO".into(),
        birth_date: "1980-04-01".into(),
        sex: None,
        passport: "TR1234567".into(),
        products: vec![vds::Product {
            des: "XM0GQ8".into(),
            name: "COMIRNATY".into(),
            disease: "RA01.0".into(),
            doses: (1..=3)
                .map(|seq| vds::Dose {
                    date: format!("2021-0{}-01", seq + 5),
                    seq,
                    country: "JPN".into(),
                    administered_by: "MHLW_Gov_of_JAPAN".into(),
                    lot: format!("FF{seq}234"),
                })
                .collect(),
        }],
    }
}

#[test]
fn our_seals_verify_chain_and_fit_a_qr_code() {
    let now = NOW;
    let csca = pki::make_csca("JP", "openvrs test CSCA", now, 3650).unwrap();
    let signer = pki::make_signer(
        &csca,
        pki::Role::VdsSigner,
        "JP",
        "openvrs VDS signer",
        now,
        730,
    )
    .unwrap();
    let trusted = pki::Certificate::parse(&csca.der).unwrap();
    let text = vds::sign(&vds::document(&vaccination()), &signer).unwrap();

    let seal = vds::parse(&text).unwrap();
    seal.verify_signature().unwrap();
    let ca = seal.verify_chain(std::slice::from_ref(&trusted)).unwrap();
    seal.check_validity(ca, now + 60).unwrap();
    assert_eq!(seal.data, vds::document(&vaccination()));
    assert_eq!(seal.data["msg"]["ve"][0]["vd"][2]["seq"], 3);

    // Another deployment's CSCA (even with the same name) is not ours; none at all is said so.
    let stranger = pki::make_csca("JP", "openvrs test CSCA", now + 1, 3650).unwrap();
    let stranger = pki::Certificate::parse(&stranger.der).unwrap();
    assert_eq!(
        seal.verify_chain(&[stranger]).unwrap_err().kind,
        "vds.chain"
    );
    assert_eq!(seal.verify_chain(&[]).unwrap_err().kind, "vds.no_trust");
    // Australia's CSCA does not vouch for us.
    let (_, au) = australia();
    assert_eq!(seal.verify_chain(&[au]).unwrap_err().kind, "vds.chain");

    // Byte mode QR, read back to the exact text.
    let code = qr::bytes(&text).unwrap();
    assert_eq!(
        qr::read_png(&qr::png(&code, 3).unwrap()).unwrap(),
        vec![text.clone()]
    );

    // A changed dose date breaks the signature.
    let forged = text.replace("2021-06-01", "2021-05-01");
    assert_eq!(
        vds::parse(&forged)
            .unwrap()
            .verify_signature()
            .unwrap_err()
            .kind,
        "pki.signature"
    );
}

#[test]
fn broken_seals_are_clear_errors_never_panics() {
    let (text, _) = australia();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let without = |pointer: &str| {
        let mut d = doc.clone();
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        d.pointer_mut(parent)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove(key);
        d.to_string()
    };
    let with = |pointer: &str, v: Value| {
        let mut d = doc.clone();
        *d.pointer_mut(pointer).unwrap() = v;
        d.to_string()
    };
    let table: Vec<(&str, String, &str)> = vec![
        ("empty", String::new(), "vds.format"),
        ("not json", "{\"data\":".into(), "vds.format"),
        ("no sig", without("/sig"), "vds.format"),
        ("no data", without("/data"), "vds.format"),
        ("bad cer", with("/sig/cer", "!!".into()), "vds.format"),
        (
            "cer not x509",
            with("/sig/cer", "AAAA".into()),
            "pki.certificate",
        ),
        (
            "other type",
            with("/data/hdr/t", "icao.test".into()),
            "vds.content",
        ),
        ("no uvci", without("/data/msg/uvci"), "vds.content"),
        ("no name", without("/data/msg/pid/n"), "vds.content"),
        (
            "no doses",
            with("/data/msg/ve/0/vd", Value::Array(vec![])),
            "vds.content",
        ),
        ("no lot", without("/data/msg/ve/0/vd/0/lot"), "vds.content"),
        (
            "huge",
            format!("{{\"data\":\"{}\"}}", "x".repeat(1 << 20)),
            "vds.format",
        ),
        ("deep", "[".repeat(100_000), "vds.format"),
    ];
    for (name, input, kind) in table {
        let err = vds::parse(&input).unwrap_err();
        assert_eq!(err.kind, kind, "{name}");
    }
    let other_alg = vds::parse(&with("/sig/alg", "ES512".into())).unwrap();
    assert_eq!(
        other_alg.verify_signature().unwrap_err().kind,
        "vds.algorithm"
    );
}

/// Certificates made by `tests/data/vds-jp/make.sh` with what Japan's chain has.
fn japan_like(name: &str) -> Vec<u8> {
    data_in("vds-jp", name)
}

/// 2027-06-01: within the made certificates' validity (tests/data/vds-jp/make.sh).
const JP_NOW: i64 = 1_811_808_000;

#[test]
fn a_seal_in_japans_form_chains_through_explicit_parameters_and_null_algorithm_parameters() {
    // What Japan's chain has and rcgen never writes: a CSCA key with explicit EC domain
    // parameters, and a signer whose signature algorithm carries NULL parameters.
    let csca_der = japan_like("csca.der");
    let signer_der = japan_like("signer.der");
    let csca = pki::Certificate::parse(&csca_der).unwrap();
    let signer = pki::Issued {
        der: signer_der.clone(),
        key: openvrs_cert::shc::SigningKeyPair::from_bytes(&japan_like("signer.pk8")).unwrap(),
    };
    let seal = vds::sign(&vds::document(&vaccination()), &signer).unwrap();
    // Japan's certificate app puts the seal in its QR code as an array of one document.
    let japan = format!("[{seal}]");
    for text in [&japan, &seal] {
        let parsed = vds::parse(text).unwrap();
        parsed.verify_signature().unwrap();
        let ca = parsed.verify_chain(std::slice::from_ref(&csca)).unwrap();
        parsed.check_validity(ca, JP_NOW).unwrap();
    }
    let trust = openvrs_cert::verify::Trust {
        certificates: vec![csca.clone()],
        at: JP_NOW as f64,
        ..Default::default()
    };
    let report = openvrs_cert::verify::verify(japan.as_bytes(), &trust);
    assert_eq!(report.format, "vds-nc");
    assert!(report.passed(), "{:?}", report.checks);
    // ... and from a QR image of it, as the app shows it.
    let png = qr::png(&qr::bytes(&japan).unwrap(), 3).unwrap();
    let report = openvrs_cert::verify::verify(&png, &trust);
    assert!(report.passed(), "{:?}", report.checks);

    // An array of two documents, or of none, is not a seal.
    for text in [format!("[{seal},{seal}]"), "[]".into()] {
        assert_eq!(vds::parse(&text).unwrap_err().kind, "vds.format");
    }
    // Explicit parameters that are not P-256's (b changed) are not taken for P-256: the
    // signer no longer chains to that CSCA.
    let b =
        hex::decode("5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b").unwrap();
    let at = csca_der.windows(32).position(|w| w == b).unwrap();
    let mut other_curve = csca_der.clone();
    other_curve[at + 31] ^= 1;
    let other_curve = pki::Certificate::parse(&other_curve).unwrap();
    assert_eq!(
        vds::parse(&japan)
            .unwrap()
            .verify_chain(&[other_curve])
            .unwrap_err()
            .kind,
        "vds.chain"
    );
    // Nor does the signer's signature hold when one byte of it changes.
    let mut forged = signer_der.clone();
    let last = forged.len() - 2;
    forged[last] ^= 1;
    let forged = pki::Issued {
        der: forged,
        key: openvrs_cert::shc::SigningKeyPair::from_bytes(&japan_like("signer.pk8")).unwrap(),
    };
    let text = vds::sign(&vds::document(&vaccination()), &forged).unwrap();
    assert_eq!(
        vds::parse(&text)
            .unwrap()
            .verify_chain(std::slice::from_ref(&csca))
            .unwrap_err()
            .kind,
        "vds.chain"
    );
    // Australia's seal, whose CSCA names its curve, still chains.
    let (au, au_csca) = australia();
    let au = format!("[{au}]");
    let parsed = vds::parse(&au).unwrap();
    parsed.verify_chain(&[au_csca]).unwrap();
}
