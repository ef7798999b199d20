//! The HTTP contract of every role, as OpenAPI 3.1, generated from the
//! handlers' own annotations and request and response types (utoipa), so
//! the document cannot drift from the code that answers. Each role serves
//! its own at `/openapi/<role>.json`; `docs/openapi/` holds the same
//! documents, and a test fails when they differ from what the code makes.

use std::sync::OnceLock;

use axum::http::header;
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi, ToSchema};

/// The roles that answer HTTP, each with its own contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoleApi {
    Origin,
    Edge,
    Mailbox,
    Home,
    Kiosk,
    Roaming,
    Service,
    Gateway,
}

impl RoleApi {
    pub const ALL: [RoleApi; 8] = [
        RoleApi::Origin,
        RoleApi::Edge,
        RoleApi::Mailbox,
        RoleApi::Home,
        RoleApi::Kiosk,
        RoleApi::Roaming,
        RoleApi::Service,
        RoleApi::Gateway,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RoleApi::Origin => "origin",
            RoleApi::Edge => "edge",
            RoleApi::Mailbox => "mailbox",
            RoleApi::Home => "home",
            RoleApi::Kiosk => "kiosk",
            RoleApi::Roaming => "roaming",
            RoleApi::Service => "service",
            RoleApi::Gateway => "gateway",
        }
    }

    /// Where the role serves its contract.
    pub fn path(self) -> String {
        format!("/openapi/{}.json", self.as_str())
    }

    /// The role's contract.
    pub fn document(self) -> Document {
        let mut doc = match self {
            RoleApi::Origin => crate::origin::Api::openapi(),
            RoleApi::Edge => crate::edge::Api::openapi(),
            RoleApi::Mailbox => crate::mailbox::Api::openapi(),
            RoleApi::Home => crate::home::Api::openapi(),
            RoleApi::Kiosk => crate::kiosk::Api::openapi(),
            RoleApi::Roaming => crate::roaming::Api::openapi(),
            RoleApi::Service => crate::service::Api::openapi(),
            RoleApi::Gateway => crate::gateway::Api::openapi(),
        };
        Common.modify(&mut doc);
        doc.info.title = format!("tracecast {}", self.as_str());
        doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
        doc
    }

    /// The contract as the committed file holds it: pretty JSON and a
    /// final newline.
    pub fn json(self) -> String {
        let mut text = self
            .document()
            .to_pretty_json()
            .expect("an OpenAPI document serialises");
        text.push('\n');
        text
    }
}

/// Every error answer's body: a stable code to branch on and a sentence
/// saying what to fix (see [`crate::ApiError`]).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable, machine-readable code (`bad_request`, `unauthorized`,
    /// `forbidden`, `too_large`, `rate_limited`, `unavailable`, …).
    pub error: String,
    /// What went wrong and what to do about it.
    pub message: String,
}

/// The name of the bearer-token scheme in every document: an account's,
/// a box's or the administrator's token, `Authorization: Bearer <token>`.
pub const BEARER: &str = "bearer";

/// What every role's document shares: the token scheme, the error body,
/// the licence.
struct Common;

impl Modify for Common {
    fn modify(&self, doc: &mut Document) {
        let components = doc
            .components
            .get_or_insert_with(utoipa::openapi::Components::new);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An account's, a box's or the administrator's token, as \
                         `Authorization: Bearer <token>`; docs/security.md says what each may do.",
                    ))
                    .build(),
            ),
        );
        components
            .schemas
            .entry("ErrorBody".to_owned())
            .or_insert_with(<ErrorBody as utoipa::PartialSchema>::schema);
        doc.info.license = Some(utoipa::openapi::License::new("AGPL-3.0-or-later"));
        // Any request may meet a server shedding load (`http.max_in_flight`),
        // past its request timeout, or shutting down.
        let shed = || {
            utoipa::openapi::ResponseBuilder::new()
                .description(
                    "The server is busy (more requests in flight than `http.max_in_flight`), \
                     the request took longer than `http.request_timeout_secs`, or the server is \
                     shutting down; nothing was changed; retry.",
                )
                .content(
                    "application/json",
                    utoipa::openapi::ContentBuilder::new()
                        .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        let too_large = || {
            utoipa::openapi::ResponseBuilder::new()
                .description(
                    "The body is larger than this route takes (docs/config.md, \
                     \"Request budgets\"); nothing was changed.",
                )
                .content(
                    "application/json",
                    utoipa::openapi::ContentBuilder::new()
                        .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        for item in doc.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                op.responses
                    .responses
                    .entry("503".to_owned())
                    .or_insert_with(|| shed().into());
                // A JSON body has a limit (crate::budget).
                let json_body = op
                    .request_body
                    .as_ref()
                    .is_some_and(|b| b.content.contains_key("application/json"));
                if json_body {
                    op.responses
                        .responses
                        .entry("413".to_owned())
                        .or_insert_with(|| too_large().into());
                }
            }
        }
    }
}

/// The route that serves a role's contract (each document is built once).
pub(crate) fn router(role: RoleApi) -> Router {
    static DOCS: [OnceLock<String>; RoleApi::ALL.len()] = [const { OnceLock::new() }; 8];
    let text: &'static str = DOCS[role as usize].get_or_init(|| role.json());
    Router::new().route(
        &role.path(),
        get(move || async move { ([(header::CONTENT_TYPE, "application/json")], text) }),
    )
}

/// The error answers shared by operations that take a bearer token.
#[derive(utoipa::IntoResponses)]
pub enum Refusals {
    /// The request is malformed (a path, query, header or body the route
    /// does not take); nothing was changed.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No token, or one the server does not know.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The token is valid but not of a kind, or an owner, this may be done by.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// The store is unavailable; nothing was changed; retry.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}
