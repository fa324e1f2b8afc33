//! What opening a secure link costs: Noise XX handshakes between two keys
//! over a fresh loopback connection each, opener and acceptor in this
//! process, against the echo round trip of the same moment.

use std::time::{Duration, Instant};

use peerlet::net::secure::{self, LinkSettings};
use peerlet::net::NodeKey;
use peerlet::wire::NodeRef;

use super::{median, percentile, procs, us};

const HANDSHAKES: usize = 500;

pub fn report(echo: &mut procs::Echo) {
    let (a, b) = (NodeKey::generate().unwrap(), NodeKey::generate().unwrap());
    let listener = smol::block_on(async_net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let (na, nb) = (NodeRef { id: a.id(), addr }, NodeRef { id: b.id(), addr });
    let settings = LinkSettings::default();
    let mut took = Vec::with_capacity(HANDSHAKES);
    let mut rtts = Vec::with_capacity(HANDSHAKES);
    for _ in 0..HANDSHAKES {
        rtts.push(echo.round_trip());
        let start = Instant::now();
        smol::block_on(async {
            let open = async {
                let mut s = async_net::TcpStream::connect(addr).await.unwrap();
                secure::initiate(&mut s, &a, na, &settings)
                    .await
                    .map(|_| ())
            };
            let accept = async {
                let (s, _) = listener.accept().await.unwrap();
                secure::respond(s, &b, nb, &settings, Duration::from_secs(5))
                    .await
                    .map(|_| ())
            };
            let (x, y) = smol::future::zip(open, accept).await;
            x.and(y).expect("handshake");
        });
        took.push(start.elapsed());
    }
    println!(
        "secure link handshake (connect + Noise XX, both ends in this process): median {} \
         (p10 {}, p90 {}) over {HANDSHAKES}; echo RTT between them median {}",
        us(median(&took)),
        us(percentile(&took, 0.10)),
        us(percentile(&took, 0.90)),
        us(median(&rtts)),
    );
}
