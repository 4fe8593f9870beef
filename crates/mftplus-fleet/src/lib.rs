//! The fleet's rules as pure functions, shared by the cloud (which classifies an operator's
//! edit and mints op blobs) and the agent (which recomputes the same diff to decide what it may
//! do without a signature). `docs/decisions/0009-fleet-control-plane.md` is the design record;
//! its classification table is implemented in [`mod@diff`] and is normative.
//!
//! What is here:
//! - [`diff()`]: every difference between two desired states, classified benign or destructive.
//! - [`plan_edit`]: splits an edit into what may be published now and what needs a signature.
//! - [`build_op`], [`apply_executed`], [`expected_action`]: from a destructive change to an op
//!   blob, from an executed op back into the desired state, and the action the agent gates.
//! - [`configgen`]: the controller config (template deep-merged with overrides, cloud-only
//!   secrets stripped).
//! - [`hungarian_passphrase`]: retrieval passwords.
//! - [`overdue_targets`] / [`newly_missed`]: the backup-deadline check.
//! - [`convergence()`]: a host's convergence label.
//!
//! What is not: no HTTP, no database, no async runtime, no clock (callers pass `now`), no
//! signing or verification (that is `mftplus-signing`). Wire types live in
//! `mftplus_types::fleet`; this crate only computes over them.

#![warn(missing_docs)]

pub mod configgen;
pub mod convergence;
pub mod deadline;
pub mod diff;
mod error;
mod location;
pub mod ops;
pub mod passphrase;
pub mod plan;

pub use configgen::{
    controller_config, default_template, generate_config, render_yaml, strip_cloud_only,
};
pub use convergence::convergence;
pub use deadline::{newly_missed, overdue_targets};
pub use diff::diff;
pub use error::FleetError;
pub use ops::{apply_executed, build_op, expected_action};
pub use passphrase::hungarian_passphrase;
pub use plan::{plan_edit, EditPlan};
