//! Which network addresses a server-side fetch (`kanban_attach_url`) may
//! reach: public unicast only. A model-controlled URL, or a public host
//! redirecting to one, must not reach loopback, private networks, link-local
//! or cloud metadata endpoints (SSRF). Pure functions over addresses and
//! names; resolving, connecting and following redirects is the caller's
//! job, which checks every address it will connect to, on every hop.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Most redirects followed for one URL (the reference's limit).
pub const FETCH_MAX_REDIRECTS: usize = 5;
/// Whole-fetch timeout, connect to last byte.
pub const FETCH_TIMEOUT_SECONDS: u64 = 30;

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918, IPv6 site-local.
    Private,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// Carrier-grade NAT `100.64.0.0/10`.
    SharedCgnat,
    /// `fc00::/7`.
    UniqueLocal,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `0.0.0.0/8`, `::`.
    Unspecified,
    /// Instance metadata services of cloud providers.
    CloudMetadata,
    /// Broadcast, documentation, benchmarking, future-use and other
    /// special-purpose ranges nobody serves public files from.
    Reserved,
}

impl Blocked {
    pub fn as_str(self) -> &'static str {
        match self {
            Blocked::Loopback => "loopback",
            Blocked::Private => "private",
            Blocked::LinkLocal => "link-local",
            Blocked::SharedCgnat => "shared (CGNAT)",
            Blocked::UniqueLocal => "unique-local",
            Blocked::Multicast => "multicast",
            Blocked::Unspecified => "unspecified",
            Blocked::CloudMetadata => "cloud metadata",
            Blocked::Reserved => "reserved",
        }
    }
}

/// Cloud instance-metadata addresses (AWS, GCP, Azure, Oracle, DigitalOcean:
/// 169.254.169.254; AWS ECS task metadata and DNS; Alibaba).
const METADATA_V4: [Ipv4Addr; 4] = [
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(169, 254, 169, 253),
    Ipv4Addr::new(100, 100, 100, 200),
];
/// AWS's IPv6 metadata endpoint and DNS resolver (`fd00:ec2::254`, `::23`).
const METADATA_V6: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254),
    Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x23),
];
/// Host names of metadata services (they also resolve to blocked
/// addresses; refused by name so no resolver is even asked).
const METADATA_HOSTS: [&str; 4] = [
    "metadata.google.internal",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
];

/// Why `ip` must not be fetched from, or `None` for a public address.
pub fn classify(ip: IpAddr) -> Option<Blocked> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn classify_v4(ip: Ipv4Addr) -> Option<Blocked> {
    if METADATA_V4.contains(&ip) {
        return Some(Blocked::CloudMetadata);
    }
    const TABLE: &[([u8; 4], u32, Blocked)] = &[
        ([0, 0, 0, 0], 8, Blocked::Unspecified),
        ([10, 0, 0, 0], 8, Blocked::Private),
        ([100, 64, 0, 0], 10, Blocked::SharedCgnat),
        ([127, 0, 0, 0], 8, Blocked::Loopback),
        ([169, 254, 0, 0], 16, Blocked::LinkLocal),
        ([172, 16, 0, 0], 12, Blocked::Private),
        ([192, 0, 0, 0], 24, Blocked::Reserved),
        ([192, 0, 2, 0], 24, Blocked::Reserved),
        ([192, 88, 99, 0], 24, Blocked::Reserved),
        ([192, 168, 0, 0], 16, Blocked::Private),
        ([198, 18, 0, 0], 15, Blocked::Reserved),
        ([198, 51, 100, 0], 24, Blocked::Reserved),
        ([203, 0, 113, 0], 24, Blocked::Reserved),
        ([224, 0, 0, 0], 4, Blocked::Multicast),
        ([240, 0, 0, 0], 4, Blocked::Reserved),
        ([255, 255, 255, 255], 32, Blocked::Reserved),
    ];
    TABLE
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map(|(_, _, why)| *why)
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    (u128::from(ip) & mask) == (u128::from(net) & mask)
}

/// The IPv4 address carried in the low 32 bits.
fn low_v4(ip: Ipv6Addr) -> Ipv4Addr {
    Ipv4Addr::from((u128::from(ip) & 0xffff_ffff) as u32)
}

fn classify_v6(ip: Ipv6Addr) -> Option<Blocked> {
    if METADATA_V6.contains(&ip) {
        return Some(Blocked::CloudMetadata);
    }
    if ip.is_unspecified() {
        return Some(Blocked::Unspecified);
    }
    if ip.is_loopback() {
        return Some(Blocked::Loopback);
    }
    // Addresses that carry an IPv4 address: judged by it (a public one is
    // only reachable through these forms if it is public itself).
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let nat64 = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0);
    if in_v6(ip, nat64, 96) {
        return classify_v4(low_v4(ip));
    }
    let six_to_four = Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0);
    if in_v6(ip, six_to_four, 16) {
        let embedded = ((u128::from(ip) >> 80) & 0xffff_ffff) as u32;
        return classify_v4(Ipv4Addr::from(embedded));
    }
    const TABLE: &[(Ipv6Addr, u32, Blocked)] = &[
        // IPv4-compatible (deprecated) and the rest of ::/8.
        (Ipv6Addr::UNSPECIFIED, 8, Blocked::Reserved),
        (
            Ipv6Addr::new(0x0100, 0, 0, 0, 0, 0, 0, 0),
            64,
            Blocked::Reserved,
        ),
        // NAT64 for local use (RFC 8215).
        (
            Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
            48,
            Blocked::Reserved,
        ),
        // Teredo hides the client address; ORCHID, documentation.
        (
            Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),
            32,
            Blocked::Reserved,
        ),
        (
            Ipv6Addr::new(0x2001, 0x0010, 0, 0, 0, 0, 0, 0),
            28,
            Blocked::Reserved,
        ),
        (
            Ipv6Addr::new(0x2001, 0x0db8, 0, 0, 0, 0, 0, 0),
            32,
            Blocked::Reserved,
        ),
        (
            Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
            7,
            Blocked::UniqueLocal,
        ),
        (
            Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),
            10,
            Blocked::LinkLocal,
        ),
        (
            Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0),
            10,
            Blocked::Private,
        ),
        (
            Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0),
            8,
            Blocked::Multicast,
        ),
    ];
    TABLE
        .iter()
        .find(|(net, prefix, _)| in_v6(ip, *net, *prefix))
        .map(|(_, _, why)| *why)
}

/// Whether a fetch may connect to `ip`. `allow_loopback` admits loopback
/// only (for tests against a local server; never private or metadata).
pub fn check_address(ip: IpAddr, allow_loopback: bool) -> Result<(), Blocked> {
    match classify(ip) {
        None => Ok(()),
        Some(Blocked::Loopback) if allow_loopback => Ok(()),
        Some(why) => Err(why),
    }
}

/// Whether `host` (a DNS name, lower or upper case, with or without the
/// trailing dot) names a metadata service.
pub fn is_metadata_host(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    METADATA_HOSTS.contains(&h.as_str())
}

/// Only `http` and `https` URLs are fetched.
pub fn is_fetchable_scheme(scheme: &str) -> bool {
    scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why(s: &str) -> Option<Blocked> {
        classify(s.parse().unwrap())
    }

    #[test]
    fn the_address_table() {
        use Blocked::*;
        let cases: &[(&str, Option<Blocked>)] = &[
            ("8.8.8.8", None),
            ("1.1.1.1", None),
            ("93.184.216.34", None),
            ("127.0.0.1", Some(Loopback)),
            ("127.255.255.254", Some(Loopback)),
            ("10.0.0.1", Some(Private)),
            ("172.16.0.1", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("172.32.0.1", None),
            ("192.168.1.1", Some(Private)),
            ("169.254.1.1", Some(LinkLocal)),
            ("169.254.169.254", Some(CloudMetadata)),
            ("169.254.170.2", Some(CloudMetadata)),
            ("100.100.100.200", Some(CloudMetadata)),
            ("100.64.0.1", Some(SharedCgnat)),
            ("100.127.255.255", Some(SharedCgnat)),
            ("100.128.0.1", None),
            ("0.0.0.0", Some(Unspecified)),
            ("0.1.2.3", Some(Unspecified)),
            ("224.0.0.1", Some(Multicast)),
            ("239.255.255.250", Some(Multicast)),
            ("255.255.255.255", Some(Reserved)),
            ("240.0.0.1", Some(Reserved)),
            ("192.0.2.1", Some(Reserved)),
            ("198.18.0.1", Some(Reserved)),
            ("::", Some(Unspecified)),
            ("::1", Some(Loopback)),
            ("fe80::1", Some(LinkLocal)),
            ("fc00::1", Some(UniqueLocal)),
            ("fd12:3456::1", Some(UniqueLocal)),
            ("fd00:ec2::254", Some(CloudMetadata)),
            ("fd00:ec2::23", Some(CloudMetadata)),
            ("ff02::1", Some(Multicast)),
            ("fec0::1", Some(Private)),
            ("2001:db8::1", Some(Reserved)),
            ("2001::1", Some(Reserved)),
            ("2606:4700:4700::1111", None),
            // IPv4-mapped, NAT64 and 6to4 forms judged by the IPv4 inside.
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:7f00:1", Some(Loopback)),
            ("::ffff:169.254.169.254", Some(CloudMetadata)),
            ("::ffff:10.1.2.3", Some(Private)),
            ("::ffff:8.8.8.8", None),
            ("64:ff9b::7f00:1", Some(Loopback)),
            ("64:ff9b::808:808", None),
            ("2002:7f00:1::", Some(Loopback)),
            ("2002:a9fe:a9fe::", Some(CloudMetadata)),
            ("2002:808:808::", None),
            // IPv4-compatible (deprecated).
            ("::127.0.0.1", Some(Reserved)),
        ];
        for (addr, expected) in cases {
            assert_eq!(why(addr), *expected, "{addr}");
        }
    }

    #[test]
    fn the_loopback_override_admits_loopback_only() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(check_address(lo, false), Err(Blocked::Loopback));
        assert_eq!(check_address(lo, true), Ok(()));
        assert_eq!(check_address("::1".parse().unwrap(), true), Ok(()));
        for other in ["10.0.0.1", "169.254.169.254", "fd00:ec2::254", "0.0.0.0"] {
            assert!(
                check_address(other.parse().unwrap(), true).is_err(),
                "{other}"
            );
        }
        assert_eq!(check_address("8.8.8.8".parse().unwrap(), false), Ok(()));
    }

    #[test]
    fn metadata_names_and_schemes() {
        assert!(is_metadata_host("metadata.google.internal"));
        assert!(is_metadata_host("METADATA.google.internal."));
        assert!(!is_metadata_host("example.com"));
        assert!(is_fetchable_scheme("http") && is_fetchable_scheme("HTTPS"));
        for s in ["ftp", "file", "gopher", "javascript", ""] {
            assert!(!is_fetchable_scheme(s), "{s}");
        }
    }
}
