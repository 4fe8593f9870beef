use super::*;
use serde_json::json;

fn container(image: &str, cpu_cores: u32, memory_mb: u64) -> GuestSpec {
    GuestSpec {
        kind: GuestKind::Container,
        cpu_cores,
        memory_mb,
        disk_gb: 1,
        image: image.into(),
        ..GuestSpec::default()
    }
}

fn intent(guests: &[(&str, GuestSpec, RunState)]) -> DesiredState {
    let mut state = DesiredState::default();
    for (id, spec, run_state) in guests {
        state.guests.insert(
            (*id).into(),
            GuestDesired {
                spec: spec.clone(),
                run_state: *run_state,
                extra: Default::default(),
            },
        );
    }
    state
}

fn seen(id: &str, spec: GuestSpec, status: GuestStatus) -> ObservedGuest {
    ObservedGuest {
        guest_id: id.into(),
        status,
        spec: GuestSpec { disk_gb: 0, ..spec },
        restart_count: 0,
        detail: None,
    }
}

fn containers(kind: GuestKind) -> bool {
    kind == GuestKind::Container
}

#[test]
fn a_new_guest_is_created_and_started_and_then_nothing_is_left() {
    let web = container("img:1", 1, 64);
    let effective = intent(&[("web", web.clone(), RunState::Running)]);
    let planned = plan(&effective, &[], &[], containers);
    assert_eq!(
        planned.steps,
        vec![Step {
            guest_id: "web".into(),
            action: Action::Create {
                spec: web.clone(),
                start: true
            },
            op_id: None
        }]
    );
    let running = [seen("web", web, GuestStatus::Running)];
    assert!(plan(&effective, &running, &[], containers).is_converged());
}

#[test]
fn a_dead_guest_is_started_and_a_resize_is_one_step() {
    let effective = intent(&[("web", container("img:1", 2, 128), RunState::Running)]);
    let observed = [seen("web", container("img:1", 1, 64), GuestStatus::Stopped)];
    let actions: Vec<&str> = plan(&effective, &observed, &[], containers)
        .steps
        .iter()
        .map(|s| s.action.name())
        .collect();
    assert_eq!(actions, ["start", "resize"]);
}

#[test]
fn removal_waits_for_a_signature_and_runs_with_the_matching_op_only() {
    let effective = DesiredState::default();
    let observed = [seen("web", container("img:1", 1, 64), GuestStatus::Running)];
    let unsigned = plan(&effective, &observed, &[], containers);
    assert!(unsigned.steps.is_empty());
    assert_eq!(
        unsigned.waiting,
        vec![PendingChange {
            op: "guest.remove".into(),
            guest_id: Some("web".into()),
            params: json!({"guest_id": "web"}),
        }]
    );
    let other_guest = Authorization {
        op_id: "op_x".into(),
        action: ExpectedAction {
            op: "guest.remove".into(),
            guest_id: Some("db".into()),
            params: json!({"guest_id": "db"}),
        },
    };
    assert!(plan(
        &effective,
        &observed,
        std::slice::from_ref(&other_guest),
        containers
    )
    .steps
    .is_empty());
    let matching = Authorization {
        op_id: "op_1".into(),
        action: ExpectedAction {
            op: "guest.remove".into(),
            guest_id: Some("web".into()),
            params: json!({"guest_id": "web"}),
        },
    };
    let signed = plan(&effective, &observed, &[other_guest, matching], containers);
    assert_eq!(
        signed.steps,
        vec![Step {
            guest_id: "web".into(),
            action: Action::Remove,
            op_id: Some("op_1".into())
        }]
    );
    assert!(signed.waiting.is_empty());
}

#[test]
fn an_image_change_is_destructive_and_unknown_fields_are_not_invented() {
    let mut effective = intent(&[("web", container("img:2", 1, 64), RunState::Running)]);
    effective
        .guests
        .get_mut("web")
        .unwrap()
        .spec
        .extra
        .insert("gpu".into(), json!(true));
    let observed = [seen("web", container("img:1", 1, 64), GuestStatus::Running)];
    let planned = plan(&effective, &observed, &[], containers);
    assert!(planned.steps.is_empty());
    assert_eq!(planned.waiting.len(), 1, "{planned:?}");
    assert_eq!(planned.waiting[0].op, "guest.reimage");
    assert_eq!(
        planned.waiting[0].params,
        json!({"guest_id": "web", "from": "img:1", "to": "img:2"})
    );
}

#[test]
fn a_kind_the_driver_cannot_run_is_reported_not_attempted() {
    let vm = GuestSpec {
        kind: GuestKind::Vm,
        ..container("debian-12", 2, 2048)
    };
    let effective = intent(&[("db", vm, RunState::Running)]);
    let planned = plan(&effective, &[], &[], containers);
    assert!(planned.steps.is_empty());
    assert_eq!(planned.unsupported, vec![("db".to_string(), GuestKind::Vm)]);
    assert!(!planned.is_converged());
}
