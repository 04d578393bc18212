//! Reads a body — a request's, or an upstream answer the hardening stage decodes — decompressed
//! (`gzip`, `br`, `deflate`, `zstd`) and capped while streaming.
//!
//! # Threats
//! A compressed body is a multiplier: 10 KB of gzip can inflate to gigabytes. The cap therefore
//! applies to the *decompressed* bytes and is enforced as they are produced, so a zip bomb is
//! refused after at most `limit + 1` decompressed bytes, and a declared `Content-Length` over the
//! cap is refused before the body is read at all.

use async_compression::tokio::bufread::{BrotliDecoder, GzipDecoder, ZlibDecoder, ZstdDecoder};
use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::io::StreamReader;

/// Why a body could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    /// More than the limit, declared or decompressed.
    #[error("request body exceeds {limit} bytes")]
    TooLarge { limit: usize },
    /// A `Content-Encoding` we do not decode.
    #[error("unsupported content encoding")]
    UnsupportedEncoding,
    /// The stream broke or the compressed data is corrupt.
    #[error("request body could not be read")]
    Unreadable,
    /// The body did not arrive within its deadline (`BODY_READ_TIMEOUT`).
    #[error("the request body was not received in time")]
    Timeout,
}

/// Reads at most `limit` bytes of decoded body.
pub async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, BodyError> {
    let encoding = content_encoding(headers)?;
    if encoding == Encoding::Identity
        && let Some(declared) = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        && declared > limit as u64
    {
        return Err(BodyError::TooLarge { limit });
    }
    if encoding == Encoding::Identity {
        // No decoder: collect the frames as they are (a single-frame body is not even copied),
        // stopping as soon as more than `limit` bytes have arrived.
        return match Limited::new(body, limit).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
                Err(BodyError::TooLarge { limit })
            }
            Err(_) => Err(BodyError::Unreadable),
        };
    }
    let stream = TryStreamExt::map_err(body.into_data_stream(), std::io::Error::other);
    let raw = StreamReader::new(stream);
    let decoded: Box<dyn AsyncRead + Send + Unpin> = match encoding {
        Encoding::Identity => Box::new(raw),
        Encoding::Gzip => Box::new(GzipDecoder::new(raw)),
        Encoding::Deflate => Box::new(ZlibDecoder::new(raw)),
        Encoding::Brotli => Box::new(BrotliDecoder::new(raw)),
        Encoding::Zstd => Box::new(ZstdDecoder::new(raw)),
    };
    // One byte past the limit tells "exactly at the limit" from "over it" without reading more.
    let mut capped = decoded.take(limit as u64 + 1);
    let mut buffer = Vec::with_capacity(limit.min(16 * 1024));
    capped
        .read_to_end(&mut buffer)
        .await
        .map_err(|_| BodyError::Unreadable)?;
    if buffer.len() > limit {
        return Err(BodyError::TooLarge { limit });
    }
    Ok(Bytes::from(buffer))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
    Deflate,
    Brotli,
    Zstd,
}

fn content_encoding(headers: &HeaderMap) -> Result<Encoding, BodyError> {
    let mut values = headers.get_all(header::CONTENT_ENCODING).iter();
    let Some(value) = values.next() else {
        return Ok(Encoding::Identity);
    };
    // Stacked encodings (`gzip, br`) are legal but no GraphQL client sends them; refusing is safer
    // than decoding layer after layer.
    if values.next().is_some() {
        return Err(BodyError::UnsupportedEncoding);
    }
    let value = value.to_str().map_err(|_| BodyError::UnsupportedEncoding)?;
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        "deflate" => Ok(Encoding::Deflate),
        "br" => Ok(Encoding::Brotli),
        "zstd" => Ok(Encoding::Zstd),
        _ => Err(BodyError::UnsupportedEncoding),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn encoded(name: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(name));
        headers
    }

    #[tokio::test]
    async fn plain_body_within_the_limit_is_read_whole() {
        let body = read_limited(&HeaderMap::new(), Body::from("hello"), 5).await;
        assert_eq!(body.unwrap(), Bytes::from("hello"));
    }

    #[tokio::test]
    async fn plain_body_over_the_limit_is_refused() {
        let body = read_limited(&HeaderMap::new(), Body::from("hello!"), 5).await;
        assert_eq!(body.unwrap_err(), BodyError::TooLarge { limit: 5 });
    }

    #[tokio::test]
    async fn declared_length_over_the_limit_is_refused_before_reading() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("1000000"));
        let body = read_limited(&headers, Body::from("tiny"), 10).await;
        assert_eq!(body.unwrap_err(), BodyError::TooLarge { limit: 10 });
    }

    #[tokio::test]
    async fn gzip_body_is_decoded() {
        let body = read_limited(
            &encoded("gzip"),
            Body::from(gzip(b"{\"query\":\"{a}\"}")),
            100,
        )
        .await;
        assert_eq!(body.unwrap(), Bytes::from("{\"query\":\"{a}\"}"));
    }

    #[tokio::test]
    async fn zip_bomb_is_refused_on_decompressed_size() {
        let bomb = gzip(&vec![b' '; 10 * 1024 * 1024]);
        assert!(bomb.len() < 64 * 1024, "the bomb is small on the wire");
        let body = read_limited(&encoded("gzip"), Body::from(bomb), 1 << 20).await;
        assert_eq!(body.unwrap_err(), BodyError::TooLarge { limit: 1 << 20 });
    }

    #[tokio::test]
    async fn corrupt_gzip_is_unreadable() {
        let body = read_limited(&encoded("gzip"), Body::from("not gzip at all"), 100).await;
        assert_eq!(body.unwrap_err(), BodyError::Unreadable);
    }

    #[tokio::test]
    async fn unknown_encoding_is_refused() {
        let body = read_limited(&encoded("compress"), Body::from("x"), 100).await;
        assert_eq!(body.unwrap_err(), BodyError::UnsupportedEncoding);
    }
}
