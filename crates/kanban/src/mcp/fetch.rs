//! The guarded HTTP fetch behind `kanban_attach_url`: http(s) only, at most
//! [`FETCH_MAX_REDIRECTS`] redirects followed by hand, and on every hop
//! every address the host resolves to checked against
//! `kanban_core::fetch_policy` by the resolver the client connects through,
//! so the address checked is the address connected to (no DNS-rebinding
//! window between a check and a second lookup). The body is read under a
//! byte cap and abandoned as soon as it overruns it.

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kanban_core::fetch_policy::{
    FETCH_MAX_REDIRECTS, FETCH_TIMEOUT_SECONDS, check_address, is_fetchable_scheme,
    is_metadata_host,
};
use ureq::Agent;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};
use url::{Host, Url};

/// Test-only: with this variable set to `1`, loopback addresses (and only
/// those) may be fetched, so tests can serve files from 127.0.0.1. Nothing
/// else in the product sets it.
pub const ENV_TEST_ALLOW_LOOPBACK: &str = "KANBAN_TEST_ALLOW_LOOPBACK_FETCH";
/// `User-Agent` of the fetch.
const USER_AGENT: &str = concat!("kanban/", env!("CARGO_PKG_VERSION"), " (attach)");
/// Bytes read from the body at a time.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// What may be fetched.
#[derive(Debug, Clone, Copy, Default)]
pub struct FetchPolicy {
    /// Admit loopback addresses (tests only, see [`ENV_TEST_ALLOW_LOOPBACK`]).
    pub allow_loopback: bool,
}

impl FetchPolicy {
    pub fn from_env() -> FetchPolicy {
        FetchPolicy {
            allow_loopback: std::env::var(ENV_TEST_ALLOW_LOOPBACK).is_ok_and(|v| v == "1"),
        }
    }
}

/// A fetched body and the media type the server gave it.
#[derive(Debug)]
pub struct Fetched {
    pub data: Vec<u8>,
    pub content_type: Option<String>,
}

/// Why a fetch failed (the message the model reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchError(pub String);

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn blocked(url: &str, detail: &str) -> FetchError {
    FetchError(format!(
        "URL blocked by SSRF protection (private/internal address): {url} ({detail})"
    ))
}

/// Resolves like the default resolver, then refuses the host when any of
/// its addresses is not public: the client connects only to addresses
/// this resolver returned.
#[derive(Debug)]
struct GuardedResolver {
    inner: DefaultResolver,
    policy: FetchPolicy,
    /// Why the last resolution was refused, for the error message.
    refusal: Arc<Mutex<Option<String>>>,
}

impl Resolver for GuardedResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let addrs = self.inner.resolve(uri, config, timeout)?;
        for addr in addrs.iter() {
            if let Err(why) = check_address(addr.ip(), self.policy.allow_loopback) {
                let msg = format!("{} resolves to {} address {}", uri, why.as_str(), addr.ip());
                *self.refusal.lock().unwrap_or_else(|p| p.into_inner()) = Some(msg.clone());
                return Err(ureq::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    msg,
                )));
            }
        }
        Ok(addrs)
    }
}

/// Check one hop's URL before any connection: scheme, literal addresses,
/// metadata host names.
fn check_url(url: &Url, policy: FetchPolicy) -> Result<(), FetchError> {
    if !is_fetchable_scheme(url.scheme()) {
        return Err(FetchError(format!(
            "unsupported URL scheme {:?}; only http/https are allowed",
            url.scheme()
        )));
    }
    let ip = match url.host() {
        None => return Err(FetchError(format!("URL has no host: {url}"))),
        Some(Host::Domain(d)) if is_metadata_host(d) => {
            return Err(blocked(url.as_str(), "cloud metadata host"));
        }
        Some(Host::Domain(_)) => return Ok(()),
        Some(Host::Ipv4(v4)) => std::net::IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => std::net::IpAddr::V6(v6),
    };
    check_address(ip, policy.allow_loopback)
        .map_err(|why| blocked(url.as_str(), &format!("{} address", why.as_str())))
}

fn agent(policy: FetchPolicy, refusal: Arc<Mutex<Option<String>>>) -> Agent {
    let config = Agent::config_builder()
        .max_redirects(0)
        .max_redirects_will_error(false)
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(FETCH_TIMEOUT_SECONDS)))
        .user_agent(USER_AGENT)
        .build();
    let resolver = GuardedResolver {
        inner: DefaultResolver::default(),
        policy,
        refusal,
    };
    Agent::with_parts(config, DefaultConnector::default(), resolver)
}

fn too_large(max_bytes: u64) -> FetchError {
    FetchError(format!(
        "attachment exceeds {} MB limit",
        max_bytes / (1024 * 1024)
    ))
}

/// Fetch `url` under `policy`, following at most [`FETCH_MAX_REDIRECTS`]
/// redirects, each target checked again; the body must not exceed
/// `max_bytes`.
pub fn fetch(url: &str, policy: FetchPolicy, max_bytes: u64) -> Result<Fetched, FetchError> {
    let mut current =
        Url::parse(url.trim()).map_err(|e| FetchError(format!("invalid URL {url:?}: {e}")))?;
    let refusal = Arc::new(Mutex::new(None));
    let agent = agent(policy, refusal.clone());
    for _ in 0..=FETCH_MAX_REDIRECTS {
        check_url(&current, policy)?;
        let mut resp = match agent.get(current.as_str()).call() {
            Ok(r) => r,
            Err(e) => {
                let refused = refusal.lock().unwrap_or_else(|p| p.into_inner()).take();
                return Err(match refused {
                    Some(detail) => blocked(current.as_str(), &detail),
                    None => FetchError(format!("failed to fetch {current}: {e}")),
                });
            }
        };
        let status = resp.status();
        if status.is_redirection() {
            let Some(location) = resp.headers().get("location").and_then(|l| l.to_str().ok())
            else {
                return Err(FetchError(format!(
                    "redirect without Location header from {current}"
                )));
            };
            current = current
                .join(location)
                .map_err(|e| FetchError(format!("bad redirect Location {location:?}: {e}")))?;
            continue;
        }
        if !status.is_success() {
            return Err(FetchError(format!(
                "HTTP {} fetching {current}",
                status.as_u16()
            )));
        }
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|c| c.to_str().ok())
            .and_then(|c| c.split(';').next())
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string);
        if resp.body().content_length().is_some_and(|n| n > max_bytes) {
            return Err(too_large(max_bytes));
        }
        let mut reader = resp.body_mut().as_reader();
        let mut data = Vec::new();
        let mut chunk = vec![0u8; READ_CHUNK_BYTES];
        loop {
            let n = reader
                .read(&mut chunk)
                .map_err(|e| FetchError(format!("failed to read {current}: {e}")))?;
            if n == 0 {
                break;
            }
            if (data.len() + n) as u64 > max_bytes {
                return Err(too_large(max_bytes));
            }
            data.extend_from_slice(&chunk[..n]);
        }
        return Ok(Fetched { data, content_type });
    }
    Err(FetchError(format!("too many redirects fetching {url}")))
}

/// The name a fetched file is stored under when none is given: the URL
/// path's last segment, percent-decoded, else `download`.
pub fn default_filename(url: &str) -> String {
    Url::parse(url.trim())
        .ok()
        .and_then(|u| {
            let leaf = u.path_segments()?.next_back()?.to_string();
            let decoded = percent_encoding::percent_decode_str(&leaf).decode_utf8_lossy();
            let t = decoded.trim().to_string();
            (!t.is_empty()).then_some(t)
        })
        .unwrap_or_else(|| "download".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: u64 = 1024;

    fn refused(url: &str) -> String {
        fetch(url, FetchPolicy::default(), CAP).unwrap_err().0
    }

    #[test]
    fn non_http_schemes_and_internal_addresses_are_refused_before_connecting() {
        for url in ["ftp://example.com/x", "file:///etc/passwd", "gopher://a/"] {
            assert!(refused(url).contains("unsupported URL scheme"), "{url}");
        }
        for url in [
            "http://127.0.0.1:1/x",
            "http://[::1]:1/",
            "http://10.0.0.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/",
            "http://[::ffff:127.0.0.1]:1/",
            "http://100.64.0.1/",
            "http://0.0.0.0:1/",
            // Decimal, hex and octal spellings of 127.0.0.1.
            "http://2130706433:1/",
            "http://0x7f000001:1/",
            "http://0177.0.0.1:1/",
            "http://metadata.google.internal/",
        ] {
            let e = refused(url);
            assert!(e.contains("blocked by SSRF protection"), "{url}: {e}");
        }
    }

    #[test]
    fn names_resolving_to_loopback_are_refused_by_the_resolver() {
        let e = refused("http://localhost:1/x");
        assert!(e.contains("blocked by SSRF protection"), "{e}");
        assert!(e.contains("loopback"), "{e}");
    }

    #[test]
    fn default_names_come_from_the_url_path() {
        assert_eq!(
            default_filename("https://h/a/b/report%20v2.pdf?x=1"),
            "report v2.pdf"
        );
        assert_eq!(default_filename("https://h/"), "download");
        assert_eq!(default_filename("https://h"), "download");
        assert_eq!(default_filename("not a url"), "download");
    }
}
