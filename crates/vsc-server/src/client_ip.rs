//! Who the client is, worked out once per request: the TCP peer, unless the peer is a trusted
//! reverse proxy — then the right-most `X-Forwarded-For` entry that is not itself a trusted
//! proxy (entries to its left could have been written by the client). Pushes show this
//! address, the audit log records it and the failure regulator counts by it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;

/// One network of trusted proxies: an address and the length of its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    fn parse(s: &str) -> Result<Network, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| format!("{s:?} is not an address or CIDR"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
            None => max,
        };
        Ok(Network { addr: addr.to_canonical(), prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The reverse proxies whose `X-Forwarded-For` is believed (config `trusted_proxies`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Network>);

impl TrustedProxies {
    /// Parse CIDRs (`10.0.0.0/8`, `::1/128`) or plain addresses (a network of one).
    pub fn parse(items: &[String]) -> Result<TrustedProxies, String> {
        items.iter().map(|s| Network::parse(s)).collect::<Result<Vec<_>, _>>().map(TrustedProxies)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The client's address for a request from `peer` carrying these headers.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        // Every X-Forwarded-For header in order, each a comma-separated list; right-most last.
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for entry in forwarded.iter().rev() {
            // An entry that does not parse cannot be trusted to name anyone: stop at the last
            // address we could vouch for.
            let Some(ip) = parse_forwarded(entry) else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// An `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    entry.parse::<SocketAddr>().ok().map(|s| s.ip().to_canonical())
}

/// The client's address, set on every request by [`resolve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Middleware: work out the client's address once and keep it as a request extension.
pub async fn resolve(State(proxies): State<Arc<TrustedProxies>>, mut req: Request, next: Next) -> Response {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        let client = proxies.client(peer.ip(), req.headers());
        req.extensions_mut().insert(ClientAddr(client));
    }
    next.run(req).await
}

/// The client's address as text (`unknown` when the server was not given peer addresses).
pub struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip_text(parts)))
    }
}

/// The client's address of a request as text.
pub fn client_ip_text(parts: &Parts) -> String {
    parts.extensions.get::<ClientAddr>().map(|c| c.0.to_string()).unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(items: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&items.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_right_most_untrusted_entry_is_the_client() {
        let p = proxies(&["10.0.0.0/8", "127.0.0.1"]);
        // The client wrote 6.6.6.6 itself; the proxies appended 203.0.113.7 and 10.1.2.3.
        let h = xff(&["6.6.6.6, 203.0.113.7, 10.1.2.3"]);
        assert_eq!(p.client(ip("10.9.9.9"), &h), ip("203.0.113.7"));
        // Several headers count as one list, in order.
        let h = xff(&["6.6.6.6", "203.0.113.8 , 10.1.2.3"]);
        assert_eq!(p.client(ip("127.0.0.1"), &h), ip("203.0.113.8"));
        // Ports are allowed on entries.
        assert_eq!(p.client(ip("127.0.0.1"), &xff(&["198.51.100.1:443"])), ip("198.51.100.1"));
        assert_eq!(p.client(ip("127.0.0.1"), &xff(&["[2001:db8::1]:443"])), ip("2001:db8::1"));
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_the_header_says() {
        let p = proxies(&["10.0.0.0/8"]);
        assert_eq!(p.client(ip("192.0.2.1"), &xff(&["203.0.113.7"])), ip("192.0.2.1"));
        let none = TrustedProxies::default();
        assert_eq!(none.client(ip("127.0.0.1"), &xff(&["203.0.113.7"])), ip("127.0.0.1"));
    }

    #[test]
    fn a_trusted_peer_without_a_usable_header_is_the_client() {
        let p = proxies(&["127.0.0.0/8"]);
        assert_eq!(p.client(ip("127.0.0.1"), &HeaderMap::new()), ip("127.0.0.1"));
        // Garbage stops the walk at the last address vouched for.
        assert_eq!(p.client(ip("127.0.0.1"), &xff(&["203.0.113.7, nonsense"])), ip("127.0.0.1"));
        // All trusted: the left-most one is as far as we can see.
        assert_eq!(p.client(ip("127.0.0.1"), &xff(&["127.0.0.5, 127.0.0.9"])), ip("127.0.0.5"));
    }

    #[test]
    fn networks_match_by_prefix_and_family() {
        let p = proxies(&["192.168.0.0/16", "::1", "2001:db8::/32"]);
        assert!(p.trusts(ip("192.168.200.1")));
        assert!(!p.trusts(ip("192.169.0.1")));
        assert!(p.trusts(ip("::1")));
        assert!(p.trusts(ip("2001:db8:ffff::1")));
        assert!(!p.trusts(ip("2001:db9::1")));
        // An IPv4 peer seen through an IPv6 socket is still the IPv4 address.
        assert!(p.trusts(ip("::ffff:192.168.1.1")));
        assert!(proxies(&["0.0.0.0/0"]).trusts(ip("8.8.8.8")));
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0.0/x", "::/129"] {
            assert!(TrustedProxies::parse(&[bad.to_string()]).is_err(), "{bad}");
        }
    }
}
