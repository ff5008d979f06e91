//! Why a network operation failed, as kinds a caller can match on (a timeout, a failed
//! dial, a protocol the peer refused, a full quorum...), never a libp2p type nor a
//! string to parse.
//!
//! Each libp2p failure is translated here, once, where it crosses into our API
//! (`From` impls below). The messages are the ones the node has always shown (an
//! outbox row's `last_error` is libp2p's wording), so the user reads the same text.

use std::num::NonZeroUsize;

use libp2p::Multiaddr;

/// Why a network operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The event loop has stopped.
    #[error("the network has shut down")]
    ActorGone,
    /// No identity record was found for the address.
    #[error("no identity record found")]
    NotFound,
    /// Publishing a record failed (no peers reached).
    #[error("could not publish the identity record: {0}")]
    Publish(PublishFailure),
    /// Could not reach the peer or it did not answer.
    #[error("could not reach the peer: {0}")]
    Unreachable(Unreachable),
    /// Listening on an address failed.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        reason: ListenFailure,
    },
    /// A bootstrap address has no `/p2p/<peer id>`.
    #[error("bootstrap address {0} must end in /p2p/<peer id>")]
    BootstrapWithoutPeerId(Multiaddr),
    /// Building the transport failed.
    #[error("cannot start the network: {0}")]
    Transport(Setup),
}

/// Why a request to a peer got no answer (libp2p's `OutboundFailure`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unreachable {
    /// No connection could be opened to the peer on any address.
    #[error("Failed to dial the requested peer")]
    Dial,
    /// The request timed out; the peer may have received it.
    #[error("Timeout while waiting for a response")]
    Timeout,
    /// The connection closed before the answer; the peer may have received it.
    #[error("Connection was closed before a response was received")]
    ConnectionClosed,
    /// The peer refused the protocol: it speaks none of the versions we asked for.
    #[error("The remote supports none of the requested protocols")]
    Refused,
    /// The stream failed (our codec's limits count here: an answer too large).
    #[error("IO error on outbound stream: {0}")]
    Io(Cause),
}

/// Why a record could not be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishFailure {
    /// The local record store holds as many records as it may.
    #[error("the store cannot contain any more records")]
    StoreFull,
    /// The record is larger than a record may be.
    #[error("the value is too large to be stored")]
    TooLarge,
    /// Fewer peers than the quorum took the record.
    #[error("the quorum failed; needed {quorum} peers")]
    QuorumFailed {
        /// Peers needed.
        quorum: NonZeroUsize,
        /// Peers that took it.
        stored_on: usize,
    },
    /// The query ran out of time before the quorum was reached.
    #[error("the request timed out")]
    Timeout {
        /// Peers that took it.
        stored_on: usize,
    },
}

/// Why listening on an address failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ListenFailure {
    /// No transport of this node takes this kind of address.
    #[error("no transport for this address")]
    Unsupported,
    /// The transport failed (the port is taken, the address is not ours...).
    #[error("{0}")]
    Io(Cause),
}

/// Why the swarm could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Setup {
    /// The Noise handshake could not be set up with the identity key.
    #[error("{0}")]
    Noise(Cause),
    /// A protocol could not start (mDNS's socket, usually).
    #[error("{0}")]
    Behaviour(Cause),
}

/// An I/O failure under a network error: its kind, for code, and the operating
/// system's (or libp2p's) words, for the log and the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Cause {
    kind: std::io::ErrorKind,
    message: String,
}

impl Cause {
    /// What kind of I/O failure it was (`Other` where libp2p gave no I/O error).
    pub fn kind(&self) -> std::io::ErrorKind {
        self.kind
    }

    /// A failure that is not an I/O error, kept with its words.
    pub(crate) fn other(e: &dyn std::fmt::Display) -> Self {
        Self { kind: std::io::ErrorKind::Other, message: e.to_string() }
    }
}

impl From<&std::io::Error> for Cause {
    fn from(e: &std::io::Error) -> Self {
        Self { kind: e.kind(), message: e.to_string() }
    }
}

impl From<libp2p::request_response::OutboundFailure> for Unreachable {
    fn from(e: libp2p::request_response::OutboundFailure) -> Self {
        use libp2p::request_response::OutboundFailure;
        match e {
            OutboundFailure::DialFailure => Unreachable::Dial,
            OutboundFailure::Timeout => Unreachable::Timeout,
            OutboundFailure::ConnectionClosed => Unreachable::ConnectionClosed,
            OutboundFailure::UnsupportedProtocols => Unreachable::Refused,
            OutboundFailure::Io(e) => Unreachable::Io(Cause::from(&e)),
        }
    }
}

impl From<libp2p::kad::store::Error> for PublishFailure {
    fn from(e: libp2p::kad::store::Error) -> Self {
        match e {
            libp2p::kad::store::Error::ValueTooLarge => PublishFailure::TooLarge,
            // Provider records are not used; a full store either way.
            libp2p::kad::store::Error::MaxRecords | libp2p::kad::store::Error::MaxProvidedKeys => {
                PublishFailure::StoreFull
            }
        }
    }
}

impl From<libp2p::kad::PutRecordError> for PublishFailure {
    fn from(e: libp2p::kad::PutRecordError) -> Self {
        match e {
            libp2p::kad::PutRecordError::QuorumFailed { success, quorum, .. } => {
                PublishFailure::QuorumFailed { quorum, stored_on: success.len() }
            }
            libp2p::kad::PutRecordError::Timeout { success, .. } => {
                PublishFailure::Timeout { stored_on: success.len() }
            }
        }
    }
}

impl From<libp2p::TransportError<std::io::Error>> for ListenFailure {
    fn from(e: libp2p::TransportError<std::io::Error>) -> Self {
        match e {
            libp2p::TransportError::MultiaddrNotSupported(_) => ListenFailure::Unsupported,
            libp2p::TransportError::Other(e) => ListenFailure::Io(Cause::from(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_they_always_did() {
        use libp2p::request_response::OutboundFailure;
        let timeout = Error::Unreachable(OutboundFailure::Timeout.into());
        assert_eq!(
            timeout.to_string(),
            "could not reach the peer: Timeout while waiting for a response"
        );
        let dial = Error::Unreachable(OutboundFailure::DialFailure.into());
        assert_eq!(dial, Error::Unreachable(Unreachable::Dial));
        assert_eq!(dial.to_string(), "could not reach the peer: Failed to dial the requested peer");
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, "message too large");
        let Error::Unreachable(Unreachable::Io(cause)) =
            Error::Unreachable(OutboundFailure::Io(io).into())
        else {
            panic!("an I/O failure stays one")
        };
        assert_eq!(cause.kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(cause.to_string(), "message too large");
    }

    #[test]
    fn a_refused_listen_says_why() {
        let taken = std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address in use");
        let reason = ListenFailure::from(libp2p::TransportError::Other(taken));
        assert!(
            matches!(&reason, ListenFailure::Io(c) if c.kind() == std::io::ErrorKind::AddrInUse)
        );
        // libp2p's own Display of `Other` is empty: the reason used to read "".
        assert_eq!(reason.to_string(), "Address in use");
    }
}
