//! Properties of diff, plan and fold over random pairs of desired states drawn from a small
//! domain (few ids, few values) so that the two sides overlap and differ in every way.

use mftplus_fleet::{apply_executed, build_op, diff, plan_edit};
use mftplus_types::fleet::{
    BackupSchedule, ChangeKind, DesiredState, GuestDesired, GuestSpec, RunState, StoragePolicy,
    Versions,
};
use proptest::collection::btree_map;
use proptest::option;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn extra_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        (0i64..3).prop_map(Value::from),
        Just(json!("s")),
        Just(json!({"nested": [1, "x"]})),
    ]
}

/// Unknown keys are prefixed so they never collide with a known field of the same level.
fn extras() -> impl Strategy<Value = BTreeMap<String, Value>> {
    btree_map(
        prop_oneof![Just("x_a".to_owned()), Just("x_b/c".to_owned())],
        extra_value(),
        0..=2,
    )
}

fn guest() -> impl Strategy<Value = GuestDesired> {
    (
        1u32..3,
        prop_oneof![Just(1024u64), Just(2048)],
        prop_oneof![Just(10u64), Just(20), Just(30)],
        prop_oneof![Just("img-1".to_owned()), Just("img-2".to_owned())],
        option::of(prop_oneof![
            Just("snap-1".to_owned()),
            Just("snap-2".to_owned())
        ]),
        extras(),
        prop_oneof![Just(RunState::Running), Just(RunState::Stopped)],
        extras(),
    )
        .prop_map(
            |(cpu_cores, memory_mb, disk_gb, image, restore_from, spec_extra, run_state, extra)| {
                GuestDesired {
                    spec: GuestSpec {
                        cpu_cores,
                        memory_mb,
                        disk_gb,
                        image,
                        restore_from,
                        kind: Default::default(),
                        extra: spec_extra,
                    },
                    run_state,
                    extra,
                }
            },
        )
}

fn policy() -> impl Strategy<Value = StoragePolicy> {
    (
        prop_oneof![Just("bulk".to_owned()), Just("system".to_owned())],
        prop_oneof![Just("fast".to_owned()), Just("slow".to_owned())],
        prop_oneof![
            Just(BackupSchedule::None),
            Just(BackupSchedule::Hourly),
            Just(BackupSchedule::Daily),
            Just(BackupSchedule::Weekly),
        ],
        any::<bool>(),
        extras(),
    )
        .prop_map(|(role, class, backup, wipe, extra)| StoragePolicy {
            role,
            class,
            backup,
            wipe,
            extra,
        })
}

fn version() -> impl Strategy<Value = Option<String>> {
    option::of(prop_oneof![Just("1".to_owned()), Just("2".to_owned())])
}

fn state() -> impl Strategy<Value = DesiredState> {
    (
        btree_map(
            prop_oneof![Just("a"), Just("b"), Just("c/d")],
            guest(),
            0..=3,
        ),
        btree_map(prop_oneof![Just("d1"), Just("d2")], policy(), 0..=2),
        (version(), version(), version(), extras()),
        extras(),
    )
        .prop_map(
            |(guests, storage, (agent, controller, golden_image, vx), extra)| DesiredState {
                guests: guests.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                storage: storage
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect(),
                versions: Versions {
                    agent,
                    controller,
                    golden_image,
                    extra: vx,
                },
                extra,
            },
        )
}

/// `null` unknown fields are absent as far as the diff is concerned.
fn normalised(state: &DesiredState) -> DesiredState {
    fn strip(map: &mut BTreeMap<String, Value>) {
        map.retain(|_, v| !v.is_null());
    }
    let mut s = state.clone();
    strip(&mut s.extra);
    strip(&mut s.versions.extra);
    for g in s.guests.values_mut() {
        strip(&mut g.extra);
        strip(&mut g.spec.extra);
    }
    for p in s.storage.values_mut() {
        strip(&mut p.extra);
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_state_does_not_differ_from_itself(a in state()) {
        prop_assert!(diff(&a, &a).is_empty());
        let through_json: DesiredState =
            serde_json::from_value(serde_json::to_value(&a).unwrap()).unwrap();
        prop_assert!(diff(&a, &through_json).is_empty());
    }

    #[test]
    fn an_empty_diff_means_equal_states(a in state(), b in state()) {
        let changes = diff(&a, &b);
        prop_assert_eq!(changes.is_empty(), normalised(&a) == normalised(&b), "{:?}", changes);
    }

    #[test]
    fn publishing_never_smuggles_a_destructive_change(current in state(), proposed in state()) {
        let all = diff(&current, &proposed);
        let plan = plan_edit(&current, &proposed);
        prop_assert_eq!(plan.benign.len() + plan.destructive.len(), all.len());
        prop_assert!(plan.benign.iter().all(|c| c.kind == ChangeKind::Benign));
        prop_assert!(plan.destructive.iter().all(|c| c.kind == ChangeKind::Destructive));
        match &plan.published {
            None => prop_assert!(plan.benign.is_empty()),
            Some(published) => {
                prop_assert!(!plan.benign.is_empty());
                // Exactly the benign part is published, and exactly the destructive part waits.
                prop_assert_eq!(&diff(&current, published), &plan.benign);
                prop_assert_eq!(&diff(published, &proposed), &plan.destructive);
            }
        }
    }

    #[test]
    fn executing_every_pending_op_reaches_the_proposal_less_its_wipes(current in state(), proposed in state()) {
        let plan = plan_edit(&current, &proposed);
        let mut state = plan.published.clone().unwrap_or_else(|| current.clone());
        for change in &plan.destructive {
            let op = build_op(change, "host-1", 1_700_000_000, 3600, "k").unwrap();
            state = apply_executed(&state, &op).unwrap();
        }
        // A wipe is an action, not a lasting state: once executed, the flag is cleared.
        let mut expected = proposed.clone();
        for change in plan.destructive.iter().filter(|c| c.op == "storage.wipe") {
            let id = change.params["durable_id"].as_str().unwrap();
            expected.storage.get_mut(id).unwrap().wipe = false;
        }
        prop_assert!(diff(&state, &expected).is_empty(), "{:?}", diff(&state, &expected));
    }
}
