//! Who may read the web view: the Host and Origin checks every request
//! passes first.
//!
//! The page shows a node's inner state, so another site open in the same
//! browser must not read it. Two attacks matter:
//! - *cross-origin reads*: a page from elsewhere calls `fetch` on this
//!   server. The browser sends its `Origin`; one that is not this server's
//!   own is refused, with no data.
//! - *DNS rebinding*: a name the attacker controls is made to resolve to
//!   127.0.0.1, so the browser thinks the server is the attacker's own
//!   origin. The request then carries that name as its `Host`; only a Host
//!   that names this server (`localhost`, or an IP address this server
//!   listens on, with its port) is served. A rebinding attack needs a
//!   name, so IP literals are safe to accept.

use std::net::{IpAddr, SocketAddr};

/// The checks for one listening address.
#[derive(Clone, Copy, Debug)]
pub struct Guard {
    bound: SocketAddr,
}

/// Why a request was refused, in words for its sender.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("refused: no Host header")]
    NoHost,
    #[error("refused: Host `{0}` does not name this server (a guard against DNS rebinding); use http://localhost:PORT/ or an address it listens on")]
    ForeignHost(String),
    #[error("refused: Origin `{0}` is not this server: another site may not read the web view")]
    ForeignOrigin(String),
}

impl Guard {
    /// Checks for a server listening on `bound` (with its real port).
    pub fn new(bound: SocketAddr) -> Guard {
        Guard { bound }
    }

    /// Whether a request with these `Host` and `Origin` header values may
    /// be answered. A missing Origin is fine (a navigation, `curl`); a
    /// present one must be `http://` and a Host this server accepts.
    pub fn check(&self, host: Option<&str>, origin: Option<&str>) -> Result<(), Refused> {
        let host = host.ok_or(Refused::NoHost)?;
        if !self.names_this_server(host) {
            return Err(Refused::ForeignHost(clip(host)));
        }
        if let Some(origin) = origin {
            let same = origin
                .strip_prefix("http://")
                .is_some_and(|h| self.names_this_server(h));
            if !same {
                return Err(Refused::ForeignOrigin(clip(origin)));
            }
        }
        Ok(())
    }

    /// Whether `authority` (`host:port`) names this server: `localhost` or
    /// an IP address it listens on (any IP when it listens on all of
    /// them), and its port.
    fn names_this_server(&self, authority: &str) -> bool {
        let Some((host, port)) = split_authority(authority) else {
            return false;
        };
        if port != self.bound.port() {
            return false;
        }
        if host.eq_ignore_ascii_case("localhost") {
            return self.bound.ip().is_loopback() || self.bound.ip().is_unspecified();
        }
        match host.parse::<IpAddr>() {
            Ok(ip) => self.bound.ip().is_unspecified() || ip == self.bound.ip(),
            Err(_) => false,
        }
    }
}

/// `host:port` or `[v6]:port` into its parts; the port is required (this
/// server never runs on port 80, so browsers always send it).
fn split_authority(authority: &str) -> Option<(&str, u16)> {
    let (host, port) = authority.rsplit_once(':')?;
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.strip_suffix(']')?,
        None => host,
    };
    Some((host, port.parse().ok()?))
}

/// A header value cut short for an error message.
fn clip(value: &str) -> String {
    value.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(addr: &str) -> Guard {
        Guard::new(addr.parse().unwrap())
    }

    #[test]
    fn the_bound_address_and_localhost_are_this_server() {
        let g = guard("127.0.0.1:8080");
        assert_eq!(g.check(Some("127.0.0.1:8080"), None), Ok(()));
        assert_eq!(g.check(Some("localhost:8080"), None), Ok(()));
        assert_eq!(
            g.check(Some("LocalHost:8080"), Some("http://localhost:8080")),
            Ok(())
        );
        let v6 = guard("[::1]:9000");
        assert_eq!(
            v6.check(Some("[::1]:9000"), Some("http://[::1]:9000")),
            Ok(())
        );
    }

    #[test]
    fn a_name_that_rebinds_to_this_server_is_refused() {
        let g = guard("127.0.0.1:8080");
        for host in [
            "evil.example:8080",
            "127.0.0.1.nip.io:8080",
            "127.0.0.1:8081",
            "127.0.0.1",
            "10.0.0.1:8080",
        ] {
            assert!(
                matches!(g.check(Some(host), None), Err(Refused::ForeignHost(_))),
                "{host}"
            );
        }
        assert_eq!(g.check(None, None), Err(Refused::NoHost));
    }

    #[test]
    fn another_origin_is_refused() {
        let g = guard("127.0.0.1:8080");
        for origin in [
            "http://evil.example",
            "null",
            "https://127.0.0.1:8080",
            "http://127.0.0.1:9999",
        ] {
            assert!(
                matches!(
                    g.check(Some("127.0.0.1:8080"), Some(origin)),
                    Err(Refused::ForeignOrigin(_))
                ),
                "{origin}"
            );
        }
    }

    #[test]
    fn listening_on_all_addresses_accepts_any_ip_but_no_name() {
        let g = guard("0.0.0.0:8080");
        assert_eq!(
            g.check(Some("192.168.1.5:8080"), Some("http://192.168.1.5:8080")),
            Ok(())
        );
        assert_eq!(g.check(Some("localhost:8080"), None), Ok(()));
        assert!(g.check(Some("peer.example:8080"), None).is_err());
    }
}
