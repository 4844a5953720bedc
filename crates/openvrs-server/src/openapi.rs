//! The OpenAPI 3 description of each listener, generated from the route table and the request
//! and answer types, so it cannot drift from what is mounted and what the handlers write. Every
//! error answer is an [`ErrorBody`].

use std::collections::{BTreeMap, BTreeSet};

use axum::{Json, extract::State};
use utoipa::{
    ToSchema,
    openapi::{
        ComponentsBuilder, Content, ContentBuilder, HttpMethod, InfoBuilder, OpenApi,
        OpenApiBuilder, PathItem, PathsBuilder, Ref, RefOr, Required, ResponseBuilder, Schema,
        path::{OperationBuilder, ParameterBuilder, ParameterIn},
        request_body::RequestBodyBuilder,
        schema::{ObjectBuilder, Type},
        security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        },
    },
};

use crate::{
    AppState, Zone,
    api::{
        Accounts, IssuedAccount, Login, NewAccount, PersonBody, PersonCounts, SecurityEvents,
        SignedIn, Version,
    },
    auth::{Access, SESSION_COOKIE},
    certificates::{
        CertificateEntry, CertificateRequest, Certificates, CounterCertificate, Jwks,
        RevocationList, Verification,
    },
    channels::{IntakeKey, KioskApplication, KioskSetting, SealedAnswer, SealedApplication},
    error::ErrorBody,
    inquiries::{
        AttachInput, AttachResult, Inquiries, InquiryInput, InquiryJobProgress, InquiryResult,
        JobStarted, Provisions,
    },
    records::{
        ChangedFields, ConflictResolution, Disclosure, DoseConflicts, DoseCorrection, DoseInput,
        FlagsImported, FlagsInput, LedgerImported, PersonCorrection, PersonDoses, QualityReport,
        Reason, TargetsImported, WrittenDose,
    },
    routes::{RouteSpec, routes},
    venue::{VenueDose, VenueProducts, VenueRecorded},
};

type Named = Vec<(String, RefOr<Schema>)>;

/// Adds `T`'s schema, and every schema it refers to.
fn add<T: ToSchema>(out: &mut Named) {
    out.push((T::name().into_owned(), T::schema()));
    T::schemas(out);
}

/// Every schema a route may name, as its request body or its answer, in one list (the schemas
/// they refer to come with them).
const NAMED: &[fn(&mut Named)] = &[
    // Request bodies.
    add::<Login>,
    add::<NewAccount>,
    add::<DoseInput>,
    add::<DoseCorrection>,
    add::<Reason>,
    add::<FlagsInput>,
    add::<VenueDose>,
    add::<InquiryInput>,
    add::<AttachInput>,
    add::<ConflictResolution>,
    add::<PersonCorrection>,
    add::<CertificateRequest>,
    add::<SealedApplication>,
    add::<KioskApplication>,
    add::<KioskSetting>,
    // Answers.
    add::<ErrorBody>,
    add::<Version>,
    add::<SignedIn>,
    add::<Accounts>,
    add::<IssuedAccount>,
    add::<SecurityEvents>,
    add::<PersonCounts>,
    add::<PersonBody>,
    add::<PersonDoses>,
    add::<WrittenDose>,
    add::<ChangedFields>,
    add::<Disclosure>,
    add::<DoseConflicts>,
    add::<QualityReport>,
    add::<TargetsImported>,
    add::<LedgerImported>,
    add::<FlagsImported>,
    add::<InquiryResult>,
    add::<Inquiries>,
    add::<AttachResult>,
    add::<JobStarted>,
    add::<InquiryJobProgress>,
    add::<Provisions>,
    add::<CounterCertificate>,
    add::<Certificates>,
    add::<CertificateEntry>,
    add::<VenueRecorded>,
    add::<VenueProducts>,
    add::<IntakeKey>,
    add::<SealedAnswer>,
    add::<Jwks>,
    add::<RevocationList>,
    add::<Verification>,
];

/// The schemas routes may name (request bodies and answers), and the schemas they refer to,
/// each once, by name.
pub fn schemas() -> Vec<(String, RefOr<Schema>)> {
    let mut all = Vec::new();
    for add in NAMED {
        add(&mut all);
    }
    let mut seen = BTreeSet::new();
    all.retain(|(name, _)| seen.insert(name.clone()));
    all
}

/// The schema every error answer (4xx, 5xx) has.
const ERROR: &str = "ErrorBody";

/// The names of the schemas `schema` refers to (`$ref`), directly.
fn refers_to(schema: &RefOr<Schema>) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v.as_str()) {
                        ("$ref", Some(r)) => {
                            out.push(r.trim_start_matches("#/components/schemas/").to_owned())
                        }
                        _ => walk(v, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&serde_json::to_value(schema).unwrap_or_default(), &mut out);
    out
}

/// The schemas of one zone: those its routes name, the error body, and what they refer to.
/// One listener's document says nothing of the other's bodies and answers.
fn zone_schemas(zone: Zone) -> BTreeMap<String, RefOr<Schema>> {
    let all: BTreeMap<String, RefOr<Schema>> = schemas().into_iter().collect();
    let mut wanted: Vec<String> = routes(zone)
        .flat_map(|r| [r.body, r.answer])
        .flatten()
        .chain([ERROR])
        .map(str::to_owned)
        .collect();
    let mut out = BTreeMap::new();
    while let Some(name) = wanted.pop() {
        if out.contains_key(&name) {
            continue;
        }
        // A name nothing registers is left out; the document's test finds the dangling `$ref`.
        if let Some(schema) = all.get(&name) {
            wanted.extend(refers_to(schema));
            out.insert(name, schema.clone());
        }
    }
    out
}

/// What a route answers other than JSON of a schema (files, text, pages), by media type.
fn other_media(spec: &RouteSpec) -> &'static [&'static str] {
    match spec.path {
        "/healthz" | "/readyz" => &["text/plain"],
        // The OpenAPI 3.1 document itself.
        "/api/openapi.json" => &["application/json"],
        // The paper certificate; at the counter, when the format asked for is `pdf`.
        "/api/center/certificates"
        | "/api/municipalities/{municipality}/persons/{address_number}/certificates" => {
            &["application/pdf"]
        }
        "/opendata/{day}/{file}" => &["application/x-ndjson", "text/csv"],
        "/" | "/venue/" | "/app/" | "/verify/" => &["text/html"],
        "/venue/{file}" => &["text/javascript", "text/css", "application/manifest+json"],
        "/app/{file}" | "/verify/{file}" => &["text/javascript", "text/css"],
        p if p.ends_with(".csv") => &["text/csv"],
        _ => &[],
    }
}

fn json_content(schema: &str) -> Content {
    ContentBuilder::new()
        .schema(Some(Ref::from_schema_name(schema)))
        .build()
}

fn method(m: &axum::http::Method) -> HttpMethod {
    match *m {
        axum::http::Method::POST => HttpMethod::Post,
        axum::http::Method::PUT => HttpMethod::Put,
        axum::http::Method::DELETE => HttpMethod::Delete,
        axum::http::Method::PATCH => HttpMethod::Patch,
        _ => HttpMethod::Get,
    }
}

/// An error answer: always an [`ErrorBody`].
fn error(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", json_content(ERROR))
        .build()
        .into()
}

/// The answer of a successful call: the JSON of the route's answer schema, or what else it
/// answers.
fn success(spec: &RouteSpec) -> RefOr<utoipa::openapi::Response> {
    let mut ok = ResponseBuilder::new().description("成功 / success");
    if let Some(answer) = spec.answer {
        ok = ok.content("application/json", json_content(answer));
    }
    for media in other_media(spec) {
        ok = ok.content(*media, ContentBuilder::new().build());
    }
    ok.build().into()
}

/// The description of one zone's API.
pub fn document(zone: Zone) -> OpenApi {
    let mut paths = PathsBuilder::new();
    // The web application's pages are for people, not programs: not part of the API.
    for spec in routes(zone).filter(|s| !s.is_page()) {
        let mut op = OperationBuilder::new()
            .summary(Some(spec.summary))
            .operation_id(Some(format!("{} {}", spec.method, spec.path)))
            .response(spec.ok.to_string(), success(spec));
        for segment in spec.path.split('/').filter(|s| s.starts_with('{')) {
            let name = segment.trim_matches(|c| c == '{' || c == '}');
            op = op.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
            );
        }
        if let Some(body) = spec.body {
            op = op
                .request_body(Some(
                    RequestBodyBuilder::new()
                        .required(Some(Required::True))
                        .content("application/json", json_content(body))
                        .build(),
                ))
                .response("400", error("不正な要求 / malformed request"))
                .response(
                    "422",
                    error("内容の誤り(品質規則を含む) / invalid content (quality rules too)"),
                );
        }
        if spec.access != Access::Public {
            op = op
                .response("401", error("未認証 / not signed in"))
                .response("403", error("権限なし / not allowed"));
            op = match spec.access {
                Access::Venue | Access::Center => {
                    op.security(SecurityRequirement::new("token", Vec::<String>::new()))
                }
                _ => op.security(SecurityRequirement::new("session", Vec::<String>::new())),
            };
        }
        if spec.path.contains("{municipality}") || spec.path.contains("{user}") {
            op = op.response(
                "404",
                error("なし(他団体を含む) / not found (also another municipality's)"),
            );
        }
        op = op
            .response("429", error("要求過多 / rate limited"))
            .response("4XX", error("その他の拒否 / other refusals"))
            .response(
                "5XX",
                error("内部エラー・一時的に利用不可 / internal error, temporarily unavailable"),
            );
        paths = paths.path(spec.path, PathItem::new(method(&spec.method), op.build()));
    }
    let mut components = ComponentsBuilder::new()
        .security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "POST /api/login sets it; state changes also need the X-CSRF-Token header",
            ))),
        )
        .security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    for (name, schema) in zone_schemas(zone) {
        components = components.schema(name, schema);
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title(format!("openvrs {zone:?} API"))
                .version(env!("CARGO_PKG_VERSION"))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components.build()))
        .build()
}

pub async fn lgwan(State(_): State<AppState>) -> Json<OpenApi> {
    Json(document(Zone::Lgwan))
}

pub async fn internet(State(_): State<AppState>) -> Json<OpenApi> {
    Json(document(Zone::Internet))
}
