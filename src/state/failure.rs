//! `REDIS_FAILURE_MODE`: what admission does when shared state cannot be reached in time.
//!
//! # Why
//! The choice is a trade-off between availability and the limits' guarantee, and it differs by
//! what was being asked:
//! - `local` (default): use this replica's in-process state, warn and count. The API stays up and
//!   every client is still limited, only per replica again (N replicas: up to N × the limit) for
//!   as long as Redis is away. Neither an outage of the API nor an open door.
//! - `open`: admit. Nothing is refused because Redis is away, and nothing is limited either: an
//!   attacker who can slow Redis down switches the limits off (Envoy's default).
//! - `closed`: refuse with 503. The limits hold exactly, and an outage of Redis is an outage of
//!   the API (Cosmo Router's behaviour).
//!
//! APQ registrations are a cache, not a limit: a registration that cannot be stored or looked up
//! never refuses a request (the client sends the full text again, and that text is inspected like
//! any other), so `closed` does not apply to them.

/// `REDIS_FAILURE_MODE=local|open|closed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailureMode {
    /// Fall back to the in-process state, with a warning and a metric.
    #[default]
    Local,
    /// Admit as if the state allowed it.
    Open,
    /// Answer 503 Service Unavailable.
    Closed,
}

/// What was being asked of the shared state when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// A request or cost budget check, including the probe cool-down read with it.
    Budget,
    /// Counting a schema-validation refusal towards a cool-down (the request is refused already).
    Probe,
    /// Looking up an APQ hash.
    ApqLookup,
    /// Storing a verified APQ registration.
    ApqRegistration,
    /// Settling a cost budget with the measured cost (the answer is served already).
    Settle,
}

impl Operation {
    /// The `operation` label of the Redis metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Budget => "budget",
            Operation::Probe => "probe",
            Operation::ApqLookup => "apq_lookup",
            Operation::ApqRegistration => "apq_registration",
            Operation::Settle => "settle",
        }
    }
}

/// What admission does with the request whose state call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// Ask the in-process store instead; warn and count the fallback.
    UseLocal,
    /// Carry on without the shared state: admit the request, count no probe, treat an APQ hash as
    /// not registered, forward a registration without storing it.
    Proceed,
    /// Refuse the request with 503 Service Unavailable.
    Refuse,
}

impl FailureMode {
    /// The fallback for a failed `operation`; see the module documentation for the reasons.
    pub fn fallback(self, operation: Operation) -> Fallback {
        match (self, operation) {
            (FailureMode::Local, _) => Fallback::UseLocal,
            (FailureMode::Open, _) => Fallback::Proceed,
            (FailureMode::Closed, Operation::Budget) => Fallback::Refuse,
            // The request being counted is refused already; the next one's budget check refuses.
            (FailureMode::Closed, Operation::Probe) => Fallback::Proceed,
            (FailureMode::Closed, Operation::ApqLookup | Operation::ApqRegistration) => {
                Fallback::Proceed
            }
            // The answer is on its way; the next check refuses if Redis is still away.
            (FailureMode::Closed, Operation::Settle) => Fallback::Proceed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_and_operation_has_its_documented_fallback() {
        use Fallback::{Proceed, Refuse, UseLocal};
        use Operation::{ApqLookup, ApqRegistration, Budget, Probe, Settle};
        let table = [
            (FailureMode::Local, Budget, UseLocal),
            (FailureMode::Local, Probe, UseLocal),
            (FailureMode::Local, ApqLookup, UseLocal),
            (FailureMode::Local, ApqRegistration, UseLocal),
            (FailureMode::Local, Settle, UseLocal),
            (FailureMode::Open, Budget, Proceed),
            (FailureMode::Open, Probe, Proceed),
            (FailureMode::Open, ApqLookup, Proceed),
            (FailureMode::Open, ApqRegistration, Proceed),
            (FailureMode::Open, Settle, Proceed),
            (FailureMode::Closed, Budget, Refuse),
            (FailureMode::Closed, Probe, Proceed),
            (FailureMode::Closed, ApqLookup, Proceed),
            (FailureMode::Closed, ApqRegistration, Proceed),
            (FailureMode::Closed, Settle, Proceed),
        ];
        for (mode, operation, expected) in table {
            assert_eq!(
                mode.fallback(operation),
                expected,
                "mode={mode:?} operation={operation:?}"
            );
        }
    }

    #[test]
    fn the_default_mode_falls_back_to_local_state() {
        assert_eq!(FailureMode::default(), FailureMode::Local);
    }
}
