//! The web application's pages as a browser meets them: redirects to sign in, the sign-in form,
//! the staff home, finding a person (the number never in a URL), the person's page, both
//! languages, form posts accepted from our own origin only; and snapshots of rendered pages.

use axum::{
    body::Body,
    http::{HeaderMap, Request, StatusCode, header},
};
use openvrs_server::lgwan_router;
use tower::ServiceExt;

use crate::world::{HOST, PASSWORD, World};

/// One request through the LGWAN router as a browser sends it: cookies, and for a form its body
/// and the `Origin` a browser would set (`origin: None` leaves it out).
async fn browse(
    w: &World,
    method: &str,
    path: &str,
    cookies: &str,
    form: Option<&str>,
    origin: Option<&str>,
) -> (StatusCode, HeaderMap, String) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, HOST);
    if !cookies.is_empty() {
        req = req.header(header::COOKIE, cookies);
    }
    if let Some(o) = origin {
        req = req.header(header::ORIGIN, o);
    }
    if form.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let req = req
        .body(Body::from(form.unwrap_or_default().to_owned()))
        .unwrap();
    let resp = lgwan_router(w.state.clone()).oneshot(req).await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .unwrap();
    (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
}

fn location(h: &HeaderMap) -> &str {
    h.get(header::LOCATION).unwrap().to_str().unwrap()
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let v: String = v
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Signs `user` in through the form; the session cookie to send back.
async fn sign_in(w: &World, user: &str) -> String {
    let body = form(&[("user", user), ("password", PASSWORD)]);
    let (status, headers, _) = browse(w, "POST", "/signin", "", Some(&body), Some(ORIGIN)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let set = headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

const ORIGIN: &str = "http://lgwan.test";

/// Login CSRF: the sign-in form posted from another site, or with no origin at all, signs
/// nobody in (no cookie), and the attempt is a security event.
#[tokio::test]
async fn the_sign_in_form_is_refused_from_another_site() {
    let w = World::new().await;
    let body = form(&[("user", "staff-uruma"), ("password", PASSWORD)]);
    for origin in [Some("http://evil.example"), Some("null"), None] {
        let (status, headers, _) = browse(&w, "POST", "/signin", "", Some(&body), origin).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "origin {origin:?}");
        assert!(
            headers.get(header::SET_COOKIE).is_none(),
            "origin {origin:?}"
        );
    }
    let events = w.state.store.security_events(None, 100).unwrap();
    assert!(
        events
            .iter()
            .filter(|e| e.kind.code() == "csrf_rejected")
            .count()
            >= 3,
        "{events:?}"
    );
    // From our own page it works.
    sign_in(&w, "staff-uruma").await;
}

#[tokio::test]
async fn staff_sign_in_find_a_person_and_read_their_page_in_both_languages() {
    let w = World::new().await;
    let person = &w.uruma_people[0];
    let my_number = person.my_number.as_ref().unwrap().expose().to_owned();

    // Without a session: the pages send you to sign in; the form says what went wrong.
    let (status, headers, _) = browse(&w, "GET", "/m/472131/", "", None, None).await;
    assert_eq!(
        (status, location(&headers)),
        (StatusCode::SEE_OTHER, "/signin")
    );
    let wrong = form(&[("user", "staff-uruma"), ("password", "nope")]);
    let (status, _, page) = browse(&w, "POST", "/signin", "", Some(&wrong), Some(ORIGIN)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        page.contains("role=\"alert\"") && page.contains("パスワード"),
        "{page}"
    );
    let (_, _, page) = browse(&w, "POST", "/signin", "lang=en", Some(&wrong), Some(ORIGIN)).await;
    assert!(page.contains("password"), "{page}");

    let session = sign_in(&w, "staff-uruma").await;
    let (status, headers, _) = browse(&w, "GET", "/", &session, None, None).await;
    assert_eq!(
        (status, location(&headers)),
        (StatusCode::SEE_OTHER, "/m/472131/")
    );
    let (status, _, home) = browse(&w, "GET", "/m/472131/", &session, None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        home.contains("うるま市") && home.contains("<strong>5</strong>"),
        "{home}"
    );

    // Kiosk issuance, turned on from the home page.
    let on = form(&[("enabled", "on")]);
    let (status, _, _) = browse(
        &w,
        "POST",
        "/m/472131/kiosk",
        &session,
        Some(&on),
        Some(ORIGIN),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, home) = browse(&w, "GET", "/m/472131/", &session, None, None).await;
    assert!(
        home.contains("実施中です") && home.contains("value=\"off\""),
        "{home}"
    );

    // Finding by My Number: only from our own pages; the number stays out of every URL.
    let search = form(&[("by", "my_number"), ("q", &my_number)]);
    for origin in [None, Some("http://elsewhere.example")] {
        let (status, _, _) = browse(
            &w,
            "POST",
            "/m/472131/persons",
            &session,
            Some(&search),
            origin,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "origin {origin:?}");
    }
    let (status, headers, _) = browse(
        &w,
        "POST",
        "/m/472131/persons",
        &session,
        Some(&search),
        Some(ORIGIN),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let to = location(&headers).to_owned();
    assert_eq!(to, format!("/m/472131/persons/{}", person.address_number));
    let nobody = form(&[("by", "voucher"), ("q", "0000000000")]);
    let (status, _, page) = browse(
        &w,
        "POST",
        "/m/472131/persons",
        &session,
        Some(&nobody),
        Some(ORIGIN),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("該当する住民はいません"), "{page}");

    let (status, _, page) = browse(&w, "GET", &to, &session, None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(person.name.as_str()), "{page}");
    assert!(!page.contains(&my_number), "the My Number is shown masked");
    assert!(page.contains(&format!("********{}", &my_number[8..])));
    // Codes in words: the read is in the person's log as 閲覧, the person as 住民.
    assert!(
        page.contains("<td>閲覧</td>") && !page.contains("person.read"),
        "the read is in the person's log"
    );
    let english = format!("{session}; lang=en");
    let (_, _, page) = browse(&w, "GET", &to, &english, None, None).await;
    assert!(page.contains("Date of birth") && page.contains("<html lang=\"en\">"));

    // Nobody with that number: the page says so, as a page with the menu, in the reader's
    // language (every page's errors go through one wrapper).
    let (status, headers, page) = browse(
        &w,
        "GET",
        "/m/472131/persons/999999999",
        &session,
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        page.contains("見つかりません") && !page.contains("not found") && page.contains("<nav"),
        "{page}"
    );
    let (_, _, page) = browse(
        &w,
        "GET",
        "/m/472131/persons/999999999",
        &english,
        None,
        None,
    )
    .await;
    assert!(
        page.contains("not found") && !page.contains("見つかりません"),
        "{page}"
    );

    // Another town's staff: that person does not exist for them.
    let naha = sign_in(&w, "staff-naha").await;
    let (status, _, _) = browse(&w, "GET", &to, &naha, None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The language switch goes back to our own pages only.
    for (next, back) in [
        ("/m/472131/", "/m/472131/"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
        // A tab a browser drops would make `//evil.example` (sent percent-encoded).
        ("/%09/evil.example/", "/"),
    ] {
        let (status, headers, _) =
            browse(&w, "GET", &format!("/lang/en?next={next}"), "", None, None).await;
        assert_eq!((status, location(&headers)), (StatusCode::SEE_OTHER, back));
    }

    let (_, _, log) = browse(&w, "GET", "/m/472131/audit?verify=1", &session, None, None).await;
    assert!(log.contains("ハッシュチェーンは正常です"), "{log}");

    let (status, headers, _) =
        browse(&w, "POST", "/signout", &session, Some(""), Some(ORIGIN)).await;
    assert_eq!(
        (status, location(&headers)),
        (StatusCode::SEE_OTHER, "/signin")
    );
    let (status, _, _) = browse(&w, "GET", "/m/472131/", &session, None, None).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "signed out");
}

/// The pages as rendered, with times, counts that depend on the clock, and generated values
/// replaced: a change to a template shows up here as a diff to review.
#[tokio::test]
async fn rendered_pages_match_their_snapshots() {
    let w = World::new().await;
    let session = sign_in(&w, "staff-uruma").await;
    let person = &w.uruma_people[0];
    for (name, path, cookies) in [
        ("signin", "/signin".to_owned(), String::new()),
        ("signin_en", "/signin".to_owned(), "lang=en".to_owned()),
        ("staff_home", "/m/472131/".to_owned(), session.clone()),
        ("search", "/m/472131/persons".to_owned(), session.clone()),
        (
            "person",
            format!("/m/472131/persons/{}", person.address_number),
            session.clone(),
        ),
        (
            "conflicts",
            "/m/472131/conflicts".to_owned(),
            session.clone(),
        ),
        ("quality", "/m/472131/quality".to_owned(), session.clone()),
        (
            "provisions",
            "/m/472131/provisions".to_owned(),
            session.clone(),
        ),
        (
            "audit_of_a_person",
            format!("/m/472131/audit?person={}", person.address_number),
            session.clone(),
        ),
    ] {
        let (status, headers, page) = browse(&w, "GET", &path, &cookies, None, None).await;
        assert_eq!(status, StatusCode::OK, "{name}");
        // Each response has its own nonce: the page carries the header's, shown as `<nonce>`.
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        let nonce = csp
            .split("'nonce-")
            .nth(1)
            .unwrap()
            .split('\'')
            .next()
            .unwrap();
        assert!(page.contains(&format!("nonce=\"{nonce}\"")), "{name}");
        let page = page.replace(nonce, "<nonce>");
        insta::assert_snapshot!(name, mask_times(&page));
    }
}

/// Every `YYYY-MM-DD HH:MM` (a time shown on a page) as `<time>`.
fn mask_times(s: &str) -> String {
    let shape = b"dddd-dd-dd dd:dd";
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        let fits = i + shape.len() <= b.len()
            && shape.iter().zip(&b[i..]).all(|(p, c)| match p {
                b'd' => c.is_ascii_digit(),
                p => p == c,
            });
        if fits {
            out.push_str("<time>");
            i += shape.len();
        } else {
            let ch = s[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

#[tokio::test]
async fn staff_add_correct_and_delete_a_dose_with_reasons() {
    let w = World::new().await;
    let session = sign_in(&w, "staff-uruma").await;
    let a = w.uruma_people[1].address_number.as_str();
    let person = format!("/m/472131/persons/{a}");
    let post = |path: String, body: String| {
        let (w, session) = (&w, &session);
        async move { browse(w, "POST", &path, session, Some(&body), Some(ORIGIN)).await }
    };

    let (status, _, page) = browse(
        &w,
        "GET",
        &format!("{person}/doses/new"),
        &session,
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("name=\"dose_number\"") && page.contains("コミナティ"),
        "{page}"
    );
    // A date that is no date: the form again, with what was typed and why.
    let bad = form(&[
        ("dose_number", "1"),
        ("date", "令和3年13月1日"),
        ("product", "comirnaty"),
        ("lot", "FA1234"),
    ]);
    let (status, _, page) = post(format!("{person}/doses"), bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.contains("role=\"alert\"") && page.contains("令和3年13月1日"),
        "{page}"
    );
    let good = form(&[
        ("dose_number", "1"),
        ("date", "R3.6.1"),
        ("product", "comirnaty"),
        ("lot", "FA1234"),
        ("venue", "うるま市民体育館"),
    ]);
    let (status, headers, _) = post(format!("{person}/doses"), good).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location(&headers).starts_with(&format!("{person}?done=added")));
    let (_, _, page) = browse(&w, "GET", location(&headers), &session, None, None).await;
    assert!(
        page.contains("接種記録を登録しました") && page.contains("2021-06-01"),
        "{page}"
    );
    let id = w
        .state
        .store
        .doses(w.uruma, &w.uruma_people[1].address_number)
        .unwrap()[0]
        .id;

    // A correction needs a reason; then the previous version is in the history.
    let edit = format!("{person}/doses/{id}");
    let (_, _, page) = browse(&w, "GET", &edit, &session, None, None).await;
    assert!(
        page.contains("value=\"2021-06-01\"") && page.contains("/delete"),
        "{page}"
    );
    let corrected = |reason: &str| {
        form(&[
            ("dose_number", "1"),
            ("date", "2021-06-02"),
            ("product", "comirnaty"),
            ("lot", "FA1234"),
            ("reason", reason),
        ])
    };
    let (status, _, page) = post(edit.clone(), corrected("")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("理由を入力してください"), "{page}");
    let (status, headers, _) = post(edit.clone(), corrected("予診票と照合")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = browse(&w, "GET", location(&headers), &session, None, None).await;
    assert!(
        page.contains("接種記録を訂正しました")
            && page.contains("予診票と照合")
            && page.contains("2021-06-02"),
        "{page}"
    );

    let (status, headers, _) =
        post(format!("{edit}/delete"), form(&[("reason", "二重登録")])).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = browse(&w, "GET", location(&headers), &session, None, None).await;
    assert!(
        page.contains("接種記録を削除しました") && page.contains("二重登録"),
        "{page}"
    );
    assert!(
        w.state
            .store
            .doses(w.uruma, &w.uruma_people[1].address_number)
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn staff_ask_another_municipality_and_attach_what_comes_back() {
    use openvrs_domain::{
        audit::Actor,
        date::parse_date,
        dose::{Dose, DoseNumber, DoseSource, DoseStatus, Short},
    };
    let w = World::new().await;
    let moved = &w.naha_people[0];
    let naha = openvrs_domain::ids::MunicipalityCode::parse("472018").unwrap();
    w.state
        .store
        .add_dose(
            naha,
            &moved.address_number,
            &Dose {
                number: DoseNumber::new(1).unwrap(),
                status: DoseStatus::Given,
                date: parse_date("2021-06-01").unwrap(),
                product: Short::parse("comirnaty").unwrap(),
                lot: Short::parse("FA1234").unwrap(),
                venue: Short::default(),
                doctor: Short::default(),
                source: DoseSource::Staff,
                voucher: None,
                given_in: None,
            },
            &Actor::console(),
        )
        .unwrap();
    let session = sign_in(&w, "staff-uruma").await;
    let ours = w.uruma_people[4].address_number.as_str();
    let my_number = moved.my_number.as_ref().unwrap().expose().to_owned();
    let ask = |source: &str, number: &str| {
        form(&[
            ("source_municipality", source),
            ("my_number", number),
            ("address_number", ours),
            ("basis", "番号法第19条第16号"),
        ])
    };
    let post = |body: String| {
        let (w, session) = (&w, &session);
        async move {
            browse(
                w,
                "POST",
                "/m/472131/inquiries",
                session,
                Some(&body),
                Some(ORIGIN),
            )
            .await
        }
    };

    let (status, _, page) = post(ask("472018", "123")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("role=\"alert\""), "{page}");
    let (status, headers, _) = post(ask("472018", &my_number)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(!location(&headers).contains(&my_number));
    let (_, _, page) = browse(&w, "GET", location(&headers), &session, None, None).await;
    assert!(page.contains("該当あり (1 件の接種記録)"), "{page}");
    assert!(
        !page.contains(&my_number),
        "the My Number is not shown back"
    );
    // A wrong municipality code finds nobody.
    let (_, headers, _) = post(ask("131016", &my_number)).await;
    let (_, _, page) = browse(&w, "GET", location(&headers), &session, None, None).await;
    assert!(page.contains("該当なし (0 件の接種記録)"), "{page}");

    let found = w.state.store.inquiries(w.uruma, None).unwrap();
    let id = found.iter().find(|i| !i.doses.is_empty()).unwrap().id;
    let (status, headers, _) = browse(
        &w,
        "POST",
        "/m/472131/inquiries/attach",
        &session,
        Some(&format!("inquiry_id={id}")),
        Some(ORIGIN),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = browse(&w, "GET", location(&headers), &session, None, None).await;
    assert!(page.contains("取り込みました: 1 / 1"), "{page}");
    assert_eq!(
        w.state
            .store
            .doses(w.uruma, &w.uruma_people[4].address_number)
            .unwrap()
            .len(),
        1
    );
    // The home lists the latest bulk inquiries and counts data-quality findings.
    let job = w
        .state
        .store
        .create_inquiry_job(w.uruma, 7, &Actor::console())
        .unwrap();
    w.state
        .store
        .finish_inquiry_job(w.uruma, job, None)
        .unwrap();
    let (_, _, home) = browse(&w, "GET", "/m/472131/", &session, None, None).await;
    assert!(home.contains("<td>完了</td><td>0 / 7</td>"), "{home}");
    assert!(
        home.contains("データ品質の指摘: <strong>0</strong>"),
        "{home}"
    );
}

#[tokio::test]
async fn staff_issue_a_paper_certificate_and_revoke_it() {
    let w = World::new().await;
    let session = sign_in(&w, "staff-uruma").await;
    let a = w.uruma_people[2].address_number.as_str();
    let person = format!("/m/472131/persons/{a}");
    let dose = form(&[
        ("dose_number", "1"),
        ("date", "2021-06-01"),
        ("product", "comirnaty"),
        ("lot", "FA1234"),
    ]);
    let (status, _, _) = browse(
        &w,
        "POST",
        &format!("{person}/doses"),
        &session,
        Some(&dose),
        Some(ORIGIN),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    let paper = form(&[
        ("kind", "domestic"),
        ("format", "pdf"),
        ("passport_name", ""),
        ("nationality", ""),
        ("passport_number", ""),
    ]);
    let req = Request::builder()
        .method("POST")
        .uri(format!("{person}/certificates"))
        .header(header::HOST, HOST)
        .header(header::ORIGIN, ORIGIN)
        .header(header::COOKIE, &session)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(paper))
        .unwrap();
    let resp = lgwan_router(w.state.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/pdf");
    let pdf = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    // Overseas without a passport: a clear refusal, nothing issued.
    let overseas = form(&[("kind", "overseas"), ("format", "vds")]);
    let (status, _, page) = browse(
        &w,
        "POST",
        &format!("{person}/certificates"),
        &session,
        Some(&overseas),
        Some(ORIGIN),
    )
    .await;
    assert!(status.is_client_error(), "{status}");
    assert!(page.contains("role=\"alert\""), "{page}");

    let id = w.state.store.certificates(w.uruma, None).unwrap()[0]
        .id
        .clone();
    let (_, _, page) = browse(&w, "GET", &person, &session, None, None).await;
    assert!(
        page.contains(&format!("/certificates/{id}/revoke")),
        "{page}"
    );
    let revoke = format!("/m/472131/certificates/{id}/revoke");
    let (status, headers, _) = browse(
        &w,
        "POST",
        &revoke,
        &session,
        Some(&form(&[("reason", "再発行")])),
        Some(ORIGIN),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = browse(&w, "GET", location(&headers), &session, None, None).await;
    assert!(page.contains("証明書を失効させました"), "{page}");
    assert!(
        !page.contains(&format!("/certificates/{id}/revoke")),
        "no second revocation"
    );
    let (status, _, _) = browse(
        &w,
        "POST",
        &revoke,
        &session,
        Some(&form(&[("reason", "再度")])),
        Some(ORIGIN),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn staff_answer_disclosure_correction_and_suspension_requests() {
    let w = World::new().await;
    let session = sign_in(&w, "staff-uruma").await;
    let who = &w.uruma_people[3];
    let person = format!("/m/472131/persons/{}", who.address_number);
    let (status, _, doc) = browse(
        &w,
        "GET",
        &format!("{person}/disclosure"),
        &session,
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc.contains(who.name.as_str()) && doc.contains("開示"),
        "{doc}"
    );

    let suspend = form(&[
        ("use_suspended", "on"),
        ("reason", "本人からの利用停止請求"),
    ]);
    let (status, headers, _) = browse(
        &w,
        "POST",
        &format!("{person}/flags"),
        &session,
        Some(&suspend),
        Some(ORIGIN),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = browse(&w, "GET", location(&headers), &session, None, None).await;
    assert!(
        page.contains("<span class=\"flag\">利用停止</span>"),
        "{page}"
    );
    let no_reason = form(&[("use_suspended", "on")]);
    let (status, _, _) = browse(
        &w,
        "POST",
        &format!("{person}/flags"),
        &session,
        Some(&no_reason),
        Some(ORIGIN),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The kana corrected; the My Number left blank stays as recorded.
    let corrected = form(&[
        ("name", who.name.as_str()),
        ("name_kana", "テスト　ナオシ"),
        ("birth_date", &who.birth_date.0.to_string()),
        ("sex", &who.sex.iso5218().to_string()),
        ("my_number", ""),
        ("reason", "訂正請求"),
    ]);
    let (status, headers, _) = browse(
        &w,
        "POST",
        &format!("{person}/correction"),
        &session,
        Some(&corrected),
        Some(ORIGIN),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = browse(&w, "GET", location(&headers), &session, None, None).await;
    assert!(
        page.contains("本人情報を訂正しました") && page.contains("テスト　ナオシ"),
        "{page}"
    );
    let stored = w
        .state
        .store
        .person(
            w.uruma,
            &who.address_number,
            &openvrs_domain::audit::Actor::console(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(stored.my_number, who.my_number, "kept");
}

#[tokio::test]
async fn the_state_and_a_prefecture_see_counts_and_the_internet_gets_the_open_data() {
    use openvrs_server::Zone;
    let w = World::new().await;
    let staff = sign_in(&w, "staff-uruma").await;
    for (i, date) in [(0, "2021-06-01"), (1, "2021-06-01"), (2, "2021-06-02")] {
        let a = w.uruma_people[i].address_number.as_str();
        let dose = form(&[
            ("dose_number", "1"),
            ("date", date),
            ("product", "comirnaty"),
            ("lot", "FA1234"),
        ]);
        let (status, _, _) = browse(
            &w,
            "POST",
            &format!("/m/472131/persons/{a}/doses"),
            &staff,
            Some(&dose),
            Some(ORIGIN),
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
    }
    let national = sign_in(&w, "kuni").await;
    let (status, headers, _) = browse(&w, "GET", "/", &national, None, None).await;
    assert_eq!(
        (status, location(&headers)),
        (StatusCode::SEE_OTHER, "/aggregates")
    );
    let (status, _, page) = browse(&w, "GET", "/aggregates", &national, None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("全国") && page.contains("<svg") && page.contains("<td class=\"n\">3</td>"),
        "{page}"
    );
    let (_, _, tokyo) = browse(
        &w,
        "GET",
        "/aggregates?prefecture=13",
        &national,
        None,
        None,
    )
    .await;
    assert!(
        tokyo.contains("東京都") && !tokyo.contains("<td class=\"n\">3</td>"),
        "{tokyo}"
    );
    // A prefecture viewer: its own prefecture, whatever it asks for.
    let tokyo_viewer = sign_in(&w, "pref-tokyo").await;
    let (_, _, page) = browse(
        &w,
        "GET",
        "/aggregates?prefecture=47",
        &tokyo_viewer,
        None,
        None,
    )
    .await;
    assert!(
        page.contains("東京都") && !page.contains("<td class=\"n\">3</td>"),
        "{page}"
    );
    let (_, _, town) = browse(
        &w,
        "GET",
        "/aggregates?prefecture=47&municipality=472131",
        &national,
        None,
        None,
    )
    .await;
    assert!(
        town.contains("沖縄県 うるま市") && town.contains("<td class=\"n\">3</td>"),
        "{town}"
    );
    assert!(town.contains("性別・年齢区分別"), "{town}");
    // A municipality of another prefecture is not a Tokyo viewer's to see.
    let (_, _, page) = browse(
        &w,
        "GET",
        "/aggregates?municipality=472131",
        &tokyo_viewer,
        None,
        None,
    )
    .await;
    assert!(
        page.contains("東京都") && !page.contains("うるま市"),
        "{page}"
    );
    let okinawa = sign_in(&w, "pref-okinawa").await;
    let (_, _, page) = browse(&w, "GET", "/aggregates", &okinawa, None, None).await;
    assert!(
        page.contains("沖縄県") && page.contains("<td class=\"n\">3</td>"),
        "{page}"
    );
    assert!(
        page.contains("<th scope=\"row\">うるま市</th>"),
        "by municipality: {page}"
    );
    // Staff see no aggregates page.
    let (status, _, _) = browse(&w, "GET", "/aggregates", &staff, None, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The open data on the internet listener (`call` fails on any personal value in it).
    let get = |path: &str| {
        let w = &w;
        let path = path.to_owned();
        async move {
            w.call(
                Zone::Internet,
                "GET",
                &path,
                crate::world::Who::Anonymous,
                None,
            )
            .await
        }
    };
    let (status, ndjson) = get("/opendata/latest/prefecture.ndjson").await;
    assert_eq!(status, StatusCode::OK);
    let lines: Vec<serde_json::Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines
            .iter()
            .map(|l| l["count"].as_u64().unwrap())
            .sum::<u64>(),
        3
    );
    assert!(
        lines
            .iter()
            .all(|l| l["prefecture"] == "47" && l["status"] == 1)
    );
    let (_, by_date) = get("/opendata/2021-06-01/summary_by_date.csv").await;
    assert_eq!(
        by_date,
        "date,count_first_shot_general,count_second_shot_general\n2021-06-01,2,0\n"
    );
    let (_, by_pref) = get("/opendata/latest/summary_by_prefecture.csv").await;
    assert!(by_pref.contains("\n47,沖縄県,3,0\n"), "{by_pref}");
    for bad in [
        "/opendata/latest/persons.csv",
        "/opendata/2021-13-01/prefecture.ndjson",
        "/opendata/yesterday/summary_by_date.csv",
    ] {
        assert_eq!(get(bad).await.0, StatusCode::NOT_FOUND, "{bad}");
    }
}

#[tokio::test]
async fn the_state_issues_an_account_whose_password_is_shown_once_and_disables_it() {
    let w = World::new().await;
    let national = sign_in(&w, "kuni").await;
    let new = form(&[
        ("user", "clerk-9"),
        ("role", "staff"),
        ("municipality", "472131"),
        ("password", ""),
    ]);
    let (status, _, page) = browse(
        &w,
        "POST",
        "/national/accounts",
        &national,
        Some(&new),
        Some(ORIGIN),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let secret = page
        .split("<code id=\"secret\">")
        .nth(1)
        .and_then(|rest| rest.split("</code>").next())
        .unwrap()
        .to_owned();
    assert!(secret.len() >= 12, "{secret}");
    let (_, _, list) = browse(&w, "GET", "/national/accounts", &national, None, None).await;
    assert!(
        list.contains("clerk-9") && !list.contains(&secret),
        "shown once only"
    );
    let login = form(&[("user", "clerk-9"), ("password", &secret)]);
    let (status, _, _) = browse(&w, "POST", "/signin", "", Some(&login), Some(ORIGIN)).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the password works");
    // A wrong role or a missing municipality: the form says why.
    let bad = form(&[("user", "clerk-10"), ("role", "staff")]);
    let (status, _, page) = browse(
        &w,
        "POST",
        "/national/accounts",
        &national,
        Some(&bad),
        Some(ORIGIN),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("municipality"), "{page}");

    let (status, _, _) = browse(
        &w,
        "POST",
        "/national/accounts/clerk-9/disable",
        &national,
        Some(""),
        Some(ORIGIN),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = browse(&w, "POST", "/signin", "", Some(&login), Some(ORIGIN)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "disabled");
    for page in [
        "/national/municipalities",
        "/national/products",
        "/national/security-events",
    ] {
        let (status, _, html) = browse(&w, "GET", page, &national, None, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(html.contains("<table>"), "{page}");
    }
}

#[tokio::test]
async fn only_a_towns_own_staff_delete_its_data_and_only_when_they_confirm() {
    let w = World::new().await;
    let uruma = sign_in(&w, "staff-uruma").await;
    let naha = sign_in(&w, "staff-naha").await;
    let person = format!("/m/472131/persons/{}", w.uruma_people[0].address_number);
    let confirm = |code: &str| form(&[("confirm", code)]);
    // Another town's staff: that municipality does not exist for them.
    let (status, _, _) = browse(
        &w,
        "POST",
        "/m/472131/delete",
        &naha,
        Some(&confirm("472131")),
        Some(ORIGIN),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, page) = browse(
        &w,
        "POST",
        "/m/472131/delete",
        &uruma,
        Some(&confirm("472018")),
        Some(ORIGIN),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("何も削除していません"), "{page}");
    let (status, _, _) = browse(&w, "GET", &person, &uruma, None, None).await;
    assert_eq!(status, StatusCode::OK, "still there");

    let (status, _, _) = browse(
        &w,
        "POST",
        "/m/472131/delete",
        &uruma,
        Some(&confirm("472131")),
        Some(ORIGIN),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, page) = browse(&w, "GET", &person, &uruma, None, None).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(page.contains("暗号消去"), "{page}");
    // Naha's people are untouched; Uruma's log still verifies.
    let (status, _, _) = browse(
        &w,
        "GET",
        &format!("/m/472018/persons/{}", w.naha_people[0].address_number),
        &naha,
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, log) = browse(&w, "GET", "/m/472131/audit?verify=1", &uruma, None, None).await;
    assert!(
        log.contains("ハッシュチェーンは正常です")
            && log.contains("<td>データの消去</td>")
            && !log.contains("municipality.shred"),
        "{log}"
    );
}

/// Broken, hostile and huge input to the pages: a clear answer every time, markup never comes
/// back as markup, nothing is written.
#[tokio::test]
async fn pages_take_broken_hostile_and_huge_input_without_harm() {
    let w = World::new().await;
    let session = sign_in(&w, "staff-uruma").await;
    let a = w.uruma_people[4].address_number.as_str();
    let person = format!("/m/472131/persons/{a}");
    let post = |path: String, body: String| {
        let (w, session) = (&w, &session);
        async move { browse(w, "POST", &path, session, Some(&body), Some(ORIGIN)).await }
    };

    let huge = format!("user=kuni&password={}", "x".repeat(2 << 20));
    let (status, _, _) = browse(&w, "POST", "/signin", "", Some(&huge), Some(ORIGIN)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _, _) = browse(
        &w,
        "POST",
        "/signin",
        "",
        Some("user=%ZZ&password"),
        Some(ORIGIN),
    )
    .await;
    assert!(status.is_client_error(), "{status}");

    for (by, q) in [
        ("evil", "1"),
        ("my_number", &"9".repeat(10_000)),
        ("voucher", "<script>"),
    ] {
        let (status, _, page) =
            post("/m/472131/persons".into(), form(&[("by", by), ("q", q)])).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{by}");
        assert!(!page.contains("<script>"), "{by}");
    }

    for (number, date, product) in [
        ("-1", "2021-06-01", "comirnaty"),
        ("99999999999999999999", "2021-06-01", "comirnaty"),
        ("1", "'; DROP TABLE doses; --", "comirnaty"),
        ("1", "2021-06-01", "<script>alert(1)</script>"),
    ] {
        let body = form(&[
            ("dose_number", number),
            ("date", date),
            ("product", product),
            ("lot", "FA1234"),
        ]);
        let (status, _, page) = post(format!("{person}/doses"), body).await;
        assert!(
            status.is_client_error(),
            "{number} {date} {product}: {status}"
        );
        assert!(
            page.contains("role=\"alert\"") && !page.contains("<script>alert"),
            "{page}"
        );
    }
    assert!(
        w.state
            .store
            .doses(w.uruma, &w.uruma_people[4].address_number)
            .unwrap()
            .is_empty()
    );

    let who = &w.uruma_people[4];
    let hostile = form(&[
        ("name", "<script>alert(1)</script>"),
        ("name_kana", who.name_kana.as_str()),
        ("birth_date", &who.birth_date.0.to_string()),
        ("sex", "1"),
        ("reason", "<b>訂正</b>"),
    ]);
    // A name is free text: taken as typed, and shown as text on every page.
    let (status, _, _) = post(format!("{person}/correction"), hostile).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // Both the person page and the disclosure document are askama templates.
    for page in [person.clone(), format!("{person}/disclosure")] {
        let escaped = "&#60;script&#62;alert(1)&#60;/script&#62;";
        let (_, _, html) = browse(&w, "GET", &page, &session, None, None).await;
        assert!(!html.contains("<script>alert"), "{page}: {html}");
        assert!(html.contains(escaped), "{page}: {html}");
    }

    for path in [
        "/m/472131/audit?person=abc",
        "/m/472131/audit?before=xyz",
        "/m/472131/persons/%3Cscript%3E",
    ] {
        let (status, _, page) = browse(&w, "GET", path, &session, None, None).await;
        assert!(status.is_client_error(), "{path}: {status}");
        assert!(!page.contains("<script>"), "{path}");
    }
    let (status, headers, _) = browse(
        &w,
        "GET",
        "/lang/en?next=javascript:alert(1)",
        "",
        None,
        None,
    )
    .await;
    assert_eq!((status, location(&headers)), (StatusCode::SEE_OTHER, "/"));
}
