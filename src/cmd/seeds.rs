//! Where a node finds its ring and how others find it: seeds given by host
//! name or address (`--join`, repeatable), resolved on the caller's thread
//! (never the node's), tried in turn and again with backoff until one takes
//! the node in; and the address it advertises (`--advertise`, or, when it
//! listens on all addresses, the one a seed sees it come from, or a guess).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use crate::net::secure::{self, LinkSettings};
use crate::net::NodeKey;
use crate::node::{NodeError, NodeHandle};

/// `HOST:PORT` (a name, an IPv4 address, or `[IPv6]`) as one address.
pub fn resolve(flag: &str, text: &str) -> Result<SocketAddr, String> {
    let mut addrs = text.to_socket_addrs().map_err(|e| {
        format!("{flag} {text}: cannot resolve it ({e}); expected HOST:PORT, e.g. seed.example.org:47510 or [2001:db8::1]:47510")
    })?;
    addrs
        .next()
        .ok_or_else(|| format!("{flag} {text}: the name has no address"))
}

/// How long a seed may take to say which address it sees.
const ASK_TIMEOUT: Duration = Duration::from_secs(3);

/// The address to advertise for a node listening on the unspecified
/// address (`0.0.0.0`, `[::]`): the address the first seed that answers
/// sees this node come from (it says so in its handshake: behind NAT, the
/// public address), with the listen port, and which seed said so; else
/// (no seed answers, or none was given) [`advertised`]'s guess.
pub fn seen_or_guessed(
    listen: SocketAddr,
    seeds: &[SocketAddr],
    lab: bool,
) -> (SocketAddr, Option<SocketAddr>) {
    // A node on 0.0.0.0 is reachable by IPv4 only; one on [::] by both.
    let usable = |a: &SocketAddr| listen.is_ipv6() || a.is_ipv4();
    // Seeds of the listen address's family first: a node on [::] is then
    // known by its IPv6 address when it can be.
    let mut asked: Vec<SocketAddr> = seeds.iter().copied().filter(usable).collect();
    asked.sort_by_key(|a| a.is_ipv6() != listen.is_ipv6());
    for seed in asked {
        match ask_seed(seed, lab) {
            Ok(Some(seen)) if usable(&seen) && !seen.ip().is_unspecified() => {
                return (SocketAddr::new(seen.ip(), listen.port()), Some(seed));
            }
            Ok(_) => tracing::debug!("seed {seed} did not say which address it sees"),
            Err(why) => tracing::debug!("seed {seed} did not say which address it sees: {why}"),
        }
    }
    (advertised(listen, seeds), None)
}

/// Asks `seed` which address it sees this host come from, with a
/// throwaway key (the node's own key is loaded later, by the node).
fn ask_seed(seed: SocketAddr, lab: bool) -> Result<Option<SocketAddr>, String> {
    let key = NodeKey::generate().map_err(|e| e.to_string())?;
    let settings = LinkSettings {
        lab,
        plaintext: false,
    };
    smol::block_on(async {
        let ask = async {
            let mut stream = async_net::TcpStream::connect(seed)
                .await
                .map_err(|e| e.to_string())?;
            secure::ask_seen_address(&mut stream, &key, &settings)
                .await
                .map_err(|e| e.to_string())
        };
        let late = async {
            smol::Timer::after(ASK_TIMEOUT).await;
            Err(format!("no answer within {ASK_TIMEOUT:?}"))
        };
        smol::future::or(ask, late).await
    })
}

/// The address to advertise for a node listening at `listen`: `listen`
/// itself unless it is the unspecified address (`0.0.0.0`, `[::]`); then
/// the address of the interface this host would use to reach the first
/// seed (or any outside address), with the listen port. No packet is sent:
/// a UDP socket is only connected. Behind NAT, give `--advertise` (or let
/// a seed say, [`seen_or_guessed`]).
pub fn advertised(listen: SocketAddr, seeds: &[SocketAddr]) -> SocketAddr {
    if !listen.ip().is_unspecified() {
        return listen;
    }
    let v6 = listen.is_ipv6();
    let probe = seeds
        .iter()
        .copied()
        .find(|s| s.is_ipv6() == v6)
        .unwrap_or_else(|| {
            // Documentation addresses: only a route is looked up.
            let ip: IpAddr = match v6 {
                true => Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).into(),
                false => Ipv4Addr::new(192, 0, 2, 1).into(),
            };
            SocketAddr::new(ip, 9)
        });
    let bind: SocketAddr = match v6 {
        true => (Ipv6Addr::UNSPECIFIED, 0).into(),
        false => (Ipv4Addr::UNSPECIFIED, 0).into(),
    };
    let local = UdpSocket::bind(bind)
        .and_then(|s| s.connect(probe).and_then(|()| s.local_addr()))
        .map(|a| a.ip());
    let ip = match local {
        Ok(ip) if !ip.is_unspecified() => ip,
        _ => match v6 {
            true => Ipv6Addr::LOCALHOST.into(),
            false => Ipv4Addr::LOCALHOST.into(),
        },
    };
    SocketAddr::new(ip, listen.port())
}

/// Keeps the seeds this host has a route to, warning about the others;
/// an error naming each cause when it has a route to none. A seed that is
/// late (refusing connections, not yet started) has a route: only a host
/// that lacks the address family or the network is caught here, so a
/// daemon does not wait for ever on a seed it can never reach.
pub fn routable(seeds: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, String> {
    let mut kept = Vec::new();
    let mut causes = Vec::new();
    for seed in seeds {
        match route_to(seed) {
            Ok(()) => kept.push(seed),
            Err(why) => {
                tracing::warn!("--join {seed}: not reachable from this host: {why}");
                causes.push(format!("{seed}: {why}"));
            }
        }
    }
    if kept.is_empty() && !causes.is_empty() {
        return Err(format!(
            "no seed can be reached from this host ({})",
            causes.join("; ")
        ));
    }
    Ok(kept)
}

/// Whether this host has an address and a route for `to` (a UDP socket is
/// connected; nothing is sent).
fn route_to(to: SocketAddr) -> Result<(), String> {
    let family = if to.is_ipv6() { "IPv6" } else { "IPv4" };
    let bind: SocketAddr = match to.is_ipv6() {
        true => (Ipv6Addr::UNSPECIFIED, 0).into(),
        false => (Ipv4Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(bind).map_err(|e| format!("this host has no {family} ({e})"))?;
    socket.connect(to).map_err(|e| match e.kind() {
        std::io::ErrorKind::NetworkUnreachable | std::io::ErrorKind::AddrNotAvailable => {
            format!(
                "this host has no route to {family} address {} ({e})",
                to.ip()
            )
        }
        _ => e.to_string(),
    })
}

/// Longest pause between two rounds of seeds.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Waits until `node` (which started joining `seeds[0]`) is part of a ring,
/// trying the seeds in turn and, after each round that failed, again after
/// a pause that doubles up to 30 s. `Ok(false)`: a signal came first.
pub fn join_until_one_answers(
    node: &NodeHandle,
    seeds: &[SocketAddr],
    stop: &Receiver<()>,
) -> Result<bool, NodeError> {
    let mut next = 1;
    let mut backoff = Duration::from_secs(1);
    loop {
        match node.wait_joined(Duration::from_millis(200)) {
            Ok(()) => return Ok(true),
            Err(NodeError::Timeout { .. }) => {}
            Err(NodeError::JoinFailed { reason, .. }) if !seeds.is_empty() => {
                tracing::warn!(
                    "seed {} did not take this node in: {reason}",
                    seeds[(next - 1) % seeds.len()]
                );
                if next % seeds.len() == 0 {
                    tracing::warn!(
                        "no seed answered; trying again in {backoff:?} ({} seed{})",
                        seeds.len(),
                        if seeds.len() == 1 { "" } else { "s" }
                    );
                    if stop.recv_timeout(backoff).is_ok() {
                        return Ok(false);
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                node.join(seeds[next % seeds.len()])?;
                next += 1;
            }
            Err(e) => return Err(e),
        }
        if stop.try_recv().is_ok() {
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_v6_resolve_and_nonsense_says_why() {
        assert_eq!(resolve("--join", "localhost:47510").unwrap().port(), 47510);
        assert_eq!(
            resolve("--join", "[::1]:5").unwrap(),
            "[::1]:5".parse::<SocketAddr>().unwrap()
        );
        let err = resolve("--join", "no-such-host.invalid:1").unwrap_err();
        assert!(err.contains("cannot resolve"), "{err}");
        let err = resolve("--join", "missing-port").unwrap_err();
        assert!(err.contains("HOST:PORT"), "{err}");
    }

    #[test]
    fn a_node_on_all_addresses_advertises_one_others_reach() {
        let seed: SocketAddr = "127.0.0.1:47510".parse().unwrap();
        let listen: SocketAddr = "0.0.0.0:47512".parse().unwrap();
        assert_eq!(
            advertised(listen, &[seed]),
            "127.0.0.1:47512".parse().unwrap()
        );
        let fixed: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(advertised(fixed, &[seed]), fixed);
        let any = advertised("[::]:47512".parse().unwrap(), &["[::1]:1".parse().unwrap()]);
        assert_eq!(any, "[::1]:47512".parse().unwrap());
    }
}
