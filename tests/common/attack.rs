//! What the attack tests (tests/attacks.rs, tests/bounded_input.rs) need
//! beside the wire peer: a node process whose log is kept, its resident
//! memory, a plain TCP listener that counts who reaches it, a relay that
//! can alter a byte on its way, and a capture of the loopback traffic.

use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::NodeProcess;

/// Resident memory of process `pid`, in KiB (`VmRSS` of /proc).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Waits (at most `limit`) until the resident memory of `pid` stops
/// moving between two reads `every` apart; returns the last reading.
pub fn settled_rss_kib(pid: u32, every: Duration, limit: Duration) -> u64 {
    let end = Instant::now() + limit;
    let mut last = rss_kib(pid);
    while Instant::now() < end {
        std::thread::sleep(every);
        let now = rss_kib(pid);
        if now == last {
            break;
        }
        last = now;
    }
    last
}

/// A `peerlet node` process whose stderr (its log) is kept, line by line.
pub struct LoggedNode {
    pub proc: NodeProcess,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl LoggedNode {
    pub fn start(extra: &[&str]) -> LoggedNode {
        let mut proc = NodeProcess::start(None, extra, Stdio::piped());
        let stderr = proc.child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                sink.lock().unwrap().push(line);
            }
        });
        LoggedNode { proc, log }
    }

    pub fn lines(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    pub fn lines_containing(&self, what: &str) -> usize {
        let log = self.log.lock().unwrap();
        log.iter().filter(|l| l.contains(what)).count()
    }

    pub fn pid(&self) -> u32 {
        self.proc.child.id()
    }
}

/// A plain TCP listener that is not a peerlet node: it counts the
/// connections it accepts and the bytes they carry, answers nothing, and
/// closes each connection after [`SILENCE`] without a byte (as a server
/// waiting for a request would).
pub const SILENCE: Duration = Duration::from_secs(10);

pub struct Victim {
    pub addr: SocketAddr,
    pub accepts: Arc<AtomicUsize>,
    pub bytes: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Victim {
    pub fn start() -> Victim {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let accepts = Arc::new(AtomicUsize::new(0));
        let bytes = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, b, s) = (accepts.clone(), bytes.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut readers = Vec::new();
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        a.fetch_add(1, Ordering::Relaxed);
                        let (b, s) = (b.clone(), s.clone());
                        readers.push(std::thread::spawn(move || {
                            let _ = conn.set_nonblocking(false);
                            let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
                            let mut buf = [0u8; 4096];
                            let mut heard = Instant::now();
                            while !s.load(Ordering::Relaxed) && heard.elapsed() < SILENCE {
                                match conn.read(&mut buf) {
                                    Ok(0) => return,
                                    Ok(n) => {
                                        b.fetch_add(n as u64, Ordering::Relaxed);
                                        heard = Instant::now();
                                    }
                                    Err(e)
                                        if matches!(
                                            e.kind(),
                                            std::io::ErrorKind::WouldBlock
                                                | std::io::ErrorKind::TimedOut
                                        ) => {}
                                    Err(_) => return,
                                }
                            }
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            for r in readers {
                let _ = r.join();
            }
        });
        Victim {
            addr,
            accepts,
            bytes,
            stop,
            thread: Some(thread),
        }
    }

    pub fn accepts(&self) -> usize {
        self.accepts.load(Ordering::Relaxed)
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A relay: connections to `addr` are forwarded to `to`, bytes copied both
/// ways. If `corrupt_first` is set, the first record the opener of the
/// first connection sends after its handshake has one byte flipped (a
/// handshake is two length-prefixed messages from the opener, each a
/// 2-byte big-endian length and its bytes; records are framed the same).
/// Every byte the opener sends through is kept in `seen`.
pub struct Relay {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    pub corrupted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    pub fn start(to: SocketAddr, corrupt_first: bool) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let corrupted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (n, c, s) = (connections.clone(), corrupted.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut pumps = Vec::new();
            while !s.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let first = n.fetch_add(1, Ordering::Relaxed) == 0;
                let _ = client.set_nonblocking(false);
                let Ok(server) = TcpStream::connect(to) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let corrupt = (corrupt_first && first).then(|| c.clone());
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let stop_a = s.clone();
                let stop_b = s.clone();
                pumps.push(std::thread::spawn(move || {
                    pump(client, server, corrupt, &stop_a)
                }));
                pumps.push(std::thread::spawn(move || pump(s2, c2, None, &stop_b)));
            }
            for p in pumps {
                let _ = p.join();
            }
        });
        Relay {
            addr,
            connections,
            corrupted,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Copies `from` to `to` until either closes or `stop`; with `corrupt`,
/// flips the last byte of the third length-prefixed unit (the first
/// record after the opener's two handshake messages).
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    corrupt: Option<Arc<AtomicUsize>>,
    stop: &AtomicBool,
) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 16 * 1024];
    // Position in the stream, and where the unit to alter ends.
    let mut at: usize = 0;
    let mut units: Vec<(usize, usize)> = Vec::new(); // (start, end) of units
    let mut head: Vec<u8> = Vec::new();
    let mut done = corrupt.is_none();
    while !stop.load(Ordering::Relaxed) {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => break,
        };
        let chunk = &mut buf[..n];
        if !done {
            head.extend_from_slice(chunk);
            // Find the units' bounds in what arrived so far.
            let mut pos = units.last().map_or(0, |u| u.1);
            while units.len() < 3 && pos + 2 <= head.len() {
                let len = u16::from_be_bytes([head[pos], head[pos + 1]]) as usize;
                units.push((pos, pos + 2 + len));
                pos += 2 + len;
            }
            if let Some(&(_, end)) = units.get(2) {
                if end <= at + n {
                    let i = end - 1 - at;
                    chunk[i] ^= 0x01;
                    done = true;
                    if let Some(c) = &corrupt {
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                    head = Vec::new();
                }
            }
        }
        at += n;
        if to.write_all(chunk).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// A capture of every packet on the loopback interface into a file, by a
/// small Python program on an `AF_PACKET` socket (needs python3 and the
/// right to open raw sockets, as root has): no tcpdump needed.
pub struct Capture {
    child: Child,
    pub path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

const SNIFFER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind(("lo", 0))
out = open(sys.argv[1], "wb", buffering=0)
print("ready", flush=True)
while True:
    out.write(s.recv(262144))
"#;

impl Capture {
    /// Starts the capture and waits until it listens; `Err` says why it
    /// could not start.
    pub fn start() -> Result<Capture, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("lo.raw");
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(SNIFFER)
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("python3: {e}"))?;
        let mut first = String::new();
        let stdout = child.stdout.take().unwrap();
        let _ = std::io::BufReader::new(stdout).read_line(&mut first);
        if first.trim() != "ready" {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("the capture did not start: {}", err.trim()));
        }
        Ok(Capture {
            child,
            path,
            _dir: dir,
        })
    }

    /// Everything captured so far.
    pub fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.path).unwrap_or_default()
    }

    pub fn contains(&self, needle: &[u8]) -> bool {
        contains(&self.bytes(), needle)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
