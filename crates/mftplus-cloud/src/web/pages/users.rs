//! People's accounts (seed 001: "mftctl users create --email … --role user", "users update
//! --role admin", "users list", "users delete", "revoke all tokens for a user"): the list, a
//! page per account, and the administrator's forms. A generated password is shown once, on
//! the answer page, and nowhere after.
//!
//! Bounded work: the list is one store query (`app::users::page`, [`PAGE`] users by email
//! behind an email cursor), an account's page one lookup.

use super::form;
use super::hosts::{count, non_empty, query_string, when_or};
use super::CsrfOnly;
use crate::app;
use crate::auth::Caller;
use crate::extract::ApiPath;
use crate::middleware::{ClientIp, Scope};
use crate::rbac::may_grant;
use crate::state::AppState;
use crate::web::layout::{page, when, Nav};
use crate::web::{see_other, session, WebError, WebResult};
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use http::{header, HeaderValue};
use maud::{html, Markup};
use mftplus_types::api::{
    CreateUserRequest, CreatedUser, PasswordReset, ResetPasswordRequest, UpdateUserRequest, User,
    UserType,
};
use serde::Deserialize;

/// Users per page of the list.
pub const PAGE: u32 = 50;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct View {
    /// The cursor: users whose email sorts after this one.
    after: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NewUser {
    csrf: String,
    email: String,
    name: String,
    role: String,
    /// `person` (a generated password, shown once) or `service` (no password).
    kind: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RoleForm {
    csrf: String,
    role: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PasswordForm {
    csrf: String,
    /// Empty: the server generates one.
    password: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DeleteForm {
    csrf: String,
    /// The required "yes, delete" checkbox.
    confirm: String,
}

/// The roles `caller` may give, in the configured order.
fn grantable(state: &AppState, caller: &Caller) -> Vec<String> {
    state
        .rbac
        .role_names()
        .into_iter()
        .filter(|role| may_grant(&caller.role, role))
        .collect()
}

fn role_select(roles: &[String], selected: &str) -> Markup {
    html! {
        select #role name="role" required {
            @for role in roles {
                option value=(role) selected[role == selected] { (role) }
            }
        }
    }
}

fn kind_label(user: &User) -> &'static str {
    match user.user_type {
        UserType::Service => "Service account",
        UserType::User => "Person",
    }
}

/// `GET /users`.
pub async fn index(
    State(state): State<AppState>,
    caller: Caller,
    Query(view): Query<View>,
) -> WebResult {
    let listing = app::users::page(&state, non_empty(&view.after), PAGE).await?;
    let manage = state.rbac.allows(&caller.role, "users:manage");
    let now_ms = state.clock.now_ms();
    let body = html! {
        @if listing.users.is_empty() {
            p.empty #no-users {
                @if view.after.is_empty() { "No users yet." } @else { "No more users. " a href="/users" { "Back to the first page" } }
            }
        } @else {
            table #users {
                caption.muted { (count(listing.users.len(), "user")) ", by email" }
                thead { tr {
                    th scope="col" { "Email" } th scope="col" { "Name" } th scope="col" { "Role" }
                    th scope="col" { "Kind" } th scope="col" { "Created" } th scope="col" { "Last sign-in" }
                } }
                tbody {
                    @for user in &listing.users {
                        tr data-user=(user.id) {
                            td { a href={"/users/" (user.id)} { (user.email) } }
                            td { (user.name) }
                            td { (user.role) }
                            td { (kind_label(user)) }
                            td { (when(&user.created_at, now_ms)) }
                            td { (when_or(user.last_login_at.as_deref(), now_ms, "never")) }
                        }
                    }
                }
            }
            @if let Some(after) = &listing.next_after {
                p.pager { a rel="next" href={"/users" (query_string(&[("after", after)]))} { "Next page" } }
            }
        }
        @if manage { (create_form(&state, &caller)) }
    };
    let nav = Nav::of(&state, &caller);
    Ok(Html(page("Users", Some((&caller, nav)), body).into_string()).into_response())
}

fn create_form(state: &AppState, caller: &Caller) -> Markup {
    let roles = grantable(state, caller);
    html! {
        h2 { "Add a user" }
        form.card method="post" action="/users" {
            input type="hidden" name="csrf" value=(session::csrf(caller));
            label for="email" { "Email" }
            input #email type="email" name="email" required maxlength="254" autocomplete="off";
            label for="name" { "Name (optional)" }
            input #name type="text" name="name" maxlength="200";
            label for="role" { "Role" }
            (role_select(&roles, &state.rbac.default_role))
            fieldset {
                legend { "Signing in" }
                input #kind-person type="radio" name="kind" value="person" checked;
                label.inline for="kind-person" { "A person: generate an initial password (shown once, on the next page)" }
                input #kind-service type="radio" name="kind" value="service";
                label.inline for="kind-service" { "A service account: no password, it uses API keys" }
            }
            p { button #create-user type="submit" { "Add user" } }
        }
    }
}

/// `POST /users`: the new account, with its initial password once.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    submitted: Result<Form<NewUser>, FormRejection>,
) -> WebResult {
    let fields = form(submitted)?;
    session::check_csrf(&caller, &fields.csrf)?;
    let user_type = match fields.kind.as_str() {
        "service" => UserType::Service,
        _ => UserType::User,
    };
    let request = CreateUserRequest {
        email: fields.email,
        name: fields.name,
        role: non_empty(&fields.role).map(str::to_string),
        user_type: Some(user_type),
        password: None,
    };
    let created = app::users::create(&state, &caller, &ip, request).await?;
    let nav = Nav::of(&state, &caller);
    let body = created_once(&created);
    Ok(Html(page("User added", Some((&caller, nav)), body).into_string()).into_response())
}

fn created_once(created: &CreatedUser) -> Markup {
    let user = &created.user;
    html! {
        div.card {
            p { strong { (user.email) } " was added with role " strong { (user.role) } "." }
            @if let Some(password) = &created.initial_password {
                p { "Initial password — give it to them over a safe channel now: it is not shown again." }
                code.secret #new-password { (password) }
                p { button #copy-password type="button" data-copy="new-password" hidden { "Copy" } }
            } @else {
                p.muted { "A service account has no password: create an API key for it." }
            }
        }
        p { a href={"/users/" (user.id)} { "Open " (user.email) } " · " a href="/users" { "Back to users" } }
    }
}

/// `GET /users/{user_id}`: one account; the administrator's forms for it.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ApiPath(user_id): ApiPath<String>,
) -> WebResult {
    let row = app::users::visible(&state, &caller, scope, &user_id).await?;
    let user = crate::handlers::user_to_api(&state, &row);
    let now_ms = state.clock.now_ms();
    let manage = state.rbac.allows(&caller.role, "users:manage");
    let revoke_tokens = state.rbac.allows(&caller.role, "tokens:manage")
        || (user.id == caller.user_id && state.rbac.allows(&caller.role, "tokens:manage:own"));
    let body = html! {
        dl.facts #user {
            dt { "Email" } dd { (user.email) }
            dt { "Name" } dd { @if user.name.is_empty() { span.muted { "—" } } @else { (user.name) } }
            dt { "Role" } dd { (user.role) }
            dt { "Kind" } dd { (kind_label(&user)) }
            dt { "Created" } dd { (when(&user.created_at, now_ms)) }
            dt { "Last sign-in" } dd { (when_or(user.last_login_at.as_deref(), now_ms, "never")) }
        }
        @if manage { (manage_forms(&state, &caller, &user)) }
        @if revoke_tokens {
            h2 { "Sessions and tokens" }
            form.card method="post" action={"/users/" (user.id) "/tokens/revoke"} {
                input type="hidden" name="csrf" value=(session::csrf(&caller));
                p { "Ends every session and token of " (user.email) " now, on every device. API keys are not affected." }
                button.secondary #revoke-tokens type="submit" { "Revoke all tokens" }
            }
        }
        p { a href="/users" { "Back to users" } }
    };
    let nav = Nav::of(&state, &caller);
    Ok(Html(page(&user.email, Some((&caller, nav)), body).into_string()).into_response())
}

/// Change the role, reset the password, delete: what `users:manage` offers, only for an
/// account whose role the caller could grant (the flow refuses the rest anyway).
fn manage_forms(state: &AppState, caller: &Caller, user: &User) -> Markup {
    let csrf = session::csrf(caller);
    let outranked = !may_grant(&caller.role, &user.role);
    let itself = user.id == caller.user_id;
    html! {
        @if outranked {
            p.muted { "Your role cannot change a " (user.role) " account." }
        } @else {
            h2 { "Role" }
            form.card method="post" action={"/users/" (user.id) "/role"} {
                input type="hidden" name="csrf" value=(csrf);
                label for="role" { "Role" }
                (role_select(&grantable(state, caller), &user.role))
                p { button #change-role type="submit" { "Change role" } }
            }
            @if user.user_type == UserType::User && itself {
                h2 { "Password" }
                p.muted { "Change your own password with your current one: " code { "mftctl passwd" } "." }
            }
            @if user.user_type == UserType::User && !itself {
                h2 { "Password" }
                form.card method="post" action={"/users/" (user.id) "/password"} {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="password" { "New password (leave empty to generate one, shown once)" }
                    input #password type="password" name="password" autocomplete="new-password" maxlength="1024";
                    p.muted { "Every session and token of the account ends." }
                    p { button #reset-password type="submit" { "Reset password" } }
                }
            }
            @if !itself {
                h2 { "Delete" }
                form.card method="post" action={"/users/" (user.id) "/delete"} {
                    input type="hidden" name="csrf" value=(csrf);
                    input #confirm type="checkbox" name="confirm" value="yes" required;
                    label.inline for="confirm" { "Yes, delete " (user.email) ", its tokens and its API keys" }
                    p { button.secondary #delete-user type="submit" { "Delete user" } }
                }
            }
        }
    }
}

/// `POST /users/{user_id}/role`.
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(user_id): ApiPath<String>,
    submitted: Result<Form<RoleForm>, FormRejection>,
) -> WebResult {
    let fields = form(submitted)?;
    session::check_csrf(&caller, &fields.csrf)?;
    let request = UpdateUserRequest {
        role: Some(fields.role),
        ..UpdateUserRequest::default()
    };
    let user = app::users::update(&state, &caller, &ip, &user_id, request).await?;
    Ok(see_other(&format!("/users/{}", user.id)))
}

/// `POST /users/{user_id}/password`: the generated password once, or that it was set.
pub async fn password(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(user_id): ApiPath<String>,
    submitted: Result<Form<PasswordForm>, FormRejection>,
) -> WebResult {
    let fields = form(submitted)?;
    session::check_csrf(&caller, &fields.csrf)?;
    let request = ResetPasswordRequest {
        password: Some(fields.password).filter(|password| !password.is_empty()),
    };
    let reset = app::users::reset_password(&state, &caller, &ip, &user_id, request).await?;
    if reset.user.id == caller.user_id {
        // The reset ended every session of the account, this one too.
        return signed_out(&state);
    }
    let nav = Nav::of(&state, &caller);
    let body = reset_once(&reset);
    Ok(Html(page("Password reset", Some((&caller, nav)), body).into_string()).into_response())
}

fn reset_once(reset: &PasswordReset) -> Markup {
    let user = &reset.user;
    html! {
        div.card {
            @if let Some(password) = &reset.generated_password {
                p { "New password of " strong { (user.email) } " — give it to them over a safe channel now: it is not shown again." }
                code.secret #new-password { (password) }
                p { button #copy-password type="button" data-copy="new-password" hidden { "Copy" } }
            } @else {
                p { "The password of " strong { (user.email) } " is set." }
            }
            p.muted { (count(reset.revoked_tokens as usize, "session or token")) " ended." }
        }
        p { a href={"/users/" (user.id)} { "Back to " (user.email) } }
    }
}

/// `POST /users/{user_id}/delete`: only with the confirmation box ticked.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(user_id): ApiPath<String>,
    submitted: Result<Form<DeleteForm>, FormRejection>,
) -> WebResult {
    let fields = form(submitted)?;
    session::check_csrf(&caller, &fields.csrf)?;
    if fields.confirm != "yes" {
        return Err(WebError(crate::error::ApiError::validation(
            "tick the box to confirm the deletion",
        )));
    }
    app::users::delete(&state, &caller, &ip, &user_id).await?;
    Ok(see_other("/users"))
}

/// `POST /users/{user_id}/tokens/revoke`: every session and token of the account; the
/// caller's own account signs the caller out.
pub async fn revoke_tokens(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
    ClientIp(ip): ClientIp,
    ApiPath(user_id): ApiPath<String>,
    submitted: Result<Form<CsrfOnly>, FormRejection>,
) -> WebResult {
    let fields = form(submitted)?;
    session::check_csrf(&caller, &fields.csrf)?;
    let user = app::users::visible(&state, &caller, scope, &user_id).await?;
    app::tokens::revoke_for_user(&state, &caller, scope, &ip, &user.id).await?;
    if user.id == caller.user_id {
        return signed_out(&state);
    }
    Ok(see_other(&format!("/users/{}", user.id)))
}

/// To the sign-in page, with the session cookie removed: the session just ended.
pub(super) fn signed_out(state: &AppState) -> WebResult {
    let mut response: Response = see_other("/login");
    let cleared = HeaderValue::from_str(&session::cleared(state))
        .map_err(|err| WebError(crate::error::ApiError::internal(err)))?;
    response.headers_mut().insert(header::SET_COOKIE, cleared);
    Ok(response)
}
