//! `mftctl config get KEY`: the server's effective value of one setting.

use mftplus_types::api::ConfigValue;

use crate::cli::ConfigCommand;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{emit, emit_json};

pub async fn run(ctx: &mut Context, command: &ConfigCommand) -> Result<u8, CliError> {
    let ConfigCommand::Get { key } = command;
    let key = key.as_str();
    let mut value = ctx
        .call(|c| async move { c.server_config(key).await })
        .await?;
    if value.secret {
        // The contract says the server sends null here; this keeps mftctl safe if one day it
        // does not.
        value.value = None;
    }
    if ctx.json() {
        emit_json(&value)?;
    } else {
        emit(&render(&value))?;
    }
    Ok(0)
}

/// The bare value, so `$(mftctl config get rbac.enabled)` is usable in a script. A secret shows
/// only its `display` (where it comes from), whatever the server put in `value`; other values
/// use the server's `display` too when it gave one (YAML for a whole section reads better than
/// JSON on one line).
fn render(value: &ConfigValue) -> String {
    if value.secret || !value.display.is_empty() {
        return value.display.clone();
    }
    match &value.value {
        Some(serde_json::Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
        None => value.display.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(value: Option<serde_json::Value>, secret: bool, display: &str) -> ConfigValue {
        ConfigValue {
            key: "k".into(),
            value,
            secret,
            display: display.into(),
            source: "default".into(),
        }
    }

    #[test]
    fn renders_plain_values_bare() {
        assert_eq!(render(&config(Some(json!(true)), false, "true")), "true");
        assert_eq!(
            render(&config(Some(json!("RS256")), false, "RS256")),
            "RS256"
        );
        assert_eq!(
            render(&config(Some(json!(["a@example.com"])), false, "")),
            r#"["a@example.com"]"#
        );
    }

    #[test]
    fn never_prints_a_secret_value() {
        let leaked = config(Some(json!("hunter2")), true, "set (from env JWT_SECRET)");
        assert_eq!(render(&leaked), "set (from env JWT_SECRET)");
    }
}
