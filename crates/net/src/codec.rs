//! `/communitas/msg/1`: one sealed envelope in, one receipt out.
//!
//! Frames on a request-response stream: a request is `u32 length ‖ envelope bytes`
//! (at most [`MAX_ENVELOPE`]); a response is two bytes, `version ‖ receipt code`. The
//! length is checked first, and the buffer grows with the bytes that arrive, never
//! ahead of them. The receiver answers only after
//! its database committed the message (or found it was a duplicate), so a
//! [`Receipt::Delivered`] means "durably in the recipient's history".

use std::io;

use communitas_crypto::envelope::MAX_LEN as MAX_ENVELOPE;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response;

use crate::metrics::NetMetrics;

/// The protocol id.
pub const MSG_PROTOCOL: StreamProtocol = StreamProtocol::new("/communitas/msg/1");
const RESPONSE_VERSION: u8 = 1;

/// What the recipient's node says about a delivered envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Receipt {
    /// Committed to the recipient's history (or already there: a retry).
    Delivered,
    /// Refused; resending the same envelope will not help.
    Rejected(Rejection),
    /// The node is overloaded; try again later.
    Busy,
    /// This sender is over its rate limit; try again later.
    RateLimited,
}

/// Why a recipient refused an envelope. Codes are stable; never reuse one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// Not addressed to this node's identity.
    WrongRecipient,
    /// Malformed, undecryptable or badly signed.
    Invalid,
    /// Timestamp outside the accepted window.
    Stale,
    /// A session message no session of the recipient's device opens (it lost its
    /// state): the sender starts a new session and seals the message again.
    NoSession,
    /// A first contact without the proof of work strangers owe.
    NoWork,
    /// A code from a newer version.
    Unknown(u8),
}

impl Receipt {
    fn to_code(self) -> u8 {
        match self {
            Receipt::Delivered => 0,
            Receipt::Busy => 1,
            Receipt::RateLimited => 2,
            Receipt::Rejected(Rejection::WrongRecipient) => 16,
            Receipt::Rejected(Rejection::Invalid) => 17,
            Receipt::Rejected(Rejection::Stale) => 18,
            Receipt::Rejected(Rejection::NoSession) => 19,
            Receipt::Rejected(Rejection::NoWork) => 20,
            Receipt::Rejected(Rejection::Unknown(code)) => code,
        }
    }

    fn from_code(code: u8) -> Self {
        match code {
            0 => Receipt::Delivered,
            1 => Receipt::Busy,
            2 => Receipt::RateLimited,
            16 => Receipt::Rejected(Rejection::WrongRecipient),
            17 => Receipt::Rejected(Rejection::Invalid),
            18 => Receipt::Rejected(Rejection::Stale),
            19 => Receipt::Rejected(Rejection::NoSession),
            20 => Receipt::Rejected(Rejection::NoWork),
            code => Receipt::Rejected(Rejection::Unknown(code)),
        }
    }
}

/// The request-response codec for [`MSG_PROTOCOL`].
#[derive(Debug, Clone, Default)]
pub struct MsgCodec {
    watch: Option<NetMetrics>,
}

impl MsgCodec {
    /// A codec that counts the inbound frames peers never finish or send malformed
    /// (see [`FrameWatch`]).
    pub(crate) fn counting(metrics: NetMetrics) -> Self {
        Self { watch: Some(metrics) }
    }
}

/// Watches one inbound frame being read, for `communitas_refused_total`: a frame over
/// the limit or malformed (`InvalidData`) counts as `{protocol}_bad_frame`; a read
/// dropped before the frame was whole — its stream's deadline passed, or the
/// connection went mid-frame — as `{protocol}_frame_unfinished`. A stream closed
/// before its first byte, or cut by the network, counts as neither.
pub(crate) struct FrameWatch<'a> {
    metrics: Option<&'a NetMetrics>,
    unfinished: &'static str,
    done: bool,
}

impl<'a> FrameWatch<'a> {
    pub(crate) fn new(metrics: Option<&'a NetMetrics>, unfinished: &'static str) -> Self {
        Self { metrics, unfinished, done: false }
    }

    /// The read ended with `result`.
    pub(crate) fn finish<T>(mut self, result: io::Result<T>, bad: &'static str) -> io::Result<T> {
        self.done = true;
        if let (Err(e), Some(metrics)) = (&result, self.metrics)
            && e.kind() == io::ErrorKind::InvalidData
        {
            metrics.refuse(bad);
        }
        result
    }
}

impl Drop for FrameWatch<'_> {
    fn drop(&mut self) {
        if let (false, Some(metrics)) = (self.done, self.metrics) {
            metrics.refuse(self.unfinished);
        }
    }
}

fn invalid(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Reads exactly `len` bytes into `body` (cleared first), growing it with the bytes
/// that arrived: a peer that declares a large frame and sends little costs what it
/// sent, not what it declared. A frame cut short is `UnexpectedEof`.
pub(crate) async fn read_body<T: AsyncRead + Unpin>(
    io: &mut T,
    len: usize,
    body: &mut Vec<u8>,
) -> io::Result<()> {
    body.clear();
    let got = io.take(len as u64).read_to_end(body).await?;
    if got < len {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "frame cut short"));
    }
    Ok(())
}

/// Reads one request frame: `u32 length ‖ envelope`, the length checked first.
async fn read_envelope<T: AsyncRead + Unpin>(io: &mut T) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = usize::try_from(u32::from_be_bytes(len)).map_err(|_| invalid("length"))?;
    if len > MAX_ENVELOPE {
        return Err(invalid("envelope over 256 KiB"));
    }
    let mut envelope = Vec::new();
    read_body(io, len, &mut envelope).await?;
    Ok(envelope)
}

impl request_response::Codec for MsgCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Receipt;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        let watch = FrameWatch::new(self.watch.as_ref(), "msg_frame_unfinished");
        watch.finish(read_envelope(io).await, "msg_bad_frame")
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Receipt>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut frame = [0u8; 2];
        io.read_exact(&mut frame).await?;
        let [version, code] = frame;
        if version != RESPONSE_VERSION {
            return Err(invalid("unsupported receipt version"));
        }
        Ok(Receipt::from_code(code))
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        envelope: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        if envelope.len() > MAX_ENVELOPE {
            return Err(invalid("envelope over 256 KiB"));
        }
        let len = u32::try_from(envelope.len()).map_err(|_| invalid("length"))?;
        io.write_all(&len.to_be_bytes()).await?;
        io.write_all(&envelope).await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        receipt: Receipt,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&[RESPONSE_VERSION, receipt.to_code()]).await?;
        io.close().await
    }
}

#[cfg(test)]
mod tests {
    use futures::io::Cursor;
    use request_response::Codec as _;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_frame_declaring_more_than_it_sends_costs_what_it_sent() {
        // Declares 4 MiB, sends 10 bytes.
        let mut io = Cursor::new(vec![7u8; 10]);
        let mut body = Vec::new();
        let e = read_body(&mut io, 4 << 20, &mut body).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(body.len(), 10);
        assert!(body.capacity() < 64 << 10, "allocated {} bytes", body.capacity());
        // Whole frames still read whole.
        let mut io = Cursor::new(vec![7u8; 100]);
        read_body(&mut io, 100, &mut body).await.unwrap();
        assert_eq!(body, vec![7u8; 100]);
    }

    #[tokio::test]
    async fn a_truncated_envelope_is_a_typed_error() {
        let mut frame = (MAX_ENVELOPE as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&[1; 10]);
        let mut io = Cursor::new(frame);
        let e = MsgCodec::default().read_request(&MSG_PROTOCOL, &mut io).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let mut over = Cursor::new((MAX_ENVELOPE as u32 + 1).to_be_bytes().to_vec());
        let e = MsgCodec::default().read_request(&MSG_PROTOCOL, &mut over).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn frames_never_finished_or_refused_are_counted_and_quiet_closes_are_not() {
        let metrics = NetMetrics::default();
        let mut codec = MsgCodec::counting(metrics.clone());
        let count = |what| metrics.refused_count(what);
        // Over the limit: a bad frame.
        let mut over = Cursor::new((MAX_ENVELOPE as u32 + 1).to_be_bytes().to_vec());
        assert!(codec.read_request(&MSG_PROTOCOL, &mut over).await.is_err());
        assert_eq!((count("msg_bad_frame"), count("msg_frame_unfinished")), (1, 0));
        // Closed before its first byte: neither.
        assert!(codec.read_request(&MSG_PROTOCOL, &mut Cursor::new(Vec::new())).await.is_err());
        assert_eq!((count("msg_bad_frame"), count("msg_frame_unfinished")), (1, 0));
        // A read given up mid-frame (the stream's deadline): unfinished.
        let mut reader = Cursor::new(100u32.to_be_bytes()).chain(Stalled);
        let protocol = MSG_PROTOCOL;
        let read = codec.read_request(&protocol, &mut reader);
        assert!(tokio::time::timeout(Duration::from_millis(20), read).await.is_err());
        assert_eq!((count("msg_bad_frame"), count("msg_frame_unfinished")), (1, 1));
        // A whole frame: neither.
        let mut whole = 3u32.to_be_bytes().to_vec();
        whole.extend_from_slice(b"abc");
        let got = codec.read_request(&MSG_PROTOCOL, &mut Cursor::new(whole)).await.unwrap();
        assert_eq!(got, b"abc");
        assert_eq!((count("msg_bad_frame"), count("msg_frame_unfinished")), (1, 1));
    }

    /// A stream whose peer sends nothing more.
    struct Stalled;

    impl AsyncRead for Stalled {
        fn poll_read(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            _: &mut [u8],
        ) -> std::task::Poll<io::Result<usize>> {
            std::task::Poll::Pending
        }
    }

    #[test]
    fn receipt_codes_round_trip() {
        for code in 0..=255u8 {
            let receipt = Receipt::from_code(code);
            assert_eq!(receipt.to_code(), code);
        }
    }
}
