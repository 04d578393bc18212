//! Sanitising multipart streams.
