//! Signing in and out. The check is the API's (`app::sign_in`: throttle, constant-time
//! Argon2, audit); what differs is that success starts a session instead of issuing tokens.

use super::form;
use super::CsrfOnly;
use crate::audit::AuditEvent;
use crate::auth::Caller;
use crate::middleware::ClientIp;
use crate::state::AppState;
use crate::web::layout::page;
use crate::web::{safe_next, see_other, session, WebError, WebResult};
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse};
use axum::Form;
use http::{header, HeaderValue, StatusCode};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NextQuery {
    next: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SignIn {
    email: String,
    password: String,
    next: String,
}

fn sign_in_form(next: &str, email: &str, problem: Option<&str>) -> Markup {
    page(
        "Sign in",
        None,
        html! {
            @if let Some(problem) = problem {
                p.error role="alert" #sign-in-error { (problem) }
            }
            form.card method="post" action="/login" {
                input type="hidden" name="next" value=(safe_next(next));
                label for="email" { "Email" }
                input #email type="email" name="email" value=(email) autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                p { button #sign-in type="submit" { "Sign in" } }
            }
        },
    )
}

/// `GET /login`.
pub async fn show(Query(query): Query<NextQuery>) -> Html<String> {
    Html(sign_in_form(&query.next, "", None).into_string())
}

/// `POST /login`: a session and back to where the user was going, or the form again.
pub async fn submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    submitted: Result<Form<SignIn>, FormRejection>,
) -> WebResult {
    let fields = form(submitted)?;
    let user = match crate::app::sign_in::check_password(
        &state,
        &fields.email,
        fields.password,
        &ip,
        crate::app::sign_in::Purpose::SignIn,
    )
    .await
    {
        Ok(user) => user,
        Err(err) => {
            let status =
                StatusCode::from_u16(err.code.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
            let page = sign_in_form(&fields.next, &fields.email, Some(&err.message));
            return Ok((status, Html(page.into_string())).into_response());
        }
    };
    let cookie = session::start(&state, &user).await?;
    state
        .audit(
            AuditEvent::new("login_succeeded")
                .actor(&user.email)
                .target(&user.id)
                .ip(&ip)
                .details(json!({"via": "dashboard"})),
        )
        .await;
    let mut response = see_other(safe_next(&fields.next));
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(crate::error::ApiError::internal)?,
    );
    Ok(response)
}

/// `POST /logout`: the session ends on the server, the cookie in the browser.
pub async fn sign_out(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    submitted: Result<Form<CsrfOnly>, FormRejection>,
) -> WebResult {
    let fields = form(submitted)?;
    session::check_csrf(&caller, &fields.csrf)?;
    session::end(&state, &caller).await?;
    state
        .audit(
            AuditEvent::new("logout")
                .actor(&caller.email)
                .target(&caller.user_id)
                .ip(&ip)
                .details(json!({"via": "dashboard"})),
        )
        .await;
    let mut response = see_other("/login");
    let cleared = HeaderValue::from_str(&session::cleared(&state))
        .map_err(|err| WebError(crate::error::ApiError::internal(err)))?;
    response.headers_mut().insert(header::SET_COOKIE, cleared);
    Ok(response)
}
