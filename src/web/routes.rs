//! What each request gets: the page and its scripts, a snapshot, the
//! event stream, a trace, the simulator's plots. Every request passes the
//! [`Guard`] first; nothing here changes a node or runs Lua.
//!
//! | request | answer |
//! |---|---|
//! | `GET /`, `/app.js`, `/style.css` | the page (embedded in the binary) |
//! | `GET /api/ring` | one [`RingSnapshot`] as JSON |
//! | `GET /events` | server-sent `ring` events, a snapshot on every change |
//! | `POST /api/trace` `{"key": K, "from": ID}` | a [`TraceView`]: `.trace K` from node ID (default: the first) |
//! | `GET /api/runs` | the plots of `--sim-runs DIR` |
//! | `GET /runs/PATH.svg` | one plot |

use std::convert::Infallible;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;

use super::assets;
use super::events::{ring_events, StreamSlot, MAX_STREAMS};
use super::guard::Guard;
use super::nodes::NodeSet;
use super::sim_runs::{PlotError, SimRuns};
use super::snapshot::RingSnapshot;
use super::trace::{key_of, trace};

/// Every answer's body: whole, or the event stream.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Largest request body read (a trace request).
const MAX_BODY: usize = 4096;

/// What the answers are made from.
pub struct Site {
    pub guard: Guard,
    pub nodes: Arc<dyn NodeSet>,
    pub runs: Option<SimRuns>,
    pub streams: Arc<AtomicUsize>,
}

/// A trace request's body.
#[derive(Deserialize)]
struct TraceRequest {
    key: String,
    /// The source node's id; the first node when absent.
    from: Option<String>,
}

/// Answers one request.
pub async fn answer(site: Arc<Site>, req: Request<Incoming>) -> Response<Body> {
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Err(refused) = site
        .guard
        .check(header(header::HOST), header(header::ORIGIN))
    {
        return text(StatusCode::FORBIDDEN, &refused.to_string());
    }
    let path = req.uri().path().to_string();
    match (req.method(), path.as_str()) {
        (&Method::GET, "/") => asset(assets::INDEX_HTML, "text/html; charset=utf-8"),
        (&Method::GET, "/app.js") => asset(assets::APP_JS, "text/javascript; charset=utf-8"),
        (&Method::GET, "/style.css") => asset(assets::STYLE_CSS, "text/css; charset=utf-8"),
        (&Method::GET, "/api/ring") => {
            let nodes = site.nodes.nodes();
            let snapshot = smol::unblock(move || RingSnapshot::take(&nodes)).await;
            json(StatusCode::OK, &snapshot)
        }
        (&Method::GET, "/events") => events(&site),
        (&Method::POST, "/api/trace") => trace_request(&site, req).await,
        (&Method::GET, "/api/runs") => runs(&site),
        (&Method::GET, p) if p.starts_with("/runs/") => plot(&site, &p["/runs/".len()..]),
        (
            _,
            "/" | "/app.js" | "/style.css" | "/api/ring" | "/events" | "/api/trace" | "/api/runs",
        ) => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: the web view is read-only",
        ),
        _ => text(StatusCode::NOT_FOUND, &format!("no such page: {path}")),
    }
}

fn events(site: &Site) -> Response<Body> {
    let Some(slot) = StreamSlot::take(&site.streams) else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("{MAX_STREAMS} pages are watching already: close one"),
        );
    };
    let body = StreamBody::new(ring_events(site.nodes.clone(), slot));
    let mut resp = respond(
        StatusCode::OK,
        "text/event-stream",
        BodyExt::boxed_unsync(body),
    );
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    resp
}

async fn trace_request(site: &Site, req: Request<Incoming>) -> Response<Body> {
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return text(StatusCode::BAD_REQUEST, &format!("trace request: {e}")),
    };
    let asked: TraceRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            let why = format!("trace request: want {{\"key\": \"NAME or 40 hex digits\", \"from\": \"NODE ID\"}}: {e}");
            return text(StatusCode::BAD_REQUEST, &why);
        }
    };
    let key = match key_of(&asked.key) {
        Ok(k) => k,
        Err(e) => return text(StatusCode::BAD_REQUEST, &format!("trace: {e}")),
    };
    let nodes = site.nodes.nodes();
    let from = match &asked.from {
        Some(id) => nodes.into_iter().find(|n| n.id().to_string() == *id),
        None => nodes.into_iter().next(),
    };
    let Some(from) = from else {
        let why = "trace: the node to start from is not one of this process's";
        return text(StatusCode::BAD_REQUEST, why);
    };
    match smol::unblock(move || trace(&from, key)).await {
        Ok(view) => json(StatusCode::OK, &view),
        Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, &format!("trace: {e}")),
    }
}

fn runs(site: &Site) -> Response<Body> {
    let listed = match &site.runs {
        None => Ok(None),
        Some(runs) => runs.list().map(Some),
    };
    match listed {
        Ok(plots) => json(StatusCode::OK, &serde_json::json!({ "plots": plots })),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("sim runs: {e}")),
    }
}

fn plot(site: &Site, relative: &str) -> Response<Body> {
    let Some(runs) = &site.runs else {
        return text(
            StatusCode::NOT_FOUND,
            "no run directory: start with --sim-runs DIR",
        );
    };
    match runs.read(relative) {
        Ok(bytes) => {
            let mut resp = respond(StatusCode::OK, "image/svg+xml", full(bytes));
            // An SVG may carry scripts: none run, and it cannot be framed.
            resp.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
            );
            resp
        }
        Err(PlotError::NotFound) => text(StatusCode::NOT_FOUND, &format!("no plot {relative}")),
        Err(PlotError::Refused(why)) => text(StatusCode::FORBIDDEN, &why),
    }
}

fn asset(body: &'static str, kind: &'static str) -> Response<Body> {
    respond(StatusCode::OK, kind, full(body))
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    let body = serde_json::to_vec(value).expect("JSON of a snapshot");
    respond(status, "application/json", full(body))
}

fn text(status: StatusCode, message: &str) -> Response<Body> {
    respond(
        status,
        "text/plain; charset=utf-8",
        full(format!("{message}\n")),
    )
}

fn full(body: impl Into<Bytes>) -> Body {
    BodyExt::boxed_unsync(Full::new(body.into()))
}

/// A response with the headers every answer carries: never cached, never
/// sniffed as another type, never framed by another page, scripts and
/// styles from this server only.
fn respond(status: StatusCode, kind: &'static str, body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"),
    );
    resp
}
