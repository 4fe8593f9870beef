//! Customers: the anchor of a deployment (one host and its guests), with the retrieval
//! password its boxes enroll with, and the lifecycle actions block, unblock, trigger-update
//! and delete. Block, unblock and the retrieval-password reset are `app::customers`, shared
//! with the dashboard's host page.

use super::{customer_to_api, find_customer};
use crate::app::customers;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::handlers::{validate_email, validate_name};
use crate::middleware::ClientIp;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use mftplus_store::{CustomerUpdate, NewCustomer};
use mftplus_types::fleet::{CreateCustomer, CreatedCustomer, CustomerInfo, UpdateCustomer};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomersQuery {
    /// Customers whose id sorts (bytewise) after this one: the `x-next-after` header of the
    /// previous page.
    pub after: Option<String>,
    /// At most this many customers (1–1000, default 1000).
    pub limit: Option<u32>,
}

/// A page of customers by id, cut short like the hosts listing (`x-next-after`).
pub async fn index(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<CustomersQuery>,
) -> ApiResult<Response> {
    let limit = super::hosts::listing_limit(query.limit)?;
    let page = crate::app::fleet::customers_page(&state, query.after.as_deref(), limit).await?;
    Ok(super::hosts::page_response(page.customers, page.next_after))
}

pub async fn show(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<CustomerInfo>> {
    Ok(Json(customer_to_api(&find_customer(&state, &id).await?)))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<CreateCustomer>,
) -> ApiResult<(StatusCode, Json<CreatedCustomer>)> {
    let id = match body.id {
        Some(id) => validate_slug(&id)?,
        None => format!("c-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
    };
    let name = validate_name(&body.name, "name")?;
    let email = validate_email(&body.email)?;
    let locale = validate_locale(body.locale.as_deref().unwrap_or("hu"))?;
    let config_json = validate_config(body.config.unwrap_or_else(|| json!({})))?;
    let password = match body.retrieval_password {
        Some(password) => validate_retrieval_password(password)?,
        None => mftplus_fleet::hungarian_passphrase(),
    };
    let hash = customers::hash_password(password.clone()).await?;
    let now = state.clock.now_ms();
    let row = state
        .store
        .create_customer(&NewCustomer {
            id,
            name,
            email,
            domain: body.domain.map(|d| d.trim().to_ascii_lowercase()),
            locale,
            retrieval_password_hash: hash,
            config_json,
            created_at_ms: now,
        })
        .await?;
    customers::record(
        &state,
        &caller.email,
        &ip,
        "customer_created",
        &row.id,
        json!({"name": row.name}),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedCustomer {
            customer: customer_to_api(&row),
            retrieval_password: password,
        }),
    ))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateCustomer>,
) -> ApiResult<Json<CustomerInfo>> {
    let mut update = CustomerUpdate {
        updated_at_ms: state.clock.now_ms(),
        ..CustomerUpdate::default()
    };
    if let Some(name) = &body.name {
        update.name = Some(validate_name(name, "name")?);
    }
    if let Some(email) = &body.email {
        update.email = Some(validate_email(email)?);
    }
    if let Some(domain) = &body.domain {
        let domain = domain.trim().to_ascii_lowercase();
        update.domain = Some((!domain.is_empty()).then_some(domain));
    }
    if let Some(locale) = &body.locale {
        update.locale = Some(validate_locale(locale)?);
    }
    if let Some(config) = body.config.clone() {
        update.config_json = Some(validate_config(config)?);
    }
    if let Some(password) = body.retrieval_password.clone() {
        let password = validate_retrieval_password(password)?;
        update.retrieval_password_hash = Some(customers::hash_password(password).await?);
    }
    let row = state.store.update_customer(&id, &update).await?;
    let changed: Vec<&str> = [
        ("name", body.name.is_some()),
        ("email", body.email.is_some()),
        ("domain", body.domain.is_some()),
        ("locale", body.locale.is_some()),
        ("config", body.config.is_some()),
        ("retrieval_password", body.retrieval_password.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, set)| set.then_some(field))
    .collect();
    customers::record(
        &state,
        &caller.email,
        &ip,
        "customer_updated",
        &id,
        json!({"fields": changed}),
    )
    .await?;
    Ok(Json(customer_to_api(&row)))
}

pub async fn destroy(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_customer(&id).await?;
    state.forget_reporters();
    customers::record(
        &state,
        &caller.email,
        &ip,
        "customer_deleted",
        &id,
        json!({}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn block(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<CustomerInfo>> {
    Ok(Json(
        customers::block(&state, &caller.email, &ip, &id).await?,
    ))
}

pub async fn unblock(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<CustomerInfo>> {
    Ok(Json(
        customers::unblock(&state, &caller.email, &ip, &id).await?,
    ))
}

/// A generated retrieval password replaces the customer's; the answer carries it, once.
pub async fn reset_retrieval_password(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<CreatedCustomer>> {
    Ok(Json(
        customers::reset_retrieval_password(&state, &caller.email, &ip, &id).await?,
    ))
}

/// Republishes every host of the customer so its agents refetch and reconverge (the pull
/// model's version of the seed's "push update").
pub async fn trigger_update(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    find_customer(&state, &id).await?;
    let hosts = state
        .store
        .bump_customer_generations(&id, state.clock.now_ms())
        .await?;
    customers::record(
        &state,
        &caller.email,
        &ip,
        "update_triggered",
        &id,
        json!({"hosts": hosts}),
    )
    .await?;
    Ok(Json(json!({"customer_id": id, "hosts": hosts})))
}

fn validate_slug(id: &str) -> ApiResult<String> {
    let ok = (2..=63).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-');
    if ok {
        Ok(id.to_string())
    } else {
        Err(ApiError::validation(
            "customer id must be 2–63 characters of a-z, 0-9 and -, not starting or ending with -",
        ))
    }
}

fn validate_locale(locale: &str) -> ApiResult<String> {
    match locale {
        "hu" | "en" => Ok(locale.to_string()),
        other => Err(ApiError::validation(format!(
            "locale {other:?} is not supported; use hu or en"
        ))),
    }
}

fn validate_config(config: Value) -> ApiResult<String> {
    if !config.is_object() {
        return Err(ApiError::validation(
            "config must be a JSON object of overrides",
        ));
    }
    Ok(config.to_string())
}

fn validate_retrieval_password(password: String) -> ApiResult<String> {
    if password.chars().count() < 12 || password.len() > 256 {
        return Err(ApiError::new(
            mftplus_types::ErrorCode::WeakPassword,
            "a retrieval password must be 12–256 characters (or leave it out to get a generated passphrase)",
        ));
    }
    Ok(password)
}
