//! Carrying out a plan: one queue per guest, every step journaled before the driver is asked.
//!
//! Steps of one guest run in order; different guests run side by side. Each step is written
//! to the journal as `begun` (durably) before the driver call and `done`/`failed` after it, so
//! after a `kill -9` the journal shows the step that was cut short (`interrupted` on the next
//! start) and the next plan, computed from reality again, either finishes it (a container
//! created but not started is started) or undoes it (a failed reimage's intent reverts to the
//! old image, which is created again). Driver calls are idempotent, so repeating a step that
//! had in fact completed is harmless, and containers are named by guest id, so none is ever
//! duplicated.
//!
//! A stop request lets the step in flight finish and starts no new one.

use crate::driver::{DriverError, GuestDriver, ObservedGuest};
use crate::plan::{plan, Action, Authorization, Plan, Step};
use crate::state::{StateDb, StateError};
use futures_util::future::join_all;
use mftplus_base::Clock;
use mftplus_types::fleet::DesiredState;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use tokio::sync::watch;

/// How a reconcile ended.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The plan from reality after the last pass: empty steps when nothing more could be done.
    pub remaining: Plan,
    /// The guests as last observed.
    pub observed: Vec<ObservedGuest>,
    pub steps_done: usize,
    pub steps_failed: usize,
    /// Each signed op carried out in this reconcile, with its result or failure.
    pub op_results: Vec<(String, Result<Value, Value>)>,
    /// A stop was requested before everything was done.
    pub interrupted: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// Passes of plan → steps → observe again; a pass that did everything settles it, so more
/// than a few mean the driver does not do what it says.
const MAX_PASSES: usize = 3;

pub async fn reconcile(
    db: &StateDb,
    driver: &dyn GuestDriver,
    clock: &dyn Clock,
    generation: u64,
    effective: &DesiredState,
    mut authorizations: Vec<Authorization>,
    stop: &watch::Receiver<bool>,
) -> Result<Outcome, ReconcileError> {
    let mut outcome = Outcome::default();
    for _ in 0..MAX_PASSES {
        outcome.observed = driver.list().await?;
        let planned = plan(effective, &outcome.observed, &authorizations, |kind| {
            driver.supports(kind)
        });
        if planned.steps.is_empty() || *stop.borrow() {
            outcome.interrupted = !planned.steps.is_empty();
            outcome.remaining = planned;
            return Ok(outcome);
        }
        let results = run_steps(db, driver, clock, generation, &planned.steps, stop).await?;
        let mut failed = false;
        for (step, result) in results {
            let Some(result) = result else {
                outcome.interrupted = true;
                continue;
            };
            failed |= result.is_err();
            if result.is_ok() {
                outcome.steps_done += 1;
            } else {
                outcome.steps_failed += 1;
            }
            if let Some(op_id) = &step.op_id {
                authorizations.retain(|a| &a.op_id != op_id);
                let result = result
                    .map(|()| json!({"action": step.action.name(), "guest_id": step.guest_id}))
                    .map_err(|e| json!({"code": e.code(), "error": e.to_string()}));
                outcome.op_results.push((op_id.clone(), result));
            }
        }
        if failed || outcome.interrupted {
            break;
        }
    }
    // One more look so the report shows reality, not what was hoped for.
    outcome.observed = driver.list().await?;
    outcome.remaining = plan(effective, &outcome.observed, &authorizations, |kind| {
        driver.supports(kind)
    });
    Ok(outcome)
}

type StepResult = Option<Result<(), DriverError>>;

/// Runs the steps, one queue per guest; `None` for a step skipped because of a stop request.
async fn run_steps<'a>(
    db: &StateDb,
    driver: &dyn GuestDriver,
    clock: &dyn Clock,
    generation: u64,
    steps: &'a [Step],
    stop: &watch::Receiver<bool>,
) -> Result<Vec<(&'a Step, StepResult)>, StateError> {
    let mut queues: BTreeMap<&str, Vec<&Step>> = BTreeMap::new();
    for step in steps {
        queues.entry(step.guest_id.as_str()).or_default().push(step);
    }
    let runs = queues.into_values().map(|queue| async move {
        let mut results = Vec::with_capacity(queue.len());
        let mut broken = false;
        for step in queue {
            // After a failure the guest's later steps would act on a state they did not plan
            // for: the next reconcile plans them again from reality.
            if broken || *stop.borrow() {
                results.push((step, None));
                continue;
            }
            let result = journaled(db, driver, clock, generation, step).await?;
            broken = result.is_err();
            results.push((step, Some(result)));
        }
        Ok::<_, StateError>(results)
    });
    let mut all = Vec::new();
    for results in join_all(runs).await {
        all.extend(results?);
    }
    Ok(all)
}

async fn journaled(
    db: &StateDb,
    driver: &dyn GuestDriver,
    clock: &dyn Clock,
    generation: u64,
    step: &Step,
) -> Result<Result<(), DriverError>, StateError> {
    let seq = db.journal_begin(
        generation,
        &step.guest_id,
        step.action.name(),
        step.op_id.as_deref(),
        clock.now_ms(),
    )?;
    let result = perform(driver, step).await;
    let detail = result.as_ref().err().map(|e| e.to_string());
    db.journal_finish(seq, result.is_ok(), detail.as_deref(), clock.now_ms())?;
    match &result {
        Ok(()) => {
            tracing::info!(guest = %step.guest_id, action = step.action.name(), "guest step done")
        }
        Err(err) => {
            tracing::warn!(guest = %step.guest_id, action = step.action.name(), code = err.code(), "guest step failed: {err}")
        }
    }
    Ok(result)
}

async fn perform(driver: &dyn GuestDriver, step: &Step) -> Result<(), DriverError> {
    let id = step.guest_id.as_str();
    match &step.action {
        Action::Create { spec, start } => {
            driver.create(id, spec).await?;
            if *start {
                driver.start(id).await?;
            }
            Ok(())
        }
        Action::Start => driver.start(id).await,
        Action::Stop => driver.stop(id).await,
        Action::Resize { spec } => driver.resize(id, spec).await,
        Action::Remove => driver.remove(id).await,
        Action::Recreate { spec, start } => {
            driver.remove(id).await?;
            driver.create(id, spec).await?;
            if *start {
                driver.start(id).await?;
            }
            Ok(())
        }
        Action::Unsupported { op } => Err(DriverError::Refused {
            driver: driver.name(),
            action: "carry out",
            guest_id: id.to_string(),
            why: format!("`{op}` is not something this driver can do"),
        }),
    }
}
