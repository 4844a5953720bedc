//! Every answer as the OpenAPI documents describe it: each route that answers JSON names its
//! answer's schema, every `$ref` of both documents resolves, and real answers of every route
//! (the access matrix's requests, and a few fuller ones) fit their schemas, errors included.

use std::collections::{BTreeMap, BTreeSet};

use openvrs_server::{
    Zone,
    openapi::{document, schemas},
    routes::{ROUTES, RouteSpec},
};
use serde_json::{Value, json};

use crate::{
    matrix::{concrete, expected},
    world::{Actor, World},
};

/// Routes under `/api/` whose success is something other than JSON of a schema of ours.
const NOT_JSON: &[&str] = &[
    // The OpenAPI document itself.
    "/api/openapi.json",
    // The paper certificate (PDF).
    "/api/center/certificates",
    "/api/municipalities/{municipality}/ledger.csv",
    "/api/municipalities/{municipality}/inquiry-jobs/{job}/result.csv",
];

/// Routes with an answer schema that no request here can make succeed: the resident app's
/// application must be sealed to the intake key and signed by a card
/// (`residents_apply_by_app_and_kiosk_and_every_refusal_is_clear` makes one and reads it).
const UNREACHED: &[&str] = &["/api/app/certificates"];

/// The schema every error answer has.
const ERROR: &str = "ErrorBody";

#[test]
fn every_json_route_names_its_answer() {
    let named: BTreeSet<String> = schemas().into_iter().map(|(name, _)| name).collect();
    let mut failures = Vec::new();
    for r in ROUTES {
        let route = format!("{:?} {} {}", r.zone, r.method, r.path);
        let json = r.path.starts_with("/api/") && r.ok != 204 && !NOT_JSON.contains(&r.path);
        if json && r.answer.is_none() {
            failures.push(format!("{route} answers JSON but names no `answer` schema"));
        }
        if (r.is_page() || r.ok == 204) && r.answer.is_some() {
            failures.push(format!(
                "{route} answers no JSON but names an answer schema"
            ));
        }
        for name in [r.body, r.answer].into_iter().flatten() {
            if !named.contains(name) {
                failures.push(format!("{route} names {name}, which `schemas()` lacks"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_reference_of_both_documents_is_described() {
    let mut described = BTreeSet::new();
    for zone in [Zone::Lgwan, Zone::Internet] {
        let doc = serde_json::to_value(document(zone)).unwrap();
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            assert!(
                resolve(&doc, &json!({ "$ref": r })).is_some(),
                "{zone:?}: {r} is not in the components"
            );
        }
        let components = doc["components"]["schemas"].as_object().unwrap();
        described.extend(components.keys().cloned());
        for route in ROUTES.iter().filter(|r| r.zone == zone && !r.is_page()) {
            let op = &doc["paths"][route.path][route.method.as_str().to_lowercase()];
            let responses = op["responses"].as_object().unwrap();
            let schema = |code: &str| {
                responses[code]
                    .pointer("/content/application~1json/schema/$ref")
                    .and_then(Value::as_str)
                    .map(|r| r.trim_start_matches("#/components/schemas/").to_owned())
            };
            assert_eq!(
                schema(&route.ok.to_string()).as_deref(),
                route.answer,
                "{zone:?} {} {}",
                route.method,
                route.path
            );
            let errors: Vec<&String> = responses
                .keys()
                .filter(|c| c.starts_with('4') || c.starts_with('5'))
                .collect();
            assert!(errors.len() >= 3, "{} {errors:?}", route.path);
            for code in errors {
                assert_eq!(
                    schema(code).as_deref(),
                    Some(ERROR),
                    "{} {code}",
                    route.path
                );
            }
        }
    }
    // Every schema registered is in one document or the other.
    let named: BTreeSet<String> = schemas().into_iter().map(|(name, _)| name).collect();
    let unused: Vec<_> = named.difference(&described).collect();
    assert!(
        unused.is_empty(),
        "registered but never described: {unused:?}"
    );
}

#[tokio::test]
async fn answers_fit_their_schemas() {
    let docs: BTreeMap<Zone, Value> = [Zone::Lgwan, Zone::Internet]
        .into_iter()
        .map(|z| (z, serde_json::to_value(document(z)).unwrap()))
        .collect();
    let w = World::new().await;
    let mut samples = Vec::new();
    // Twice: the second time, the lists hold what the first time recorded.
    sweep(&w, &mut samples).await;
    sweep(&w, &mut samples).await;
    fuller(&w, &mut samples).await;
    let mut failures = Vec::new();
    let mut fitted = BTreeSet::new();
    for s in &samples {
        let route = s.route;
        let what = format!(
            "{:?} {} {} as {:?} ({})",
            route.zone, route.method, route.path, s.actor, s.status
        );
        let json = s.content_type.starts_with("application/json");
        let schema = match s.status {
            200..=299 if json => match route.answer {
                Some(answer) => answer,
                None if route.path == "/api/openapi.json" => continue,
                None => {
                    failures.push(format!("{what}: answers JSON but names no `answer` schema"));
                    continue;
                }
            },
            200..=299 => {
                if route.answer.is_some() && s.content_type != "application/pdf" {
                    failures.push(format!("{what}: answers {}", s.content_type));
                }
                continue;
            }
            // A page's errors are pages.
            _ if route.is_page() => continue,
            _ if !json => {
                failures.push(format!("{what}: an error in {}", s.content_type));
                continue;
            }
            _ => ERROR,
        };
        let Ok(value) = serde_json::from_str::<Value>(&s.body) else {
            failures.push(format!("{what}: not JSON: {}", s.body));
            continue;
        };
        let mut errors = Vec::new();
        let reference = json!({ "$ref": format!("#/components/schemas/{schema}") });
        check(
            &docs[&route.zone],
            &reference,
            &value,
            "",
            true,
            &mut errors,
        );
        if errors.is_empty() {
            fitted.insert((route.zone, route.method.as_str(), route.path, schema));
        } else {
            failures.push(format!("{what} is no {schema}: {}", errors.join("; ")));
        }
    }
    // Every answer schema was seen fitting a real answer.
    for r in ROUTES.iter().filter(|r| !UNREACHED.contains(&r.path)) {
        if let Some(answer) = r.answer
            && !fitted.contains(&(r.zone, r.method.as_str(), r.path, answer))
        {
            failures.push(format!(
                "{:?} {} {}: no answer seen",
                r.zone, r.method, r.path
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// One answer a route gave.
struct Sample {
    route: &'static RouteSpec,
    actor: Actor,
    status: u16,
    content_type: String,
    body: String,
}

/// Every route, asked once by a caller it serves and once by one it refuses (the requests of
/// the access matrix).
async fn sweep(w: &World, samples: &mut Vec<Sample>) {
    let table = expected();
    for route in ROUTES {
        let row = table[&(route.zone, route.method.as_str(), route.path)];
        let pairs = || Actor::ALL.into_iter().zip(row);
        let served = pairs().find(|(_, s)| (200..300).contains(s));
        let refused = pairs().find(|(_, s)| *s >= 400);
        for (actor, _) in served.into_iter().chain(refused) {
            let (path, body) = concrete(w, route.path);
            let key = (route.zone, route.method.as_str(), route.path);
            ask(w, samples, key, &path, actor, body.as_deref()).await;
        }
    }
}

/// One request to the route `template` of `zone` (as `path`), kept as a sample; its answer.
async fn ask(
    w: &World,
    samples: &mut Vec<Sample>,
    (zone, method, template): (Zone, &str, &str),
    path: &str,
    actor: Actor,
    body: Option<&str>,
) -> Value {
    let route = ROUTES
        .iter()
        .find(|r| r.zone == zone && r.method == method && r.path == template)
        .unwrap();
    let (status, headers, bytes) = w
        .call_raw(zone, method, path, w.who(actor), body, &[])
        .await;
    let body = String::from_utf8_lossy(&bytes).into_owned();
    let value = serde_json::from_str(&body).unwrap_or_default();
    samples.push(Sample {
        route,
        actor,
        status: status.as_u16(),
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        body,
    });
    value
}

/// Answers the sweep does not reach: an inquiry that finds doses, a bulk inquiry with rows of
/// each kind, a certificate that verifies.
async fn fuller(w: &World, samples: &mut Vec<Sample>) {
    use Zone::{Internet, Lgwan};
    let p = w
        .uruma_people
        .iter()
        .find(|p| !p.flags.use_suspended && p.my_number.is_some())
        .unwrap();
    let given = openvrs_domain::dose::Dose {
        number: openvrs_domain::dose::DoseNumber::new(1).unwrap(),
        status: openvrs_domain::dose::DoseStatus::Given,
        date: openvrs_domain::date::parse_date("2021-06-01").unwrap(),
        product: openvrs_domain::dose::Short::parse("comirnaty").unwrap(),
        lot: openvrs_domain::dose::Short::parse("FA1234").unwrap(),
        venue: openvrs_domain::dose::Short::default(),
        doctor: openvrs_domain::dose::Short::default(),
        source: openvrs_domain::dose::DoseSource::Staff,
        voucher: None,
        given_in: Some(w.uruma),
    };
    // Refused only if the sweep recorded the same dose number already: a dose is there anyway.
    let _ = w.state.store.add_dose(
        w.uruma,
        &p.address_number,
        &given,
        &openvrs_domain::audit::Actor::console(),
    );
    let my_number = p.my_number.as_ref().unwrap().expose();
    let ours = w.naha_people[0].address_number.as_str();
    let inquiry = json!({
        "source_municipality": "472131", "my_number": my_number,
        "address_number": ours, "basis": "番号法第19条第16号",
    })
    .to_string();
    let path = "/api/municipalities/472018/inquiries";
    let single = (
        Lgwan,
        "POST",
        "/api/municipalities/{municipality}/inquiries",
    );
    let found = ask(
        w,
        samples,
        single,
        path,
        Actor::StaffForeign,
        Some(&inquiry),
    )
    .await;
    assert_eq!(found["status"], "found", "{found}");
    assert!(!found["doses"].as_array().unwrap().is_empty());
    let list = (Lgwan, "GET", "/api/municipalities/{municipality}/inquiries");
    ask(w, samples, list, path, Actor::StaffForeign, None).await;

    let csv = format!(
        "照会先自治体コード,個人番号,宛名番号\n472131,{my_number},{ours}\n\
         131016,{my_number},{ours}\n472131,12345,{ours}\n"
    );
    let jobs = (
        Lgwan,
        "POST",
        "/api/municipalities/{municipality}/inquiry-jobs",
    );
    let path = "/api/municipalities/472018/inquiry-jobs?basis=%E8%BB%A2%E5%85%A5";
    let started = ask(w, samples, jobs, path, Actor::StaffForeign, Some(&csv)).await;
    let path = format!(
        "/api/municipalities/472018/inquiry-jobs/{}",
        started["job"].as_i64().unwrap()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let who = w.who(Actor::StaffForeign);
        let (_, text) = w.call(Lgwan, "GET", &path, who, None).await;
        let v: Value = serde_json::from_str(&text).unwrap();
        if v["state"] != "running" || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let job = (
        Lgwan,
        "GET",
        "/api/municipalities/{municipality}/inquiry-jobs/{job}",
    );
    let progress = ask(w, samples, job, &path, Actor::StaffForeign, None).await;
    assert_eq!(progress["counts"]["found"], 1, "{progress}");

    // The certificate the counter issued in the sweep, verified.
    let issued: Value = samples
        .iter()
        .find(|s| {
            s.route.path
                == "/api/municipalities/{municipality}/persons/{address_number}/certificates"
                && s.status == 201
        })
        .map(|s| serde_json::from_str(&s.body).unwrap())
        .unwrap();
    let payload = issued["payload"].as_str().unwrap().to_owned();
    let verify = (Internet, "POST", "/api/verify");
    let report = ask(
        w,
        samples,
        verify,
        "/api/verify",
        Actor::Anonymous,
        Some(&payload),
    )
    .await;
    assert_eq!(report["certificates"][0]["kind"], "shc", "{report}");
}

/// Every `$ref` in `v`.
fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v.as_str()) {
                    ("$ref", Some(r)) => out.push(r.to_owned()),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// `schema` itself, or the component its `$ref` names (none if the document has none).
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> Option<&'a Value> {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => doc["components"]["schemas"].get(r.strip_prefix("#/components/schemas/")?),
        None => Some(schema),
    }
}

/// The properties an object of `schema` may have; none when it may have any.
fn declared(doc: &Value, schema: &Value) -> Option<BTreeSet<String>> {
    let s = resolve(doc, schema)?;
    if let Some(all) = s.get("allOf").and_then(Value::as_array) {
        let mut out = BTreeSet::new();
        for branch in all {
            out.extend(declared(doc, branch)?);
        }
        return Some(out);
    }
    if s.get("additionalProperties")
        .is_some_and(|a| *a != Value::Bool(false))
    {
        return None;
    }
    Some(s.get("properties")?.as_object()?.keys().cloned().collect())
}

fn has_type(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => false,
    }
}

/// A light structural check of `value` against `schema` (the part of JSON Schema the documents
/// use): `$ref`, `allOf`, `oneOf`/`anyOf`, `type`, `enum`, `required`, `properties`,
/// `additionalProperties`, `items`; and, when `strict`, no property the schema does not
/// describe. What is wrong goes to `errors`, each with where it is.
fn check(
    doc: &Value,
    schema: &Value,
    value: &Value,
    at: &str,
    strict: bool,
    errors: &mut Vec<String>,
) {
    let Some(s) = resolve(doc, schema) else {
        errors.push(format!("{at}: {schema} is not in the components"));
        return;
    };
    if let Some(all) = s.get("allOf").and_then(Value::as_array) {
        // Each part describes some of the properties; together they describe them all.
        for part in all {
            check(doc, part, value, at, false, errors);
        }
    }
    if let Some(any) = s
        .get("oneOf")
        .or_else(|| s.get("anyOf"))
        .and_then(Value::as_array)
    {
        let fits = |branch: &Value| {
            let mut e = Vec::new();
            check(doc, branch, value, at, strict, &mut e);
            e.is_empty()
        };
        if !any.iter().any(fits) {
            errors.push(format!(
                "{at}: {value} fits none of {}",
                Value::from(any.clone())
            ));
        }
    }
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(t) => vec![t.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !types.iter().any(|t| has_type(t, value)) {
            errors.push(format!("{at}: {value} is not {t}"));
            return;
        }
    }
    if let Some(allowed) = s.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    match value {
        Value::Object(m) => {
            let required = s.get("required").and_then(Value::as_array);
            for name in required.into_iter().flatten().filter_map(Value::as_str) {
                if !m.contains_key(name) {
                    errors.push(format!("{at}: no `{name}`"));
                }
            }
            let properties = s.get("properties").and_then(Value::as_object);
            for (k, v) in m {
                let here = format!("{at}/{k}");
                match (
                    properties.and_then(|p| p.get(k)),
                    s.get("additionalProperties"),
                ) {
                    (Some(p), _) => check(doc, p, v, &here, true, errors),
                    (None, Some(extra)) if extra.is_object() => {
                        check(doc, extra, v, &here, true, errors);
                    }
                    _ => {}
                }
            }
            if strict && let Some(known) = declared(doc, s) {
                for k in m.keys().filter(|k| !known.contains(*k)) {
                    errors.push(format!("{at}/{k}: not described"));
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = s.get("items") {
                for (i, v) in items.iter().enumerate() {
                    check(doc, item, v, &format!("{at}/{i}"), true, errors);
                }
            }
        }
        _ => {}
    }
}

/// The checker itself: it finds what it must.
#[test]
fn the_check_finds_missing_mistyped_and_undescribed_properties() {
    let doc = json!({ "components": { "schemas": {
        "A": { "type": "object", "required": ["a", "n"], "properties": {
            "a": { "type": "string" }, "n": { "type": ["integer", "null"] },
        } },
        "B": { "allOf": [ { "$ref": "#/components/schemas/A" },
            { "type": "object", "required": ["b"], "properties": { "b": { "type": "boolean" } } } ] },
        "L": { "type": "array", "items": { "$ref": "#/components/schemas/A" } },
    } } });
    let errors = |schema: &str, value: Value| {
        let mut e = Vec::new();
        let r = json!({ "$ref": format!("#/components/schemas/{schema}") });
        check(&doc, &r, &value, "", true, &mut e);
        e
    };
    assert!(errors("A", json!({ "a": "x", "n": null })).is_empty());
    assert!(errors("B", json!({ "a": "x", "n": 1, "b": true })).is_empty());
    assert!(errors("L", json!([{ "a": "x", "n": 2 }])).is_empty());
    assert_eq!(errors("A", json!({ "a": "x" })), [": no `n`"]);
    assert_eq!(errors("A", json!({ "a": 1, "n": 1 })).len(), 1);
    assert_eq!(errors("B", json!({ "a": "x", "n": 1 })), [": no `b`"]);
    assert_eq!(
        errors("B", json!({ "a": "x", "n": 1, "b": true, "c": 0 })),
        ["/c: not described"]
    );
    assert_eq!(errors("L", json!([{ "a": "x", "n": "2" }])).len(), 1);
    assert_eq!(errors("Z", json!({})).len(), 1);
}
