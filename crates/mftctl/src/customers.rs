//! `mftctl customers …`: the fleet's customers, their retrieval passwords and lifecycle.

use mftplus_types::fleet::{CreateCustomer, CustomerInfo, UpdateCustomer};
use serde_json::{json, Value};

use crate::cli::{CustomerCreateArgs, CustomerUpdateArgs, CustomersCommand};
use crate::context::Context;
use crate::desired::read_document;
use crate::error::CliError;
use crate::output::{details, emit, emit_json, note, or_dash, Table};

pub async fn run(ctx: &mut Context, command: &CustomersCommand) -> Result<u8, CliError> {
    match command {
        CustomersCommand::Create(args) => create(ctx, args).await,
        CustomersCommand::List => list(ctx).await,
        CustomersCommand::Get { id } => get(ctx, id).await,
        CustomersCommand::Update(args) => update(ctx, args).await,
        CustomersCommand::Delete { id, yes } => delete(ctx, id, *yes).await,
        CustomersCommand::Block { id } => {
            ctx.call(|c| async move { c.block_customer(id).await })
                .await?;
            done(ctx, "blocked", id)
        }
        CustomersCommand::Unblock { id } => {
            ctx.call(|c| async move { c.unblock_customer(id).await })
                .await?;
            done(ctx, "unblocked", id)
        }
        CustomersCommand::TriggerUpdate { id } => {
            ctx.call(|c| async move { c.trigger_customer_update(id).await })
                .await?;
            done(ctx, "update triggered for", id)
        }
        CustomersCommand::GeoRemoveAll { id } => {
            ctx.call(|c| async move { c.geo_remove_all(id).await })
                .await?;
            done(ctx, "edge-firewall rules removed for", id)
        }
    }
}

fn done(ctx: &Context, what: &str, id: &str) -> Result<u8, CliError> {
    if ctx.json() {
        emit_json(&json!({ "customer": id, "done": what }))?;
    } else {
        emit(&format!("{what} customer {id}"))?;
    }
    Ok(0)
}

/// `--overrides FILE`: a YAML or JSON object.
fn overrides(args_file: Option<&std::path::Path>) -> Result<Option<Value>, CliError> {
    let Some(path) = args_file else {
        return Ok(None);
    };
    let value: Value = read_document(path, "config overrides")?;
    if !value.is_object() {
        return Err(CliError::usage(format!(
            "--overrides {}: expected a mapping of config keys",
            path.display()
        )));
    }
    Ok(Some(value))
}

fn retrieval_password(from_stdin: bool) -> Result<Option<String>, CliError> {
    if !from_stdin {
        return Ok(None);
    }
    crate::input::password_from_stdin().map(Some).map_err(|e| {
        CliError::new(
            &e.code,
            e.message
                .replace("--password-stdin", "--retrieval-password-stdin"),
        )
    })
}

async fn create(ctx: &mut Context, args: &CustomerCreateArgs) -> Result<u8, CliError> {
    let request = CreateCustomer {
        id: args.id.clone(),
        name: args.name.clone(),
        email: args.email.clone(),
        domain: args.domain.clone(),
        locale: args.locale.map(|l| l.as_str().to_string()),
        config: overrides(args.overrides.as_deref())?,
        retrieval_password: retrieval_password(args.retrieval_password_stdin)?,
    };
    let request = &request;
    let created = ctx
        .call(|c| async move { c.create_customer(request).await })
        .await?;
    if ctx.json() {
        emit_json(&created)?;
        return Ok(0);
    }
    emit(&render(&created.customer))?;
    emit(&format!(
        "retrieval password: {}",
        created.retrieval_password
    ))?;
    note("the retrieval password is shown only once: the customer's box enrolls with it");
    Ok(0)
}

async fn update(ctx: &mut Context, args: &CustomerUpdateArgs) -> Result<u8, CliError> {
    let request = UpdateCustomer {
        name: args.name.clone(),
        email: args.email.clone(),
        domain: args.domain.clone(),
        locale: args.locale.map(|l| l.as_str().to_string()),
        config: overrides(args.overrides.as_deref())?,
        retrieval_password: retrieval_password(args.retrieval_password_stdin)?,
    };
    let (id, request) = (args.id.as_str(), &request);
    let updated = ctx
        .call(|c| async move { c.update_customer(id, request).await })
        .await?;
    if ctx.json() {
        emit_json(&updated)?;
    } else {
        emit(&render(&updated))?;
    }
    Ok(0)
}

async fn list(ctx: &mut Context) -> Result<u8, CliError> {
    let customers = ctx
        .call(|c| async move { c.list_customers().await })
        .await?;
    if ctx.json() {
        emit_json(&customers)?;
        return Ok(0);
    }
    if customers.is_empty() {
        note("no customers");
        return Ok(0);
    }
    let mut table = Table::new(&[
        "ID", "NAME", "EMAIL", "DOMAIN", "LOCALE", "STATUS", "CREATED",
    ]);
    for c in &customers {
        table.row(vec![
            c.id.clone(),
            c.name.clone(),
            c.email.clone(),
            or_dash(c.domain.as_deref()),
            c.locale.clone(),
            c.status.clone(),
            c.created_at.clone(),
        ]);
    }
    emit(&table.render())?;
    Ok(0)
}

async fn get(ctx: &mut Context, id: &str) -> Result<u8, CliError> {
    let customer = ctx
        .call(|c| async move { c.get_customer(id).await })
        .await?;
    if ctx.json() {
        emit_json(&customer)?;
    } else {
        emit(&render(&customer))?;
    }
    Ok(0)
}

async fn delete(ctx: &mut Context, id: &str, yes: bool) -> Result<u8, CliError> {
    if !yes {
        return Err(CliError::usage(format!(
            "deleting customer {id} removes its hosts, guests, reports and ops; pass --yes to confirm"
        )));
    }
    ctx.call(|c| async move { c.delete_customer(id).await })
        .await?;
    if ctx.json() {
        emit_json(&json!({ "deleted": id }))?;
    } else {
        emit(&format!("deleted customer {id}"))?;
    }
    Ok(0)
}

pub(crate) fn render(c: &CustomerInfo) -> String {
    let config = if c.config.as_object().is_some_and(|m| m.is_empty()) || c.config.is_null() {
        "-".to_string()
    } else {
        serde_json::to_string(&c.config).unwrap_or_else(|_| "?".into())
    };
    details(&[
        ("id", c.id.clone()),
        ("name", c.name.clone()),
        ("email", c.email.clone()),
        ("domain", or_dash(c.domain.as_deref())),
        ("locale", c.locale.clone()),
        ("status", c.status.clone()),
        ("config", config),
        ("created", c.created_at.clone()),
        ("updated", c.updated_at.clone()),
    ])
}
