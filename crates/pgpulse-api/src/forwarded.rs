//! The client's address behind trusted reverse proxies, for the
//! per-address rate limit.
//!
//! When the API is reached through the application (docs/deploying-with-nodejs.md)
//! or a load balancer, every request arrives from the proxy's address, so
//! one per-address bucket would be shared by every user. With
//! `api.trusted_proxies`, a request whose TCP peer is trusted is attributed
//! to the address its `X-Forwarded-For` names: the header is read from the
//! right (each proxy appends the address it received the request from),
//! trusted addresses are skipped, and the first untrusted one is the
//! client. Anything a client wrote itself sits to the left of what the
//! trusted proxies appended, so it cannot choose its own bucket. A header
//! that is missing, or has an entry that is not an IP address where one is
//! needed, leaves the request attributed to the peer.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IP network: an address and a prefix length (`10.0.0.0/8`,
/// `127.0.0.1`, `fd00::/8`, `::1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

/// A malformed network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkError(String);

impl fmt::Display for NetworkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not an IP address or network (expected e.g. 10.0.0.0/8, 127.0.0.1 or ::1/128)",
            self.0
        )
    }
}

impl std::error::Error for NetworkError {}

impl FromStr for Network {
    type Err = NetworkError;

    fn from_str(text: &str) -> Result<Network, NetworkError> {
        let bad = || NetworkError(text.to_owned());
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Network {
            addr: addr.to_canonical(),
            prefix: if addr.to_canonical().is_ipv4() && !addr.is_ipv4() {
                // `::ffff:a.b.c.d/n`: the IPv4 part's prefix.
                prefix.saturating_sub(96)
            } else {
                prefix
            },
        })
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Network {
    /// Whether `ip` is in the network (IPv4-mapped IPv6 addresses count as
    /// their IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u128::from(u32::from(net)), 32, self.prefix)
                    == masked(u128::from(u32::from(ip)), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), 128, self.prefix)
                    == masked(u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// The top `prefix` bits of a `bits`-bit number.
fn masked(value: u128, bits: u32, prefix: u8) -> u128 {
    let keep = u32::from(prefix).min(bits);
    if keep == 0 { 0 } else { value >> (bits - keep) }
}

fn trusted(ip: IpAddr, proxies: &[Network]) -> bool {
    proxies.iter().any(|n| n.contains(ip))
}

/// The address a request is attributed to: `peer`, or when `peer` is a
/// trusted proxy, the right-most untrusted address of the
/// `X-Forwarded-For` values (in the order the headers came).
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl IntoIterator<Item = &'a str>,
    proxies: &[Network],
) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted(peer, proxies) {
        return peer;
    }
    let hops: Vec<&str> = forwarded_for
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            // Not an address: whatever is further left is unverifiable.
            return client;
        };
        client = ip;
        if !trusted(ip, proxies) {
            return ip;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, possibly with a port
/// (`1.2.3.4:5678`, `[::1]:5678`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sock) = hop.parse::<std::net::SocketAddr>() {
        return Some(sock.ip().to_canonical());
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<Network> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_parse_and_contain() {
        let n: Network = "10.0.0.0/8".parse().unwrap();
        assert!(n.contains(ip("10.200.1.2")));
        assert!(!n.contains(ip("11.0.0.1")));
        assert!(n.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped");
        let one: Network = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let v6: Network = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let all: Network = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        let mapped: Network = "::ffff:192.168.0.0/112".parse().unwrap();
        assert!(mapped.contains(ip("192.168.3.4")) && !mapped.contains(ip("192.169.0.1")));
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "localhost",
            "10.0.0/8",
            "1.2.3.4/x",
        ] {
            let err = bad.parse::<Network>().unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn untrusted_peers_are_the_client_whatever_they_claim() {
        let proxies = nets(&["127.0.0.1"]);
        assert_eq!(
            client_ip(ip("203.0.113.9"), ["1.1.1.1"], &proxies),
            ip("203.0.113.9")
        );
        assert_eq!(client_ip(ip("203.0.113.9"), [], &[]), ip("203.0.113.9"));
    }

    #[test]
    fn a_trusted_peer_passes_on_the_right_most_untrusted_address() {
        let proxies = nets(&["127.0.0.1", "10.0.0.0/8"]);
        // The application on localhost forwarded a browser's request.
        assert_eq!(
            client_ip(ip("127.0.0.1"), ["198.51.100.7"], &proxies),
            ip("198.51.100.7")
        );
        // A load balancer in 10/8, then the application: the client is the
        // first untrusted hop from the right; what the client wrote itself
        // (the left-most entry) is ignored.
        assert_eq!(
            client_ip(
                ip("127.0.0.1"),
                ["6.6.6.6, 198.51.100.7, 10.0.0.5"],
                &proxies
            ),
            ip("198.51.100.7")
        );
        // Several headers count in order; ports are allowed.
        assert_eq!(
            client_ip(
                ip("::ffff:127.0.0.1"),
                ["6.6.6.6", "198.51.100.7:4431", "10.0.0.5"],
                &proxies
            ),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(ip("127.0.0.1"), ["[2001:db8::1]:443"], &proxies),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn missing_or_garbled_headers_leave_the_nearest_known_address() {
        let proxies = nets(&["127.0.0.1", "10.0.0.0/8"]);
        assert_eq!(client_ip(ip("127.0.0.1"), [], &proxies), ip("127.0.0.1"));
        assert_eq!(
            client_ip(ip("127.0.0.1"), ["unknown"], &proxies),
            ip("127.0.0.1")
        );
        // Garbage left of a trusted hop: the trusted hop is as far as we
        // can see.
        assert_eq!(
            client_ip(ip("127.0.0.1"), ["nonsense, 10.0.0.5"], &proxies),
            ip("10.0.0.5")
        );
        // Every hop trusted: the left-most one.
        assert_eq!(
            client_ip(ip("127.0.0.1"), ["10.0.0.9, 10.0.0.5"], &proxies),
            ip("10.0.0.9")
        );
    }
}
