//! The OpenAPI 3 description of each listener, generated from the route table and the request
//! types, so it cannot drift from what is mounted.

use axum::{Json, extract::State};
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{
        ComponentsBuilder, ContentBuilder, HttpMethod, InfoBuilder, OpenApi, OpenApiBuilder,
        PathItem, PathsBuilder, Ref, RefOr, Required, ResponseBuilder, Schema,
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
    api::{Login, NewAccount},
    auth::{Access, SESSION_COOKIE},
    certificates::CertificateRequest,
    channels::{KioskApplication, KioskSetting, SealedApplication},
    inquiries::{AttachInput, InquiryInput},
    records::{
        ConflictResolution, DoseCorrection, DoseInput, FlagsInput, PersonCorrection, Reason,
    },
    routes::routes,
    venue::VenueDose,
};

/// The request body schemas routes may name.
pub fn schemas() -> Vec<(String, RefOr<Schema>)> {
    vec![
        (Login::name().into_owned(), Login::schema()),
        (NewAccount::name().into_owned(), NewAccount::schema()),
        (DoseInput::name().into_owned(), DoseInput::schema()),
        (
            DoseCorrection::name().into_owned(),
            DoseCorrection::schema(),
        ),
        (Reason::name().into_owned(), Reason::schema()),
        (FlagsInput::name().into_owned(), FlagsInput::schema()),
        (VenueDose::name().into_owned(), VenueDose::schema()),
        (InquiryInput::name().into_owned(), InquiryInput::schema()),
        (AttachInput::name().into_owned(), AttachInput::schema()),
        (
            ConflictResolution::name().into_owned(),
            ConflictResolution::schema(),
        ),
        (
            PersonCorrection::name().into_owned(),
            PersonCorrection::schema(),
        ),
        (
            CertificateRequest::name().into_owned(),
            CertificateRequest::schema(),
        ),
        (
            SealedApplication::name().into_owned(),
            SealedApplication::schema(),
        ),
        (
            KioskApplication::name().into_owned(),
            KioskApplication::schema(),
        ),
        (KioskSetting::name().into_owned(), KioskSetting::schema()),
    ]
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

fn response(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .build()
        .into()
}

/// The description of one zone's API.
pub fn document(zone: Zone) -> OpenApi {
    let mut paths = PathsBuilder::new();
    // The web application's pages are for people, not programs: not part of the API.
    for spec in routes(zone).filter(|s| !s.is_page()) {
        let mut op = OperationBuilder::new()
            .summary(Some(spec.summary))
            .operation_id(Some(format!("{} {}", spec.method, spec.path)))
            .response(spec.ok.to_string(), response("成功 / success"));
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
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name(body)))
                            .build(),
                    )
                    .build(),
            ));
        }
        if spec.access != Access::Public {
            op = op
                .response("401", response("未認証 / not signed in"))
                .response("403", response("権限なし / not allowed"))
                .response("429", response("要求過多 / rate limited"));
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
                response("なし(他団体を含む) / not found (also another municipality's)"),
            );
        }
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
    // Only the schemas this zone's routes name: one listener's document says nothing of the
    // other's bodies.
    for (name, schema) in schemas() {
        if routes(zone).any(|r| r.body == Some(name.as_str())) {
            components = components.schema(name, schema);
        }
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
