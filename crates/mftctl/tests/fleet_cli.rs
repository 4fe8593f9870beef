//! The operator's fleet commands, run as the real `mftctl` binary against a real cloud:
//! customers, hosts, guests, desired state (set, diff, get), ops, events, recovery and the
//! notification log, with `--json` where scripts would use it.

mod cli_support;

use cli_support::Shell;
use mftplus_client::AgentClient;
use mftplus_cloud::testing::TestCloud;
use mftplus_types::fleet::{EnrollRequest, GuestBootstrapRequest};

const DESIRED: &str = "guests:\n  web:\n    spec:\n      cpu_cores: 2\n      memory_mb: 2048\n      disk_gb: 20\n      image: debian-12\nstorage:\n  UUID-A:\n    role: bulk\n    class: slow\n    backup: daily\n";

#[tokio::test]
async fn operator_commands_against_a_real_cloud() {
    let cloud = TestCloud::spawn().await;
    let op = Shell::admin(&cloud);

    let created = op
        .line("mftctl customers create --id kovacs --name Kovács --email info@kovacs.example.com --json")
        .await
        .ok()
        .json();
    let password = created["retrieval_password"].as_str().unwrap().to_string();
    assert!(
        password.split('-').count() >= 4,
        "a generated passphrase: {password}"
    );
    let listed = op.line("mftctl customers list --json").await.ok().json();
    assert_eq!(listed[0]["id"], "kovacs");

    // A box enrolls with the generated (Hungarian, possibly accented) passphrase.
    let enrolled = AgentClient::unenrolled(&cloud.url)
        .unwrap()
        .enroll(
            &EnrollRequest {
                customer_id: "kovacs".into(),
                hostname: "box-1".into(),
                agent_version: "0.1.0".into(),
                platform: None,
            },
            &password,
        )
        .await
        .unwrap();
    let host = enrolled.host_id.clone();
    AgentClient::new(&cloud.url, &enrolled.host_key)
        .unwrap()
        .mint_guest(
            &host,
            &GuestBootstrapRequest {
                guest_id: "ctrl".into(),
                display_name: "Controller".into(),
            },
        )
        .await
        .unwrap();

    let hosts = op
        .line("mftctl hosts list --customer kovacs --json")
        .await
        .ok()
        .json();
    assert_eq!(hosts[0]["host_id"], host.as_str());
    assert_eq!(hosts[0]["liveness"], "never");
    let shown = op.line(&format!("mftctl hosts show {host}")).await.ok();
    assert!(shown.stdout.contains("box-1"), "{shown:#?}");
    let guests = op
        .line(&format!("mftctl guests list --host {host} --json"))
        .await
        .ok()
        .json();
    assert_eq!(guests[0]["guest_id"], "ctrl");

    let file = op.path("desired.yaml");
    std::fs::write(&file, DESIRED).unwrap();
    let diff = op
        .line(&format!(
            "mftctl desired diff {host} {} --json",
            file.display()
        ))
        .await
        .ok()
        .json();
    let ops: Vec<&str> = diff["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["guest.create", "storage.attach"]);
    let set = op
        .line(&format!(
            "mftctl desired set {host} {} --expected-generation 0",
            file.display()
        ))
        .await
        .ok();
    assert!(set.stdout.contains("guest.create"), "{set:#?}");
    let got = op
        .line(&format!("mftctl desired get {host} --json"))
        .await
        .ok()
        .json();
    assert_eq!(got["generation"], 1);
    assert_eq!(got["desired_state"]["guests"]["web"]["spec"]["disk_gb"], 20);
    // A stale expected generation is refused with its code.
    op.line(&format!(
        "mftctl desired set {host} {} --expected-generation 0",
        file.display()
    ))
    .await
    .fails_with("generation_conflict");

    // Removing the guest waits for a signature.
    std::fs::write(
        &file,
        "storage:\n  UUID-A:\n    role: bulk\n    class: slow\n    backup: daily\n",
    )
    .unwrap();
    let set = op
        .line(&format!("mftctl desired set {host} {}", file.display()))
        .await
        .ok();
    assert!(
        set.stdout.contains("ops sign --pending") || set.stderr.contains("ops sign --pending"),
        "{set:#?}"
    );
    let pending = op.line("mftctl ops pending --json").await.ok().json();
    assert_eq!(pending[0]["op_type"], "guest.remove");
    let op_id = pending[0]["op_id"].as_str().unwrap().to_string();
    let shown = op.line(&format!("mftctl ops show {op_id}")).await.ok();
    assert!(
        shown.stdout.contains("\"op\":\"guest.remove\""),
        "{shown:#?}"
    );

    let armed = op
        .line(&format!("mftctl recovery arm {host} --ttl 10m --json"))
        .await
        .ok()
        .json();
    assert!(armed["recovery_mode_until"].is_string());
    op.line(&format!("mftctl recovery disarm {host}"))
        .await
        .ok();

    op.line("mftctl customers block kovacs").await.ok();
    let customer = op
        .line("mftctl customers get kovacs --json")
        .await
        .ok()
        .json();
    assert_eq!(customer["status"], "blocked");
    op.line("mftctl customers unblock kovacs").await.ok();
    op.line("mftctl customers trigger-update kovacs").await.ok();

    let events = op
        .line(&format!("mftctl events --host {host} --json"))
        .await
        .ok();
    for kind in [
        "host_enrolled",
        "guest_enrolled",
        "desired_published",
        "op_pending_signature",
        "recovery_armed",
        "recovery_disarmed",
    ] {
        assert!(events.stdout.contains(kind), "{kind} missing: {events:#?}");
    }
    op.line("mftctl notifications list --json").await.ok();

    // A readonly operator sees the fleet but cannot change it.
    let key = op
        .line("mftctl apikeys create --name viewer --role readonly --json")
        .await
        .ok()
        .json();
    let viewer = Shell::new(&cloud);
    let viewer = Shell {
        env: vec![(
            "MFTPLUS_API_KEY".into(),
            key["key"].as_str().unwrap().to_string(),
        )],
        ..viewer
    };
    viewer.line("mftctl hosts list").await.ok();
    viewer
        .line("mftctl customers block kovacs")
        .await
        .fails_with("forbidden");
    viewer
        .line("mftctl customers delete kovacs --yes")
        .await
        .fails_with("forbidden");
    op.line("mftctl customers delete kovacs --yes").await.ok();
    assert_eq!(
        op.line("mftctl hosts list --json").await.ok().json(),
        serde_json::json!([])
    );
}
