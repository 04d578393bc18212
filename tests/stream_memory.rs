//! Streaming a large response through the sanitiser holds O(errors member) bytes, not O(response).
//!
//! This is its own test binary so that it can count the heap through its own global allocator: a
//! figure that no other test running alongside can disturb.

mod counting_alloc;

use std::sync::Arc;

use graphql_firewall::sanitise::Settings;
use graphql_firewall::sanitise::stream::{OnOverflow, StreamLimits, StreamSanitiser, Streamed};

#[global_allocator]
static ALLOCATOR: counting_alloc::Counting = counting_alloc::Counting;

#[test]
fn ten_megabytes_of_data_then_a_small_errors_member_hold_a_few_kilobytes() {
    let settings = Arc::new(Settings::default());
    let limits = StreamLimits {
        errors_cap: 1 << 20,
        max_depth: 128,
        on_overflow: OnOverflow::Refuse,
    };
    // One 64 KiB frame of rows, sent again and again: the input costs no memory of its own.
    let row = br#"{"id":"42","name":"Did you mean \"errors\"?","tags":["a","b"],"n":-1.5e3},"#;
    let frame: Vec<u8> = row.iter().copied().cycle().take(row.len() * 800).collect();
    let errors = br#"{}]},"errors":[{"message":"Cannot query field \"nmae\" on type \"User\". Did you mean \"name\"?","path":["rows"],"extensions":{"code":"INTERNAL_SERVER_ERROR"}}]}"#;
    let mut out = Vec::with_capacity(frame.len() + 1024);

    let before = counting_alloc::live_bytes();
    let mut peak = before;
    let mut sanitiser = StreamSanitiser::new(settings, Arc::from("req-1"), limits);
    sanitiser
        .push(br#"{"data":{"rows":["#, &mut out)
        .expect("valid start");
    let mut sent = 0;
    while sent < 10 << 20 {
        out.clear();
        sanitiser.push(&frame, &mut out).expect("valid rows");
        assert_eq!(out.len(), frame.len(), "data is sent as it arrives");
        peak = peak.max(counting_alloc::live_bytes());
        sent += frame.len();
    }
    out.clear();
    sanitiser.push(errors, &mut out).expect("valid end");
    peak = peak.max(counting_alloc::live_bytes());
    assert_eq!(sanitiser.finish(), Ok(Streamed::Rewritten));
    assert!(!String::from_utf8_lossy(&out).contains("Did you mean"));

    // The scanner's stack and the errors member (about 200 bytes, a few copies while rewritten);
    // a sanitiser that kept the response would hold ten megabytes.
    let grown = peak.saturating_sub(before);
    assert!(grown < 16 << 10, "the sanitiser held {grown} bytes");
}
