//! `/communitas/mbox/1` on the wire: the request-response codec that carries the
//! mailbox frames of [`communitas_proto::mbox`] (their layout, and the fetch
//! signature, live there).

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response;

use crate::codec::FrameWatch;
use crate::metrics::NetMetrics;

pub use communitas_proto::mbox::*;

/// The protocol id.
pub const MBOX_PROTOCOL: StreamProtocol = StreamProtocol::new(PROTOCOL);

fn invalid(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = usize::try_from(u32::from_be_bytes(len)).map_err(|_| invalid("length"))?;
    if len > max {
        return Err(invalid("mailbox frame over its limit"));
    }
    let mut frame = Vec::new();
    crate::codec::read_body(io, len, &mut frame).await?;
    Ok(frame)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(io: &mut T, frame: &[u8]) -> io::Result<()> {
    let len = u32::try_from(frame.len()).map_err(|_| invalid("length"))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(frame).await?;
    io.close().await
}

/// The request-response codec for [`MBOX_PROTOCOL`].
#[derive(Debug, Clone, Default)]
pub struct MboxCodec {
    watch: Option<NetMetrics>,
}

impl MboxCodec {
    /// A codec that counts the inbound frames peers never finish or send malformed.
    pub(crate) fn counting(metrics: NetMetrics) -> Self {
        Self { watch: Some(metrics) }
    }
}

impl request_response::Codec for MboxCodec {
    type Protocol = StreamProtocol;
    type Request = MboxRequest;
    type Response = MboxResponse;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<MboxRequest> {
        let watch = FrameWatch::new(self.watch.as_ref(), "mbox_frame_unfinished");
        let request = async {
            let frame = read_frame(io, MAX_REQUEST).await?;
            MboxRequest::decode(&frame).map_err(|_| invalid("malformed mailbox request"))
        };
        watch.finish(request.await, "mbox_bad_frame")
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<MboxResponse> {
        let frame = read_frame(io, MAX_RESPONSE).await?;
        MboxResponse::decode(&frame).map_err(|_| invalid("malformed mailbox response"))
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: MboxRequest,
    ) -> io::Result<()> {
        write_frame(io, &req.encode()).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: MboxResponse,
    ) -> io::Result<()> {
        write_frame(io, &res.encode()).await
    }
}
