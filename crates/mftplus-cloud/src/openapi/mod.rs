//! The API described: an OpenAPI 3.1 document generated from the route table (paths, methods,
//! who may call) and the `mftplus-types` structs (bodies, by their derived JSON Schemas), served
//! at `/api/v1/openapi.json`. Nothing in it is written by hand but the one-line summaries.

pub mod operations;

use crate::routes::{Access, RouteSpec, ROUTES};
use axum::response::IntoResponse;
use operations::{describe, Content, Operation};
use schemars::generate::{Contract, SchemaSettings};
use schemars::SchemaGenerator;
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

const SCHEMAS: &str = "#/components/schemas/";

/// Whether a route belongs to the API (the dashboard's pages do not).
pub fn is_api(spec: &RouteSpec) -> bool {
    !crate::web::is_page(spec)
}

/// `GET /api/v1/openapi.json`: built once, then served from memory.
pub async fn serve() -> axum::response::Response {
    static DOCUMENT: OnceLock<Vec<u8>> = OnceLock::new();
    let bytes = DOCUMENT
        .get_or_init(|| serde_json::to_vec(&document()).expect("a JSON value always serialises"));
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        bytes.clone(),
    )
        .into_response()
}

/// The whole document.
pub fn document() -> Value {
    // Request bodies are described as they are read, answers as they are written: a field with a
    // default may be left out of a request, but it is always present in an answer.
    let mut requests = generator(Contract::Deserialize);
    let mut answers = generator(Contract::Serialize);
    let mut paths = Map::new();
    for spec in ROUTES.iter().filter(|spec| is_api(spec)) {
        let operation =
            describe(spec.id).unwrap_or_else(|| panic!("route {} is not described", spec.id));
        let item = paths
            .entry(spec.path.to_string())
            .or_insert_with(|| json!({}));
        item[spec.method.as_str().to_ascii_lowercase()] =
            operation_object(spec, &operation, &mut requests, &mut answers);
    }
    let error = answers.subschema_for::<mftplus_types::ApiErrorBody>();
    let mut schemas = requests.take_definitions(true);
    merge_answer_schemas(&mut schemas, answers.take_definitions(true), &mut paths);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "MFTPlus API",
            "version": mftplus_types::VERSION,
            "description": "The cloud's HTTP API. Every error answer is `ApiErrorBody` with a stable \
                `error.code`. Generated from the route table and the wire types.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": security_schemes(),
            "responses": {
                "Error": {
                    "description": "An error, with its stable code",
                    "content": {"application/json": {"schema": error}},
                },
            },
        },
    })
}

fn generator(contract: Contract) -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .with(|settings| {
            settings.definitions_path = "/components/schemas".into();
            settings.meta_schema = None;
            settings.contract = contract;
        })
        .into_generator()
}

fn operation_object(
    spec: &RouteSpec,
    operation: &Operation,
    requests: &mut SchemaGenerator,
    answers: &mut SchemaGenerator,
) -> Value {
    let mut object = json!({
        "operationId": spec.id,
        "summary": operation.summary,
        "tags": [tag(spec.path)],
        "security": security(spec.access),
        "x-mftplus-access": access_text(spec.access),
    });
    let mut parameters = path_parameters(spec.path);
    if let Some(query) = operation.query {
        parameters.extend(query_parameters(&query(requests)));
    }
    if !parameters.is_empty() {
        object["parameters"] = Value::Array(parameters);
    }
    if let Some(content) = content(operation.body, requests) {
        object["requestBody"] = json!({
            "required": !operation.body_optional,
            "content": content,
        });
    }
    let mut responses = Map::new();
    for (status, body) in &operation.responses {
        let entry = responses
            .entry(status.to_string())
            .or_insert_with(|| json!({"description": reason(*status)}));
        if let Some(content) = content(*body, answers) {
            let merged = entry
                .as_object_mut()
                .expect("an answer is an object")
                .entry("content")
                .or_insert_with(|| json!({}));
            merged
                .as_object_mut()
                .expect("content is an object")
                .extend(content.as_object().cloned().unwrap_or_default());
        }
    }
    responses.insert(
        "default".into(),
        json!({"$ref": "#/components/responses/Error"}),
    );
    object["responses"] = Value::Object(responses);
    object
}

fn content(body: Content, generator: &mut SchemaGenerator) -> Option<Value> {
    Some(match body {
        Content::Json(schema) => json!({"application/json": {"schema": schema(generator)}}),
        Content::AnyJson => json!({"application/json": {"schema": {"type": "object"}}}),
        Content::Octets => json!({"application/octet-stream": {
            "schema": {"type": "string", "contentMediaType": "application/octet-stream"}
        }}),
        Content::Text(media) => json!({ media: {"schema": {"type": "string"}} }),
        Content::Empty => return None,
    })
}

/// `{id}`-style segments become required path parameters; a chunk index is an integer.
fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            let schema = if name == "index" {
                json!({"type": "integer", "format": "uint64", "minimum": 0})
            } else {
                json!({"type": "string", "minLength": 1})
            };
            json!({"name": name, "in": "path", "required": true, "schema": schema})
        })
        .collect()
}

/// A query struct's properties, one parameter each.
fn query_parameters(schema: &schemars::Schema) -> Vec<Value> {
    let object = schema.as_object().cloned().unwrap_or_default();
    let required: Vec<&str> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(Value::Object(properties)) = object.get("properties") else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, schema)| {
            let mut parameter = json!({
                "name": name,
                "in": "query",
                "required": required.contains(&name.as_str()),
                "schema": schema,
            });
            if let Some(description) = schema.get("description") {
                parameter["description"] = description.clone();
            }
            parameter
        })
        .collect()
}

/// Answer schemas join the request ones; a type whose written form differs from its read form
/// (fields with defaults are always written), or that refers to such a type, keeps both, the
/// written one named `…Answer`.
fn merge_answer_schemas(
    schemas: &mut Map<String, Value>,
    answers: Map<String, Value>,
    paths: &mut Map<String, Value>,
) {
    let mut renamed: Vec<String> = Vec::new();
    loop {
        let differing: Vec<String> = answers
            .iter()
            .filter(|(name, schema)| {
                let mut schema = (*schema).clone();
                rename_refs(&mut schema, &renamed);
                schemas.get(*name).is_some_and(|request| *request != schema)
            })
            .map(|(name, _)| name.clone())
            .collect();
        if differing.len() == renamed.len() {
            break;
        }
        renamed = differing;
    }
    for (name, mut schema) in answers {
        rename_refs(&mut schema, &renamed);
        let name = if renamed.contains(&name) {
            format!("{name}Answer")
        } else {
            name
        };
        schemas.entry(name).or_insert(schema);
    }
    for item in paths.values_mut() {
        for operation in item
            .as_object_mut()
            .into_iter()
            .flat_map(|o| o.values_mut())
        {
            if let Some(responses) = operation.get_mut("responses") {
                rename_refs(responses, &renamed);
            }
        }
    }
}

fn rename_refs(value: &mut Value, renamed: &[String]) {
    match value {
        Value::Object(object) => {
            for (key, inner) in object.iter_mut() {
                if key == "$ref" {
                    if let Some(name) = inner.as_str().and_then(|r| r.strip_prefix(SCHEMAS)) {
                        if renamed.iter().any(|n| n == name) {
                            *inner = Value::String(format!("{SCHEMAS}{name}Answer"));
                        }
                    }
                } else {
                    rename_refs(inner, renamed);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| rename_refs(item, renamed)),
        _ => {}
    }
}

fn tag(path: &str) -> &str {
    let rest = path
        .strip_prefix("/api/v1/")
        .unwrap_or(path.trim_start_matches('/'));
    let first = rest.split('/').next().unwrap_or("");
    match first {
        "auth" | "users" | "apikeys" | "server-config" | "status" | "keys" => "identity",
        "transfers" => "transfers",
        "audit" => "audit",
        "hubs" => "hubs",
        "ca" | "certificates" => "certificates",
        "customers" | "hosts" | "guests" | "ops" | "events" | "notifications" | "enroll"
        | "host-report" | "guest-report" | "config" => "fleet",
        _ => "server",
    }
}

fn security(access: Access) -> Value {
    let user = json!([{"bearer": []}, {"apiKey": []}]);
    match access {
        Access::Public => json!([]),
        Access::Authenticated | Access::Permission(_) | Access::Scoped { .. } => user,
        Access::Host | Access::Guest | Access::DeployKey => json!([{"bearer": []}]),
        Access::HostOr(_) | Access::TransferParty(_) => user,
        Access::RetrievalPassword => json!([{"retrievalPassword": []}]),
        Access::Certificate => json!([{"mutualTLS": []}]),
    }
}

/// Who may call, in the route table's words.
fn access_text(access: Access) -> String {
    match access {
        Access::Public => "public".into(),
        Access::Authenticated => "any authenticated caller".into(),
        Access::Permission(permission) => format!("permission {permission}"),
        Access::Scoped { all, own } => format!("permission {all}, or {own} for one's own"),
        Access::Host => "a host key (its own host)".into(),
        Access::Guest => "a guest key".into(),
        Access::HostOr(permission) => {
            format!("a host key for its own host, or permission {permission}")
        }
        Access::TransferParty(user) => format!(
            "a host key (its own transfers and its customer's hosts), or {}",
            access_text(*user)
        ),
        Access::RetrievalPassword => "the customer's retrieval password".into(),
        Access::Certificate => "a client certificate from the built-in CA (mutual TLS)".into(),
        Access::DeployKey => "an edge hub's deploy key".into(),
    }
}

fn security_schemes() -> Value {
    json!({
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "A JWT access token, an API key (`mftpk_…`), a host or guest key, or an \
                edge hub's deploy key (`mft_dep_…`), as the route's access says.",
        },
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        "retrievalPassword": {
            "type": "apiKey",
            "in": "header",
            "name": mftplus_types::fleet::RETRIEVAL_PASSWORD_HEADER,
        },
        "mutualTLS": {"type": "mutualTLS"},
    })
}

fn reason(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("answer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_route_is_described_and_documented() {
        let document = document();
        for spec in ROUTES.iter().filter(|spec| is_api(spec)) {
            let method = spec.method.as_str().to_ascii_lowercase();
            let operation = &document["paths"][spec.path][&method];
            assert_eq!(
                operation["operationId"], spec.id,
                "{} {} missing from the document",
                spec.method, spec.path
            );
        }
    }

    #[test]
    fn every_reference_resolves() {
        let document = document();
        let schemas = document["components"]["schemas"]
            .as_object()
            .expect("schemas");
        let mut refs = Vec::new();
        collect_refs(&document, &mut refs);
        assert!(!refs.is_empty());
        for reference in refs {
            if let Some(name) = reference.strip_prefix(SCHEMAS) {
                assert!(schemas.contains_key(name), "dangling {reference}");
            }
        }
    }

    fn collect_refs(value: &Value, refs: &mut Vec<String>) {
        match value {
            Value::Object(object) => {
                for (key, inner) in object {
                    match (key.as_str(), inner) {
                        ("$ref", Value::String(r)) => refs.push(r.clone()),
                        _ => collect_refs(inner, refs),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| collect_refs(item, refs)),
            _ => {}
        }
    }
}
