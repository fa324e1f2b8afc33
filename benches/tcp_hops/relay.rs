//! A baseline for "one hop": a ring of bare relay processes (smol +
//! async-net, no framing, no routing) that pass 64 bytes on to the next.
//! The per-hop figure of the overlay is best read against this: it costs
//! what any process-to-process hop costs on this machine, plus our work.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use async_net::{TcpListener, TcpStream};
use smol::io::{AsyncReadExt, AsyncWriteExt};

use super::procs::{start, until_parent_goes, ChildGuard, Echo};

/// Child: relays 64-byte blocks from its one incoming connection to
/// `TCP_HOPS_JOIN` (the next relay).
pub fn serve_relay() {
    let next: SocketAddr = std::env::var("TCP_HOPS_JOIN")
        .expect("next address")
        .parse()
        .expect("an address");
    let listener = smol::block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
    println!("{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        smol::block_on(async {
            let (mut from, _) = listener.accept().await.expect("accept");
            let mut to = TcpStream::connect(next).await.expect("connect next");
            to.set_nodelay(true).unwrap();
            let mut buf = [0u8; 64];
            while from.read_exact(&mut buf).await.is_ok() {
                if to.write_all(&buf).await.is_err() {
                    return;
                }
            }
        })
    });
    until_parent_goes();
}

/// Per-hop latency around a ring of `relays` relay processes (back to
/// here: relays + 1 hops), with echo round trips between the trips.
pub fn per_hop(relays: usize, trips: usize, echo: &mut Echo) -> (Vec<Duration>, Vec<Duration>) {
    let home = smol::block_on(TcpListener::bind("127.0.0.1:0")).expect("bind");
    let mut next = home.local_addr().unwrap();
    let mut children: Vec<ChildGuard> = Vec::new();
    for _ in 0..relays {
        let (child, addr) = start("relay", Some(next));
        children.push(child);
        next = addr;
    }
    smol::block_on(async {
        let mut out = TcpStream::connect(next).await.expect("connect first relay");
        out.set_nodelay(true).unwrap();
        let mut back = None;
        let (mut per_hop, mut rtts) = (Vec::new(), Vec::new());
        let block = [9u8; 64];
        let mut buf = [0u8; 64];
        for i in 0..trips + 100 {
            rtts.push(echo.round_trip());
            let t = Instant::now();
            out.write_all(&block).await.unwrap();
            if back.is_none() {
                back = Some(home.accept().await.expect("accept").0);
            }
            let b = back.as_mut().expect("connected");
            b.read_exact(&mut buf).await.unwrap();
            if i >= 100 {
                per_hop.push(t.elapsed() / (relays as u32 + 1)); // 100 warm up
            }
        }
        drop(children);
        (per_hop, rtts)
    })
}
