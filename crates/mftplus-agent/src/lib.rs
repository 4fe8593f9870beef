//! The MFTPlus host agent as a library (SPEC §6): enrollment, the report loop that is the box's
//! heartbeat and poll, reconcile of the operator's desired state through a guest driver with a
//! durable journal, and the signed-op gate for destructive changes.
//!
//! What it is not: it never opens the cloud's database and speaks to the cloud (or an edge hub
//! in front of it) only through `mftplus_client::AgentClient`. It holds no signing key: it only
//! verifies operators' signatures against the keys pinned at enrollment.

pub mod driver;
