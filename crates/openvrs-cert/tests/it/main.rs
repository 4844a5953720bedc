//! Certificates against third-party data: the official SMART Health Cards examples
//! (`../shared/vectors/shc`, unchanged copies), and our own cards read back.

#![allow(clippy::unwrap_used)] // tests panic on purpose: that is how they fail

use std::path::PathBuf;

use openvrs_cert::shc;

mod dcc;
mod vds;

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/shc")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(vectors().join(name)).unwrap()
}

fn issuer_keys() -> Vec<shc::PublicKey> {
    shc::parse_jwks(&read("issuer/.well-known/jwks.json")).unwrap()
}

#[test]
fn official_examples_decode_and_verify() {
    let keys = issuer_keys();
    assert_eq!(keys.len(), 2);
    for k in &keys {
        assert_eq!(
            k.kid,
            k.thumbprint(),
            "the examples' kids are JWK thumbprints"
        );
    }
    // (example, QR chunks, signing key, has rid)
    let table = [
        ("00", 1, "3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s", true),
        (
            "01",
            1,
            "EBKOr72QQDcTBUuVzAzkfBTGew0ZA16GuWty64nS-sw",
            false,
        ),
        ("02", 3, "3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s", true),
    ];
    for (n, chunks, kid, has_rid) in table {
        let jws = read(&format!("example-{n}-d-jws.txt"));
        let jws = jws.trim();
        // Every QR text (chunks in reverse order, too) gives back the JWS.
        let texts: Vec<String> = (0..chunks)
            .map(|i| read(&format!("example-{n}-f-qr-code-numeric-value-{i}.txt")))
            .collect();
        let mut refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        assert_eq!(shc::jws_from_qr(&refs).unwrap(), jws, "example {n}");
        refs.reverse();
        assert_eq!(
            shc::jws_from_qr(&refs).unwrap(),
            jws,
            "example {n} reversed"
        );
        if chunks == 1 {
            assert_eq!(
                shc::qr_numeric(jws),
                texts[0].trim(),
                "example {n}: our QR text"
            );
        }
        // The file holds the same JWS.
        let file = shc::jws_from_file(&read(&format!("example-{n}-e-file.smart-health-card")));
        assert_eq!(file.unwrap(), [jws.to_owned()]);
        assert_eq!(
            shc::jws_from_file(&shc::file(&[jws.to_owned()])).unwrap(),
            [jws.to_owned()]
        );
        // Decoded: the payload is the minified one, the bundle the example's.
        let decoded = shc::decode(jws).unwrap();
        assert_eq!(decoded.kid, kid);
        let minified: serde_json::Value =
            serde_json::from_str(&read(&format!("example-{n}-c-jws-payload-minified.json")))
                .unwrap();
        assert_eq!(decoded.payload, minified, "example {n}");
        let bundle: serde_json::Value =
            serde_json::from_str(&read(&format!("example-{n}-a-fhirBundle.json"))).unwrap();
        assert_eq!(decoded.card.bundle, bundle);
        assert_eq!(
            decoded.card.iss,
            "https://spec.smarthealth.cards/examples/issuer"
        );
        assert_eq!(decoded.card.rid.is_some(), has_rid, "example {n}");
        decoded.verify(&keys).unwrap();
        // With only the other key, it does not verify.
        let others: Vec<_> = keys.iter().filter(|k| k.kid != kid).cloned().collect();
        assert_eq!(decoded.verify(&others).unwrap_err().kind, "shc.unknown_key");
    }
}

#[test]
fn our_cards_round_trip_and_tampering_is_caught() {
    let key = shc::SigningKeyPair::generate();
    let again = shc::SigningKeyPair::from_bytes(&key.to_bytes()).unwrap();
    assert_eq!(again.kid(), key.kid());
    let jwks = serde_json::json!({ "keys": [key.public_jwk()] }).to_string();
    let keys = shc::parse_jwks(&jwks).unwrap();
    assert_eq!(keys[0].kid, key.kid());
    let bundle: serde_json::Value =
        serde_json::from_str(&read("example-00-a-fhirBundle.json")).unwrap();
    let card = shc::Card {
        iss: "https://openvrs.example/472131".into(),
        nbf: 1_764_201_600.0,
        exp: None,
        types: vec![
            "https://smarthealth.cards#health-card".into(),
            "https://smarthealth.cards#immunization".into(),
            "https://smarthealth.cards#covid19".into(),
        ],
        bundle,
        rid: Some("MQ".into()),
    };
    let jws = shc::sign(&card, &key).unwrap();
    let qr = shc::qr_numeric(&jws);
    assert!(
        qr.len() <= 5 + 2 * 1195,
        "fits one QR code at version 22 (1195 JWS characters)"
    );
    let back = shc::decode(&shc::jws_from_qr(&[&qr]).unwrap()).unwrap();
    assert_eq!(back.card, card);
    back.verify(&keys).unwrap();
    // Any change to the signed parts breaks the signature.
    let (head, rest) = jws.split_once('.').unwrap();
    let (body, sig) = rest.split_once('.').unwrap();
    let mut flipped = sig.as_bytes().to_vec();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let bad = format!("{head}.{body}.{}", String::from_utf8(flipped).unwrap());
    assert_eq!(
        shc::decode(&bad).unwrap().verify(&keys).unwrap_err().kind,
        "shc.signature"
    );
    let later = shc::Card {
        nbf: card.nbf + 1.0,
        ..card.clone()
    };
    let other = shc::sign(&later, &key).unwrap();
    let (_, other_rest) = other.split_once('.').unwrap();
    let (other_body, _) = other_rest.split_once('.').unwrap();
    let spliced = format!("{head}.{other_body}.{sig}");
    assert_eq!(
        shc::decode(&spliced)
            .unwrap()
            .verify(&keys)
            .unwrap_err()
            .kind,
        "shc.signature"
    );
}

#[test]
fn broken_input_is_a_clear_error() {
    let jws = read("example-00-d-jws.txt");
    let jws = jws.trim();
    let bomb = {
        use std::io::Write;
        let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        d.write_all(&vec![b' '; 8 << 20]).unwrap();
        d.finish().unwrap()
    };
    let b64 = |b: &[u8]| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    };
    let header = b64(br#"{"zip":"DEF","alg":"ES256","kid":"x"}"#);
    let table: Vec<(String, &str)> = vec![
        (String::new(), "shc.format"),
        ("a.b".into(), "shc.format"),
        ("a.b.c.d".into(), "shc.format"),
        (jws[..jws.len() / 2].into(), "shc.format"),
        (
            format!(
                "{}.{}",
                b64(br#"{"alg":"none"}"#),
                &jws[jws.find('.').unwrap() + 1..]
            ),
            "shc.header",
        ),
        (
            format!("{header}.{}.AA", b64(b"not deflate at all")),
            "shc.inflate",
        ),
        (format!("{header}.{}.AA", b64(&bomb)), "shc.inflate"),
        ("x".repeat(2 << 20), "shc.format"),
    ];
    for (input, kind) in table {
        assert_eq!(
            shc::decode(&input).unwrap_err().kind,
            kind,
            "{}",
            &input[..input.len().min(60)]
        );
    }
    for qr in [
        "",
        "shc:/",
        "shc:/123",
        "shc:/99",
        "shc:/1/2/5656",
        "http://x",
        "shc:/a1",
        "shc:/2/1/56",
    ] {
        assert!(shc::jws_from_qr(&[qr]).is_err(), "{qr}");
    }
    for file in ["", "{}", r#"{"verifiableCredential":[1]}"#, "[]"] {
        assert!(shc::jws_from_file(file).is_err(), "{file}");
    }
    for jwks in ["", "{}", r#"{"keys":[{"kty":"EC","x":"AA","y":"AA"}]}"#] {
        assert!(shc::parse_jwks(jwks).is_err(), "{jwks}");
    }
}

proptest::proptest! {
    #[test]
    fn any_qr_text_is_an_answer(text in "\\PC{0,300}") {
        let _ = shc::jws_from_qr(&[&text]).map(|j| shc::decode(&j));
    }

    #[test]
    fn any_jws_is_an_answer(text in "[A-Za-z0-9_.-]{0,400}") {
        let _ = shc::decode(&text);
    }
}

#[test]
fn our_bundle_is_the_official_one_for_the_same_person() {
    let patient = shc::Patient {
        family: "Anyperson".into(),
        given: vec!["John".into(), "B.".into()],
        birth_date: "1951-01-20".into(),
    };
    let shot = |cvx: &str, date: &str, lot: &str| shc::Shot {
        cvx: cvx.into(),
        date: date.into(),
        lot: lot.into(),
        performer: "ABC General Hospital".into(),
    };
    let ours = shc::immunization_bundle(
        &patient,
        &[
            shot("207", "2021-01-01", "0000001"),
            shot("207", "2021-01-29", "0000007"),
            shot("229", "2022-09-05", "0000001"),
        ],
    );
    let official: serde_json::Value =
        serde_json::from_str(&read("example-00-a-fhirBundle.json")).unwrap();
    assert_eq!(ours, official);
}

#[test]
fn revocation_lists_and_rids() {
    let crl = shc::Crl::parse(&read(
        "issuer/.well-known/crl/3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s.json",
    ))
    .unwrap();
    assert_eq!(crl.kid, "3Kfdg-XwP-7gXyywtUfUADwBumDOPKMQx-iELL11W9s");
    assert_eq!(shc::Crl::parse(&crl.to_json().to_string()).unwrap(), crl);
    // None of the examples' rids is in the published list.
    for n in ["00", "02"] {
        let card = shc::decode(read(&format!("example-{n}-d-jws.txt")).trim())
            .unwrap()
            .card;
        assert!(!crl.revokes(card.rid.as_deref().unwrap(), card.nbf), "{n}");
    }
    // A dated entry revokes only cards issued before its time.
    let (rid, at) = crl.rids.iter().find(|(_, t)| t.is_some()).unwrap().clone();
    let at = at.unwrap() as f64;
    assert!(crl.revokes(&rid, at - 1.0));
    assert!(!crl.revokes(&rid, at + 1.0));
    // Our rids: short, stable, different per key and per certificate.
    let a = shc::rid(b"secret", "kid-1", "JP-472131-000001");
    assert!(a.len() <= 24 && a == shc::rid(b"secret", "kid-1", "JP-472131-000001"));
    assert_ne!(a, shc::rid(b"secret", "kid-2", "JP-472131-000001"));
    assert_ne!(a, shc::rid(b"secret", "kid-1", "JP-472131-000002"));
    for bad in [
        "",
        "{}",
        r#"{"kid":"k","method":"x","ctr":1,"rids":[]}"#,
        r#"{"kid":"k","method":"rid","ctr":1,"rids":["a.b"]}"#,
    ] {
        assert!(shc::Crl::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn qr_images_read_back_to_the_exact_text() {
    use openvrs_cert::qr;
    // The official example's text, and one of ours at the largest size a card may have.
    let official = read("example-00-f-qr-code-numeric-value-0.txt");
    let official = official.trim();
    let code = qr::shc(official).unwrap();
    assert!(qr::version(&code) <= 22);
    let png = qr::png(&code, 4).unwrap();
    assert_eq!(qr::read_png(&png).unwrap(), [official.to_owned()]);
    let biggest = format!("shc:/{}", "56".repeat(1195));
    let code = qr::shc(&biggest).unwrap();
    assert_eq!(
        qr::version(&code),
        22,
        "1195 JWS characters need version 22"
    );
    assert_eq!(
        qr::read_png(&qr::png(&code, 3).unwrap()).unwrap(),
        [biggest]
    );
    assert!(
        qr::shc(&format!("shc:/{}", "56".repeat(1196))).is_err(),
        "too long for 22"
    );
    assert!(qr::svg(&qr::shc(official).unwrap()).starts_with("<?xml"));
    // Not an image, an image without a code, a huge image header.
    assert_eq!(qr::read_png(b"not a png").unwrap_err().kind, "qr.image");
    let blank = {
        let mut out = Vec::new();
        let mut e = png::Encoder::new(&mut out, 64, 64);
        e.set_color(png::ColorType::Grayscale);
        e.write_header()
            .unwrap()
            .write_image_data(&[255; 64 * 64])
            .unwrap();
        out
    };
    assert_eq!(qr::read_png(&blank).unwrap_err().kind, "qr.none");
    let mut huge = blank.clone();
    huge[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    assert!(qr::read_png(&huge).is_err());
}

#[test]
fn official_svg_qr_codes_read_back_to_the_examples_jws() {
    use openvrs_cert::qr;
    for (n, chunks) in [("00", 1), ("01", 1), ("02", 3)] {
        let texts: Vec<String> = (0..chunks)
            .map(|i| {
                let svg = std::fs::read(vectors().join(format!("example-{n}-g-qr-code-{i}.svg")))
                    .unwrap();
                let mut t = qr::read_svg(&svg).unwrap();
                assert_eq!(t.len(), 1);
                t.remove(0)
            })
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        assert_eq!(
            shc::jws_from_qr(&refs).unwrap(),
            read(&format!("example-{n}-d-jws.txt")).trim(),
            "example {n}"
        );
    }
    // Ours too, and what is not an SVG of a QR code.
    let ours = qr::svg(&qr::shc("shc:/5676290952432060346029243740446031222959").unwrap());
    assert_eq!(
        qr::read_svg(ours.as_bytes()).unwrap(),
        ["shc:/5676290952432060346029243740446031222959"]
    );
    for (bad, kind) in [
        (&b"<svg"[..], "qr.svg"),
        (
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 10 10\"/>",
            "qr.none",
        ),
    ] {
        assert_eq!(qr::read_svg(bad).unwrap_err().kind, kind);
    }
    let huge = vec![b' '; 5 << 20];
    assert_eq!(qr::read_svg(&huge).unwrap_err().kind, "qr.svg_limit");

    // Hostile images are refused before they are drawn: too many nodes, a filter (a huge
    // blur), entities, images and `use`, scripts, and too much paint.
    let svg = |body: &str| {
        format!("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 100 100\">{body}</svg>")
    };
    let hostile = [
        ("nodes", svg(&"<g/>".repeat(50_000))),
        (
            "blur",
            svg(
                "<filter id=\"f\"><feGaussianBlur stdDeviation=\"1000\"/></filter>\
                 <rect width=\"100\" height=\"100\" filter=\"url(#f)\"/>",
            ),
        ),
        (
            "entities",
            format!(
                "<!DOCTYPE svg [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;\">]>{}",
                svg("<title>&b;</title>")
            ),
        ),
        (
            "image",
            svg("<image href=\"data:image/png;base64,AAAA\" width=\"100\" height=\"100\"/>"),
        ),
        (
            "use",
            svg("<rect id=\"r\" width=\"1\" height=\"1\"/><use href=\"#r\"/>"),
        ),
        ("script", svg("<script>while(1){}</script>")),
        (
            "dashes",
            svg(
                &"<line x2=\"100\" y2=\"100\" stroke=\"#000\" stroke-dasharray=\"0.0001\"/>"
                    .repeat(10),
            ),
        ),
        (
            "style",
            svg("<rect width=\"100\" height=\"100\" style=\"filter:blur(50px)\"/>"),
        ),
        (
            "paint",
            svg(&"<rect width=\"100\" height=\"100\" fill-opacity=\"0.01\"/>".repeat(20_000)),
        ),
        (
            "wide strokes",
            svg(&"<line x2=\"1\" y2=\"1\" stroke=\"#000\" stroke-width=\"1000\"/>".repeat(100)),
        ),
    ];
    for (name, image) in hostile {
        assert_eq!(
            qr::read_svg(image.as_bytes()).unwrap_err().kind,
            "qr.svg_limit",
            "{name}"
        );
    }
}

#[test]
fn card_data_is_trusted_only_with_its_issuers_signature() {
    use openvrs_cert::{card, pki};
    let now = 1_790_000_000;
    let issuer = pki::make_csca("JP", "test card issuer", now, 365).unwrap();
    let trusted = vec![pki::Certificate::parse(&issuer.der).unwrap()];
    let holder = openvrs_cert::shc::SigningKeyPair::generate();
    let data = card::CardData {
        my_number: "123456789018".into(),
        name: "宇留間　花子".into(),
        address: "沖縄県うるま市みどり町一丁目1番1号".into(),
        birth_date: "1980-04-01".into(),
        sex: "2".into(),
        auth_key: card::auth_key(&holder),
    };
    let signed = card::sign(&data, &issuer).unwrap();
    assert_eq!(card::verify(&signed, &trusted).unwrap(), data);
    assert_eq!(format!("{data:?}"), "CardData(..)");
    // Altered, signed by another issuer, or not card data at all.
    let altered = signed.replace("1980-04-01", "1970-04-01");
    assert_eq!(
        card::verify(&altered, &trusted).unwrap_err().kind,
        "card.signature"
    );
    let stranger = pki::make_csca("JP", "test card issuer", now, 365).unwrap();
    let forged = card::sign(&data, &stranger).unwrap();
    assert_eq!(
        card::verify(&forged, &trusted).unwrap_err().kind,
        "card.signature"
    );
    assert_eq!(
        card::verify(&signed, &[]).unwrap_err().kind,
        "card.signature"
    );
    for bad in ["", "{}", r#"{"data": {}, "sig": "!!"}"#, "[1,2]"] {
        assert_eq!(card::verify(bad, &trusted).unwrap_err().kind, "card.format");
    }
    let err = card::verify(&altered, &trusted).unwrap_err().to_string();
    assert!(!err.contains("123456789018") && err.contains(" / "));

    // An application: the card data and the request, signed by the card's own key.
    let request = serde_json::json!({"municipality": "472131", "nonce": "n1", "time": now});
    let app = card::application(&signed, &request, &holder).unwrap();
    let opened = card::open_application(&app, &trusted).unwrap();
    assert_eq!((&opened.card, &opened.request), (&data, &request));
    // The same request again has the same digest (a replay); another request another one.
    let again = card::application(&signed, &request, &holder).unwrap();
    assert_ne!(again, app, "ECDSA signatures are randomised");
    assert_eq!(
        card::open_application(&again, &trusted).unwrap().digest,
        opened.digest
    );
    let other = serde_json::json!({"municipality": "472131", "nonce": "n2", "time": now});
    let other = card::application(&signed, &other, &holder).unwrap();
    assert_ne!(
        card::open_application(&other, &trusted).unwrap().digest,
        opened.digest
    );
    // Captured card data signed by another key, an altered request, altered or forged card
    // data inside, and broken documents are refused.
    let thief = openvrs_cert::shc::SigningKeyPair::generate();
    let stolen = card::application(&signed, &request, &thief).unwrap();
    let refused = |text: &str| card::open_application(text, &trusted).unwrap_err().kind;
    assert_eq!(refused(&stolen), "card.holder");
    assert_eq!(refused(&app.replace("472131", "472140")), "card.holder");
    let inside_altered = card::application(&altered, &request, &holder).unwrap();
    assert_eq!(refused(&inside_altered), "card.signature");
    let inside_forged = card::application(&forged, &request, &holder).unwrap();
    assert_eq!(refused(&inside_forged), "card.signature");
    let huge = format!(r#"{{"card": "{}"}}"#, "x".repeat(1 << 20));
    for bad in [
        "",
        "{}",
        "[]",
        r#"{"card": 1, "request": {}, "sig": "AA"}"#,
        &huge,
    ] {
        assert_eq!(refused(bad), "card.application", "{bad:.40}");
    }
    assert!(card::application(&signed, &serde_json::json!([1]), &holder).is_err());
}
