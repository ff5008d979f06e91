//! Which addresses the node dials (issue 16 item 5).
//!
//! Peers hand us addresses all the time: identify's listen addresses, Kademlia's closer
//! peers, the device addresses in identity records. A hostile peer can point them at
//! anything: a router's admin page on 192.168.1.1, a service on the victim's own
//! loopback, a link-local neighbour, or a DNS name that resolves to any of these (or
//! that makes us query a resolver the attacker watches). So by default the node dials
//! only global unicast IP addresses that peers supplied; private, loopback, link-local,
//! shared (CGNAT), multicast and reserved ranges and `/dns*` names are dialled only
//! when the operator configured that exact address (bootstrap nodes, relays) or turned
//! [`Config::dial_any_peer_addr`](crate::Config::dial_any_peer_addr) on, as a network
//! on loopback or a LAN does (`demo`, `testnet`, the tests).
//!
//! The check sits in the transport ([`Guarded`]), under every behaviour, so no code
//! path that dials (Kademlia's queries, the relay client, DCUtR, the node's own
//! `add_addresses`) can go around it. A refused address fails that one dial attempt
//! like an unsupported address does, and is counted (`dial_private_addr`,
//! `dial_dns_name` in `communitas_refused_total`).

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::pin::Pin;
use std::task::{Context, Poll};

use libp2p::core::transport::{DialOpts, ListenerId, TransportError, TransportEvent};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, Transport};

use crate::metrics::NetMetrics;

/// Why an address is not dialled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A private, loopback, link-local or otherwise non-global IP address.
    PrivateAddr,
    /// A DNS name a peer gave us.
    DnsName,
}

impl Refusal {
    /// The `what` label in `communitas_refused_total`.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Refusal::PrivateAddr => "dial_private_addr",
            Refusal::DnsName => "dial_dns_name",
        }
    }
}

/// The rule: what may be dialled.
#[derive(Debug, Clone)]
pub(crate) struct DialPolicy {
    /// Dial whatever peers give (a network on loopback or a LAN).
    any: bool,
    /// Configured addresses, without their `/p2p/…` tail: always dialled.
    configured: HashSet<Multiaddr>,
}

impl DialPolicy {
    pub(crate) fn new(any: bool, configured: impl IntoIterator<Item = Multiaddr>) -> Self {
        Self { any, configured: configured.into_iter().map(|a| transport_part(&a)).collect() }
    }

    /// The node's policy: its configured bootstrap and relay addresses, and its switch.
    pub(crate) fn from_config(config: &crate::Config) -> Self {
        Self::new(config.dial_any_peer_addr, config.bootstrap.iter().chain(&config.relays).cloned())
    }

    /// `Ok` if `addr` may be dialled.
    pub(crate) fn check(&self, addr: &Multiaddr) -> Result<(), Refusal> {
        if self.any || self.configured.contains(&transport_part(addr)) {
            return Ok(());
        }
        match addr.iter().next() {
            Some(Protocol::Ip4(ip)) if !is_global_v4(ip) => Err(Refusal::PrivateAddr),
            Some(Protocol::Ip6(ip)) if !is_global_v6(ip) => Err(Refusal::PrivateAddr),
            Some(
                Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_) | Protocol::Dnsaddr(_),
            ) => Err(Refusal::DnsName),
            // Global IPs; circuit addresses are checked again when their relay is dialled.
            _ => Ok(()),
        }
    }
}

/// The address up to its first `/p2p/…`: what a transport dials.
fn transport_part(addr: &Multiaddr) -> Multiaddr {
    addr.iter().take_while(|p| !matches!(p, Protocol::P2p(_))).collect()
}

/// Whether `ip` is a global unicast address (RFC 6890's special-purpose registry, the
/// ranges that matter for dialling).
pub(crate) fn is_global_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (b & 0xc0) == 64) // shared address space (CGNAT), 100.64/10
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b & 0xfe) == 18) // benchmarking, 198.18/15
        || a >= 240) // reserved
}

/// Whether `ip` is a global unicast address.
pub(crate) fn is_global_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_global_v4(v4);
    }
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local, fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local, fe80::/10
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        || (first == 0x0064 && ip.segments()[1] == 0xff9b)) // NAT64 of any v4
}

/// A transport that refuses to dial what [`DialPolicy`] refuses, and otherwise is `T`.
pub(crate) struct Guarded<T> {
    inner: T,
    policy: DialPolicy,
    metrics: NetMetrics,
}

impl<T> Guarded<T> {
    pub(crate) fn new(inner: T, policy: DialPolicy, metrics: NetMetrics) -> Self {
        Self { inner, policy, metrics }
    }
}

impl<T: Transport + Unpin> Transport for Guarded<T> {
    type Output = T::Output;
    type Error = T::Error;
    type ListenerUpgrade = T::ListenerUpgrade;
    type Dial = T::Dial;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        self.inner.listen_on(id, addr)
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        self.inner.remove_listener(id)
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        if let Err(refusal) = self.policy.check(&addr) {
            // A circuit address over a private relay falls through to the relay
            // transport, which dials the relay through us again: count only addresses
            // this transport would have dialled itself.
            if !addr.iter().any(|p| matches!(p, Protocol::P2pCircuit)) {
                tracing::debug!(reason = refusal.label(), "not dialling a peer-supplied address");
                self.metrics.refuse(refusal.label());
            }
            return Err(TransportError::MultiaddrNotSupported(addr));
        }
        self.inner.dial(addr, opts)
    }

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        Pin::new(&mut self.get_mut().inner).poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Multiaddr {
        s.parse().expect("test address")
    }

    #[test]
    fn peer_supplied_private_loopback_link_local_and_dns_are_refused() {
        let policy = DialPolicy::new(false, []);
        for refused in [
            "/ip4/127.0.0.1/tcp/1",
            "/ip4/10.1.2.3/tcp/1",
            "/ip4/172.16.0.1/udp/1/quic-v1",
            "/ip4/192.168.1.1/tcp/80",
            "/ip4/169.254.1.1/tcp/1",
            "/ip4/100.64.0.1/tcp/1",
            "/ip4/0.0.0.0/tcp/1",
            "/ip4/224.0.0.251/udp/5353",
            "/ip4/255.255.255.255/tcp/1",
            "/ip6/::1/tcp/1",
            "/ip6/fe80::1/tcp/1",
            "/ip6/fd00::1/tcp/1",
            "/ip6/::ffff:192.168.0.1/tcp/1",
        ] {
            assert_eq!(policy.check(&addr(refused)), Err(Refusal::PrivateAddr), "{refused}");
        }
        for refused in ["/dns4/router.lan/tcp/80", "/dns/x.example/tcp/1", "/dnsaddr/x.example"] {
            assert_eq!(policy.check(&addr(refused)), Err(Refusal::DnsName), "{refused}");
        }
        for allowed in
            ["/ip4/8.8.8.8/tcp/4001", "/ip4/1.2.3.4/udp/1/quic-v1", "/ip6/2a00:1450::1/tcp/1"]
        {
            assert_eq!(policy.check(&addr(allowed)), Ok(()), "{allowed}");
        }
    }

    #[test]
    fn configured_addresses_and_an_open_network_are_dialled() {
        let peer = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";
        let policy = DialPolicy::new(
            false,
            [addr(&format!("/ip4/10.0.0.5/tcp/4001/p2p/{peer}")), addr("/dns4/boot.lan/tcp/1")],
        );
        // Configured, with or without the peer id tail.
        assert_eq!(policy.check(&addr("/ip4/10.0.0.5/tcp/4001")), Ok(()));
        assert_eq!(policy.check(&addr(&format!("/ip4/10.0.0.5/tcp/4001/p2p/{peer}"))), Ok(()));
        assert_eq!(policy.check(&addr("/dns4/boot.lan/tcp/1")), Ok(()));
        // Another port on the same private host is not what was configured.
        assert_eq!(policy.check(&addr("/ip4/10.0.0.5/tcp/22")), Err(Refusal::PrivateAddr));

        let open = DialPolicy::new(true, []);
        assert_eq!(open.check(&addr("/ip4/127.0.0.1/tcp/1")), Ok(()));
        assert_eq!(open.check(&addr("/dns4/router.lan/tcp/80")), Ok(()));
    }
}
