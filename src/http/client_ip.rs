//! The client's IP address: the socket peer, or the address a trusted reverse proxy reports in
//! `X-Forwarded-For` / `Forwarded` (`GRAPHQL_FIREWALL_TRUSTED_PROXIES`).
//!
//! # Threats
//! Anyone can send `X-Forwarded-For: 1.2.3.4`. If the firewall believed it, a client could take a
//! fresh rate-limit identity per request, or spend someone else's budget. So the headers are read
//! only when the direct peer is a trusted proxy, and then with the *rightmost-untrusted* rule: walk
//! the hops from the right (the end our own proxies appended to), skip trusted ones, and the first
//! untrusted hop is the client. Whatever the client wrote further left is never looked at, so junk
//! there cannot change the answer; only a malformed hop that must be read falls back to the peer.
//!
//! `X-Forwarded-For` is preferred when both headers are present, because the common proxies
//! (nginx, HAProxy, cloud load balancers) append to it, and would pass a client-written `Forwarded`
//! through untouched; `Forwarded` (RFC 7239, `for=` parameter) is used when it is the only one.
//! IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are treated as the IPv4 address everywhere.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use http::header::FORWARDED;

use crate::net::IpNetworks;
use crate::upstream::X_FORWARDED_FOR;

/// The client address as the edge resolved it, kept in the request's extensions so that later
/// stages do not read the forwarding headers again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The client address of a request: the edge's, else resolved here (a router served without
/// the edge layer).
pub fn of(parts: &axum::http::request::Parts, peer: IpAddr, trusted: &IpNetworks) -> IpAddr {
    match parts.extensions.get::<ClientIp>() {
        Some(ClientIp(ip)) => *ip,
        None => client_ip(peer, &parts.headers, trusted),
    }
}

/// The client address for `peer`, reading forwarding headers only when `peer` is trusted.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &IpNetworks) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return peer;
    }
    let hops: Vec<Option<IpAddr>> = if headers.contains_key(X_FORWARDED_FOR) {
        forwarded_for_hops(headers)
    } else if headers.contains_key(FORWARDED) {
        forwarded_hops(headers)
    } else {
        return peer;
    };
    for hop in hops.iter().rev() {
        match hop {
            Some(ip) if trusted.contains(*ip) => continue,
            Some(ip) => return *ip,
            // A hop our own proxy vouches for is unreadable: nobody can be named.
            None => return peer,
        }
    }
    // Every hop is one of ours: the leftmost is the closest we know to the client.
    hops.first().copied().flatten().unwrap_or(peer)
}

/// The hops of all `X-Forwarded-For` lines, in order; `None` for an entry that is not an address.
fn forwarded_for_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .flat_map(|value| value.as_bytes().split(|b| *b == b','))
        .map(|entry| std::str::from_utf8(entry).ok().and_then(parse_node))
        .collect()
}

/// The `for=` of every element of all `Forwarded` lines (RFC 7239), in order.
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let mut hops = Vec::new();
    for value in headers.get_all(FORWARDED) {
        for element in split_outside_quotes(value.as_bytes(), b',') {
            let node = split_outside_quotes(element, b';')
                .into_iter()
                .find_map(|pair| {
                    let at = pair.iter().position(|b| *b == b'=')?;
                    let (name, value) = (pair.get(..at)?, pair.get(at + 1..)?);
                    name.trim_ascii()
                        .eq_ignore_ascii_case(b"for")
                        .then(|| unquote(value.trim_ascii()))
                });
            hops.push(
                node.and_then(|node| String::from_utf8(node).ok())
                    .and_then(|node| parse_node(&node)),
            );
        }
    }
    hops
}

/// Splits on `separator` outside double-quoted strings (which may hold `\`-escapes).
fn split_outside_quotes(bytes: &[u8], separator: u8) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (at, &b) in bytes.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if b == separator && !quoted {
            parts.push(bytes.get(start..at).unwrap_or_default());
            start = at + 1;
        }
    }
    parts.push(bytes.get(start..).unwrap_or_default());
    parts
}

fn unquote(value: &[u8]) -> Vec<u8> {
    match value
        .strip_prefix(b"\"")
        .and_then(|v| v.strip_suffix(b"\""))
    {
        Some(inner) => {
            let mut out = Vec::with_capacity(inner.len());
            let mut escaped = false;
            for &b in inner {
                if !escaped && b == b'\\' {
                    escaped = true;
                } else {
                    out.push(b);
                    escaped = false;
                }
            }
            out
        }
        None => value.to_vec(),
    }
}

/// `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:4711`.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim();
    let ip = node
        .parse::<IpAddr>()
        .ok()
        .or_else(|| node.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            node.strip_prefix('[')
                .and_then(|n| n.strip_suffix(']'))
                .and_then(|n| n.parse().ok())
        })?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    fn trusted(text: &str) -> IpNetworks {
        text.parse().expect("test proxies")
    }

    fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                *name,
                HeaderValue::from_bytes(value).expect("test header value"),
            );
        }
        map
    }

    #[test]
    fn spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
        let h = headers(&[
            ("x-forwarded-for", b"1.2.3.4"),
            ("forwarded", b"for=5.6.7.8"),
        ]);
        assert_eq!(
            client_ip(ip("203.0.113.9"), &h, &trusted("10.0.0.0/8")),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(ip("203.0.113.9"), &h, &IpNetworks::default()),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn forwarded_for_from_a_trusted_peer_is_honoured() {
        let h = headers(&[("x-forwarded-for", b"203.0.113.7")]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &h, &trusted("10.0.0.0/8")),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_of_a_chain_is_the_client() {
        let proxies = trusted("10.0.0.0/8, 192.168.1.1");
        let cases: &[(&[u8], &str)] = &[
            (b"1.1.1.1, 203.0.113.7, 10.0.0.2", "203.0.113.7"),
            (b"203.0.113.7,192.168.1.1", "203.0.113.7"),
            (b"10.0.0.5, 10.0.0.2", "10.0.0.5"),
            (b"garbage, \xff\xfe, 203.0.113.7, 10.0.0.2", "203.0.113.7"),
            (b"203.0.113.7:5555", "203.0.113.7"),
            (b"[2001:db8::7]:443, 10.0.0.3", "2001:db8::7"),
            (b"::ffff:203.0.113.7", "203.0.113.7"),
        ];
        for (xff, expected) in cases {
            let h = headers(&[("x-forwarded-for", xff)]);
            assert_eq!(
                client_ip(ip("10.0.0.1"), &h, &proxies),
                ip(expected),
                "{}",
                String::from_utf8_lossy(xff)
            );
        }
    }

    #[test]
    fn several_forwarded_for_lines_are_one_list() {
        let mut h = headers(&[("x-forwarded-for", b"6.6.6.6, 203.0.113.7")]);
        h.append("x-forwarded-for", HeaderValue::from_static("10.0.0.9"));
        assert_eq!(
            client_ip(ip("10.0.0.1"), &h, &trusted("10.0.0.0/8")),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn rfc_7239_forwarded_is_read_with_quoted_ipv6_and_ports() {
        let proxies = trusted("10.0.0.0/8");
        let cases: &[(&[u8], &str)] = &[
            (br#"for="[2001:db8::1]:4711""#, "2001:db8::1"),
            (
                br#"For="[2001:db8:cafe::17]";proto=https"#,
                "2001:db8:cafe::17",
            ),
            (b"for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60"),
            (
                br#"for=198.51.100.1, for="192.0.2.43:47011";by=10.0.0.1, for=10.0.0.2"#,
                "192.0.2.43",
            ),
            (
                br#"proto=https;for="[2001:db8::2]" ;host="a,b""#,
                "2001:db8::2",
            ),
        ];
        for (value, expected) in cases {
            let h = headers(&[("forwarded", value)]);
            assert_eq!(
                client_ip(ip("10.0.0.1"), &h, &proxies),
                ip(expected),
                "{}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn forwarded_for_wins_over_forwarded() {
        let h = headers(&[
            ("forwarded", b"for=6.6.6.6"),
            ("x-forwarded-for", b"203.0.113.7"),
        ]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &h, &trusted("10.0.0.0/8")),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn unreadable_hops_fall_back_to_the_peer() {
        let proxies = trusted("10.0.0.0/8");
        for (name, value) in [
            ("x-forwarded-for", &b"not-an-ip"[..]),
            ("x-forwarded-for", b""),
            ("x-forwarded-for", b"203.0.113.7, , 10.0.0.2"),
            ("x-forwarded-for", b"203.0.113.7, 10.0.0.2, 999.1.1.1"),
            ("forwarded", b"for=unknown"),
            ("forwarded", b"for=_hidden"),
            ("forwarded", b"proto=https"),
            ("forwarded", b"for=\"[2001:db8::1"),
            ("forwarded", b";;;,,,==="),
        ] {
            let h = headers(&[(name, value)]);
            assert_eq!(
                client_ip(ip("10.0.0.1"), &h, &proxies),
                ip("10.0.0.1"),
                "{name}: {}",
                String::from_utf8_lossy(value)
            );
        }
        assert_eq!(
            client_ip(ip("10.0.0.1"), &HeaderMap::new(), &proxies),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn an_ipv4_mapped_peer_is_matched_as_ipv4() {
        let h = headers(&[("x-forwarded-for", b"203.0.113.7")]);
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.1"), &h, &trusted("10.0.0.0/8")),
            ip("203.0.113.7")
        );
        assert!(trusted("::ffff:10.0.0.0/104").contains(ip("10.1.2.3")));
    }
}
