//! Everything mftctl prints. Data goes to stdout (tables, JSON, a newly created secret); notes for
//! the person at the terminal go to stderr, so `KEY=$(mftctl apikeys create …)` captures only the
//! key.

use std::io::{self, Write};

use serde::Serialize;

use crate::error::CliError;

/// Writes one block of text plus a newline to stdout. A closed pipe (`mftctl users list | head`)
/// is not an error worth reporting.
pub fn emit(text: &str) -> Result<(), CliError> {
    let mut out = io::stdout().lock();
    let result = out
        .write_all(text.as_bytes())
        .and_then(|_| {
            if text.ends_with('\n') {
                Ok(())
            } else {
                out.write_all(b"\n")
            }
        })
        .and_then(|_| out.flush());
    match result {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(CliError::io("cannot write to standard output", e))
        }
        _ => Ok(()),
    }
}

/// Writes bytes to stdout exactly as given (exports keep the server's bytes).
pub fn emit_raw(bytes: &[u8]) -> Result<(), CliError> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(CliError::io("cannot write to standard output", e))
        }
        _ => Ok(()),
    }
}

/// A line for the human on stderr. Failing to write it must not fail the command.
pub fn note(text: &str) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}

pub fn emit_json<T: Serialize + ?Sized>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::new("internal", format!("cannot encode JSON: {e}")))?;
    emit(&text)
}

/// `-` for absent values, so columns never collapse.
pub fn or_dash(value: Option<&str>) -> String {
    match value {
        Some(v) if !v.is_empty() => v.to_string(),
        _ => "-".to_string(),
    }
}

/// Columns padded to their widest cell, two spaces apart, no trailing blanks.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut text = String::new();
        for line in std::iter::once(&self.headers).chain(&self.rows) {
            let mut rendered = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = line.get(i).map(String::as_str).unwrap_or("");
                rendered.push_str(cell);
                if i + 1 < columns {
                    let pad = width - cell.chars().count() + 2;
                    rendered.extend(std::iter::repeat_n(' ', pad));
                }
            }
            text.push_str(rendered.trim_end());
            text.push('\n');
        }
        text
    }
}

/// `label  value` lines with the values aligned, for a single record.
pub fn details(pairs: &[(&str, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    for (label, value) in pairs {
        let pad = width - label.chars().count() + 2;
        text.push_str(label);
        text.extend(std::iter::repeat_n(' ', pad));
        text.push_str(value);
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let mut table = Table::new(&["EMAIL", "ROLE", "NAME"]);
        table.row(vec!["a@example.com".into(), "admin".into(), "Ann".into()]);
        table.row(vec!["bob@x.io".into(), "readonly".into(), "-".into()]);
        assert_eq!(
            table.render(),
            "EMAIL          ROLE      NAME\n\
             a@example.com  admin     Ann\n\
             bob@x.io       readonly  -\n"
        );
    }

    #[test]
    fn table_counts_characters_not_bytes() {
        let mut table = Table::new(&["NAME", "X"]);
        table.row(vec!["Zoë".into(), "1".into()]);
        assert_eq!(table.render(), "NAME  X\nZoë   1\n");
    }

    #[test]
    fn details_align() {
        assert_eq!(
            details(&[("id", "1".into()), ("email", "a@b.c".into())]),
            "id     1\nemail  a@b.c\n"
        );
    }

    #[test]
    fn dash_for_missing() {
        assert_eq!(or_dash(None), "-");
        assert_eq!(or_dash(Some("")), "-");
        assert_eq!(or_dash(Some("x")), "x");
    }
}
