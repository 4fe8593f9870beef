//! Delay and loss on the uplink, in place of `tc qdisc … netem`.
//!
//! The kernel this suite was written on (CI's machines are like it) is built without
//! `sch_netem` (`CONFIG_NET_SCH_NETEM` is not set), so `tc netem` fails with "Specified qdisc
//! kind is unknown". It does have NFQUEUE. While the fault is on, an iptables rule in the hub's
//! namespace hands every packet crossing the uplink (both ways) to queue `QUEUE`; this thread,
//! which joined the hub's namespace and bound the queue over netfilter's netlink protocol, drops
//! each packet, either way, with the loss probability (decided by a seeded generator), and gives
//! the packets the hub sends to the cloud their ACCEPT verdict after the delay ± jitter,
//! uniformly drawn: what `netem delay D J loss P` on the hub's end would do to the round trip,
//! with loss on the answers too. As with netem, jitter reorders packets. Nothing here is
//! `unsafe`: rustix wraps setns and the socket calls.

use super::Rng;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use rustix::net::{netlink, sockopt, AddressFamily, RecvFlags, SendFlags, SocketType};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The queue number the iptables rule names (per namespace, so any number will do).
pub const QUEUE: u16 = 7;

const SUBSYS_QUEUE: u16 = 3;
const MSG_PACKET: u16 = SUBSYS_QUEUE << 8;
const MSG_VERDICT: u16 = SUBSYS_QUEUE << 8 | 1;
const MSG_CONFIG: u16 = SUBSYS_QUEUE << 8 | 2;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const CFG_CMD: u16 = 1;
const CFG_PARAMS: u16 = 2;
const CFG_QUEUE_MAXLEN: u16 = 3;
const CMD_BIND: u8 = 1;
const COPY_META: u8 = 1;
const ATTR_PACKET_HDR: u16 = 1;
const ATTR_VERDICT_HDR: u16 = 2;
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;
const AF_INET: u16 = 2;
const HOOK_LOCAL_OUT: u8 = 3;

/// What happens to each packet while the rule is in place.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Impairment {
    pub delay: Duration,
    pub jitter: Duration,
    pub loss_per_mille: u64,
}

#[derive(Debug, Default)]
pub struct Counters {
    pub packets: AtomicU64,
    pub dropped: AtomicU64,
    /// Held back for the delay (those leaving the hub).
    pub delayed: AtomicU64,
}

/// The delayer thread; stopped (pending packets accepted) on drop.
pub struct Shaper {
    stop: Arc<AtomicBool>,
    setting: Arc<Mutex<Impairment>>,
    pub counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

impl Shaper {
    /// Joins namespace `netns` on a thread of its own and binds [`QUEUE`] there.
    pub fn start(netns: &str, seed: u64) -> Result<Shaper, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let setting = Arc::new(Mutex::new(Impairment::default()));
        let counters = Arc::new(Counters::default());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let netns = netns.to_string();
        let (s, set, c) = (stop.clone(), setting.clone(), counters.clone());
        let thread = std::thread::spawn(move || match open(&netns) {
            Ok(fd) => {
                let _ = ready_tx.send(Ok(()));
                serve(fd, &s, &set, &c, Rng::new(seed));
            }
            Err(err) => {
                let _ = ready_tx.send(Err(err));
            }
        });
        let ready = ready_rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| "the NFQUEUE thread did not start".to_string())?;
        ready.map(|()| Shaper {
            stop,
            setting,
            counters,
            thread: Some(thread),
        })
    }

    pub fn set(&self, impairment: Impairment) {
        *mftplus_base::sync::lock(&self.setting) = impairment;
    }
}

impl Drop for Shaper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The netlink socket, bound to the queue, from inside the namespace.
fn open(netns: &str) -> Result<OwnedFd, String> {
    let ns = std::fs::File::open(format!("/run/netns/{netns}"))
        .map_err(|e| format!("cannot open namespace {netns}: {e}"))?;
    rustix::thread::move_into_link_name_space(
        ns.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .map_err(|e| format!("setns into {netns}: {e}"))?;
    let fd = rustix::net::socket(
        AddressFamily::NETLINK,
        SocketType::RAW,
        Some(netlink::NETFILTER),
    )
    .map_err(|e| format!("netlink socket: {e}"))?;
    rustix::net::bind(&fd, &netlink::SocketAddrNetlink::new(0, 0))
        .map_err(|e| format!("netlink bind: {e}"))?;
    let _ = sockopt::set_socket_recv_buffer_size_force(&fd, 8 << 20);
    sockopt::set_socket_timeout(&fd, sockopt::Timeout::Recv, Some(Duration::from_millis(5)))
        .map_err(|e| format!("netlink timeout: {e}"))?;
    let mut pf = vec![CMD_BIND, 0];
    pf.extend(AF_INET.to_be_bytes());
    request(fd.as_fd(), 1, &[(CFG_CMD, pf)])?;
    let mut params = 0xffff_u32.to_be_bytes().to_vec();
    params.push(COPY_META);
    request(fd.as_fd(), 2, &[(CFG_PARAMS, params)])?;
    request(
        fd.as_fd(),
        3,
        &[(CFG_QUEUE_MAXLEN, 8192_u32.to_be_bytes().to_vec())],
    )?;
    Ok(fd)
}

/// One nfnetlink message to the queue subsystem: header, `nfgenmsg`, attributes.
fn message(kind: u16, flags: u16, seq: u32, attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut body = vec![0_u8, 0];
    body.extend(QUEUE.to_be_bytes());
    for (kind, payload) in attrs {
        body.extend(((payload.len() + 4) as u16).to_ne_bytes());
        body.extend(kind.to_ne_bytes());
        body.extend(payload);
        body.resize(body.len().next_multiple_of(4), 0);
    }
    let mut msg = Vec::with_capacity(16 + body.len());
    msg.extend(((16 + body.len()) as u32).to_ne_bytes());
    msg.extend(kind.to_ne_bytes());
    msg.extend(flags.to_ne_bytes());
    msg.extend(seq.to_ne_bytes());
    msg.extend(0_u32.to_ne_bytes());
    msg.extend(body);
    msg
}

/// A configuration message, and the kernel's acknowledgement of it.
fn request(fd: BorrowedFd<'_>, seq: u32, attrs: &[(u16, Vec<u8>)]) -> Result<(), String> {
    let msg = message(MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, seq, attrs);
    rustix::net::send(fd, &msg, SendFlags::empty()).map_err(|e| format!("netlink send: {e}"))?;
    let mut buf = vec![0_u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        let n = match rustix::net::recv(fd, &mut buf[..], RecvFlags::empty()) {
            Ok((n, _)) => n,
            Err(Errno::AGAIN) | Err(Errno::INTR) => continue,
            Err(e) => return Err(format!("netlink recv: {e}")),
        };
        for (kind, msg_seq, payload) in messages(&buf[..n]) {
            if kind == NLMSG_ERROR && msg_seq == seq {
                let code = payload
                    .get(..4)
                    .map_or(0, |b| i32::from_ne_bytes(b.try_into().unwrap()));
                return match code {
                    0 => Ok(()),
                    code => Err(format!(
                        "NFQUEUE configuration {seq} refused: errno {}",
                        -code
                    )),
                };
            }
        }
    }
    Err(format!("no answer to NFQUEUE configuration {seq}"))
}

/// The netlink messages in a datagram: (type, sequence, payload after the header).
fn messages(buf: &[u8]) -> Vec<(u16, u32, &[u8])> {
    let mut found = Vec::new();
    let mut at = 0;
    while at + 16 <= buf.len() {
        let len = u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
        if len < 16 || at + len > buf.len() {
            break;
        }
        let kind = u16::from_ne_bytes(buf[at + 4..at + 6].try_into().unwrap());
        let seq = u32::from_ne_bytes(buf[at + 8..at + 12].try_into().unwrap());
        found.push((kind, seq, &buf[at + 16..at + len]));
        at += len.next_multiple_of(4);
    }
    found
}

/// The packet id of a queued packet's message (after `nfgenmsg`, attribute PACKET_HDR:
/// `be32 packet_id, be16 hw_protocol, u8 hook`), and whether it leaves the hub (hook
/// LOCAL_OUT).
fn packet_id(payload: &[u8]) -> Option<(u32, bool)> {
    let mut at = 4;
    while at + 4 <= payload.len() {
        let len = u16::from_ne_bytes(payload[at..at + 2].try_into().unwrap()) as usize;
        let kind = u16::from_ne_bytes(payload[at + 2..at + 4].try_into().unwrap()) & 0x7fff;
        if len < 4 || at + len > payload.len() {
            return None;
        }
        if kind == ATTR_PACKET_HDR && len >= 11 {
            let id = u32::from_be_bytes(payload[at + 4..at + 8].try_into().unwrap());
            return Some((id, payload[at + 10] == HOOK_LOCAL_OUT));
        }
        at += len.next_multiple_of(4);
    }
    None
}

fn verdict(fd: BorrowedFd<'_>, id: u32, verdict: u32) {
    let mut header = verdict.to_be_bytes().to_vec();
    header.extend(id.to_be_bytes());
    let msg = message(MSG_VERDICT, NLM_F_REQUEST, 0, &[(ATTR_VERDICT_HDR, header)]);
    let _ = rustix::net::send(fd, &msg, SendFlags::empty());
}

/// Reads queued packets and hands out verdicts until stopped; then accepts what still waits.
fn serve(
    fd: OwnedFd,
    stop: &AtomicBool,
    setting: &Mutex<Impairment>,
    counters: &Counters,
    mut rng: Rng,
) {
    let mut pending: BinaryHeap<Reverse<(Instant, u32)>> = BinaryHeap::new();
    let mut buf = vec![0_u8; 1 << 16];
    while !stop.load(Ordering::SeqCst) {
        match rustix::net::recv(&fd, &mut buf[..], RecvFlags::empty()) {
            Ok((n, _)) => {
                let now = Instant::now();
                let ids: Vec<(u32, bool)> = messages(&buf[..n])
                    .into_iter()
                    .filter(|(kind, _, _)| *kind == MSG_PACKET)
                    .filter_map(|(_, _, payload)| packet_id(payload))
                    .collect();
                let impairment = *mftplus_base::sync::lock(setting);
                for (id, outgoing) in ids {
                    counters.packets.fetch_add(1, Ordering::Relaxed);
                    if rng.chance(impairment.loss_per_mille) {
                        counters.dropped.fetch_add(1, Ordering::Relaxed);
                        verdict(fd.as_fd(), id, NF_DROP);
                    } else if outgoing {
                        counters.delayed.fetch_add(1, Ordering::Relaxed);
                        pending.push(Reverse((now + delay(&impairment, &mut rng), id)));
                    } else {
                        verdict(fd.as_fd(), id, NF_ACCEPT);
                    }
                }
            }
            // A timeout, or the socket's buffer overflowed (those packets are lost, as on a
            // congested link).
            Err(Errno::AGAIN) | Err(Errno::INTR) | Err(Errno::NOBUFS) => {}
            Err(err) => {
                eprintln!("fault injection: NFQUEUE reader stopped: {err}");
                break;
            }
        }
        let now = Instant::now();
        while let Some(Reverse((due, id))) = pending.peek().copied() {
            if due > now {
                break;
            }
            pending.pop();
            verdict(fd.as_fd(), id, NF_ACCEPT);
        }
    }
    for Reverse((_, id)) in pending.drain() {
        verdict(fd.as_fd(), id, NF_ACCEPT);
    }
}

fn delay(impairment: &Impairment, rng: &mut Rng) -> Duration {
    let jitter = impairment.jitter.as_millis() as u64;
    let base = impairment.delay.as_millis() as u64;
    Duration::from_millis((base + rng.below(2 * jitter + 1)).saturating_sub(jitter))
}
