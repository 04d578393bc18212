//! Per-client budgets: a request rate and a cost-point rate, each a governor GCRA keyed by
//! [`ClientKey`], with a hard cap on the number of clients tracked.
//!
//! # Threats
//! One client must not exhaust the backend, by request count or by a few expensive operations
//! (cost points are consumed with `check_key_n`, like GitHub's and Shopify's point budgets). And the
//! limiter itself must not become the target: a flood of distinct identities (random API keys,
//! IPv6 rotation) would grow governor's keyed state without bound.
//!
//! # Bounded memory
//! - IPv6 clients are keyed by their /64 prefix ([`ClientKey::from_ip`]): one host usually owns a
//!   whole /64, so rotating inside it yields one key, not 2^64.
//! - The keyed state lives in a store that tracks at most `max_tracked_keys` clients per budget
//!   *and per class*: verified clients (a checked token or API key, or a key a trusted gateway set)
//!   and anonymous ones (known by address) have tables of their own, so anonymous traffic — which
//!   anyone can produce from many addresses — can never take a verified client's place.
//! - Once a class's table is full, a *new* client is checked against one of [`OVERFLOW_SLOTS`]
//!   shared buckets of that class, chosen by its *address* ([`BucketKey`]), never by the bytes of a
//!   key: a flood of invented keys from one address drains one shared bucket, not all of them
//!   (with the slot picked by the key, a flood kept all 256 empty and 6 of 8 fresh clients got
//!   429). Clients already tracked keep their own bucket, so a flood does not disturb them; the
//!   flood itself gets at most `OVERFLOW_SLOTS` × the per-client rate in total instead of a fresh
//!   budget per invented identity. That fails safe: it never allows more than the cap implies,
//!   and it costs fixed memory (the caps plus 2 × 256 cells).
//! - [`Limiter::shrink`] (called periodically by the server) drops clients whose bucket is full
//!   again (governor's `retain_recent`) and releases the freed capacity, so the cap only bites
//!   during a flood.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::{StateInformationMiddleware, StateSnapshot};
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::{NotUntil, RateLimiter};
use sha2::{Digest, Sha256};

/// Shared buckets for clients that arrive while the store is full (one per value of a key byte).
pub const OVERFLOW_SLOTS: usize = 256;

/// A client identity: 16 bytes of SHA-256, so that raw API keys and addresses are never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey([u8; 16]);

impl ClientKey {
    /// The key of a client named by an API key (its name, or the value a gateway set).
    pub fn from_api_key(api_key: &str) -> Self {
        Self::from_subject("api-key", api_key)
    }

    /// The key of a verified subject; `scheme` keeps names of different sources apart (a token's
    /// `sub` of "alice" is not the API key named "alice").
    pub fn from_subject(scheme: &str, subject: &str) -> Self {
        Self::digest(scheme.as_bytes(), subject.as_bytes())
    }

    /// The key of a client known by address: IPv4 as is, IPv6 by its /64 prefix (IPv4-mapped IPv6
    /// counts as IPv4).
    pub fn from_ip(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::digest(b"ipv4", &v4.octets()),
            IpAddr::V6(v6) => {
                let prefix = v6.to_bits() >> 64;
                Self::digest(b"ipv6/64", &prefix.to_be_bytes())
            }
        }
    }

    /// 12 hex characters, for logs.
    pub fn short_hex(&self) -> String {
        let [a, b, c, d, e, f, ..] = self.0;
        hex::encode([a, b, c, d, e, f])
    }

    fn digest(domain: &[u8], identity: &[u8]) -> Self {
        let hash = Sha256::new()
            .chain_update(domain)
            .chain_update([0])
            .chain_update(identity)
            .finalize();
        let mut key = [0; 16];
        for (dst, src) in key.iter_mut().zip(hash.iter()) {
            *dst = *src;
        }
        Self(key)
    }

    fn first_byte(&self) -> u8 {
        let [first, ..] = self.0;
        first
    }
}

/// Whether a client proved who it is: the two classes have separate tables and overflow buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Verified,
    Anonymous,
}

/// What a client's buckets are found by: who it is, its class, and the shared bucket its
/// *address* picks should its class's table be full.
///
/// Equality and hashing are the client's alone: a verified client that moves between addresses
/// keeps one bucket; the address only matters when it has none of its own.
#[derive(Debug, Clone, Copy)]
pub struct BucketKey {
    client: ClientKey,
    class: Class,
    overflow_slot: u8,
}

impl BucketKey {
    /// A client known only by its address.
    pub fn anonymous(ip: IpAddr) -> Self {
        let client = ClientKey::from_ip(ip);
        BucketKey {
            client,
            class: Class::Anonymous,
            overflow_slot: client.first_byte(),
        }
    }

    /// A verified client, calling from `ip`.
    pub fn verified(client: ClientKey, ip: IpAddr) -> Self {
        BucketKey {
            client,
            class: Class::Verified,
            overflow_slot: ClientKey::from_ip(ip).first_byte(),
        }
    }

    pub fn client(&self) -> &ClientKey {
        &self.client
    }
}

impl PartialEq for BucketKey {
    fn eq(&self, other: &Self) -> bool {
        self.client == other.client
    }
}

impl Eq for BucketKey {}

impl std::hash::Hash for BucketKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.client.hash(state);
    }
}

/// RateLimit-* header values: the bucket size, what is left, and when it is full again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// `RateLimit-Limit`: the bucket size.
    pub limit: u32,
    /// `RateLimit-Remaining`: units still available now.
    pub remaining: u32,
    /// `RateLimit-Reset`: time until the bucket is full again.
    pub reset: Duration,
}

/// The answer to one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// No budget of this kind is configured: no headers to send.
    Unlimited,
    /// Within budget.
    Allowed(Quota),
    /// Over budget: answer 429 with `Retry-After` = `retry_after` rounded up to seconds.
    /// `over_by`: how many units the check asked for beyond what the bucket held.
    Limited {
        retry_after: Duration,
        quota: Quota,
        over_by: u64,
    },
}

/// A rate as governor counts it.
pub fn quota(rate: &crate::rules::Rate) -> governor::Quota {
    let per_period = match rate.period.as_secs() {
        1 => governor::Quota::per_second,
        60 => governor::Quota::per_minute,
        _ => governor::Quota::per_hour,
    };
    per_period(rate.amount).allow_burst(rate.burst())
}

type Keyed<C> = RateLimiter<BucketKey, SharedStore, C, StateInformationMiddleware>;

/// One budget: governor's limiter and the quota it was built with (governor does not give it back
/// without a check).
#[derive(Debug)]
struct Budget<C: Clock> {
    limiter: Keyed<C>,
    quota: governor::Quota,
    /// The limiter's own state, for settling a cost after the fact (governor only consumes).
    store: Arc<CappedStore>,
}

/// The request and cost budgets of every client.
#[derive(Debug)]
pub struct Limiter<C: Clock = DefaultClock> {
    requests: Option<Budget<C>>,
    cost: Option<Budget<C>>,
}

impl Limiter {
    /// Budgets on the real clock; `None` disables that budget. `max_tracked_keys` applies to each.
    pub fn new(
        requests: Option<governor::Quota>,
        cost: Option<governor::Quota>,
        max_tracked_keys: usize,
    ) -> Self {
        Self::with_clock(requests, cost, max_tracked_keys, DefaultClock::default())
    }
}

impl<C: Clock + Clone> Limiter<C> {
    /// Like [`Limiter::new`] on a given clock (tests use governor's `FakeRelativeClock`).
    pub fn with_clock(
        requests: Option<governor::Quota>,
        cost: Option<governor::Quota>,
        max_tracked_keys: usize,
        clock: C,
    ) -> Self {
        let build = |quota: Option<governor::Quota>| {
            quota.map(|quota| {
                let store = Arc::new(CappedStore::new(max_tracked_keys));
                Budget {
                    limiter: RateLimiter::new(quota, SharedStore(store.clone()), clock.clone()),
                    quota,
                    store,
                }
            })
        };
        Self {
            requests: build(requests),
            cost: build(cost),
        }
    }

    /// Counts one request of `key`.
    pub fn check_request(&self, key: &BucketKey) -> Decision {
        let Some(budget) = &self.requests else {
            return Decision::Unlimited;
        };
        decide(&budget.limiter, budget.limiter.check_key(key), 1)
    }

    /// Consumes `points` of `key`'s cost budget (all or nothing; above `u32::MAX` counts as
    /// `u32::MAX`). Zero points consume nothing and are allowed without looking at the bucket
    /// (governor cannot be asked without consuming), so their `remaining` is just the bucket size:
    /// send no cost headers for them. More points than the bucket holds can never pass; they are
    /// limited with the time a full refill takes, and the operation's static cost limit is what
    /// should refuse them first.
    pub fn check_cost(&self, key: &BucketKey, points: u64) -> Decision {
        let Some(budget) = &self.cost else {
            return Decision::Unlimited;
        };
        let limit = budget.quota.burst_size().get();
        let points = u32::try_from(points).unwrap_or(u32::MAX);
        let Some(n) = NonZeroU32::new(points) else {
            return Decision::Allowed(Quota {
                limit,
                remaining: limit,
                reset: Duration::ZERO,
            });
        };
        match budget.limiter.check_key_n(key, n) {
            Ok(outcome) => decide(&budget.limiter, outcome, points),
            Err(_insufficient) => {
                let refill = budget.quota.burst_size_replenished_in();
                Decision::Limited {
                    retry_after: refill,
                    quota: Quota {
                        limit,
                        remaining: 0,
                        reset: refill,
                    },
                    over_by: u64::from(points - limit),
                }
            }
        }
    }

    /// Settles a cost spent up front (`estimated`) with what the answer really cost (`actual`):
    /// the difference is given back, or charged (possibly into debt, which the next checks see).
    pub fn settle_cost(&self, key: &BucketKey, estimated: u64, actual: u64) {
        let Some(budget) = &self.cost else {
            return;
        };
        let interval =
            u64::try_from(budget.quota.replenish_interval().as_nanos()).unwrap_or(u64::MAX);
        let refund = estimated > actual;
        let shift = estimated.abs_diff(actual).saturating_mul(interval);
        if shift == 0 {
            return;
        }
        let _ = budget.store.measure_and_replace(
            key,
            |state| -> Result<((), Nanos), std::convert::Infallible> {
                // A client not seen yet has a full bucket: nothing to give back to it.
                let Some(tat) = state else {
                    return Ok(((), Nanos::new(if refund { 0 } else { shift })));
                };
                let tat = tat.as_u64();
                // GCRA: the theoretical arrival time moves back (a refund) or forward (a charge);
                // one in the past means a full bucket, which the next check clamps to now.
                let moved = if refund {
                    tat.saturating_sub(shift)
                } else {
                    tat.saturating_add(shift)
                };
                Ok(((), Nanos::new(moved)))
            },
        );
    }

    /// Clients currently tracked, both budgets together.
    pub fn tracked_keys(&self) -> usize {
        [&self.requests, &self.cost]
            .into_iter()
            .flatten()
            .map(|budget| budget.limiter.len())
            .sum()
    }

    /// Forgets clients whose buckets are full again and releases the memory.
    pub fn shrink(&self) {
        for budget in [&self.requests, &self.cost].into_iter().flatten() {
            budget.limiter.retain_recent();
            budget.limiter.shrink_to_fit();
        }
    }
}

fn decide<C: Clock>(
    limiter: &Keyed<C>,
    outcome: Result<StateSnapshot, NotUntil<C::Instant>>,
    needed: u32,
) -> Decision {
    match outcome {
        Ok(snapshot) => {
            let quota = snapshot.quota();
            let limit = quota.burst_size().get();
            let remaining = snapshot.remaining_burst_capacity();
            Decision::Allowed(Quota {
                limit,
                remaining,
                reset: quota
                    .replenish_interval()
                    .saturating_mul(limit.saturating_sub(remaining)),
            })
        }
        Err(not_until) => {
            let quota = not_until.quota();
            let limit = quota.burst_size().get();
            let retry_after = not_until.wait_time_from(limiter.clock().now());
            // The wait is the time to replenish the missing units, one interval each.
            let interval = quota.replenish_interval().as_nanos().max(1);
            let over_by =
                u64::try_from(retry_after.as_nanos().div_ceil(interval)).unwrap_or(u64::MAX);
            Decision::Limited {
                over_by,
                retry_after,
                quota: Quota {
                    limit,
                    remaining: 0,
                    reset: retry_after.saturating_add(
                        quota
                            .replenish_interval()
                            .saturating_mul(limit.saturating_sub(needed)),
                    ),
                },
            }
        }
    }
}

/// governor state store with a cap on tracked keys per class and shared overflow buckets.
#[derive(Debug)]
struct CappedStore {
    verified: Table,
    anonymous: Table,
    max_tracked_keys: usize,
}

/// One class's clients: their own buckets, and the shared ones for newcomers once it is full.
#[derive(Debug)]
struct Table {
    tracked: RwLock<HashMap<ClientKey, AtomicU64>>,
    overflow: [AtomicU64; OVERFLOW_SLOTS],
}

impl Table {
    fn new() -> Self {
        Self {
            tracked: RwLock::new(HashMap::new()),
            overflow: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    fn len(&self) -> usize {
        self.tracked
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl CappedStore {
    fn new(max_tracked_keys: usize) -> Self {
        Self {
            verified: Table::new(),
            anonymous: Table::new(),
            max_tracked_keys,
        }
    }

    fn table(&self, class: Class) -> &Table {
        match class {
            Class::Verified => &self.verified,
            Class::Anonymous => &self.anonymous,
        }
    }

    fn tables(&self) -> [&Table; 2] {
        [&self.verified, &self.anonymous]
    }
}

/// The store as governor holds it, while the limiter keeps a handle of its own.
#[derive(Debug)]
struct SharedStore(Arc<CappedStore>);

impl StateStore for SharedStore {
    type Key = BucketKey;

    fn measure_and_replace<T, F, E>(&self, key: &BucketKey, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        self.0.measure_and_replace(key, f)
    }
}

impl ShrinkableKeyedStateStore<BucketKey> for SharedStore {
    fn retain_recent(&self, drop_below: Nanos) {
        self.0.retain_recent(drop_below);
    }

    fn shrink_to_fit(&self) {
        self.0.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl StateStore for CappedStore {
    type Key = BucketKey;

    fn measure_and_replace<T, F, E>(&self, key: &BucketKey, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let table = self.table(key.class);
        // Known clients only take the shared lock; the exclusive one is for arrivals.
        {
            let tracked = table.tracked.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(cell) = tracked.get(&key.client) {
                return measure_and_replace(cell, f);
            }
        }
        let mut tracked = table
            .tracked
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if tracked.len() < self.max_tracked_keys || tracked.contains_key(&key.client) {
            let cell = tracked
                .entry(key.client)
                .or_insert_with(|| AtomicU64::new(0));
            return measure_and_replace(cell, f);
        }
        drop(tracked);
        // `overflow_slot` is a byte and there are 256 cells, so `get` always finds one.
        let [first, ..] = &table.overflow;
        let cell = table
            .overflow
            .get(usize::from(key.overflow_slot))
            .unwrap_or(first);
        measure_and_replace(cell, f)
    }
}

impl ShrinkableKeyedStateStore<BucketKey> for CappedStore {
    fn retain_recent(&self, drop_below: Nanos) {
        for table in self.tables() {
            let mut tracked = table
                .tracked
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            tracked.retain(|_, cell| cell.load(Ordering::Relaxed) > drop_below.as_u64());
        }
    }

    fn shrink_to_fit(&self) {
        for table in self.tables() {
            let mut tracked = table
                .tracked
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            tracked.shrink_to_fit();
        }
    }

    fn len(&self) -> usize {
        self.tables().iter().map(|table| table.len()).sum()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The compare-and-swap loop of governor's own `InMemoryState` (0 means "never seen").
fn measure_and_replace<T, F, E>(cell: &AtomicU64, f: F) -> Result<T, E>
where
    F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
{
    let mut previous = cell.load(Ordering::Acquire);
    loop {
        let state = (previous != 0).then(|| Nanos::new(previous));
        let (result, next) = f(state)?;
        match cell.compare_exchange_weak(
            previous,
            next.as_u64(),
            Ordering::Release,
            Ordering::Relaxed,
        ) {
            Ok(_) => return Ok(result),
            Err(current) => previous = current,
        }
    }
}

#[cfg(test)]
mod tests;
