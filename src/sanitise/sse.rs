//! Sanitising server-sent event streams.
