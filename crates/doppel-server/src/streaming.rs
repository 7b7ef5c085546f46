//! Answers produced on a blocking thread and sent while they are made.
//!
//! An export can be larger than memory should hold, and it is made by
//! synchronous engine reads. [`stream_body`] runs the producer on a
//! blocking thread with a [`BodyWriter`], an [`io::Write`] whose bytes go
//! to the client in chunks through a bounded channel: the producer waits
//! while the client is slow, so memory holds a few chunks at most, and it
//! stops with an error as soon as the client goes away. A producer that
//! fails after the answer began ends the body with an error, so the client
//! sees a broken transfer rather than a short file that looks complete.

use std::io;

use axum::body::{Body, Bytes};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::problem::ApiError;

/// Bytes gathered before a chunk is sent: large enough that channel
/// overhead is negligible, small enough that a slow client pins little.
const CHUNK_BYTES: usize = 64 * 1024;

/// Chunks waiting for the client at most: with [`CHUNK_BYTES`], a stalled
/// client holds at most half a mebibyte of an answer in memory.
const CHUNKS_IN_FLIGHT: usize = 8;

/// Where a streamed answer is written: buffers [`CHUNK_BYTES`] and hands
/// each full chunk to the connection, waiting while the client is slow.
pub(crate) struct BodyWriter {
    sender: mpsc::Sender<Result<Bytes, io::Error>>,
    buffer: Vec<u8>,
    /// Bytes handed to the connection so far.
    sent_bytes: u64,
}

impl BodyWriter {
    fn send(&mut self, item: Result<Bytes, io::Error>) -> io::Result<()> {
        self.sender
            .blocking_send(item)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client closed the connection"))
    }

    fn send_buffer(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK_BYTES));
        self.sent_bytes += chunk.len() as u64;
        self.send(Ok(Bytes::from(chunk)))
    }
}

impl io::Write for BodyWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK_BYTES {
            self.send_buffer()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buffer()
    }
}

/// A body whose bytes `produce` writes on a blocking thread. What it has
/// written when it returns `Ok` is sent and the body ends; when it returns
/// an error, the body ends with that error (the connection is cut, so the
/// client cannot mistake a partial answer for a whole one) and the error
/// is logged.
pub(crate) fn stream_body<F>(produce: F) -> Body
where
    F: FnOnce(&mut BodyWriter) -> Result<(), ApiError> + Send + 'static,
{
    let (sender, receiver) = mpsc::channel(CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let mut writer = BodyWriter { sender, buffer: Vec::with_capacity(CHUNK_BYTES), sent_bytes: 0 };
        let outcome = produce(&mut writer).and_then(|()| {
            io::Write::flush(&mut writer).map_err(|error| ApiError::Internal(error.to_string()))
        });
        if let Err(error) = outcome {
            if writer.sender.is_closed() {
                tracing::debug!(sent_bytes = writer.sent_bytes, "client left during a streamed answer");
            } else {
                tracing::error!(%error, sent_bytes = writer.sent_bytes, "a streamed answer failed midway");
                // The receiver may be gone by now; nothing more to tell.
                let _ = writer.send(Err(io::Error::other(error.to_string())));
            }
        }
    });
    Body::from_stream(ReceiverStream::new(receiver))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use std::io::Write;

    async fn collect(body: Body) -> (Vec<u8>, Option<String>) {
        let mut stream = body.into_data_stream();
        let mut bytes = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(error) => return (bytes, Some(error.to_string())),
            }
        }
        (bytes, None)
    }

    #[tokio::test]
    async fn everything_written_arrives_in_order_across_chunks() {
        let body = stream_body(|writer| {
            for i in 0..100_000u32 {
                writer.write_all(&i.to_le_bytes()).map_err(|e| ApiError::Internal(e.to_string()))?;
            }
            Ok(())
        });
        let (bytes, error) = collect(body).await;
        assert_eq!(error, None);
        let expected: Vec<u8> = (0..100_000u32).flat_map(u32::to_le_bytes).collect();
        assert_eq!(bytes, expected);
    }

    #[tokio::test]
    async fn a_failing_producer_ends_the_body_with_an_error() {
        let body = stream_body(|writer| {
            writer.write_all(b"partial").map_err(|e| ApiError::Internal(e.to_string()))?;
            Err(ApiError::Internal("the disk went away".to_owned()))
        });
        let (_, error) = collect(body).await;
        assert!(error.is_some_and(|e| e.contains("the disk went away")));
    }
}
