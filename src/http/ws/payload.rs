//! Hardening of one upstream WebSocket result: a `next` payload (an execution result) or an
//! `error` payload (an array of GraphQL errors) is sanitised exactly as an HTTP answer of that JSON
//! would be, with the same rules and the same streaming sanitiser (suggestions, masking, the
//! `SANITISE_MAX_BYTES` bound).
//!
//! # Threats
//! A WebSocket path that passes upstream errors untouched would leak what the HTTP path strips.
//! Nothing here fails open: a payload that cannot be inspected (not JSON, too deep, an `errors`
//! member over the bound with `SANITISE_OVERFLOW=refuse`) is replaced by the generic error.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::protocol::ResultKind;
use crate::http::harden::Settings;
use crate::sanitise::MaskMode;
use crate::sanitise::stream::{StreamSanitiser, Streamed, generic_errors, may_hold_errors};

/// The payload to send the client in place of `payload`.
pub fn harden<'a>(
    settings: &Settings,
    kind: ResultKind,
    payload: &'a str,
    request_id: &Arc<str>,
) -> Cow<'a, str> {
    let rules = &settings.rules;
    if !rules.block_suggestions && rules.mask == MaskMode::Off {
        return Cow::Borrowed(payload);
    }
    match kind {
        ResultKind::Next => {
            if !may_hold_errors(payload.as_bytes()) {
                return Cow::Borrowed(payload);
            }
            match sanitise(settings, payload, request_id) {
                Some(None) => Cow::Borrowed(payload),
                Some(Some(rewritten)) => Cow::Owned(rewritten),
                None => Cow::Owned(format!(
                    r#"{{"data":null,"errors":{}}}"#,
                    generic_errors(request_id)
                )),
            }
        }
        // An array of errors has no `errors` key of its own: it is read as a response's member.
        ResultKind::Error => {
            let wrapped = format!(r#"{{"errors":{payload}}}"#);
            let errors = match sanitise(settings, &wrapped, request_id) {
                Some(None) => return Cow::Borrowed(payload),
                Some(Some(rewritten)) => errors_member(&rewritten),
                None => None,
            };
            Cow::Owned(errors.unwrap_or_else(|| generic_errors(request_id)))
        }
    }
}

/// `Some(None)`: unchanged; `Some(Some(json))`: rewritten; `None`: could not be inspected.
fn sanitise(settings: &Settings, json: &str, request_id: &Arc<str>) -> Option<Option<String>> {
    let mut sanitiser =
        StreamSanitiser::new(settings.rules.clone(), request_id.clone(), settings.limits);
    let mut out = Vec::with_capacity(json.len());
    sanitiser.push(json.as_bytes(), &mut out).ok()?;
    match sanitiser.finish().ok()? {
        Streamed::Unchanged => Some(None),
        Streamed::Rewritten | Streamed::Masked => String::from_utf8(out).ok().map(Some),
    }
}

/// The `errors` member of `{"errors": […]}`.
fn errors_member(json: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Wrapped<'a> {
        #[serde(borrow)]
        errors: &'a RawValue,
    }
    let wrapped: Wrapped<'_> = serde_json::from_str(json).ok()?;
    Some(wrapped.errors.get().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sanitise;
    use crate::sanitise::stream::{OnOverflow, StreamLimits};

    fn settings() -> Settings {
        Settings {
            rules: Arc::new(sanitise::Settings::default()),
            max_response_bytes: 1 << 20,
            limits: StreamLimits {
                errors_cap: 1 << 16,
                max_depth: 64,
                on_overflow: OnOverflow::Mask,
            },
            body_timeout: std::time::Duration::from_secs(1),
        }
    }

    fn id() -> Arc<str> {
        Arc::from("req-1")
    }

    #[test]
    fn a_suggestion_in_an_error_array_is_removed() {
        let payload =
            r#"[{"message":"Unknown field \"nmae\" on type \"User\". Did you mean \"name\"?"}]"#;
        let hardened = harden(&settings(), ResultKind::Error, payload, &id());
        assert!(!hardened.contains("Did you mean"), "{hardened}");
        let parsed: serde_json::Value = serde_json::from_str(&hardened).unwrap();
        assert!(parsed.is_array(), "{hardened}");
    }

    #[test]
    fn a_suggestion_in_a_next_payload_is_removed_and_data_kept() {
        let payload = r#"{"data":{"a":1},"errors":[{"message":"x. Did you mean \"b\"?"}]}"#;
        let hardened = harden(&settings(), ResultKind::Next, payload, &id());
        assert!(!hardened.contains("Did you mean"), "{hardened}");
        assert!(hardened.contains(r#""a":1"#), "{hardened}");
    }

    #[test]
    fn a_plain_result_is_passed_as_it_came() {
        let payload = r#"{"data":{"countdown":3}}"#;
        let hardened = harden(&settings(), ResultKind::Next, payload, &id());
        assert!(matches!(hardened, Cow::Borrowed(_)));
    }

    #[test]
    fn a_payload_that_cannot_be_read_becomes_the_generic_error() {
        let hardened = harden(&settings(), ResultKind::Error, r#"[{"message":"#, &id());
        assert!(hardened.contains("Internal server error"), "{hardened}");
        let deep = format!(r#"{{"errors":[{}1{}]}}"#, "[".repeat(200), "]".repeat(200));
        let hardened = harden(&settings(), ResultKind::Next, &deep, &id());
        assert!(hardened.contains("Internal server error"), "{hardened}");
    }
}
