//! IP networks: the CIDR lists of `TRUSTED_PROXIES` (whose forwarding headers are believed).
//!
//! IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are the IPv4 address everywhere: in the lists
//! (`::ffff:10.0.0.0/104` is `10.0.0.0/8`) and in the addresses checked against them, so one host
//! cannot be two clients depending on the socket family.

use std::net::IpAddr;
use std::str::FromStr;

/// A list of IP networks (CIDR blocks and single addresses).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpNetworks(Vec<Cidr>);

/// Why a trusted-proxy list could not be parsed; names the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpNetworksError {
    #[error(
        "invalid network {entry:?}: expected an IP address or a CIDR such as 10.0.0.0/8, 192.168.1.1 or ::1/128"
    )]
    Entry { entry: String },
    #[error("invalid network {entry:?}: the prefix length is at most 32 for IPv4 and 128 for IPv6")]
    PrefixLength { entry: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                mask_v4(ip.to_bits(), self.prefix) == net.to_bits()
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask_v6(ip.to_bits(), self.prefix) == net.to_bits()
            }
            _ => false,
        }
    }
}

fn mask_v4(bits: u32, prefix: u8) -> u32 {
    bits & u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask_v6(bits: u128, prefix: u8) -> u128 {
    bits & u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for IpNetworks {
    type Err = IpNetworksError;

    /// A comma-separated list of addresses and CIDRs; host bits are ignored (`10.0.0.1/8` is
    /// `10.0.0.0/8`); an empty string trusts nobody.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(parse_cidr)
            .collect::<Result<Vec<_>, _>>()
            .map(IpNetworks)
    }
}

fn parse_cidr(entry: &str) -> Result<Cidr, IpNetworksError> {
    let bad = || IpNetworksError::Entry {
        entry: entry.to_owned(),
    };
    let (address, prefix) = match entry.split_once('/') {
        Some((address, prefix)) => (address.trim(), Some(prefix.trim())),
        None => (entry, None),
    };
    let address: IpAddr = address.parse().map_err(|_| bad())?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(prefix) => prefix.parse::<u8>().map_err(|_| bad())?,
        None => max,
    };
    if prefix > max {
        return Err(IpNetworksError::PrefixLength {
            entry: entry.to_owned(),
        });
    }
    // `::ffff:10.0.0.0/104` is the IPv4 network 10.0.0.0/8, as peers are canonicalised too.
    let (address, prefix) = match address {
        IpAddr::V6(v6) if prefix >= 96 => match v6.to_ipv4_mapped() {
            Some(v4) => (IpAddr::V4(v4), prefix - 96),
            None => (address, prefix),
        },
        _ => (address, prefix),
    };
    let network = match address {
        IpAddr::V4(v4) => IpAddr::V4(mask_v4(v4.to_bits(), prefix).into()),
        IpAddr::V6(v6) => IpAddr::V6(mask_v6(v6.to_bits(), prefix).into()),
    };
    Ok(Cidr { network, prefix })
}

impl IpNetworks {
    /// Whether `ip` is inside one of the networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|cidr| cidr.contains(ip))
    }

    /// Whether the list names no network at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    fn nets(text: &str) -> IpNetworks {
        text.parse().expect("test networks")
    }

    #[test]
    fn network_lists_parse_and_errors_name_the_bad_entry() {
        let list = nets("10.0.0.1/8, 192.168.1.1, ::1/128, 2001:db8::/32,");
        assert!(list.contains(ip("10.255.0.1")));
        assert!(list.contains(ip("192.168.1.1")));
        assert!(!list.contains(ip("192.168.1.2")));
        assert!(list.contains(ip("::1")));
        assert!(list.contains(ip("2001:db8:ffff::1")));
        assert!(!list.contains(ip("2001:db9::1")));
        assert!(nets("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(!nets("0.0.0.0/0").contains(ip("::2")));
        assert_eq!(nets(""), IpNetworks::default());
        for (text, bad) in [
            ("10.0.0.0/8, 10.0.0.0/33", "10.0.0.0/33"),
            ("::/129", "::/129"),
            ("10.0.0.0/8, proxy.local", "proxy.local"),
            ("10.0.0/8", "10.0.0/8"),
            ("10.0.0.0/-1", "10.0.0.0/-1"),
            ("10.0.0.0/", "10.0.0.0/"),
        ] {
            let err = text.parse::<IpNetworks>().expect_err(text);
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }
}
