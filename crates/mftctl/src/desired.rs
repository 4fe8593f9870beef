//! `mftctl desired get|set|diff`: a host's desired state as a YAML (or JSON) document the
//! operator edits. `set` publishes the benign changes at once; destructive ones come back as
//! ops waiting for `mftctl ops sign`.

use std::path::Path;

use mftplus_types::fleet::{ChangeKind, DesiredChange, DesiredState, OpInfo, PutDesiredState};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::cli::DesiredCommand;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{emit, emit_json, note, Table};

pub async fn run(ctx: &mut Context, command: &DesiredCommand) -> Result<u8, CliError> {
    match command {
        DesiredCommand::Get { host, output } => get(ctx, host, output.as_deref()).await,
        DesiredCommand::Set {
            host,
            file,
            expected_generation,
        } => set(ctx, host, file, *expected_generation).await,
        DesiredCommand::Diff { host, file } => diff(ctx, host, file).await,
    }
}

/// Reads a YAML or JSON file (by extension: `.json` is JSON, anything else YAML, which also
/// reads JSON) into `T`, naming the file, what it should have held and where it went wrong.
pub fn read_document<T: DeserializeOwned>(path: &Path, what: &str) -> Result<T, CliError> {
    let text = read_text(path, what)?;
    parse_text(&text, path, what)
}

fn read_text(path: &Path, what: &str) -> Result<String, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::io(format!("cannot read {}", path.display()), e))?;
    if text.trim().is_empty() {
        return Err(invalid(path, what, "the file is empty"));
    }
    Ok(text)
}

fn invalid(path: &Path, what: &str, detail: impl std::fmt::Display) -> CliError {
    CliError::new(
        "invalid_file",
        format!("{} is not a valid {what}: {detail}", path.display()),
    )
}

/// Straight from the text into `T`, so the error carries the field path and line.
fn parse_text<T: DeserializeOwned>(text: &str, path: &Path, what: &str) -> Result<T, CliError> {
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        serde_json::from_str(text).map_err(|e| invalid(path, what, e))
    } else {
        serde_yaml::from_str(text).map_err(|e| invalid(path, what, e))
    }
}

/// A desired-state file: the bare document `desired get` writes as YAML, or the
/// `{generation, desired_state}` answer `desired get --json` prints, whose generation then
/// guards the edit unless `--expected-generation` says otherwise.
#[derive(Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesiredFile {
    pub desired_state: DesiredState,
    #[serde(default)]
    pub generation: Option<u64>,
}

pub fn read_desired(path: &Path) -> Result<DesiredFile, CliError> {
    const WHAT: &str = "desired state";
    let text = read_text(path, WHAT)?;
    let shape: Value = parse_text(&text, path, WHAT)?;
    let Value::Object(top) = shape else {
        return Err(invalid(
            path,
            WHAT,
            "expected a mapping with guests, storage and versions",
        ));
    };
    // Read as a bare document, the wrapper's two keys would be unknown top-level fields, which
    // the cloud treats as destructive changes.
    if top.contains_key("desired_state") {
        return parse_text(&text, path, WHAT);
    }
    Ok(DesiredFile {
        desired_state: parse_text(&text, path, WHAT)?,
        generation: None,
    })
}

async fn get(ctx: &mut Context, host: &str, output: Option<&Path>) -> Result<u8, CliError> {
    let response = ctx
        .call(|c| async move { c.get_desired_state(host).await })
        .await?;
    let text = if ctx.json() {
        serde_json::to_string_pretty(&response)
            .map_err(|e| CliError::new("internal", format!("cannot encode JSON: {e}")))?
    } else {
        let yaml = serde_yaml::to_string(&response.desired_state)
            .map_err(|e| CliError::new("internal", format!("cannot encode YAML: {e}")))?;
        format!(
            "# desired state of host {host}, generation {}\n{yaml}",
            response.generation
        )
    };
    match output {
        Some(path) => {
            let mut text = text;
            if !text.ends_with('\n') {
                text.push('\n');
            }
            std::fs::write(path, text)
                .map_err(|e| CliError::io(format!("cannot write {}", path.display()), e))?;
            note(&format!(
                "wrote generation {} to {}; edit it, then `mftctl desired set {host} {} --expected-generation {}`",
                response.generation,
                path.display(),
                path.display(),
                response.generation
            ));
        }
        None => emit(&text)?,
    }
    Ok(0)
}

async fn set(
    ctx: &mut Context,
    host: &str,
    file: &Path,
    expected_generation: Option<u64>,
) -> Result<u8, CliError> {
    let parsed = read_desired(file)?;
    let request = PutDesiredState {
        desired_state: parsed.desired_state,
        expected_generation: expected_generation.or(parsed.generation),
    };
    let request = &request;
    let response = ctx
        .call(|c| async move { c.put_desired_state(host, request).await })
        .await?;
    if ctx.json() {
        emit_json(&response)?;
        return Ok(0);
    }
    if response.published.is_empty() {
        emit(&format!(
            "host {host}: nothing published; generation stays {}",
            response.generation
        ))?;
    } else {
        emit(&format!(
            "host {host}: published generation {} with {} benign change(s):",
            response.generation,
            response.published.len()
        ))?;
        emit(&changes_table(&response.published))?;
    }
    if !response.pending_ops.is_empty() {
        emit(&format!(
            "{} destructive change(s) wait for a signature:",
            response.pending_ops.len()
        ))?;
        emit(&pending_table(&response.pending_ops))?;
        note("review and sign them with `mftctl ops sign --pending`");
    }
    Ok(0)
}

async fn diff(ctx: &mut Context, host: &str, file: &Path) -> Result<u8, CliError> {
    let parsed = read_desired(file)?;
    let request = PutDesiredState {
        desired_state: parsed.desired_state,
        expected_generation: parsed.generation,
    };
    let request = &request;
    let diff = ctx
        .call(|c| async move { c.diff_desired_state(host, request).await })
        .await?;
    if ctx.json() {
        emit_json(&diff)?;
        return Ok(0);
    }
    if diff.changes.is_empty() {
        emit(&format!(
            "no changes against generation {} of host {host}",
            diff.generation
        ))?;
        return Ok(0);
    }
    emit(&format!(
        "against generation {} of host {host}:",
        diff.generation
    ))?;
    emit(&changes_table(&diff.changes))?;
    let destructive = diff
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Destructive)
        .count();
    if destructive > 0 {
        note(&format!(
            "{destructive} destructive change(s) would become ops that need `mftctl ops sign`"
        ));
    }
    Ok(0)
}

fn kind_word(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Benign => "benign",
        ChangeKind::Destructive => "destructive",
    }
}

pub(crate) fn changes_table(changes: &[DesiredChange]) -> String {
    let mut table = Table::new(&["KIND", "OP", "PATH", "PARAMS"]);
    for change in changes {
        table.row(vec![
            kind_word(change.kind).to_string(),
            change.op.clone(),
            change.path.clone(),
            params_text(&change.params),
        ]);
    }
    table.render()
}

fn pending_table(ops: &[OpInfo]) -> String {
    let mut table = Table::new(&["OP ID", "TYPE", "GUEST", "EXPIRES"]);
    for op in ops {
        table.row(vec![
            op.op_id.clone(),
            op.op_type.clone(),
            op.guest_id.clone().unwrap_or_else(|| "-".into()),
            op.expires_at.clone(),
        ]);
    }
    table.render()
}

fn params_text(params: &Value) -> String {
    match params {
        Value::Null => "-".into(),
        Value::Object(map) if map.is_empty() => "-".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    const YAML: &str = "\
# desired state of host h-1, generation 3
guests:
  web:
    spec: {cpu_cores: 2, memory_mb: 2048, disk_gb: 40, image: debian-12}
    run_state: stopped
storage:
  uuid-1: {role: bulk, class: slow, backup: daily}
versions: {agent: 1.2.0}
";

    #[test]
    fn reads_yaml_and_json_alike() {
        let dir = tempfile::tempdir().unwrap();
        let from_yaml = read_desired(&write(&dir, "d.yaml", YAML)).unwrap();
        let state = &from_yaml.desired_state;
        assert_eq!(state.guests["web"].spec.memory_mb, 2048);
        assert_eq!(
            state.guests["web"].run_state,
            mftplus_types::fleet::RunState::Stopped
        );
        assert_eq!(
            state.storage["uuid-1"].backup,
            mftplus_types::fleet::BackupSchedule::Daily
        );
        assert_eq!(state.versions.agent.as_deref(), Some("1.2.0"));
        assert!(state.extra.is_empty());
        assert_eq!(from_yaml.generation, None);

        let json_text = serde_json::to_string(&from_yaml.desired_state).unwrap();
        let from_json = read_desired(&write(&dir, "d.json", &json_text)).unwrap();
        assert_eq!(from_json, from_yaml);
    }

    #[test]
    fn the_get_json_wrapper_carries_its_generation() {
        let dir = tempfile::tempdir().unwrap();
        let wrapped = json!({
            "generation": 7,
            "desired_state": {"versions": {"controller": "2.0"}}
        });
        let path = write(&dir, "w.json", &wrapped.to_string());
        let parsed = read_desired(&path).unwrap();
        assert_eq!(parsed.generation, Some(7));
        assert_eq!(
            parsed.desired_state.versions.controller.as_deref(),
            Some("2.0")
        );
        // The wrapper's own keys must not leak in as unknown (destructive) fields.
        assert!(parsed.desired_state.extra.is_empty());

        let odd = json!({"generation": 7, "desired_state": {}, "guests": {}});
        let err = read_desired(&write(&dir, "odd.json", &odd.to_string())).unwrap_err();
        assert!(err.message.contains("unknown field `guests`"), "{err}");
    }

    #[test]
    fn unknown_fields_are_kept_for_the_cloud_to_classify() {
        let dir = tempfile::tempdir().unwrap();
        let parsed = read_desired(&write(&dir, "u.yaml", "firewall: {open: [22]}\n")).unwrap();
        assert_eq!(
            parsed.desired_state.extra["firewall"],
            json!({"open": [22]})
        );
    }

    #[test]
    fn bad_files_say_what_is_wrong_and_where() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text, needle) in [
            ("empty.yaml", "  \n", "empty"),
            ("list.yaml", "- a\n- b\n", "expected a mapping"),
            ("syntax.yaml", "guests: {web: [\n", "d.yaml"),
            ("syntax.json", "{\"guests\": ", "EOF"),
            (
                "types.yaml",
                "guests:\n  web:\n    spec: {cpu_cores: many}\n",
                "cpu_cores",
            ),
            ("guests-list.yaml", "guests: [web]\n", "map"),
        ] {
            let path = write(&dir, name, text);
            let err = read_desired(&path).unwrap_err();
            assert_eq!(err.code, "invalid_file", "{name}: {err}");
            assert!(err.message.contains(name), "{name}: {err}");
            if needle != "d.yaml" {
                assert!(
                    err.message.to_lowercase().contains(&needle.to_lowercase()),
                    "{name}: expected {needle:?} in {err}"
                );
            }
        }
        let missing = dir.path().join("missing.yaml");
        assert_eq!(read_desired(&missing).unwrap_err().code, "io");
    }

    #[test]
    fn changes_render_with_their_kind() {
        let changes = vec![
            DesiredChange {
                kind: ChangeKind::Benign,
                op: "guest.create".into(),
                guest_id: Some("web".into()),
                path: "/guests/web".into(),
                params: json!({}),
            },
            DesiredChange {
                kind: ChangeKind::Destructive,
                op: "storage.wipe".into(),
                guest_id: None,
                path: "/storage/uuid-1/wipe".into(),
                params: json!({"durable_id": "uuid-1"}),
            },
        ];
        assert_eq!(
            changes_table(&changes),
            "KIND         OP            PATH                  PARAMS\n\
             benign       guest.create  /guests/web           -\n\
             destructive  storage.wipe  /storage/uuid-1/wipe  {\"durable_id\":\"uuid-1\"}\n"
        );
    }
}
