//! Fetching URL documents: the HTTP client and the policy on where it may go.
//!
//! A document URL comes from whoever can publish an offer on the broker, and
//! the agent sits inside a LAN beside printers, routers and admin pages. So
//! a URL must not turn the agent into a way in (SSRF): unless the operator
//! allows it, a document is only fetched over https and only from public
//! addresses. The policy is enforced where each address is actually known:
//! - the URL itself and every redirect target are checked before they are
//!   followed (scheme, and hosts written as IP addresses, which the client
//!   connects to without any lookup, in whatever spelling the URL parser
//!   accepts: `2130706433`, `0x7f.1`, `[::ffff:127.0.0.1]`);
//! - host names are resolved by [`PublicOnly`], which drops every private,
//!   loopback or otherwise non-public address from the answer, so a name
//!   that points inside (or a DNS answer that changes between a check and
//!   the connect) never gets a connection.
//!
//! A forward proxy from the environment (`HTTPS_PROXY`...) is the operator's
//! choice: its own name is resolved without the filter, and names behind it
//! are resolved by the proxy, whose egress rules then apply.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect;
use url::{Host, Url};

/// The config key that lifts the address rule, named in every refusal.
const PRIVATE_KEY: &str = "agent.allow_private_document_hosts";
/// Redirects followed before giving up (reqwest's default limit).
const MAX_REDIRECTS: usize = 10;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A whole download, however large, must end in this time.
const TOTAL_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Where document URLs may point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchPolicy {
    /// Plain `http://` is allowed (for a hub on a trusted network).
    pub allow_http: bool,
    /// Private, loopback, link-local and other non-public addresses are
    /// allowed (for a hub on the same LAN or machine).
    pub allow_private: bool,
}

/// Why a URL is not fetched. The text names the key that would allow it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{scheme}:// URLs are not fetched (https only; http needs agent.allow_http_documents = true)")]
    Scheme { scheme: String },
    #[error("{address} is a {kind} address; such hosts are refused unless {PRIVATE_KEY} = true")]
    Address { address: IpAddr, kind: &'static str },
    #[error("{host} resolves only to non-public addresses ({kinds}); such hosts are refused unless {PRIVATE_KEY} = true")]
    Name { host: String, kinds: String },
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
}

impl FetchPolicy {
    /// Checks a URL about to be requested (the document URL itself or a
    /// redirect target).
    pub fn check(&self, url: &Url) -> Result<(), Refused> {
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            other => {
                return Err(Refused::Scheme {
                    scheme: other.to_owned(),
                })
            }
        }
        if self.allow_private {
            return Ok(());
        }
        let address = match url.host() {
            Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
            // Names are judged by the resolver, once their addresses exist.
            Some(Host::Domain(_)) | None => return Ok(()),
        };
        match non_public(address) {
            Some(kind) => Err(Refused::Address { address, kind }),
            None => Ok(()),
        }
    }

    /// The HTTP client that fetches documents under this policy; a
    /// download that receives nothing for `idle` fails.
    fn client(&self, idle: Duration) -> reqwest::Result<reqwest::Client> {
        let policy = *self;
        let redirects = redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(Refused::TooManyRedirects);
            }
            match policy.check(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refused) => attempt.error(refused),
            }
        });
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(TOTAL_TIMEOUT)
            // A server that stops sending but keeps the socket open would
            // otherwise hold the printer's queue for the whole TOTAL_TIMEOUT.
            .read_timeout(idle)
            .redirect(redirects);
        if !self.allow_private {
            builder = builder.dns_resolver(Arc::new(PublicOnly {
                proxies: proxy_hosts(),
            }));
        }
        builder.build()
    }
}

/// Fetches document URLs under a [`FetchPolicy`].
#[derive(Clone)]
pub struct Fetcher {
    policy: FetchPolicy,
    client: reqwest::Client,
}

impl Fetcher {
    pub fn new(policy: FetchPolicy, idle: Duration) -> reqwest::Result<Fetcher> {
        Ok(Fetcher {
            policy,
            client: policy.client(idle)?,
        })
    }

    /// GETs `url` if the policy allows it and every redirect on the way.
    /// The error is one line for the job's `document-fetch-failed` message.
    pub async fn get(&self, url: &str) -> Result<reqwest::Response, String> {
        let parsed = Url::parse(url).map_err(|e| format!("document.url: {e}"))?;
        self.policy
            .check(&parsed)
            .map_err(|refused| format!("document.url: {refused}"))?;
        self.client.get(parsed).send().await.map_err(describe)
    }
}

/// The error of a failed request as one line: reqwest's own text is only
/// the outermost layer ("error following redirect"), the reason (a refused
/// address, a TLS failure) is further down the source chain. The URL is
/// left out: a signed document URL is a credential.
pub fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A resolver that hands out only public addresses, except for the names
/// of configured proxies.
struct PublicOnly {
    proxies: HashSet<String>,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let exempt = self.proxies.contains(&host.to_ascii_lowercase());
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if exempt {
                return Ok(Box::new(found.into_iter()) as Addrs);
            }
            let mut kinds = Vec::new();
            let public: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match non_public(a.ip()) {
                    Some(kind) => {
                        if !kinds.contains(&kind) {
                            kinds.push(kind);
                        }
                        false
                    }
                    None => true,
                })
                .collect();
            if public.is_empty() {
                let kinds = if kinds.is_empty() {
                    "no addresses".to_owned()
                } else {
                    kinds.join(", ")
                };
                return Err(Box::new(Refused::Name { host, kinds }) as _);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// Host names of the proxies reqwest takes from the environment.
fn proxy_hosts() -> HashSet<String> {
    [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ]
    .iter()
    .filter_map(|var| std::env::var(var).ok())
    .filter_map(|value| {
        // A proxy may be given without a scheme ("proxy.lan:3128").
        Url::parse(&value)
            .ok()
            .filter(|u| u.has_host())
            .or_else(|| Url::parse(&format!("http://{value}")).ok())
    })
    .filter_map(|u| u.host_str().map(|h| h.to_ascii_lowercase()))
    .collect()
}

/// What kind of non-public address `ip` is, or `None` for a public one.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let kind = match (a, b, c) {
        (0, _, _) => "unspecified (this-network)",
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => "private",
        (100, 64..=127, _) => "shared (carrier-grade NAT)",
        (127, _, _) => "loopback",
        (169, 254, _) => "link-local",
        (192, 0, 0) => "IETF protocol assignment",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    };
    Some(kind)
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    // An IPv4 address in IPv6 clothing is judged as what it reaches.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return non_public_v4(v4);
    }
    let segments = ip.segments();
    let kind = match segments {
        [0, 0, 0, 0, 0, 0, 0, 0] => "unspecified",
        [0, 0, 0, 0, 0, 0, 0, 1] => "loopback",
        // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => {
            return non_public_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)))
        }
        // Deprecated IPv4-compatible addresses (::a.b.c.d).
        [0, 0, 0, 0, 0, 0, _, _] => "IPv4-compatible (deprecated)",
        [s, ..] if s & 0xfe00 == 0xfc00 => "unique local (private)",
        [s, ..] if s & 0xffc0 == 0xfe80 => "link-local",
        [s, ..] if s & 0xffc0 == 0xfec0 => "site-local (deprecated)",
        [s, ..] if s & 0xff00 == 0xff00 => "multicast",
        [0x2001, 0x0db8, ..] => "documentation",
        _ => return None,
    };
    Some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> FetchPolicy {
        FetchPolicy::default()
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn non_public_addresses_are_named() {
        let cases = [
            ("127.0.0.1", Some("loopback")),
            ("127.255.1.2", Some("loopback")),
            ("10.1.2.3", Some("private")),
            ("172.16.0.1", Some("private")),
            ("172.31.255.255", Some("private")),
            ("192.168.1.20", Some("private")),
            ("169.254.169.254", Some("link-local")),
            ("100.64.0.1", Some("shared (carrier-grade NAT)")),
            ("0.0.0.0", Some("unspecified (this-network)")),
            ("224.0.0.1", Some("multicast")),
            ("255.255.255.255", Some("reserved")),
            ("203.0.113.7", Some("documentation")),
            ("::1", Some("loopback")),
            ("::", Some("unspecified")),
            ("fd00::1", Some("unique local (private)")),
            ("fe80::1", Some("link-local")),
            ("ff02::1", Some("multicast")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:10.0.0.1", Some("private")),
            ("64:ff9b::a9fe:a9fe", Some("link-local")),
            ("::7f00:1", Some("IPv4-compatible (deprecated)")),
            // Public ones.
            ("8.8.8.8", None),
            ("172.32.0.1", None),
            ("100.128.0.1", None),
            ("2a00:1450:4001::1", None),
            ("::ffff:8.8.8.8", None),
            ("64:ff9b::808:808", None),
        ];
        for (text, want) in cases {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(non_public(ip), want, "{text}");
        }
    }

    #[test]
    fn every_spelling_of_a_loopback_literal_is_refused() {
        for u in [
            "https://127.0.0.1/doc",
            "https://2130706433/doc",
            "https://0x7f.1/doc",
            "https://0177.0.0.1/doc",
            "https://127.1/doc",
            "https://[::1]:8443/doc",
            "https://[::ffff:127.0.0.1]/doc",
            "https://0/doc",
        ] {
            let err = strict().check(&url(u)).unwrap_err();
            assert!(matches!(err, Refused::Address { .. }), "{u}: {err:?}");
            assert!(err.to_string().contains(PRIVATE_KEY), "{err}");
        }
    }

    #[test]
    fn schemes_follow_allow_http() {
        let err = strict()
            .check(&url("http://files.example.com/d"))
            .unwrap_err();
        assert!(err.to_string().contains("allow_http_documents"), "{err}");
        for u in ["ftp://files.example.com/d", "file:///etc/passwd"] {
            assert!(matches!(
                strict().check(&url(u)),
                Err(Refused::Scheme { .. })
            ));
        }
        let lax = FetchPolicy {
            allow_http: true,
            ..strict()
        };
        assert_eq!(lax.check(&url("http://files.example.com/d")), Ok(()));
        assert!(lax.check(&url("file:///etc/passwd")).is_err());
    }

    #[test]
    fn allow_private_lifts_only_the_address_rule() {
        let lan = FetchPolicy {
            allow_private: true,
            ..strict()
        };
        assert_eq!(lan.check(&url("https://192.168.1.5/d")), Ok(()));
        assert!(lan.check(&url("http://192.168.1.5/d")).is_err());
        assert_eq!(strict().check(&url("https://files.example.com/d")), Ok(()));
        assert_eq!(strict().check(&url("https://8.8.8.8/d")), Ok(()));
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_the_local_machine() {
        let resolver = PublicOnly {
            proxies: HashSet::new(),
        };
        let err = resolver
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .expect("localhost refused");
        let text = err.to_string();
        assert!(
            text.contains("localhost") && text.contains("loopback") && text.contains(PRIVATE_KEY),
            "{text}"
        );
        let proxy = PublicOnly {
            proxies: HashSet::from(["localhost".to_owned()]),
        };
        let addrs: Vec<_> = proxy
            .resolve("localhost".parse().unwrap())
            .await
            .expect("a proxy name resolves")
            .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }
}
