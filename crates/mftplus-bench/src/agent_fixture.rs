//! `agent-fixture`: an enrolled agent's state without a cloud, for `bench/agent_backup.sh`. It
//! writes what enrollment and a desired-state fetch would leave in `agent.db` — an identity
//! and a desired state giving one storage target a backup schedule and naming one guest — so
//! `mftplus agent backup init` and `backup run` can be timed beside plain restic.

use crate::BenchError;
use mftplus_agent::state::{Identity, StateDb};
use mftplus_types::fleet::{BackupSchedule, DesiredState, GuestDesired, StoragePolicy};
use std::path::Path;

pub fn write(state_dir: &Path, target: &str, guest: &str) -> Result<(), BenchError> {
    let state = |e: mftplus_agent::state::StateError| BenchError::Invalid(e.to_string());
    let (db, _) = StateDb::open(state_dir).map_err(state)?;
    let mut desired = DesiredState::default();
    desired.storage.insert(
        target.to_string(),
        StoragePolicy {
            role: "bulk".into(),
            class: "slow".into(),
            backup: BackupSchedule::Daily,
            wipe: false,
            extra: Default::default(),
        },
    );
    let spec = serde_json::json!({"kind": "container", "image": "bench:1"});
    desired.guests.insert(
        guest.to_string(),
        GuestDesired {
            spec: serde_json::from_value(spec).map_err(|e| BenchError::Invalid(e.to_string()))?,
            run_state: Default::default(),
            extra: Default::default(),
        },
    );
    let identity = Identity {
        host_id: "h-bench".into(),
        customer_id: "bench".into(),
        host_key: mftplus_base::Secret::new("mft_host_bench".to_string()),
        operator_keys: String::new(),
        server_url: "http://127.0.0.1:9".into(),
        enrolled_at_ms: 0,
    };
    db.set_identity(&identity, Some((1, &desired)))
        .map_err(state)
}
