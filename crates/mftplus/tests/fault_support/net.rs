//! The network of a run, built here and removed on drop (also on panic):
//!
//! ```text
//!  root namespace (the test: reporters, operator client)
//!    fia<pid> 10.213.B.(8J+1) ──veth── agents 10.213.B.(8J+2)   namespace …-hub  (mftplus hub)
//!    fic<pid> 10.213.B.(8J+5) ──veth── admin  10.213.B.(8J+6)   namespace …-cloud (mftplus cloud)
//!  hub namespace    uplink 10.213.255.1 ──veth── uplink 10.213.255.2   cloud namespace
//! ```
//!
//! B and J come from the test's pid, so two runs at once do not collide in the root namespace.
//! The hub reaches the cloud only over `uplink` (neither namespace has a default route); faults
//! are applied on the hub's end of it. The admin link is the test's own way to the cloud (set-up
//! and read-back) and is never faulted.

use super::run;

/// The hub's and the cloud's ends of the uplink (private to their namespaces).
pub const HUB_UPLINK_IP: &str = "10.213.255.1";
pub const CLOUD_UPLINK_IP: &str = "10.213.255.2";
const UPLINK: &str = "uplink";
const PREFIX: &str = "mftfi-";

/// How a partition cuts the uplink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Every packet dropped both ways: connections hang, connects time out.
    Drop,
    /// TCP answered with a reset: connections break and connects fail at once.
    Reset,
    /// The hub's end of the link down: no route to the cloud.
    LinkDown,
}

#[derive(Debug)]
pub struct Net {
    pub cloud_ns: String,
    pub hub_ns: String,
    /// The hub's address on the agents' link (reachable from the test).
    pub hub_ip: String,
    /// The cloud's address on the admin link (reachable from the test).
    pub cloud_admin_ip: String,
    root_links: Vec<String>,
}

impl Net {
    pub fn create() -> Result<Net, String> {
        remove_stale();
        let pid = std::process::id();
        let (b, j) = ((pid / 32) % 256, (pid % 32) * 8);
        let ip = |last: u32| format!("10.213.{b}.{}", j + last);
        let net = Net {
            cloud_ns: format!("{PREFIX}{pid}-cloud"),
            hub_ns: format!("{PREFIX}{pid}-hub"),
            hub_ip: ip(2),
            cloud_admin_ip: ip(6),
            root_links: vec![format!("fia{pid}"), format!("fic{pid}")],
        };
        run(&["ip", "netns", "add", &net.hub_ns])?;
        run(&["ip", "netns", "add", &net.cloud_ns])?;
        for ns in [&net.hub_ns, &net.cloud_ns] {
            run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
        }
        net.root_link(&net.root_links[0], &net.hub_ns, "agents", &ip(1), &ip(2))?;
        net.root_link(&net.root_links[1], &net.cloud_ns, "admin", &ip(5), &ip(6))?;
        let (h, c) = (net.hub_ns.as_str(), net.cloud_ns.as_str());
        run(&[
            "ip", "-n", h, "link", "add", UPLINK, "type", "veth", "peer", "name", UPLINK, "netns",
            c,
        ])?;
        run(&[
            "ip",
            "-n",
            h,
            "addr",
            "add",
            &format!("{HUB_UPLINK_IP}/30"),
            "dev",
            UPLINK,
        ])?;
        run(&[
            "ip",
            "-n",
            c,
            "addr",
            "add",
            &format!("{CLOUD_UPLINK_IP}/30"),
            "dev",
            UPLINK,
        ])?;
        run(&["ip", "-n", h, "link", "set", UPLINK, "up"])?;
        run(&["ip", "-n", c, "link", "set", UPLINK, "up"])?;
        Ok(net)
    }

    /// A veth from the root namespace (`root_end`, `root_ip`/30) into `ns` (`ns_end`, `ns_ip`).
    fn root_link(
        &self,
        root_end: &str,
        ns: &str,
        ns_end: &str,
        root_ip: &str,
        ns_ip: &str,
    ) -> Result<(), String> {
        run(&[
            "ip", "link", "add", root_end, "type", "veth", "peer", "name", ns_end, "netns", ns,
        ])?;
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{root_ip}/30"),
            "dev",
            root_end,
        ])?;
        run(&["ip", "link", "set", root_end, "up"])?;
        run(&[
            "ip",
            "-n",
            ns,
            "addr",
            "add",
            &format!("{ns_ip}/30"),
            "dev",
            ns_end,
        ])?;
        run(&["ip", "-n", ns, "link", "set", ns_end, "up"])?;
        Ok(())
    }

    /// Cuts the uplink.
    pub fn cut(&self, how: Cut) -> Result<(), String> {
        match how {
            Cut::Drop => self.rules("-I", &["-j", "DROP"]),
            Cut::Reset => self.rules(
                "-I",
                &["-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"],
            ),
            Cut::LinkDown => {
                run(&["ip", "-n", &self.hub_ns, "link", "set", UPLINK, "down"]).map(drop)
            }
        }
    }

    /// Undoes [`Net::cut`].
    pub fn mend(&self, how: Cut) -> Result<(), String> {
        match how {
            Cut::Drop => self.rules("-D", &["-j", "DROP"]),
            Cut::Reset => self.rules(
                "-D",
                &["-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"],
            ),
            Cut::LinkDown => {
                run(&["ip", "-n", &self.hub_ns, "link", "set", UPLINK, "up"]).map(drop)
            }
        }
    }

    /// Sends every packet crossing the uplink (both ways) through NFQUEUE `queue`, or stops.
    /// `--queue-bypass`: with no reader on the queue packets pass instead of being dropped.
    pub fn impair(&self, on: bool, queue: u16) -> Result<(), String> {
        let queue = queue.to_string();
        let rule = ["-j", "NFQUEUE", "--queue-num", &queue, "--queue-bypass"];
        self.rules(if on { "-I" } else { "-D" }, &rule)
    }

    /// One rule in the hub namespace's OUTPUT (to the cloud) and INPUT (from it) chains.
    fn rules(&self, op: &str, rule: &[&str]) -> Result<(), String> {
        for (chain, direction) in [("OUTPUT", "-o"), ("INPUT", "-i")] {
            let mut args = vec![
                "ip",
                "netns",
                "exec",
                &self.hub_ns,
                "iptables",
                "-w",
                op,
                chain,
            ];
            args.extend([direction, UPLINK]);
            args.extend_from_slice(rule);
            run(&args)?;
        }
        Ok(())
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in [&self.hub_ns, &self.cloud_ns] {
            if let Err(err) = run(&["ip", "netns", "del", ns]) {
                eprintln!("fault injection: cannot remove namespace {ns}: {err}");
            }
        }
        // Gone with their peers' namespaces, unless a process still holds one.
        for link in &self.root_links {
            let _ = run(&["ip", "link", "del", link]);
        }
    }
}

/// Whether namespaces and veth pairs can be made here: one of each, removed at once.
pub fn probe() -> Result<(), String> {
    let ns = format!("{PREFIX}{}-probe", std::process::id());
    run(&["ip", "netns", "add", &ns]).map_err(|e| format!("network namespaces: {e}"))?;
    let veth = run(&[
        "ip", "-n", &ns, "link", "add", "p0", "type", "veth", "peer", "name", "p1",
    ]);
    let iptables = run(&["ip", "netns", "exec", &ns, "iptables", "-w", "-S"]);
    let _ = run(&["ip", "netns", "del", &ns]);
    veth.map_err(|e| format!("veth pairs: {e}"))?;
    iptables.map_err(|e| format!("iptables in a namespace: {e}"))?;
    Ok(())
}

/// Namespaces and root links left by an earlier run of this suite whose process is gone
/// (killed before its drop guard ran). Only names this suite makes, only dead owners.
fn remove_stale() {
    let dead = |pid: &str| {
        pid.parse::<u32>().is_ok_and(|p| {
            p != std::process::id() && !std::path::Path::new(&format!("/proc/{p}")).exists()
        })
    };
    let namespaces = run(&["ip", "netns", "list"]).unwrap_or_default();
    for name in namespaces
        .lines()
        .filter_map(|l| l.split_whitespace().next())
    {
        let owner = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('-').next());
        if owner.is_some_and(dead) {
            let _ = run(&["ip", "netns", "del", name]);
        }
    }
    let links = run(&["ip", "-o", "link", "show"]).unwrap_or_default();
    for line in links.lines() {
        let Some(name) = line
            .split(':')
            .nth(1)
            .map(|n| n.trim().split('@').next().unwrap_or(""))
        else {
            continue;
        };
        let owner = name
            .strip_prefix("fia")
            .or_else(|| name.strip_prefix("fic"));
        if owner.is_some_and(dead) {
            let _ = run(&["ip", "link", "del", name]);
        }
    }
}
