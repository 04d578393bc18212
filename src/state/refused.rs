//! This replica's memory of "refused until t": clients already over a budget, or cooling down,
//! are answered without a Redis round trip until that time.
//!
//! # Threats
//! A client hammering the firewall after its first refusal would otherwise turn every request
//! into a Redis call (Envoy's rate-limit service keeps the same kind of local over-limit cache).
//! The cache is bounded by entries and each entry expires at its own `until`, so a flood of
//! distinct refused clients costs at most the cap.
//!
//! # Why the answer stays right
//! A bucket only refills at its fixed rate, and other replicas can only drain it further, so a
//! client refused `n` points until `t` is refused any `n' >= n` points before
//! `t + (n' - n) × interval`, which is also the in-process limiter's retry-after for `n'`. Fewer
//! points may fit earlier, so those still go to Redis.

use std::time::{Duration, Instant};

use moka::Expiry;
use moka::sync::Cache;

use crate::ratelimit::ClientKey;

use super::Budget;

/// Which refusal: a budget's, or a probe cool-down's (which refuses every request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Slot {
    Budget(Budget),
    CoolDown,
}

/// One remembered refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Refusal {
    /// Refused until then.
    pub(super) until: Instant,
    /// The bucket is full again then (`RateLimit-Reset`).
    pub(super) full_at: Instant,
    /// The fewest points known to be refused until `until` (0 for a cool-down: everything).
    pub(super) points: u32,
    /// The bucket's refill interval: each point more waits one more.
    pub(super) interval: Duration,
}

impl Refusal {
    /// How long `points` (at least [`Refusal::points`]) still wait at `now`.
    pub(super) fn retry_after(&self, points: u32, now: Instant) -> Duration {
        let more = points.saturating_sub(self.points);
        self.until
            .saturating_duration_since(now)
            .saturating_add(self.interval.saturating_mul(more))
    }
}

/// Refusals by client and slot, each kept until its own `until`.
pub(super) struct RefusedCache {
    cache: Cache<(ClientKey, Slot), Refusal>,
}

impl std::fmt::Debug for RefusedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefusedCache")
            .field("entries", &self.cache.entry_count())
            .finish()
    }
}

/// Expires each entry at its `until`.
struct UntilRefusalEnds;

impl Expiry<(ClientKey, Slot), Refusal> for UntilRefusalEnds {
    fn expire_after_create(
        &self,
        _key: &(ClientKey, Slot),
        refusal: &Refusal,
        created_at: Instant,
    ) -> Option<Duration> {
        Some(refusal.until.saturating_duration_since(created_at))
    }

    fn expire_after_update(
        &self,
        _key: &(ClientKey, Slot),
        refusal: &Refusal,
        updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(refusal.until.saturating_duration_since(updated_at))
    }
}

impl RefusedCache {
    /// A cache of at most `capacity` refusals.
    pub(super) fn new(capacity: u64) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(capacity)
                .expire_after(UntilRefusalEnds)
                .build(),
        }
    }

    /// The refusal that still applies to `points` points of `client` at `now`, if any.
    pub(super) fn get(
        &self,
        client: &ClientKey,
        slot: Slot,
        points: u32,
        now: Instant,
    ) -> Option<Refusal> {
        self.cache
            .get(&(*client, slot))
            .filter(|refusal| now < refusal.until && points >= refusal.points)
    }

    /// Remembers a refusal (replacing the slot's previous one); one already over is not kept.
    pub(super) fn insert(&self, client: &ClientKey, slot: Slot, refusal: Refusal) {
        if refusal.until > Instant::now() {
            self.cache.insert((*client, slot), refusal);
        }
    }

    /// Drops `client`'s refusal in `slot`, if any (its bucket changed on Redis).
    pub(super) fn forget(&self, client: &ClientKey, slot: Slot) {
        self.cache.invalidate(&(*client, slot));
    }

    /// Refusals held, after applying pending evictions and expiries.
    pub(super) fn len(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(until: Instant, points: u32) -> Refusal {
        Refusal {
            until,
            full_at: until,
            points,
            interval: Duration::from_secs(1),
        }
    }

    #[test]
    fn a_refusal_answers_as_many_points_or_more_until_it_ends() {
        let cache = RefusedCache::new(100);
        let alice = ClientKey::from_api_key("alice");
        let now = Instant::now();
        let until = now + Duration::from_secs(60);
        cache.insert(&alice, Slot::Budget(Budget::Cost), refusal(until, 5));
        let slot = Slot::Budget(Budget::Cost);
        assert!(cache.get(&alice, slot, 5, now).is_some());
        assert!(cache.get(&alice, slot, 9, now).is_some());
        assert_eq!(
            cache.get(&alice, slot, 4, now),
            None,
            "fewer points may fit"
        );
        assert_eq!(cache.get(&alice, slot, 5, until), None, "over at until");
        assert_eq!(
            cache.get(&alice, Slot::Budget(Budget::Requests), 5, now),
            None
        );
        assert_eq!(
            cache.get(&ClientKey::from_api_key("bob"), slot, 5, now),
            None
        );
    }

    #[test]
    fn more_points_than_refused_wait_one_interval_more_each() {
        let now = Instant::now();
        let refused = refusal(now + Duration::from_secs(30), 4);
        assert_eq!(refused.retry_after(4, now), Duration::from_secs(30));
        assert_eq!(refused.retry_after(7, now), Duration::from_secs(33));
        assert_eq!(
            refused.retry_after(4, now + Duration::from_secs(40)),
            Duration::ZERO
        );
    }

    #[test]
    fn a_refusal_already_over_is_not_kept() {
        let cache = RefusedCache::new(100);
        let alice = ClientKey::from_api_key("alice");
        cache.insert(&alice, Slot::CoolDown, refusal(Instant::now(), 0));
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn the_cache_holds_no_more_refusals_than_its_capacity() {
        let cache = RefusedCache::new(1_000);
        let until = Instant::now() + Duration::from_secs(600);
        for i in 0..20_000 {
            let client = ClientKey::from_api_key(&format!("client-{i}"));
            cache.insert(&client, Slot::Budget(Budget::Requests), refusal(until, 1));
        }
        let held = cache.len();
        assert!(held > 0 && held <= 1_000, "held {held}");
    }
}
