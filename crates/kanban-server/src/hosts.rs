//! Which `Host` values a gateway without a token serves (the DNS-rebinding
//! guard's rule; the guard itself is `crate::auth::host_guard`).

use std::net::IpAddr;

/// `Host` values a gateway without a token serves: loopback names and
/// addresses (`localhost`, 127.0.0.0/8, `[::1]`, any port) and the
/// configured allowed hosts (`--allowed-host`, `kanban.gateway.allowed_hosts`;
/// `name` allows any port, `name:port` that port only). A page whose domain
/// rebinds to 127.0.0.1 still sends its own name as `Host`, so it is refused.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    entries: Vec<(String, Option<u16>)>,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid allowed host {0:?}: use a name or address, optionally with :port")]
pub struct BadAllowedHost(pub String);

impl AllowedHosts {
    /// Parse the configured entries; a malformed one is an error.
    pub fn parse(list: &[String]) -> Result<AllowedHosts, BadAllowedHost> {
        let mut entries = Vec::new();
        for raw in list.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            let raw = raw
                .strip_prefix("http://")
                .or_else(|| raw.strip_prefix("https://"))
                .unwrap_or(raw)
                .trim_end_matches('/');
            let entry = split_host_port(raw).ok_or_else(|| BadAllowedHost(raw.to_string()))?;
            entries.push(entry);
        }
        Ok(AllowedHosts { entries })
    }

    /// Like [`AllowedHosts::parse`], skipping malformed entries.
    pub fn new(list: &[String]) -> AllowedHosts {
        let entries = list
            .iter()
            .filter_map(|e| AllowedHosts::parse(std::slice::from_ref(e)).ok());
        AllowedHosts {
            entries: entries.flat_map(|a| a.entries).collect(),
        }
    }

    /// Whether a request with this `Host` header value is served.
    pub fn allows(&self, host_header: &str) -> bool {
        let Some((host, port)) = split_host_port(host_header.trim()) else {
            return false;
        };
        is_loopback_host(&host)
            || self
                .entries
                .iter()
                .any(|(h, p)| *h == host && (p.is_none() || *p == port))
    }
}

/// `host[:port]` → lower-cased host (brackets of an IPv6 literal and a
/// trailing root dot removed) and port; `None` when malformed.
fn split_host_port(value: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        inside.parse::<std::net::Ipv6Addr>().ok()?;
        (inside, port)
    } else {
        match value.split_once(':') {
            Some((h, p)) if !p.contains(':') => (h, Some(p)),
            Some(_) => return None,
            None => (value, None),
        }
    };
    let port = match port {
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse().ok()?),
        Some(_) => return None,
        None => None,
    };
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let valid = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'));
    valid.then_some((host, port))
}

fn is_loopback_host(host: &str) -> bool {
    if host == "localhost" {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}
