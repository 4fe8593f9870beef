//! `mftctl users …`.

use mftplus_types::api::{CreateUserRequest, UpdateUserRequest, User, UserType};
use serde_json::json;

use crate::cli::{UserCreateArgs, UserTypeArg, UserUpdateArgs, UsersCommand};
use crate::context::Context;
use crate::error::CliError;
use crate::input;
use crate::output::{details, emit, emit_json, note, or_dash, Table};

pub async fn run(ctx: &mut Context, command: &UsersCommand) -> Result<u8, CliError> {
    match command {
        UsersCommand::Create(args) => create(ctx, args).await,
        UsersCommand::Update(args) => update(ctx, args).await,
        UsersCommand::List => list(ctx).await,
        UsersCommand::Get { user } => get(ctx, user).await,
        UsersCommand::Delete { user } => delete(ctx, user).await,
        UsersCommand::ResetPassword(args) => crate::passwords::reset(ctx, args).await,
    }
}

async fn create(ctx: &mut Context, args: &UserCreateArgs) -> Result<u8, CliError> {
    let password = if args.password_stdin {
        Some(input::password_from_stdin()?)
    } else {
        None
    };
    let request = CreateUserRequest {
        email: args.email.clone(),
        name: args.name.clone().unwrap_or_default(),
        role: args.role.clone(),
        user_type: args.user_type.map(|t| match t {
            UserTypeArg::User => UserType::User,
            UserTypeArg::Service => UserType::Service,
        }),
        password,
    };
    let request = &request;
    let created = ctx
        .call(|c| async move { c.create_user(request.clone()).await })
        .await?;
    if ctx.json() {
        emit_json(&created)?;
        return Ok(0);
    }
    emit(&render_user(&created.user))?;
    if let Some(password) = &created.initial_password {
        emit(&format!("initial password: {password}"))?;
        note("the initial password is shown only once: pass it on securely and have the user change it");
    }
    Ok(0)
}

async fn update(ctx: &mut Context, args: &UserUpdateArgs) -> Result<u8, CliError> {
    let password = if args.password_stdin {
        Some(input::password_from_stdin()?)
    } else {
        None
    };
    let request = UpdateUserRequest {
        name: args.name.clone(),
        role: args.role.clone(),
        password,
    };
    let (user, request) = (args.user.as_str(), &request);
    let updated = ctx
        .call(|c| async move { c.update_user(user, request.clone()).await })
        .await?;
    if ctx.json() {
        emit_json(&updated)?;
    } else {
        emit(&render_user(&updated))?;
    }
    Ok(0)
}

async fn list(ctx: &mut Context) -> Result<u8, CliError> {
    let users = ctx.call(|c| async move { c.list_users().await }).await?;
    if ctx.json() {
        emit_json(&users)?;
        return Ok(0);
    }
    let mut table = Table::new(&["EMAIL", "NAME", "ROLE", "TYPE", "CREATED", "LAST LOGIN"]);
    for user in &users {
        table.row(vec![
            user.email.clone(),
            or_dash(Some(&user.name)),
            user.role.clone(),
            user.user_type.as_str().to_string(),
            user.created_at.clone(),
            or_dash(user.last_login_at.as_deref()),
        ]);
    }
    emit(&table.render())?;
    Ok(0)
}

async fn get(ctx: &mut Context, user: &str) -> Result<u8, CliError> {
    let found = ctx.call(|c| async move { c.get_user(user).await }).await?;
    if ctx.json() {
        emit_json(&found)?;
    } else {
        emit(&render_user(&found))?;
    }
    Ok(0)
}

async fn delete(ctx: &mut Context, user: &str) -> Result<u8, CliError> {
    ctx.call(|c| async move { c.delete_user(user).await })
        .await?;
    if ctx.json() {
        emit_json(&json!({ "deleted": user }))?;
    } else {
        emit(&format!("deleted user {user}"))?;
    }
    Ok(0)
}

fn render_user(user: &User) -> String {
    details(&[
        ("id", user.id.clone()),
        ("email", user.email.clone()),
        ("name", or_dash(Some(&user.name))),
        ("role", user.role.clone()),
        ("type", user.user_type.as_str().to_string()),
        ("created", user.created_at.clone()),
        ("updated", user.updated_at.clone()),
        ("last login", or_dash(user.last_login_at.as_deref())),
    ])
}
