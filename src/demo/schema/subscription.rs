//! The demo API's subscriptions: a live feed (`postAdded`, driven by `createPost`) and a finite,
//! timed stream (`countdown`), so that relays can be tested with streams that never end on their
//! own and streams that do.

use std::time::Duration;

use async_graphql::{Context, Result, Subscription as SubscriptionRoot};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::{Post, store};

/// How many created posts a slow subscriber may fall behind before it skips some.
pub(super) const POST_ADDED_BACKLOG: usize = 64;
/// `countdown(from:)` accepts 0 to this: a stream the client starts is bounded.
const MAX_COUNTDOWN: i32 = 100;
/// `countdown(intervalMs:)` accepts 0 to this.
const MAX_INTERVAL_MS: i32 = 1_000;

/// Subscription operations.
pub struct Subscription;

#[SubscriptionRoot]
impl Subscription {
    /// Every post `createPost` creates from the moment of subscribing; never completes on its own.
    async fn post_added(&self, ctx: &Context<'_>) -> Result<impl Stream<Item = Post> + use<>> {
        let receiver = store(ctx)?.post_added.subscribe();
        Ok(futures_util::stream::unfold(
            receiver,
            |mut receiver| async move {
                loop {
                    match receiver.recv().await {
                        Ok(row) => return Some((Post(row), receiver)),
                        // A subscriber that fell behind misses posts rather than ending.
                        Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return None,
                    }
                }
            },
        ))
    }

    /// Counts down from `from` (0–100) to 0: the first number at once, then one every
    /// `intervalMs` (0–1000) milliseconds; completes after 0.
    async fn countdown(
        &self,
        from: i32,
        #[graphql(default = 50)] interval_ms: i32,
    ) -> Result<impl Stream<Item = i32> + use<>> {
        if !(0..=MAX_COUNTDOWN).contains(&from) {
            return Err(format!("`from` must be between 0 and {MAX_COUNTDOWN}").into());
        }
        if !(0..=MAX_INTERVAL_MS).contains(&interval_ms) {
            return Err(format!("`intervalMs` must be between 0 and {MAX_INTERVAL_MS}").into());
        }
        let interval = Duration::from_millis(u64::from(interval_ms.unsigned_abs()));
        Ok(futures_util::stream::unfold(
            Some(from),
            move |next| async move {
                let current = next?;
                // `intervalMs: 0` is a burst: even a zero sleep waits for the timer's next tick.
                if current != from && !interval.is_zero() {
                    tokio::time::sleep(interval).await;
                }
                Some((current, (current > 0).then(|| current - 1)))
            },
        ))
    }
}
