//! Checking blobs against their ids as they are read: a corrupted blob is an error, never served
//! silently.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use vouch_types::ModelId;

use crate::{HubError, blob::ByteStream};

/// Passes a blob's chunks through while hashing them; ends with [`HubError::CorruptBlob`] instead
/// of the end of the stream if the bytes are longer or shorter than recorded, or hash to another
/// id. Past the first error it ends.
pub(crate) struct VerifiedStream {
    inner: ByteStream,
    id: ModelId,
    expected_size: u64,
    seen: u64,
    hasher: Sha256,
    done: bool,
}

impl VerifiedStream {
    pub(crate) fn new(inner: ByteStream, id: ModelId, expected_size: u64) -> Self {
        VerifiedStream {
            inner,
            id,
            expected_size,
            seen: 0,
            hasher: Sha256::new(),
            done: false,
        }
    }

    fn corrupt(&mut self, why: String) -> Poll<Option<Result<Bytes, HubError>>> {
        self.done = true;
        Poll::Ready(Some(Err(HubError::CorruptBlob { id: self.id, why })))
    }
}

impl Stream for VerifiedStream {
    type Item = Result<Bytes, HubError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                self.seen += chunk.len() as u64;
                if self.seen > self.expected_size {
                    let (seen, want) = (self.seen, self.expected_size);
                    return self.corrupt(format!("at least {seen} bytes stored, {want} recorded"));
                }
                self.hasher.update(&chunk);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.done = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                if self.seen != self.expected_size {
                    let (seen, want) = (self.seen, self.expected_size);
                    return self.corrupt(format!("{seen} bytes stored, {want} recorded"));
                }
                let digest: [u8; 32] = std::mem::take(&mut self.hasher).finalize().into();
                if ModelId::from_digest(digest) != self.id {
                    let actual = ModelId::from_digest(digest);
                    return self.corrupt(format!("the stored bytes hash to {actual}"));
                }
                self.done = true;
                Poll::Ready(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt;

    use super::*;

    fn chunks(parts: &[&'static str]) -> ByteStream {
        let parts: Vec<_> = parts
            .iter()
            .map(|p| Ok(Bytes::from_static(p.as_bytes())))
            .collect();
        futures::stream::iter(parts).boxed()
    }

    async fn collect(s: VerifiedStream) -> Result<Vec<u8>, HubError> {
        let parts: Vec<Bytes> = s.try_collect().await?;
        Ok(parts.concat())
    }

    #[tokio::test]
    async fn passes_matching_bytes_and_refuses_others() {
        let id = ModelId::of_bytes(b"hello world");
        let ok = VerifiedStream::new(chunks(&["hello ", "world"]), id, 11);
        assert_eq!(collect(ok).await.unwrap(), b"hello world");

        for (parts, size) in [
            (&["hello ", "worle"][..], 11),
            (&["hello ", "world!"][..], 11),
            (&["hello "][..], 11),
            (&["hello ", "world"][..], 12),
        ] {
            let s = VerifiedStream::new(chunks(parts), id, size);
            let err = collect(s).await.unwrap_err();
            assert_eq!(err.code(), "corrupt_blob", "{err}");
        }
    }
}
