//! The web view's server: one thread with a smol executor, hyper's HTTP/1
//! on each accepted connection (through smol-hyper's adapters), and
//! [`routes::answer`] for every request.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use smol_hyper::rt::{FuturesIo, SmolTimer};

use super::guard::Guard;
use super::nodes::NodeSet;
use super::routes::{self, Site};
use super::sim_runs::SimRuns;

/// Connections served at once; more are closed at once.
const MAX_CONNECTIONS: usize = 64;

/// How long a client may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// A running web view. Dropping it stops the server: it stops accepting,
/// closes every connection (event streams too) and joins its thread.
pub struct WebServer {
    addr: SocketAddr,
    stop: Option<smol::channel::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl WebServer {
    /// The address it listens on (with the real port when 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The page's address, for people: `http://127.0.0.1:PORT/`
    /// (`localhost` when it listens on all addresses, which it also accepts).
    pub fn url(&self) -> String {
        let host = match self.addr.ip() {
            ip if ip.is_unspecified() => "localhost".to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        format!("http://{host}:{}/", self.addr.port())
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Listens on `addr` and serves the web view of `nodes` (and, given a run
/// directory, its SVG plots) on a thread of its own.
///
/// # Examples
///
/// ```no_run
/// use std::sync::Arc;
/// use peerlet::node::{Node, NodeConfig};
///
/// let node = Arc::new(Node::spawn(NodeConfig::new("127.0.0.1:0".parse().unwrap())).unwrap());
/// let web = peerlet::web::serve("127.0.0.1:0".parse().unwrap(), Arc::new(vec![node]), None).unwrap();
/// println!("web view: {}", web.url());
/// ```
pub fn serve(
    addr: SocketAddr,
    nodes: Arc<dyn NodeSet>,
    sim_runs: Option<PathBuf>,
) -> io::Result<WebServer> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    let listener = async_net::TcpListener::try_from(listener)?;
    let site = Arc::new(Site {
        guard: Guard::new(bound),
        nodes,
        runs: sim_runs.map(SimRuns::new),
        streams: Arc::new(AtomicUsize::new(0)),
    });
    let (stop, stopped) = smol::channel::bounded::<()>(1);
    let thread = std::thread::Builder::new()
        .name("peerlet-web".into())
        .spawn(move || {
            let ex = Arc::new(smol::Executor::new());
            let accepting = accept(ex.clone(), listener, site);
            smol::block_on(ex.run(smol::future::or(accepting, async {
                let _ = stopped.recv().await;
            })));
        })?;
    Ok(WebServer {
        addr: bound,
        stop: Some(stop),
        thread: Some(thread),
    })
}

/// Accepts connections for ever, each served on the executor.
async fn accept(
    ex: Arc<smol::Executor<'static>>,
    listener: async_net::TcpListener,
    site: Arc<Site>,
) {
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!("web view: accept failed: {e}");
                smol::Timer::after(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Events are small and must not wait for the next write.
        let _ = stream.set_nodelay(true);
        if open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            open.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!("web view: {MAX_CONNECTIONS} connections open, closing one");
            continue;
        }
        let (site, open) = (site.clone(), open.clone());
        ex.spawn(async move {
            let service = service_fn(move |req| {
                let site = site.clone();
                async move { Ok::<_, std::convert::Infallible>(routes::answer(site, req).await) }
            });
            let served = http1::Builder::new()
                .timer(SmolTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(FuturesIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!("web view: connection ended: {e}");
            }
            open.fetch_sub(1, Ordering::SeqCst);
        })
        .detach();
    }
}
