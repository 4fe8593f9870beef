//! What a store call sends to its database, statement by statement, while a caller asks.
//!
//! [`record`] runs a future with a [`StatementLog`] in scope; every backend reports each
//! statement it completes on behalf of that future (SQLite from its own profile hook, so
//! `BEGIN` and `COMMIT` count too; PostgreSQL from the one place its queries go through), with
//! the time the statement took. Outside [`record`] nothing is collected and the backends skip
//! the bookkeeping. Two users: the test that holds the fleet's hot path to a number of
//! statements that does not grow with the fleet, and `mftplus-bench`, which prints where a
//! liveness pass spends its time.
//!
//! The scope follows the task (a tokio task-local), so statements of other tasks sharing the
//! same store are never counted, and a backend that runs SQL on a blocking thread carries the
//! log there itself.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One completed statement: its SQL text (as prepared, without parameter values) and how
/// long the database took to run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: String,
    pub took: Duration,
}

/// The statements recorded so far in one [`record`] scope.
#[derive(Debug, Default)]
pub struct StatementLog {
    statements: Mutex<Vec<Statement>>,
}

impl StatementLog {
    /// Called by backends for each statement they complete.
    pub fn push(&self, sql: &str, took: Duration) {
        // A panicking test thread must not hide later statements: take the lock over.
        let mut statements = self
            .statements
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        statements.push(Statement {
            sql: sql.trim().to_owned(),
            took,
        });
    }

    fn take(&self) -> Vec<Statement> {
        std::mem::take(
            &mut *self
                .statements
                .lock()
                .unwrap_or_else(|poison| poison.into_inner()),
        )
    }
}

tokio::task_local! {
    static CURRENT: Arc<StatementLog>;
}

/// Runs `work` and returns its output with every statement the store completed for it, in
/// order.
pub async fn record<F: Future>(work: F) -> (F::Output, Vec<Statement>) {
    let log = Arc::new(StatementLog::default());
    let output = CURRENT.scope(log.clone(), work).await;
    (output, log.take())
}

/// The log of the [`record`] scope this task is in, if any: what a backend captures before it
/// hands work to another thread.
pub fn current() -> Option<Arc<StatementLog>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// Statements grouped by SQL text in the order each first ran: (sql, count, total time).
pub fn summarise(statements: &[Statement]) -> Vec<(String, usize, Duration)> {
    let mut groups: Vec<(String, usize, Duration)> = Vec::new();
    for statement in statements {
        match groups.iter_mut().find(|(sql, _, _)| *sql == statement.sql) {
            Some((_, count, total)) => {
                *count += 1;
                *total += statement.took;
            }
            None => groups.push((statement.sql.clone(), 1, statement.took)),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_only_inside_its_scope() {
        assert!(current().is_none());
        let ((), statements) = record(async {
            let log = current().expect("in scope");
            log.push(" SELECT 1 ", Duration::from_millis(2));
            log.push("SELECT 2", Duration::from_millis(1));
            log.push("SELECT 1", Duration::from_millis(3));
        })
        .await;
        assert_eq!(statements.len(), 3);
        assert_eq!(statements[0].sql, "SELECT 1");
        assert_eq!(
            summarise(&statements),
            vec![
                ("SELECT 1".to_string(), 2, Duration::from_millis(5)),
                ("SELECT 2".to_string(), 1, Duration::from_millis(1)),
            ]
        );
        assert!(current().is_none());
    }
}
