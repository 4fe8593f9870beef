//! `${VAR}` in the configuration file: seed 001 writes `secret: ${JWT_SECRET}`.
//!
//! Expansion runs on the parsed file, string scalars only, before the file is layered over the
//! defaults, so a `$` in a quoted password that is not `${…}` is never touched and a mapping key
//! is never expanded. The syntax is the shell's, reduced to what configuration needs:
//!
//! - `${NAME}`: the variable's value; unset is an error naming the key and the variable;
//! - `${NAME:-default}`: the default when the variable is unset or empty;
//! - `$${`: a literal `${`.
//!
//! A value that was a reference and is not a secret is then read as a YAML scalar, as
//! environment values are, so `expiration: ${EXPIRY}` is a number. Secrets stay strings.
//! Variables are read from the same environment as the environment layer; values that come from
//! the environment layer itself are never expanded.

use serde_json::Value;
use std::collections::BTreeMap;

/// One string scalar of the file that held at least one reference, expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Expanded {
    /// Dotted key, `[i]` for list items: `auth.jwt.secret`, `rbac.admin_users[0]`.
    pub key: String,
    /// The variables whose values went in, in order.
    pub vars: Vec<String>,
    /// Whether a `:-default` written in the file was used: the value is then (partly) the file's.
    pub defaulted: bool,
}

/// What went wrong in one scalar; its value is set to null (the default applies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ExpandError {
    pub key: String,
    pub message: String,
}

/// Expands every string scalar under `value` in place. `is_secret` gets the dotted key (no list
/// indexes) and keeps a secret's expansion a string.
pub(super) fn expand_tree(
    value: &mut Value,
    env: &BTreeMap<String, String>,
    is_secret: &dyn Fn(&str) -> bool,
) -> (Vec<Expanded>, Vec<ExpandError>) {
    let mut walk = Walk {
        env,
        is_secret,
        done: Vec::new(),
        errors: Vec::new(),
    };
    walk.value(value, "", "");
    (walk.done, walk.errors)
}

struct Walk<'a> {
    env: &'a BTreeMap<String, String>,
    is_secret: &'a dyn Fn(&str) -> bool,
    done: Vec<Expanded>,
    errors: Vec<ExpandError>,
}

impl Walk<'_> {
    /// `key` names list items (`a.b[0]`), `dotted` does not (`a.b`, to tell secrets).
    fn value(&mut self, value: &mut Value, key: &str, dotted: &str) {
        match value {
            Value::Object(map) => {
                for (name, child) in map.iter_mut() {
                    let join = |prefix: &str| {
                        if prefix.is_empty() {
                            name.clone()
                        } else {
                            format!("{prefix}.{name}")
                        }
                    };
                    self.value(child, &join(key), &join(dotted));
                }
            }
            Value::Array(items) => {
                for (index, item) in items.iter_mut().enumerate() {
                    self.value(item, &format!("{key}[{index}]"), dotted);
                }
            }
            Value::String(text) => match expand_str(text, self.env) {
                Ok(None) => {}
                Ok(Some(expansion)) => {
                    let referenced = !expansion.vars.is_empty() || expansion.defaulted;
                    *value = if referenced && !(self.is_secret)(dotted) {
                        scalar(expansion.text)
                    } else {
                        // A secret, or only `$${` escapes: the text as it is.
                        Value::String(expansion.text)
                    };
                    if referenced {
                        self.done.push(Expanded {
                            key: key.to_string(),
                            vars: expansion.vars,
                            defaulted: expansion.defaulted,
                        });
                    }
                }
                Err(message) => {
                    *value = Value::Null;
                    self.errors.push(ExpandError {
                        key: key.to_string(),
                        message,
                    });
                }
            },
            _ => {}
        }
    }
}

/// `600000` a number, `true` a bool, anything else the text itself.
fn scalar(text: String) -> Value {
    match serde_yaml::from_str::<Value>(&text) {
        Ok(parsed @ (Value::Number(_) | Value::Bool(_))) => parsed,
        _ => Value::String(text),
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(super) struct Expansion {
    pub text: String,
    pub vars: Vec<String>,
    pub defaulted: bool,
}

/// `None` when `text` holds neither a reference nor an escape (it stays as it is). The error
/// names every unset variable of the text, never a value.
pub(super) fn expand_str(
    text: &str,
    env: &BTreeMap<String, String>,
) -> Result<Option<Expansion>, String> {
    if !text.contains("${") {
        return Ok(None);
    }
    let mut out = String::with_capacity(text.len());
    let mut vars = Vec::new();
    let mut unset = Vec::new();
    let mut defaulted = false;
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let Some(end) = after.find('}') else {
                return Err("`${` without its closing `}` (write `$${` for a literal `${`)".into());
            };
            let inner = &after[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (inner, None),
            };
            if !valid_name(name) {
                return Err(format!(
                    "`${{{inner}}}` is not a variable reference: write `${{NAME}}` or \
                     `${{NAME:-default}}` with NAME of letters, digits and `_` (`$${{` for a \
                     literal `${{`)"
                ));
            }
            match (
                env.get(name).filter(|v| !v.is_empty() || default.is_none()),
                default,
            ) {
                (Some(value), _) => {
                    out.push_str(value);
                    vars.push(name.to_string());
                }
                (None, Some(default)) => {
                    out.push_str(default);
                    defaulted = true;
                }
                (None, None) => unset.push(name.to_string()),
            }
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    match unset.as_slice() {
        [] => Ok(Some(Expansion {
            text: out,
            vars,
            defaulted,
        })),
        [one] => Err(format!(
            "${{{one}}} is not set in the environment (set {one}, or write ${{{one}:-default}})"
        )),
        many => Err(format!(
            "{} are not set in the environment",
            many.iter()
                .map(|name| format!("${{{name}}}"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn text(input: &str, env_: &[(&str, &str)]) -> Result<Option<String>, String> {
        expand_str(input, &env(env_)).map(|e| e.map(|e| e.text))
    }

    #[test]
    fn references_defaults_and_escapes() {
        let vars = [("A", "one"), ("EMPTY", "")];
        assert_eq!(text("${A}", &vars), Ok(Some("one".into())));
        assert_eq!(text("x-${A}-${A}", &vars), Ok(Some("x-one-one".into())));
        assert_eq!(text("${B:-two}", &vars), Ok(Some("two".into())));
        assert_eq!(text("${EMPTY:-two}", &vars), Ok(Some("two".into())));
        assert_eq!(text("${A:-two}", &vars), Ok(Some("one".into())));
        assert_eq!(text("${B:-}", &vars), Ok(Some(String::new())));
        assert_eq!(text("${EMPTY}", &vars), Ok(Some(String::new())));
        assert_eq!(text("$${A}", &vars), Ok(Some("${A}".into())));
        assert_eq!(text("p$a$$w${A}", &vars), Ok(Some("p$a$$wone".into())));
        // No reference at all: untouched, whatever `$` it holds.
        assert_eq!(text("pa$$word$", &vars), Ok(None));
        assert_eq!(text("$A {B}", &vars), Ok(None));
    }

    #[test]
    fn unset_and_malformed_references_are_errors() {
        let err = text("${JWT_SECRET}", &[]).unwrap_err();
        assert!(err.contains("${JWT_SECRET} is not set"), "{err}");
        let err = text("${A}${B}", &[]).unwrap_err();
        assert!(err.contains("${A}, ${B} are not set"), "{err}");
        assert!(text("${A", &[("A", "x")]).unwrap_err().contains("closing"));
        assert!(text("${1A}", &[]).unwrap_err().contains("not a variable"));
        assert!(text("${}", &[]).unwrap_err().contains("not a variable"));
        assert!(text("${A-x}", &[]).unwrap_err().contains("not a variable"));
    }

    #[test]
    fn the_tree_is_expanded_in_strings_only_with_keys_and_sources() {
        let mut tree = json!({
            "auth": {"jwt": {"secret": "${SECRET}", "expiration": "${EXPIRY}", "issuer": "${NOPE:-me}"}},
            "rbac": {"admin_users": ["root@example.com", "${ADMIN}"], "roles": {"x": {"permissions": ["${MISSING}"]}}},
            "database": {"url": "postgres://u:pa$${word}@db/x"},
            "${KEY}": 5,
        });
        let vars = env(&[
            ("SECRET", "12345"),
            ("EXPIRY", "1800"),
            ("ADMIN", "a@example.com"),
        ]);
        let secret = |key: &str| key == "auth.jwt.secret";
        let (done, errors) = expand_tree(&mut tree, &vars, &secret);
        assert_eq!(
            tree["auth"]["jwt"]["secret"],
            json!("12345"),
            "a secret stays a string"
        );
        assert_eq!(tree["auth"]["jwt"]["expiration"], json!(1800));
        assert_eq!(tree["auth"]["jwt"]["issuer"], json!("me"));
        assert_eq!(tree["rbac"]["admin_users"][1], json!("a@example.com"));
        assert_eq!(
            tree["database"]["url"],
            json!("postgres://u:pa${word}@db/x")
        );
        assert_eq!(tree["${KEY}"], json!(5), "keys are never expanded");
        assert_eq!(tree["rbac"]["roles"]["x"]["permissions"][0], Value::Null);
        assert_eq!(
            errors,
            vec![ExpandError {
                key: "rbac.roles.x.permissions[0]".into(),
                message: "${MISSING} is not set in the environment (set MISSING, or write \
                          ${MISSING:-default})"
                    .into(),
            }]
        );
        let mut keys: Vec<(&str, bool)> =
            done.iter().map(|e| (e.key.as_str(), e.defaulted)).collect();
        keys.sort();
        assert_eq!(
            keys,
            vec![
                ("auth.jwt.expiration", false),
                ("auth.jwt.issuer", true),
                ("auth.jwt.secret", false),
                ("rbac.admin_users[1]", false),
            ]
        );
        let secret = done.iter().find(|e| e.key == "auth.jwt.secret").unwrap();
        assert_eq!(secret.vars, vec!["SECRET".to_string()]);
    }
}
