//! Differential fuzz target: our analyser must never panic on any string, and must agree with
//! async-graphql-parser on syntax (inputs under 4 KB, outside the documented differences).
#![no_main]

#[path = "../../tests/oracle/mod.rs"]
mod oracle;

libfuzzer_sys::fuzz_target!(|src: &str| {
    oracle::differential_check(src);
});
