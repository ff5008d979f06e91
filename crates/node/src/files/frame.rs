//! Length-prefixed frames on a `/communitas/file/1` stream.

use std::io;

use communitas_proto::file::wire::MAX_FRAME;
use futures::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// Reads one frame; `Ok(None)` when the other side closed the stream cleanly.
pub(super) async fn read<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    Ok(read_into(stream, &mut body).await?.then_some(body))
}

/// Reads one frame into `body` (reusing its allocation: a fetcher reads a megabyte
/// per stripe); `Ok(false)` when the other side closed the stream cleanly.
pub(super) async fn read_into<S: AsyncRead + Unpin>(
    stream: &mut S,
    body: &mut Vec<u8>,
) -> io::Result<bool> {
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len).await {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e),
    }
    let len = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
    if len > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "frame over the limit"));
    }
    // The buffer grows with the bytes that arrive (a fetcher's keeps its capacity
    // from frame to frame), never ahead of them: a peer that declares 4 MiB and
    // sends little costs what it sent.
    body.clear();
    let got = stream.take(len as u64).read_to_end(body).await?;
    if got < len {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "frame cut short"));
    }
    Ok(true)
}

/// Writes one frame and flushes it.
pub(super) async fn write<S: AsyncWrite + Unpin>(stream: &mut S, body: &[u8]) -> io::Result<()> {
    let len = u32::try_from(body.len())
        .ok()
        .filter(|l| *l as usize <= MAX_FRAME)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame over the limit"))?;
    stream.write_all(&len.to_be_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await
}

#[cfg(test)]
mod tests {
    use futures::io::Cursor;

    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_oversize_is_refused() {
        let mut buf = Cursor::new(Vec::new());
        write(&mut buf, b"hello").await.unwrap();
        write(&mut buf, b"").await.unwrap();
        buf.set_position(0);
        assert_eq!(read(&mut buf).await.unwrap(), Some(b"hello".to_vec()));
        assert_eq!(read(&mut buf).await.unwrap(), Some(Vec::new()));
        assert_eq!(read(&mut buf).await.unwrap(), None);

        let mut huge = Cursor::new(u32::MAX.to_be_bytes().to_vec());
        assert_eq!(read(&mut huge).await.unwrap_err().kind(), io::ErrorKind::InvalidData);
        // A frame cut short is an error, not a clean end.
        let mut cut = Cursor::new(vec![0, 0, 0, 9, 1, 2]);
        assert!(read(&mut cut).await.is_err());
    }

    #[tokio::test]
    async fn a_frame_declaring_4_mib_and_sending_10_bytes_allocates_little() {
        let mut bytes = u32::try_from(MAX_FRAME).unwrap().to_be_bytes().to_vec();
        bytes.extend_from_slice(&[1; 10]);
        let mut cut = Cursor::new(bytes);
        let mut body = Vec::new();
        let e = read_into(&mut cut, &mut body).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(body.len(), 10);
        assert!(body.capacity() < 64 << 10, "allocated {} bytes", body.capacity());
    }
}
