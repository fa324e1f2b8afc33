//! A wide-area network on one machine (`testnet`/`demo --latency 5-50ms
//! --loss P`): each node holds back the frames it receives by a one-way
//! latency fixed per pair of nodes, as the simulator does, and drops a
//! share of them. This kernel has no netem, so it lives here, in the
//! transport: off by default, and then not a branch more than a test of
//! `Option` per frame.
//!
//! The latency of a pair is the same whichever node sends, and the same
//! every run for the same seed; the frames of one connection keep their
//! order (a fixed delay keeps a FIFO a FIFO). Loss is drawn per frame.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use smol::channel::{self, Sender};
use smol::{LocalExecutor, Timer};

/// What the emulated network does to every frame between two nodes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Wan {
    /// One-way latency range: each pair of nodes gets a fixed value in it.
    pub latency: (Duration, Duration),
    /// Share of frames dropped, 0 to 1.
    pub loss: f64,
    pub seed: u64,
}

impl Wan {
    /// The one-way latency between `a` and `b` (either way).
    pub fn latency(&self, a: SocketAddr, b: SocketAddr) -> Duration {
        let (lo, hi) = self.latency;
        let span = hi.saturating_sub(lo).as_micros() as u64;
        if span == 0 {
            return lo;
        }
        let (x, y) = if a < b { (a, b) } else { (b, a) };
        let mut state = self.seed ^ hash(&x).rotate_left(17) ^ hash(&y);
        lo + Duration::from_micros(splitmix(&mut state) % span)
    }
}

/// `20ms`, `5-50ms`, `0.1-1s`: a latency or a range of them.
pub fn parse_latency(text: &str) -> Result<(Duration, Duration), String> {
    let bad = || format!("latency `{text}`: expected e.g. 20ms or 5-50ms (units: us, ms, s)");
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => text.split_at(i),
        None => return Err(bad()),
    };
    let scale = match unit {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        _ => return Err(bad()),
    };
    let one = |t: &str| -> Result<Duration, String> {
        let v: f64 = t.trim().parse().map_err(|_| bad())?;
        if !(0.0..=60.0 / scale).contains(&v) {
            return Err(bad());
        }
        Ok(Duration::from_secs_f64(v * scale))
    };
    let (lo, hi) = match number.split_once('-') {
        Some((a, b)) => (one(a)?, one(b)?),
        None => (one(number)?, one(number)?),
    };
    if lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
}

/// A loss share: a number from 0 to 1.
pub fn parse_loss(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!(
            "loss `{text}`: expected a share from 0 to 1, e.g. 0.01"
        )),
    }
}

/// The delay line of one incoming connection: what arrives goes in, and
/// reaches the core `latency` later, or never.
pub struct Line<T> {
    latency: Duration,
    loss: f64,
    rng: u64,
    queue: Sender<(Instant, T)>,
}

impl<T: 'static> Line<T> {
    /// A line for frames from `from` to `to`, handing them to `inputs`.
    pub fn start(
        wan: &Wan,
        from: SocketAddr,
        to: SocketAddr,
        executor: &LocalExecutor<'static>,
        inputs: Sender<T>,
    ) -> Line<T> {
        let (queue, due) = channel::unbounded::<(Instant, T)>();
        executor
            .spawn(async move {
                while let Ok((at, input)) = due.recv().await {
                    Timer::at(at).await;
                    if inputs.send(input).await.is_err() {
                        return;
                    }
                }
            })
            .detach();
        Line {
            latency: wan.latency(from, to),
            loss: wan.loss,
            rng: wan.seed ^ hash(&from) ^ hash(&to).rotate_left(31),
            queue,
        }
    }

    /// Takes a frame that arrived now; `false` if the line dropped it.
    pub fn pass(&mut self, input: T) -> bool {
        if self.loss > 0.0 {
            let draw = (splitmix(&mut self.rng) >> 11) as f64 / (1u64 << 53) as f64;
            if draw < self.loss {
                return false;
            }
        }
        self.queue
            .try_send((Instant::now() + self.latency, input))
            .is_ok()
    }
}

fn hash(a: &SocketAddr) -> u64 {
    let mut state = a.port() as u64;
    match a.ip() {
        std::net::IpAddr::V4(ip) => state ^= u32::from(ip) as u64,
        std::net::IpAddr::V6(ip) => {
            state ^= (u128::from(ip) as u64) ^ ((u128::from(ip) >> 64) as u64)
        }
    }
    splitmix(&mut state)
}

/// SplitMix64: one step.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_parse_and_are_fixed_per_pair() {
        let ms = Duration::from_millis;
        assert_eq!(parse_latency("20ms").unwrap(), (ms(20), ms(20)));
        assert_eq!(parse_latency("5-50ms").unwrap(), (ms(5), ms(50)));
        assert_eq!(parse_latency("0.1-1s").unwrap(), (ms(100), ms(1000)));
        for bad in ["", "50", "5-50", "50-5ms", "-3ms", "5-50hours"] {
            assert!(parse_latency(bad).is_err(), "{bad}");
        }
        assert!(parse_loss("0.01").is_ok() && parse_loss("1.5").is_err());
        let wan = Wan {
            latency: (ms(5), ms(50)),
            loss: 0.0,
            seed: 1,
        };
        let (a, b): (SocketAddr, SocketAddr) = (
            "127.0.0.1:1000".parse().unwrap(),
            "127.0.0.1:2000".parse().unwrap(),
        );
        let l = wan.latency(a, b);
        assert_eq!(l, wan.latency(b, a));
        assert!((ms(5)..ms(50)).contains(&l));
    }

    #[test]
    fn a_line_drops_its_share_and_delays_the_rest_in_order() {
        let wan = Wan {
            latency: (Duration::from_millis(2), Duration::from_millis(2)),
            loss: 0.25,
            seed: 3,
        };
        let (a, b): (SocketAddr, SocketAddr) = (
            "127.0.0.1:1000".parse().unwrap(),
            "127.0.0.1:2000".parse().unwrap(),
        );
        let executor = LocalExecutor::new();
        let (inputs, core) = channel::unbounded();
        let mut line = Line::start(&wan, a, b, &executor, inputs);
        let start = Instant::now();
        let sent = 10_000u64;
        let passed = (0..sent).filter(|&i| line.pass(i)).count() as u64;
        assert!(
            (7_000..8_000).contains(&passed),
            "{passed} of {sent} passed"
        );
        let got: Vec<u64> = smol::block_on(executor.run(async {
            let mut got = Vec::new();
            while (got.len() as u64) < passed {
                if let Ok(i) = core.recv().await {
                    got.push(i);
                }
            }
            got
        }));
        assert!(start.elapsed() >= Duration::from_millis(2), "held back");
        assert!(got.windows(2).all(|w| w[0] < w[1]), "in order");
    }
}
