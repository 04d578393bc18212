//! Budgets and probe cool-downs on Redis: the same answers as the in-process `ratelimit::Limiter`
//! and probe defence, shared by every replica.
//!
//! The script (`gcra.lua`) is governor's GCRA: a bucket of `burst` points refilled one point per
//! `interval` (`period / amount`), `n` points consumed all or nothing. This side answers what
//! needs no Redis (zero points, more points than the bucket, a remembered refusal) and turns the
//! script's microseconds into a [`Decision`].

use std::time::{Duration, Instant};

use crate::ratelimit::{ClientKey, Decision, Quota};
use crate::rules::Rate;

use super::connection::{GCRA, RedisState, SETTLE};
use super::refused::{Refusal, Slot};
use super::{Budget, StateError};

/// The budgets to enforce, as configured for the in-process limiter and probe defence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BudgetRules {
    /// `RATE_LIMIT`: requests per client; `None` disables it.
    pub requests: Option<Rate>,
    /// `COST_BUDGET`: cost points per client; `None` disables it.
    pub cost: Option<Rate>,
    /// `PROBE_LIMIT` / `PROBE_COOLDOWN`; `None` disables the probe defence.
    pub probes: Option<ProbeRule>,
}

/// Schema-probing defence: past `limit` schema-validation refusals, the client is refused outright
/// for `cooldown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeRule {
    /// Refusals allowed (the in-process defence uses `PROBE_LIMIT` per minute).
    pub limit: Rate,
    /// `PROBE_COOLDOWN`.
    pub cooldown: Duration,
}

/// The answer to a request check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestCheck {
    /// The client cools down after probing: refuse with `Retry-After` = `retry_after` (no
    /// `RateLimit-*` headers; nothing was consumed).
    CoolingDown { retry_after: Duration },
    /// The request budget's decision (`Unlimited` without `RATE_LIMIT`).
    Budget(Decision),
}

/// What recording one schema-validation refusal did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// No probe defence is configured: nothing recorded.
    NotConfigured,
    /// Counted; the client is still under the limit.
    Counted,
    /// Over the limit: every replica now refuses the client for `cooldown`.
    CoolDownStarted { cooldown: Duration },
}

/// A rate as governor's GCRA sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bucket {
    /// One point refills every `interval` (governor's `replenish_1_per`, at least 1 ns).
    interval: Duration,
    /// Points the bucket holds.
    burst: u32,
}

impl Bucket {
    fn of(rate: &Rate) -> Self {
        Self {
            interval: rate.interval().max(Duration::from_nanos(1)),
            burst: rate.burst().get(),
        }
    }

    /// The interval in microseconds, exactly (to the nanosecond), as the script reads it.
    fn interval_micros(&self) -> String {
        let nanos = self.interval.as_nanos();
        format!("{}.{:03}", nanos / 1000, nanos % 1000)
    }

    /// The points a refusal missed: the wait is one interval per missing point (as the
    /// in-process limiter counts them).
    fn missing(&self, retry_after: Duration) -> u64 {
        u64::try_from(
            retry_after
                .as_nanos()
                .div_ceil(self.interval.as_nanos().max(1)),
        )
        .unwrap_or(u64::MAX)
    }

    /// How long an empty bucket takes to fill.
    fn refill(&self) -> Duration {
        self.interval.saturating_mul(self.burst)
    }
}

/// What the script decided, in durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// The script's exact time to full is not kept: like the in-process limiter, `reset` is
    /// `interval × (limit − remaining)`, so the headers do not depend on `STATE`.
    Allowed {
        remaining: u32,
    },
    Limited {
        retry_after: Duration,
        reset: Duration,
    },
    CoolingDown {
        retry_after: Duration,
    },
}

/// Whether the script reads the cool-down, and the cool-down it starts on a refusal.
#[derive(Debug, Clone, Copy)]
struct CoolDownUse {
    read: bool,
    start: Option<Duration>,
}

const NO_COOL_DOWN: CoolDownUse = CoolDownUse {
    read: false,
    start: None,
};

impl RedisState {
    /// Counts one request of `client`; refuses a client cooling down after probing. One round
    /// trip reads both; none for a client this replica already knows to be refused.
    pub async fn check_request(&self, client: &ClientKey) -> Result<RequestCheck, StateError> {
        self.check_request_at(client, self.rules.requests).await
    }

    /// [`Self::check_request`] at another request rate (a tier's; `None`: no request rate).
    pub async fn check_request_at(
        &self,
        client: &ClientKey,
        requests: Option<Rate>,
    ) -> Result<RequestCheck, StateError> {
        let probing = self.rules.probes.is_some();
        let now = Instant::now();
        let cooling = probing
            .then(|| self.refused.get(client, Slot::CoolDown, 0, now))
            .flatten();
        if let Some(refusal) = cooling {
            self.count_answered_locally();
            return Ok(RequestCheck::CoolingDown {
                retry_after: refusal.until.saturating_duration_since(now),
            });
        }
        let Some(rate) = requests else {
            if !probing {
                return Ok(RequestCheck::Budget(Decision::Unlimited));
            }
            let cooling_ms: i64 = self
                .query(redis::cmd("PTTL").arg(self.keys.cooldown(client)))
                .await?;
            return Ok(match u64::try_from(cooling_ms) {
                Ok(ms) if ms > 0 => self.cooling_down(client, Duration::from_millis(ms)),
                _ => RequestCheck::Budget(Decision::Unlimited),
            });
        };
        let cool_down = CoolDownUse {
            read: probing,
            start: None,
        };
        match self
            .gcra(client, Budget::Requests, &rate, 1, cool_down)
            .await?
        {
            Ok(decision) => Ok(RequestCheck::Budget(decision)),
            Err(retry_after) => Ok(self.cooling_down(client, retry_after)),
        }
    }

    /// Consumes `points` of `client`'s cost budget, as `Limiter::check_cost` does (all or
    /// nothing; zero points are allowed without looking; more than the bucket holds are limited
    /// for a full refill).
    pub async fn check_cost(
        &self,
        client: &ClientKey,
        points: u64,
    ) -> Result<Decision, StateError> {
        self.check_cost_at(client, self.rules.cost, points).await
    }

    /// [`Self::check_cost`] at another cost budget (a tier's; `None`: no cost budget).
    pub async fn check_cost_at(
        &self,
        client: &ClientKey,
        cost: Option<Rate>,
        points: u64,
    ) -> Result<Decision, StateError> {
        match cost {
            Some(rate) => self.check(client, Budget::Cost, &rate, points).await,
            None => Ok(Decision::Unlimited),
        }
    }

    /// Settles `client`'s cost budget with the measured cost of an answer whose estimate was
    /// spent up front (`COST_BUDGET_MODE=actual`): the difference is charged or refunded, with
    /// the in-process limiter's arithmetic, in one round trip.
    pub async fn settle_cost(
        &self,
        client: &ClientKey,
        estimated: u64,
        actual: u64,
    ) -> Result<(), StateError> {
        self.settle_cost_at(client, self.rules.cost, estimated, actual)
            .await
    }

    /// [`Self::settle_cost`] at another cost budget (a tier's).
    pub async fn settle_cost_at(
        &self,
        client: &ClientKey,
        cost: Option<Rate>,
        estimated: u64,
        actual: u64,
    ) -> Result<(), StateError> {
        let Some(rate) = cost else {
            return Ok(());
        };
        // As the checks count them: above `u32::MAX` points is `u32::MAX` (a charge that large
        // would otherwise ask Redis for an expiry it refuses, and the settling would be lost).
        let cap = |points: u64| i128::from(points.min(u64::from(u32::MAX)));
        let points = cap(actual) - cap(estimated);
        if points == 0 {
            return Ok(());
        }
        let interval_us = Bucket::of(&rate).interval.as_nanos() as f64 / 1000.0;
        let shift = format!("{:.3}", points as f64 * interval_us);
        let key = self.keys.budget(client, Budget::Cost);
        let _changed: i64 = self.run_script(SETTLE, &[key.as_str()], &[shift]).await?;
        // A refund may end a refusal this replica remembers; a charge is found by the next check.
        self.refused.forget(client, Slot::Budget(Budget::Cost));
        Ok(())
    }

    /// Records one schema-validation refusal of `client`; past the probe limit, starts the
    /// cool-down on Redis (in the same script), so every replica refuses the client.
    pub async fn record_probe(&self, client: &ClientKey) -> Result<ProbeOutcome, StateError> {
        let Some(rule) = self.rules.probes else {
            return Ok(ProbeOutcome::NotConfigured);
        };
        let cool_down = CoolDownUse {
            read: false,
            start: Some(rule.cooldown),
        };
        match self
            .gcra(client, Budget::Probes, &rule.limit, 1, cool_down)
            .await?
        {
            Ok(Decision::Limited { .. }) => {
                self.cooling_down(client, rule.cooldown);
                Ok(ProbeOutcome::CoolDownStarted {
                    cooldown: rule.cooldown,
                })
            }
            _ => Ok(ProbeOutcome::Counted),
        }
    }

    /// Consumes `points` (above `u32::MAX` counts as `u32::MAX`) of `client`'s `budget` at
    /// `rate`: the primitive behind the checks above, with the in-process limiter's answers.
    pub async fn check(
        &self,
        client: &ClientKey,
        budget: Budget,
        rate: &Rate,
        points: u64,
    ) -> Result<Decision, StateError> {
        // Without reading the cool-down, the script never answers "cooling down".
        let decision = self
            .gcra(client, budget, rate, points, NO_COOL_DOWN)
            .await?
            .unwrap_or_else(|retry_after| Decision::Limited {
                retry_after,
                quota: Quota {
                    limit: Bucket::of(rate).burst,
                    remaining: 0,
                    reset: retry_after,
                },
                over_by: Bucket::of(rate).missing(retry_after),
            });
        Ok(decision)
    }

    /// One GCRA check: answered here when possible, else by the script. `Err` carries a
    /// cool-down's remaining time (only when `cool_down.read`).
    async fn gcra(
        &self,
        client: &ClientKey,
        budget: Budget,
        rate: &Rate,
        points: u64,
        cool_down: CoolDownUse,
    ) -> Result<Result<Decision, Duration>, StateError> {
        let bucket = Bucket::of(rate);
        let limit = bucket.burst;
        let points = u32::try_from(points).unwrap_or(u32::MAX);
        if points == 0 {
            self.count_answered_locally();
            return Ok(Ok(Decision::Allowed(Quota {
                limit,
                remaining: limit,
                reset: Duration::ZERO,
            })));
        }
        if points > limit {
            // Can never pass; governor answers the time a full refill takes.
            self.count_answered_locally();
            let refill = bucket.refill();
            return Ok(Ok(Decision::Limited {
                retry_after: refill,
                quota: Quota {
                    limit,
                    remaining: 0,
                    reset: refill,
                },
                over_by: u64::from(points - limit),
            }));
        }
        let slot = Slot::Budget(budget);
        let now = Instant::now();
        // A check that starts a cool-down on refusal must reach Redis, which keeps the cool-down.
        let remembered = cool_down.start.is_none();
        let refused = remembered
            .then(|| self.refused.get(client, slot, points, now))
            .flatten();
        if let Some(refusal) = refused {
            self.count_answered_locally();
            let retry_after = refusal.retry_after(points, now);
            return Ok(Ok(Decision::Limited {
                retry_after,
                quota: Quota {
                    limit,
                    remaining: 0,
                    reset: refusal.full_at.saturating_duration_since(now),
                },
                over_by: bucket.missing(retry_after),
            }));
        }
        let keys = [self.keys.budget(client, budget), self.keys.cooldown(client)];
        let args = [
            bucket.interval_micros(),
            limit.to_string(),
            points.to_string(),
            if cool_down.read { "1" } else { "0" }.to_owned(),
            cool_down
                .start
                .map_or(0, |cooldown| cooldown.as_millis().max(1))
                .to_string(),
        ];
        let [bucket_key, cooldown_key] = &keys;
        let reply: Vec<i64> = self
            .run_script(GCRA, &[bucket_key.as_str(), cooldown_key.as_str()], &args)
            .await?;
        let answer = match verdict(&reply)? {
            Verdict::Allowed { remaining } => Ok(Decision::Allowed(Quota {
                limit,
                remaining,
                reset: bucket
                    .interval
                    .saturating_mul(limit.saturating_sub(remaining)),
            })),
            Verdict::Limited { retry_after, reset } => {
                if remembered {
                    self.refused.insert(
                        client,
                        slot,
                        Refusal {
                            until: now + retry_after,
                            full_at: now + reset,
                            points,
                            interval: bucket.interval,
                        },
                    );
                }
                Ok(Decision::Limited {
                    retry_after,
                    quota: Quota {
                        limit,
                        remaining: 0,
                        reset,
                    },
                    over_by: bucket.missing(retry_after),
                })
            }
            Verdict::CoolingDown { retry_after } => Err(retry_after),
        };
        Ok(answer)
    }

    /// Remembers a cool-down of `client` for `retry_after` from now and answers it.
    fn cooling_down(&self, client: &ClientKey, retry_after: Duration) -> RequestCheck {
        let until = Instant::now() + retry_after;
        self.refused.insert(
            client,
            Slot::CoolDown,
            Refusal {
                until,
                full_at: until,
                points: 0,
                interval: Duration::ZERO,
            },
        );
        RequestCheck::CoolingDown { retry_after }
    }
}

/// Reads the script's `{verdict, remaining, retry_after_us, reset_us}`.
fn verdict(reply: &[i64]) -> Result<Verdict, StateError> {
    // For an allowed check `reset_us` is the exact time to full; see `Verdict::Allowed`.
    let &[verdict, remaining, retry_after_us, reset_us] = reply else {
        return Err(StateError::Reply(
            "the GCRA script did not return 4 integers",
        ));
    };
    let micros = |value: i64| Duration::from_micros(u64::try_from(value).unwrap_or(0));
    match verdict {
        1 => Ok(Verdict::Allowed {
            remaining: u32::try_from(remaining)
                .map_err(|_| StateError::Reply("the GCRA script returned a negative remainder"))?,
        }),
        0 => Ok(Verdict::Limited {
            retry_after: micros(retry_after_us),
            reset: micros(reset_us),
        }),
        2 => Ok(Verdict::CoolingDown {
            retry_after: micros(retry_after_us),
        }),
        _ => Err(StateError::Reply(
            "the GCRA script returned an unknown verdict",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(text: &str) -> Rate {
        crate::rules::parse_rate(text)
            .expect("valid rate")
            .expect("a rate, not off")
    }

    #[test]
    fn a_bucket_has_governors_interval_and_burst() {
        assert_eq!(
            Bucket::of(&rate("3/s")),
            Bucket {
                interval: Duration::from_nanos(333_333_333),
                burst: 3
            }
        );
        assert_eq!(Bucket::of(&rate("3/s")).interval_micros(), "333333.333");
        assert_eq!(Bucket::of(&rate("100/s:burst=200")).burst, 200);
        assert_eq!(Bucket::of(&rate("1000/min")).interval_micros(), "60000.000");
        assert_eq!(
            Bucket::of(&rate("1000/min")).refill(),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn reads_the_scripts_four_integers() {
        assert_eq!(
            verdict(&[1, 4, 0, 200_000]).ok(),
            Some(Verdict::Allowed { remaining: 4 })
        );
        assert_eq!(
            verdict(&[0, 0, 1_500, 3_000_000]).ok(),
            Some(Verdict::Limited {
                retry_after: Duration::from_micros(1_500),
                reset: Duration::from_secs(3)
            })
        );
        assert_eq!(
            verdict(&[2, 0, 60_000_000, 60_000_000]).ok(),
            Some(Verdict::CoolingDown {
                retry_after: Duration::from_secs(60)
            })
        );
    }

    #[test]
    fn an_unexpected_script_reply_is_a_typed_error_not_a_panic() {
        for reply in [
            &[][..],
            &[1, 2, 3],
            &[1, 2, 3, 4, 5],
            &[7, 0, 0, 0],
            &[1, -1, 0, 0],
        ] {
            assert!(
                matches!(verdict(reply), Err(StateError::Reply(_))),
                "reply={reply:?}"
            );
        }
    }
}
