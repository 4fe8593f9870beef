//! Every problem of a configuration at once, each with its key and where its value came from.
//!
//! Loading goes on past a problem wherever the rest can still be checked: an unset `${VAR}`, an
//! unknown key or a value of the wrong type is reported and replaced by the default, so the
//! rules that follow still see a whole [`ServerConfig`]. A key that already has a problem gets
//! no second one from a later stage (an unset `${JWT_SECRET}` is not also "secret not set").

use super::load::{ConfigError, Source, SECRET_PATHS};
use super::model::ServerConfig;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted key, `[i]` for list items: `rbac.roles.user.permissions[2]`.
    pub key: String,
    /// Where the value came from, as `mftctl config get` says it: `file /etc/mftplus/server.yaml`,
    /// `env JWT_SECRET`, `file … via ${JWT_SECRET}`, `default`.
    pub source: String,
    /// What is wrong, never a secret's value.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.key, self.source, self.message)
    }
}

/// `ConfigError::Many`'s text: a count, then one line per problem.
pub(super) fn render(problems: &[ConfigProblem]) -> String {
    let count = match problems.len() {
        1 => "1 problem".to_string(),
        n => format!("{n} problems"),
    };
    let mut text = format!("invalid configuration, {count}:");
    for problem in problems {
        text.push_str("\n  ");
        text.push_str(&problem.to_string());
    }
    text
}

/// The problems found so far, and the keys later stages must leave alone.
pub(super) struct Problems<'a> {
    sources: &'a BTreeMap<String, Source>,
    list: Vec<ConfigProblem>,
    settled: Vec<String>,
}

impl<'a> Problems<'a> {
    pub fn new(sources: &'a BTreeMap<String, Source>) -> Problems<'a> {
        Problems {
            sources,
            list: Vec::new(),
            settled: Vec::new(),
        }
    }

    /// A problem of an early stage (expansion, unknown keys, types): later stages stay quiet
    /// about its key, above and below.
    pub fn settle(&mut self, problem: ConfigProblem) {
        if self
            .settled
            .iter()
            .any(|settled| related(settled, &problem.key))
        {
            return;
        }
        self.settled.push(problem.key.clone());
        self.list.push(problem);
    }

    /// A rule broken at `key`; its source is looked up.
    pub fn push(&mut self, key: &str, message: impl Into<String>) {
        let source = self.source_of(key);
        self.push_from(key, source, message);
    }

    pub fn push_from(&mut self, key: &str, source: String, message: impl Into<String>) {
        if self.settled.iter().any(|settled| related(settled, key)) {
            return;
        }
        self.list.push(ConfigProblem {
            key: key.to_string(),
            source,
            message: message.into(),
        });
    }

    /// A [`ConfigError`] from a check that stops at its first finding (TLS settings, limits,
    /// lifetimes, a private file): its key is the message's leading dotted word, else `key`.
    pub fn push_error(&mut self, key: &str, err: ConfigError) {
        let text = match err {
            ConfigError::Invalid(text) => text,
            ConfigError::Many(problems) => {
                for problem in problems {
                    self.push_from(&problem.key, problem.source, problem.message);
                }
                return;
            }
            other => other.to_string(),
        };
        match leading_key(&text) {
            Some((found, rest)) if found.starts_with(key) || key.is_empty() => {
                let found = found.to_string();
                self.push(&found, rest.trim_start_matches([':', ' ']).to_string());
            }
            _ => self.push(key, text),
        }
    }

    /// The source of `key` or of the nearest section above it that has one.
    pub fn source_of(&self, key: &str) -> String {
        let mut path = strip_indexes(key);
        loop {
            if let Some(source) = self.sources.get(&path) {
                return source.describe();
            }
            match path.rfind('.') {
                Some(dot) => path.truncate(dot),
                None => return Source::Default.describe(),
            }
        }
    }

    pub fn into_result(self) -> Result<(), ConfigError> {
        if self.list.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Many(self.list))
        }
    }
}

/// Same key, or one is a section (or list) holding the other.
fn related(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    long.strip_prefix(short)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

fn strip_indexes(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut depth = 0;
    for c in key.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// `("server.limits.max_uri_bytes", " must be …")` from "server.limits.max_uri_bytes must be …".
fn leading_key(text: &str) -> Option<(&str, &str)> {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(text.len());
    let word = &text[..end];
    (word.contains('.') && !word.starts_with('.') && !word.ends_with('.'))
        .then(|| (word, &text[end..]))
}

/// The typed configuration from the layered tree. A key the model does not know, or a value
/// of the wrong type, is a problem at that key, and the key takes its default so the other
/// keys are still read; only when that cannot isolate the cause is the result `None`.
pub(super) fn typed(tree: &mut Value, problems: &mut Problems) -> Option<ServerConfig> {
    if let Ok(config) = serde_json::from_value(tree.clone()) {
        return Some(config);
    }
    let defaults = serde_json::to_value(ServerConfig::default()).expect("defaults serialise");
    isolate(tree, &defaults, &mut Vec::new(), problems);
    match serde_json::from_value(tree.clone()) {
        Ok(config) => Some(config),
        Err(err) => {
            problems.push("(configuration)", err.to_string());
            None
        }
    }
}

/// Whether the value at `path` alone (everything else default) fails to deserialise; if so,
/// narrows down to the failing keys below it, reports them and puts the defaults in their
/// place. Returns whether anything was reported.
fn isolate(
    tree: &mut Value,
    defaults: &Value,
    path: &mut Vec<String>,
    problems: &mut Problems,
) -> bool {
    let Some(here) = get(tree, path).cloned() else {
        return false;
    };
    let mut candidate = defaults.clone();
    put(&mut candidate, path, Some(here.clone()));
    let Err(err) = serde_json::from_value::<ServerConfig>(candidate) else {
        return false;
    };
    let default_here = get(defaults, path).cloned();
    if let (Value::Object(children), Some(Value::Object(_))) = (&here, &default_here) {
        let mut found = false;
        for child in children.keys() {
            path.push(child.clone());
            found |= isolate(tree, defaults, path, problems);
            path.pop();
        }
        if found {
            return true;
        }
    }
    let key = path.join(".");
    let message = describe(
        &key,
        &err.to_string(),
        path.last().map(String::as_str),
        defaults,
    );
    problems.settle(ConfigProblem {
        source: problems.source_of(&key),
        key,
        message,
    });
    put(tree, path, default_here);
    true
}

/// serde's message, reworded for a configuration key; a value that may be a secret is left out.
fn describe(key: &str, serde: &str, leaf: Option<&str>, defaults: &Value) -> String {
    let unknown = serde
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
        .filter(|(field, _)| Some(*field) == leaf);
    if let Some((_, rest)) = unknown {
        let expected = rest.strip_prefix(", ").unwrap_or("");
        let section = key.rsplit_once('.').map(|(s, _)| s).unwrap_or("");
        let siblings: Vec<String> = get(defaults, &split(section))
            .and_then(Value::as_object)
            .map(|map| map.keys().cloned().collect())
            .unwrap_or_default();
        return match leaf.and_then(|leaf| closest(leaf, &siblings)) {
            Some(near) => format!("unknown key (did you mean `{near}`?)"),
            None if expected.is_empty() => "unknown key".to_string(),
            None => format!("unknown key ({expected})"),
        };
    }
    let holds_secret = SECRET_PATHS
        .iter()
        .any(|secret| related(secret, key) && secret.len() >= key.len());
    if holds_secret && serde.starts_with("invalid type") {
        return match serde.rsplit_once(", expected ") {
            Some((_, expected)) => format!("invalid type (value not shown), expected {expected}"),
            None => "invalid type (value not shown)".to_string(),
        };
    }
    serde.to_string()
}

/// The known key within edit distance 2 of `typo`, if one is clearly the nearest.
fn closest(typo: &str, known: &[String]) -> Option<String> {
    known
        .iter()
        .map(|name| (distance(typo, name), name))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, name)| name.clone())
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (previous + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            previous = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

fn split(dotted: &str) -> Vec<String> {
    if dotted.is_empty() {
        Vec::new()
    } else {
        dotted.split('.').map(str::to_string).collect()
    }
}

fn get<'v>(tree: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(tree, |node, part| node.get(part))
}

/// Sets (or with `None` removes) the value at `path`, creating sections on the way.
fn put(tree: &mut Value, path: &[String], value: Option<Value>) {
    let Some((last, parents)) = path.split_last() else {
        if let Some(value) = value {
            *tree = value;
        }
        return;
    };
    let mut node = tree;
    for part in parents {
        if !node.get(part).is_some_and(Value::is_object) {
            node[part.as_str()] = Value::Object(Default::default());
        }
        node = node.get_mut(part).expect("just ensured");
    }
    match value {
        Some(value) => node[last.as_str()] = value,
        None => {
            if let Some(map) = node.as_object_mut() {
                map.remove(last);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(tree: &mut Value) -> (Option<ServerConfig>, Vec<ConfigProblem>) {
        let sources = BTreeMap::from([(
            "auth".to_string(),
            Source::File("/etc/mftplus/server.yaml".into()),
        )]);
        let mut problems = Problems::new(&sources);
        let config = typed(tree, &mut problems);
        let list = match problems.into_result() {
            Ok(()) => Vec::new(),
            Err(ConfigError::Many(list)) => list,
            Err(other) => panic!("{other}"),
        };
        (config, list)
    }

    #[test]
    fn every_unknown_key_and_wrong_type_is_reported_and_the_rest_is_read() {
        let mut tree = serde_json::to_value(ServerConfig::default()).unwrap();
        tree["auth"]["jwt"]["expiraton"] = json!(10);
        tree["auth"]["jwt"]["issuer"] = json!("kept");
        tree["auth"]["login"]["max_failures"] = json!("many");
        tree["database"]["url"] = json!(12345);
        tree["nonsense"] = json!({"a": 1});
        tree["rbac"]["roles"]["custom"] = json!({"perms": ["x"]});
        tree["rbac"]["roles"]["fine"] = json!({"permissions": ["logs:read"]});
        let (config, problems) = run(&mut tree);
        let config = config.expect("the rest is read");
        assert_eq!(config.auth.jwt.issuer, "kept");
        assert_eq!(config.auth.login.max_failures, 5, "back to the default");
        assert!(config.rbac.roles.contains_key("fine"));
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 5, "{lines:#?}");
        let expect = [
            "auth.jwt.expiraton (file /etc/mftplus/server.yaml): unknown key (did you mean `expiration`?)",
            "auth.login.max_failures (file /etc/mftplus/server.yaml): invalid type: string \"many\", expected u32",
            "database.url (default): invalid type (value not shown), expected a string",
            "nonsense (default): unknown key (expected one of",
            "rbac.roles.custom (default): unknown field `perms`, expected `permissions`",
        ];
        for (line, expected) in lines.iter().zip(expect) {
            assert!(line.starts_with(expected), "{line}\n  vs {expected}");
        }
        assert!(!lines.concat().contains("12345"));
    }

    #[test]
    fn later_stages_leave_a_reported_key_alone() {
        let sources = BTreeMap::new();
        let mut problems = Problems::new(&sources);
        problems.settle(ConfigProblem {
            key: "auth.jwt.secret".into(),
            source: "file x via ${JWT_SECRET}".into(),
            message: "${JWT_SECRET} is not set".into(),
        });
        problems.push("auth.jwt.secret", "not set");
        problems.push("auth.jwt.secretive", "another key");
        problems.push_error(
            "server.limits",
            ConfigError::Invalid("server.limits.max_uri_bytes must be at least 1024".into()),
        );
        problems.push_error("tls", ConfigError::Invalid("bad cipher".into()));
        let Err(err) = problems.into_result() else {
            panic!("problems were found")
        };
        assert_eq!(
            err.to_string(),
            "invalid configuration, 4 problems:\n  \
             auth.jwt.secret (file x via ${JWT_SECRET}): ${JWT_SECRET} is not set\n  \
             auth.jwt.secretive (default): another key\n  \
             server.limits.max_uri_bytes (default): must be at least 1024\n  \
             tls (default): bad cipher"
        );
    }
}
