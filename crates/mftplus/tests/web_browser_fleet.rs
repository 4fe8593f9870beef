//! The fleet in a real headless Chromium (issue 15's acceptance), every part real: a real
//! `mftplus agent` enrolled against a real cloud reports and runs a container on the Docker
//! Engine; the operator sees the host reporting on the hosts page, opens it, removes the
//! guest in the desired-state editor, reads the preview that marks the change destructive,
//! publishes, and watches the op wait for a signature; `mftctl ops sign` on the workstation
//! signs it, and the open page shows it executed without a reload.
//!
//! Skips without Chromium or Docker unless `MFTPLUS_TEST_REQUIRE_BROWSER=1` /
//! `MFTPLUS_TEST_REQUIRE_DOCKER=1` (CI sets both). Screenshots as in web_browser.rs.

mod agent_support;
#[path = "../../mftplus-cloud/tests/browser/mod.rs"]
mod browser;
mod web_support;

use agent_support::*;
use browser::{Browser, WAIT};
use mftplus_types::fleet::op_status;
use serde_json::json;
use std::time::Duration;
use web_support::{sign_in, update_docs_screenshots, OrFail};

/// How long the agent may take to pick up a signed op and report it executed.
const EXECUTED_WITHIN: Duration = Duration::from_secs(45);
/// The screenshots docs/dashboard.md shows.
const DOCS_SCREENSHOTS: [&str; 5] = [
    "hosts-reporting",
    "host",
    "desired-diff",
    "op-awaiting-signature",
    "op-executed",
];

fn desired_yaml(guest: &str, image: &str) -> String {
    format!(
        "guests:\n  {guest}:\n    spec:\n      kind: container\n      image: {image}\n      \
         cpu_cores: 1\n      memory_mb: 64\n      disk_gb: 1\n    run_state: running\n"
    )
}

/// A guest id no other run uses (containers are global to the Docker host).
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{:08x}",
        nanos ^ std::process::id().rotate_left(16)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_removes_a_guest_and_watches_the_signed_op_execute() {
    if !mftplus_agent::testing::docker_available() {
        return;
    }
    let Some(browser) = Browser::start().await else {
        return; // no Chromium here, and not required
    };
    let image = mftplus_agent::testing::guest_image();
    let guest = unique("web");
    let _cleanup = ContainerGuard(vec![guest.clone()]);
    let cloud = fast_cloud().await;
    customer(&cloud, "kovacs").await;
    let operator = operator(&cloud);
    let dir = tempfile::tempdir().unwrap();
    let agent_box = Box::new(&dir.path().join("box"), &cloud.url);
    let host_id = enrolled_host_id(&agent_box.enroll("kovacs", &[]));
    let agent = agent_box.start();
    first_report(&operator, &host_id, &[&agent]).await;

    // A running guest to remove, put there with the CLI (the benign path is tested elsewhere).
    let desired = dir.path().join("desired.yaml");
    std::fs::write(&desired, desired_yaml(&guest, &image)).unwrap();
    let set = ["desired", "set", &host_id, desired.to_str().unwrap()];
    assert_eq!(mftctl(&cloud, dir.path(), &set), 0);
    eventually(
        Duration::from_secs(60),
        "the guest converged",
        &[&agent],
        || async {
            let host = operator.get_host(&host_id).await.ok()?;
            (host.applied_generation == 1 && host.convergence == "converged").then_some(())
        },
    )
    .await;

    // The hosts page shows the host reporting; its page shows the guest.
    let url = cloud.url.clone();
    sign_in(
        &browser,
        &url,
        &cloud.admin_email,
        &cloud.admin_password,
        None,
    )
    .await;
    browser
        .goto(&format!("{url}/hosts"))
        .await
        .or_fail("open /hosts");
    browser
        .wait_for(
            &format!("tr[data-host=\"{host_id}\"] [data-status=\"ok\"]"),
            WAIT,
        )
        .await
        .or_fail("the host is listed as reporting (OK)");
    browser
        .save_screenshot("hosts-reporting")
        .await
        .or_fail("screenshot");
    browser
        .goto(&format!("{url}/hosts/{host_id}"))
        .await
        .or_fail("open the host");
    browser
        .wait_for_text("main", &guest, WAIT)
        .await
        .or_fail("the host page shows its guest");
    browser.save_screenshot("host").await.or_fail("screenshot");

    // The edit: the guest removed. The preview marks it destructive before anything is saved.
    browser
        .goto(&format!("{url}/hosts/{host_id}/desired"))
        .await
        .or_fail("open the desired-state editor");
    let editor = browser.find("#desired").await.or_fail("the editor");
    editor.clear().await.or_fail("clear the editor");
    editor
        .send_keys(&json!({ "guests": {} }).to_string())
        .await
        .or_fail("type the new desired state");
    browser
        .find("#preview")
        .await
        .or_fail("Preview")
        .click()
        .await
        .or_fail("click Preview");
    browser
        .wait_for_text("#changes", "Destructive", WAIT)
        .await
        .or_fail("the preview marks the removal destructive");
    browser
        .save_screenshot("desired-diff")
        .await
        .or_fail("screenshot");
    assert_eq!(
        operator
            .get_host(&host_id)
            .await
            .unwrap()
            .desired_generation,
        1,
        "a preview saves nothing"
    );
    browser
        .find("#publish")
        .await
        .or_fail("Publish")
        .click()
        .await
        .or_fail("click Publish");

    // On the operations page: the op waits for a signature, with the line that signs it.
    let waiting = format!("tr[data-status=\"{}\"]", op_status::PENDING_SIGNATURE);
    browser
        .wait_for(&waiting, WAIT)
        .await
        .or_fail("the op waits for a signature");
    // Read in the page itself: the live table may be re-rendered at any moment, which would
    // leave a WebDriver element stale between finding it and reading it.
    let op_id = browser
        .execute(
            "const row = document.querySelector(arguments[0]); \
             return row ? row.getAttribute('data-op') : null;",
            &[json!(waiting)],
        )
        .await
        .or_fail("the op's id")
        .as_str()
        .expect("a data-op attribute")
        .to_string();
    browser
        .wait_for_text(&waiting, &format!("mftctl ops sign {op_id}"), WAIT)
        .await
        .or_fail("the exact sign line is shown");
    browser
        .save_screenshot("op-awaiting-signature")
        .await
        .or_fail("screenshot");
    // A mark that only survives if the page is never reloaded.
    browser
        .execute("window.mftplusNoReload = 42; return 1;", &[])
        .await
        .or_fail("mark the page");

    // The operator signs on the workstation; the agent executes; the open page follows.
    let key = cloud.operator_key.display().to_string();
    let sign = ["ops", "sign", &op_id, "--key", &key, "--yes"];
    assert_eq!(mftctl(&cloud, dir.path(), &sign), 0);
    let executed = format!(
        "tr[data-op=\"{op_id}\"][data-status=\"{}\"]",
        op_status::EXECUTED
    );
    browser
        .wait_for(&executed, EXECUTED_WITHIN)
        .await
        .unwrap_or_else(|err| panic!("the op shown executed: {err}\n{}", agent.logs()));
    let mark = browser
        .execute("return window.mftplusNoReload || 0;", &[])
        .await
        .or_fail("read the mark");
    assert_eq!(mark, json!(42), "the page changed without a reload");
    browser
        .save_screenshot("op-executed")
        .await
        .or_fail("screenshot");
    assert!(containers_of(&guest).is_empty(), "the container is gone");
    update_docs_screenshots(&DOCS_SCREENSHOTS);
}
