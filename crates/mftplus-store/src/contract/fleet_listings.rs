//! Fleet contract: the dashboard's listings. Customers by a keyset cursor with their host and
//! op counts in one query, and hosts filtered by liveness as the operator sees it and ordered
//! by id or by last report (never reported first), each with a cursor that matches its order.

use super::fleet::{host_report, new_customer, new_host, new_op, ops_edit, transition, T0};
use super::uid;
use crate::{
    liveness, CustomerCounts, HostCursor, HostListing, HostOrder, HostRow, Store, StoreResult,
};

/// This section's clock, after the other fleet sections' report times.
const BASE: i64 = T0 + 20_000_000;
const STALE_AFTER: i64 = 1_000;
const DOWN_AFTER: i64 = 10_000;
/// When the section's liveness pass runs: 20 s after `BASE`.
const NOW: i64 = BASE + 20_000;

/// Pages in bytewise id order (upper case before lower case), none twice or skipped.
pub async fn fleet_customer_pages(store: &dyn Store) {
    let stem = uid("cus");
    let mut ours = Vec::new();
    for suffix in ["b", "B", "a"] {
        let mut customer = new_customer(BASE);
        customer.id = format!("{stem}{suffix}");
        ours.push(store.create_customer(&customer).await.expect("customer").id);
    }
    ours.sort();
    let mut everyone = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .list_customers_page(after.as_deref(), 2)
            .await
            .expect("a page of customers");
        assert!(page.len() <= 2, "a page is bounded by its limit");
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        everyone.extend(page.into_iter().map(|row| row.id));
    }
    assert!(
        everyone.windows(2).all(|pair| pair[0] < pair[1]),
        "bytewise by id, none twice: {everyone:?}"
    );
    assert!(ours.iter().all(|id| everyone.contains(id)));
    let next: Vec<String> = store
        .list_customers_page(Some(&ours[0]), 2)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.id)
        .collect();
    assert_eq!(
        next,
        ours[1..],
        "the page after a cursor starts right after it"
    );
}

/// A customer's hosts in every liveness, and what the two queries make of them.
struct Fleet {
    customer_id: String,
    /// Never reported, by id.
    never: Vec<String>,
    down: String,
    /// Reported at the same time, by id: the order's ties.
    stale: Vec<String>,
    ok: String,
}

/// One host of each liveness (two never reported, two stale reported at the same time) for a
/// new customer, after a liveness pass at [`NOW`]. The pass is global, as the liveness
/// section's are; this section asserts only about its own hosts.
async fn fleet(store: &dyn Store) -> Fleet {
    let customer = store.create_customer(&new_customer(BASE)).await.unwrap();
    let stem = uid("hst");
    let host = |suffix: &str| {
        let mut host = new_host(&customer.id, BASE);
        host.id = format!("{stem}{suffix}");
        host.key_hash = mftplus_crypto::sha256_hex(host.id.as_bytes());
        host
    };
    let hosts = [
        host("n"),
        host("N"),
        host("d"),
        host("s"),
        host("S"),
        host("o"),
    ];
    for host in &hosts {
        store.create_host(host, 100).await.expect("host");
    }
    let reported_at = [
        (&hosts[2].id, BASE),
        (&hosts[3].id, BASE + 15_000),
        (&hosts[4].id, BASE + 15_000),
        (&hosts[5].id, BASE + 19_500),
    ];
    for (host_id, at) in reported_at {
        let report = host_report(&customer.id, host_id, at);
        store.ingest_host_reports(&[report]).await.unwrap()[0]
            .as_ref()
            .expect("ack");
    }
    store
        .liveness_pass(&super::fleet::rule(NOW, STALE_AFTER, DOWN_AFTER, 0))
        .await
        .expect("liveness_pass");
    let mut never = vec![hosts[0].id.clone(), hosts[1].id.clone()];
    never.sort();
    let mut stale = vec![hosts[3].id.clone(), hosts[4].id.clone()];
    stale.sort();
    Fleet {
        customer_id: customer.id,
        never,
        down: hosts[2].id.clone(),
        stale,
        ok: hosts[5].id.clone(),
    }
}

/// Counts per customer in one call: hosts by liveness as shown (a never-reported host is
/// `never`, not the `ok` it is stored with), ops awaiting a signature only; zeros for a
/// customer with nothing, nothing for an unknown one.
pub async fn fleet_customer_counts(store: &dyn Store) {
    let fleet = fleet(store).await;
    let ops = [
        new_op(&fleet.customer_id, &fleet.ok, BASE),
        new_op(&fleet.customer_id, &fleet.ok, BASE),
        new_op(&fleet.customer_id, &fleet.down, BASE),
    ];
    store
        .apply_desired_edit(&ops_edit(&fleet.ok, ops[..2].to_vec(), BASE + 1))
        .await
        .unwrap();
    store
        .apply_desired_edit(&ops_edit(&fleet.down, ops[2..].to_vec(), BASE + 1))
        .await
        .unwrap();
    let mut sign = transition(&ops[1].id, &["pending_signature"], "signed", BASE + 2);
    sign.signature = Some("-----BEGIN SSH SIGNATURE-----".into());
    store.transition_op(&sign).await.expect("sign");

    let empty = store.create_customer(&new_customer(BASE)).await.unwrap();
    let asked = [fleet.customer_id.clone(), uid("cus"), empty.id.clone()];
    let counts = store.customer_fleet_counts(&asked).await.expect("counts");
    let mut expected = vec![
        CustomerCounts {
            customer_id: fleet.customer_id.clone(),
            hosts: 6,
            stale: 2,
            down: 1,
            never: 2,
            awaiting_signature: 2,
        },
        CustomerCounts {
            customer_id: empty.id.clone(),
            ..CustomerCounts::default()
        },
    ];
    expected.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
    assert_eq!(counts, expected);
    assert!(store.customer_fleet_counts(&[]).await.unwrap().is_empty());
}

/// Liveness filters as `HostInfo` shows it, in both orders; the "missing hosts" order walked
/// page by page with its cursor; ids compared bytewise.
pub async fn fleet_host_views(store: &dyn Store) {
    let fleet = fleet(store).await;
    let mine = |liveness: Option<&str>, order: HostOrder| HostListing {
        customer_id: Some(fleet.customer_id.clone()),
        liveness: liveness.map(str::to_string),
        order,
        after: None,
        limit: 100,
    };
    for order in [HostOrder::Id, HostOrder::LastReport] {
        let cases = [
            (liveness::NEVER, fleet.never.clone()),
            (liveness::DOWN, vec![fleet.down.clone()]),
            (liveness::STALE, fleet.stale.clone()),
            (liveness::OK, vec![fleet.ok.clone()]),
            ("bogus", Vec::new()),
        ];
        for (state, expected) in cases {
            let shown = ids(store.list_hosts_page(&mine(Some(state), order)).await);
            assert_eq!(shown, expected, "{state} hosts in {order:?} order");
        }
    }
    let missing_first: Vec<String> = fleet
        .never
        .iter()
        .chain([&fleet.down])
        .chain(&fleet.stale)
        .chain([&fleet.ok])
        .cloned()
        .collect();
    let walked = walk(store, mine(None, HostOrder::LastReport), 2).await;
    assert_eq!(
        walked, missing_first,
        "never first, then oldest report; ties by id"
    );
    let stale_one_by_one = walk(store, mine(Some(liveness::STALE), HostOrder::Id), 1).await;
    assert_eq!(stale_one_by_one, fleet.stale);

    // Across every customer: the order holds, and ours are among them.
    let everyone = HostListing {
        order: HostOrder::LastReport,
        limit: 1_000_000,
        ..HostListing::default()
    };
    let rows = store.list_hosts_page(&everyone).await.expect("every host");
    let keys: Vec<(i64, &str)> = rows
        .iter()
        .map(|row| (row.last_report_at_ms.unwrap_or(-1), row.id.as_str()))
        .collect();
    assert!(keys.windows(2).all(|pair| pair[0] < pair[1]), "{keys:?}");
    assert!(missing_first
        .iter()
        .all(|id| rows.iter().any(|row| &row.id == id)));
    let down_anywhere = HostListing {
        liveness: Some(liveness::DOWN.into()),
        ..everyone
    };
    let rows = store.list_hosts_page(&down_anywhere).await.unwrap();
    assert!(rows
        .iter()
        .all(|row| row.liveness == liveness::DOWN && row.last_report_at_ms.is_some()));
    assert!(rows.iter().any(|row| row.id == fleet.down));
}

/// Every page of `listing`, `limit` at a time, each after the previous page's last host.
async fn walk(store: &dyn Store, mut listing: HostListing, limit: u32) -> Vec<String> {
    listing.limit = limit;
    let mut walked = Vec::new();
    loop {
        let page = store.list_hosts_page(&listing).await.expect("a page");
        assert!(
            page.len() <= limit as usize,
            "a page is bounded by its limit"
        );
        let Some(last) = page.last() else {
            return walked;
        };
        listing.after = Some(HostCursor {
            id: last.id.clone(),
            last_report_at_ms: last.last_report_at_ms,
        });
        walked.extend(page.into_iter().map(|row| row.id));
    }
}

fn ids(rows: StoreResult<Vec<HostRow>>) -> Vec<String> {
    rows.expect("a page of hosts")
        .into_iter()
        .map(|row| row.id)
        .collect()
}
