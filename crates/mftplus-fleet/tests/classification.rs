//! One test per row of the classification table in decision 0009, plus the cases the table
//! leaves to "anything else".

use mftplus_fleet::diff;
use mftplus_types::fleet::{
    BackupSchedule, ChangeKind, DesiredChange, DesiredState, GuestDesired, GuestSpec, RunState,
    StoragePolicy,
};
use serde_json::{json, Value};

const DISK: &str = "0b8e1f2a-5c4d-4e6f-9a1b-2c3d4e5f6a7b";

fn guest() -> GuestDesired {
    GuestDesired {
        spec: GuestSpec {
            cpu_cores: 2,
            memory_mb: 4096,
            disk_gb: 40,
            image: "debian-12-golden-2026.01".into(),
            restore_from: None,
            kind: Default::default(),
            extra: Default::default(),
        },
        run_state: RunState::Running,
        extra: Default::default(),
    }
}

fn policy() -> StoragePolicy {
    StoragePolicy {
        role: "bulk".into(),
        class: "slow".into(),
        backup: BackupSchedule::Weekly,
        wipe: false,
        extra: Default::default(),
    }
}

fn base() -> DesiredState {
    let mut s = DesiredState::default();
    s.guests.insert("web".into(), guest());
    s.storage.insert(DISK.into(), policy());
    s.versions.controller = Some("1.3.0".into());
    s
}

fn change(
    kind: ChangeKind,
    op: &str,
    guest: Option<&str>,
    path: &str,
    params: Value,
) -> DesiredChange {
    DesiredChange {
        kind,
        op: op.into(),
        guest_id: guest.map(String::from),
        path: path.into(),
        params,
    }
}

fn benign(op: &str, guest: Option<&str>, path: &str) -> DesiredChange {
    change(ChangeKind::Benign, op, guest, path, Value::Null)
}

fn destructive(op: &str, guest: Option<&str>, path: &str, params: Value) -> DesiredChange {
    change(ChangeKind::Destructive, op, guest, path, params)
}

/// Applies `edit` to the base state and checks the diff is exactly `expected`.
fn check(edit: impl FnOnce(&mut DesiredState), expected: &[DesiredChange]) {
    let current = base();
    let mut proposed = current.clone();
    edit(&mut proposed);
    assert_eq!(diff(&current, &proposed), expected);
}

#[test]
fn no_change_no_diff() {
    check(|_| {}, &[]);
}

#[test]
fn guest_added_is_benign_create() {
    check(
        |s| {
            s.guests.insert("db".into(), guest());
        },
        &[benign("guest.create", Some("db"), "/guests/db")],
    );
}

#[test]
fn guest_removed_is_destructive_remove() {
    check(
        |s| {
            s.guests.remove("web");
        },
        &[destructive(
            "guest.remove",
            Some("web"),
            "/guests/web",
            json!({"guest_id": "web"}),
        )],
    );
}

#[test]
fn run_state_is_benign_start_or_stop() {
    check(
        |s| s.guests.get_mut("web").unwrap().run_state = RunState::Stopped,
        &[benign("guest.stop", Some("web"), "/guests/web/run_state")],
    );
    let mut stopped = base();
    stopped.guests.get_mut("web").unwrap().run_state = RunState::Stopped;
    assert_eq!(
        diff(&stopped, &base()),
        [benign("guest.start", Some("web"), "/guests/web/run_state")]
    );
}

#[test]
fn cpu_and_memory_are_benign_resize() {
    check(
        |s| {
            let spec = &mut s.guests.get_mut("web").unwrap().spec;
            spec.cpu_cores = 1;
            spec.memory_mb = 8192;
        },
        &[
            benign("guest.resize", Some("web"), "/guests/web/spec/cpu_cores"),
            benign("guest.resize", Some("web"), "/guests/web/spec/memory_mb"),
        ],
    );
}

#[test]
fn disk_grown_is_benign_resize() {
    check(
        |s| s.guests.get_mut("web").unwrap().spec.disk_gb = 80,
        &[benign(
            "guest.resize",
            Some("web"),
            "/guests/web/spec/disk_gb",
        )],
    );
}

#[test]
fn disk_shrunk_is_destructive_shrink() {
    check(
        |s| s.guests.get_mut("web").unwrap().spec.disk_gb = 30,
        &[destructive(
            "guest.shrink_disk",
            Some("web"),
            "/guests/web/spec/disk_gb",
            json!({"guest_id": "web", "from_gb": 40, "to_gb": 30}),
        )],
    );
}

#[test]
fn image_changed_is_destructive_reimage() {
    check(
        |s| s.guests.get_mut("web").unwrap().spec.image = "debian-13-golden".into(),
        &[destructive(
            "guest.reimage",
            Some("web"),
            "/guests/web/spec/image",
            json!({"guest_id": "web", "from": "debian-12-golden-2026.01", "to": "debian-13-golden"}),
        )],
    );
}

#[test]
fn restore_from_set_or_changed_is_destructive_restore() {
    let set = |snap: &'static str| {
        move |s: &mut DesiredState| {
            s.guests.get_mut("web").unwrap().spec.restore_from = Some(snap.into())
        }
    };
    let expected = |snap: &str| {
        [destructive(
            "guest.restore",
            Some("web"),
            "/guests/web/spec/restore_from",
            json!({"guest_id": "web", "snapshot": snap}),
        )]
    };
    check(
        set("vm/101/2026-01-09T02:00:00Z"),
        &expected("vm/101/2026-01-09T02:00:00Z"),
    );
    let mut restored = base();
    set("snap-a")(&mut restored);
    let mut changed = base();
    set("snap-b")(&mut changed);
    assert_eq!(diff(&restored, &changed), expected("snap-b"));
    assert!(diff(&restored, &restored.clone()).is_empty());
}

#[test]
fn restore_from_cleared_is_a_state_change() {
    let mut restored = base();
    restored.guests.get_mut("web").unwrap().spec.restore_from = Some("snap-a".into());
    assert_eq!(
        diff(&restored, &base()),
        [destructive(
            "state.change",
            Some("web"),
            "/guests/web/spec/restore_from",
            json!({"path": "/guests/web/spec/restore_from", "before": "snap-a", "after": null}),
        )]
    );
}

#[test]
fn new_guest_may_restore_from_a_snapshot_without_a_signature() {
    // Only a restore *over an existing guest* loses data.
    check(
        |s| {
            let mut g = guest();
            g.spec.restore_from = Some("snap".into());
            s.guests.insert("db".into(), g);
        },
        &[benign("guest.create", Some("db"), "/guests/db")],
    );
}

#[test]
fn storage_added_is_benign_attach() {
    check(
        |s| {
            s.storage.insert("new-disk".into(), policy());
        },
        &[benign("storage.attach", None, "/storage/new-disk")],
    );
}

#[test]
fn storage_removed_is_destructive_detach() {
    check(
        |s| {
            s.storage.remove(DISK);
        },
        &[destructive(
            "storage.detach",
            None,
            &format!("/storage/{DISK}"),
            json!({"durable_id": DISK}),
        )],
    );
}

#[test]
fn role_class_backup_are_benign_policy() {
    check(
        |s| {
            let p = s.storage.get_mut(DISK).unwrap();
            p.role = "backup".into();
            p.class = "fast".into();
            p.backup = BackupSchedule::Daily;
        },
        &[
            benign("storage.policy", None, &format!("/storage/{DISK}/role")),
            benign("storage.policy", None, &format!("/storage/{DISK}/class")),
            benign("storage.policy", None, &format!("/storage/{DISK}/backup")),
        ],
    );
}

#[test]
fn wipe_set_is_destructive_wipe() {
    let wipe = destructive(
        "storage.wipe",
        None,
        &format!("/storage/{DISK}/wipe"),
        json!({"durable_id": DISK}),
    );
    check(|s| s.storage.get_mut(DISK).unwrap().wipe = true, &[wipe]);
    // Attaching a drive with `wipe` set attaches (benign) and wipes (destructive): the drive
    // the customer plugged in may hold data.
    check(
        |s| {
            let mut p = policy();
            p.wipe = true;
            s.storage.insert("usb".into(), p);
        },
        &[
            benign("storage.attach", None, "/storage/usb"),
            destructive(
                "storage.wipe",
                None,
                "/storage/usb/wipe",
                json!({"durable_id": "usb"}),
            ),
        ],
    );
}

#[test]
fn wipe_cleared_is_a_state_change() {
    let mut wiping = base();
    wiping.storage.get_mut(DISK).unwrap().wipe = true;
    let path = format!("/storage/{DISK}/wipe");
    assert_eq!(
        diff(&wiping, &base()),
        [destructive(
            "state.change",
            None,
            &path,
            json!({"path": path, "before": true, "after": false}),
        )]
    );
}

#[test]
fn a_version_changed_is_benign_bump() {
    check(
        |s| {
            s.versions.agent = Some("0.9.0".into());
            s.versions.controller = None;
            s.versions.golden_image = Some("2026.02".into());
        },
        &[
            benign("version.bump", None, "/versions/agent"),
            benign("version.bump", None, "/versions/controller"),
            benign("version.bump", None, "/versions/golden_image"),
        ],
    );
}

#[test]
fn unknown_fields_at_every_level_are_state_changes() {
    let sc = |guest: Option<&str>, path: &str, before: Value, after: Value| {
        destructive(
            "state.change",
            guest,
            path,
            json!({"path": path, "before": before, "after": after}),
        )
    };
    let mut current = base();
    current.extra.insert("tunnel".into(), json!({"token": "a"}));
    current.versions.extra.insert("kernel".into(), json!("6.1"));
    let mut proposed = current.clone();
    proposed
        .extra
        .insert("tunnel".into(), json!({"token": "b"}));
    proposed.extra.insert("dns".into(), json!(["1.1.1.1"]));
    proposed.versions.extra.remove("kernel");
    let web = proposed.guests.get_mut("web").unwrap();
    web.extra.insert("autostart".into(), json!(true));
    web.spec.extra.insert("gpu".into(), json!("passthrough"));
    proposed
        .storage
        .get_mut(DISK)
        .unwrap()
        .extra
        .insert("mount/point".into(), json!("/srv"));
    // `null` is the same as absent: no change.
    proposed.extra.insert("ghost".into(), Value::Null);

    assert_eq!(
        diff(&current, &proposed),
        [
            sc(
                Some("web"),
                "/guests/web/spec/gpu",
                Value::Null,
                json!("passthrough")
            ),
            sc(
                Some("web"),
                "/guests/web/autostart",
                Value::Null,
                json!(true)
            ),
            sc(
                None,
                &format!("/storage/{DISK}/mount~1point"),
                Value::Null,
                json!("/srv")
            ),
            sc(None, "/versions/kernel", json!("6.1"), Value::Null),
            sc(None, "/dns", Value::Null, json!(["1.1.1.1"])),
            sc(
                None,
                "/tunnel",
                json!({"token": "a"}),
                json!({"token": "b"})
            ),
        ]
    );
}

#[test]
fn unknown_fields_of_added_guests_and_policies_are_state_changes() {
    check(
        |s| {
            let mut g = guest();
            g.spec.extra.insert("tpm".into(), json!(true));
            s.guests.insert("db".into(), g);
            let mut p = policy();
            p.extra.insert("encrypt".into(), json!("luks"));
            s.storage.insert("usb".into(), p);
        },
        &[
            benign("guest.create", Some("db"), "/guests/db"),
            destructive(
                "state.change",
                Some("db"),
                "/guests/db/spec/tpm",
                json!({"path": "/guests/db/spec/tpm", "before": null, "after": true}),
            ),
            benign("storage.attach", None, "/storage/usb"),
            destructive(
                "state.change",
                None,
                "/storage/usb/encrypt",
                json!({"path": "/storage/usb/encrypt", "before": null, "after": "luks"}),
            ),
        ],
    );
}

#[test]
fn one_guest_many_changes_in_a_fixed_order() {
    check(
        |s| {
            let web = s.guests.get_mut("web").unwrap();
            web.run_state = RunState::Stopped;
            web.spec.cpu_cores = 4;
            web.spec.disk_gb = 20;
            web.spec.image = "other".into();
            s.versions.controller = Some("1.4.0".into());
        },
        &[
            benign("guest.stop", Some("web"), "/guests/web/run_state"),
            benign("guest.resize", Some("web"), "/guests/web/spec/cpu_cores"),
            destructive(
                "guest.shrink_disk",
                Some("web"),
                "/guests/web/spec/disk_gb",
                json!({"guest_id": "web", "from_gb": 40, "to_gb": 20}),
            ),
            destructive(
                "guest.reimage",
                Some("web"),
                "/guests/web/spec/image",
                json!({"guest_id": "web", "from": "debian-12-golden-2026.01", "to": "other"}),
            ),
            benign("version.bump", None, "/versions/controller"),
        ],
    );
}

#[test]
fn ids_with_slashes_get_escaped_paths() {
    check(
        |s| {
            s.guests.insert("a/b~c".into(), guest());
        },
        &[benign("guest.create", Some("a/b~c"), "/guests/a~1b~0c")],
    );
}
