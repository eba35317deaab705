//! The L2's background tasks: the invalidation writer, the sequence
//! poller and the pub/sub subscriber. Each runs until [`super::RedisL2`]
//! is dropped (which aborts it), survives any Redis failure, and never
//! panics.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures::StreamExt;
use redis::aio::PubSubStream;

use super::format::{Names, Scope, decode_message};
use super::{OpError, POLL_EVERY, SUBSCRIBE_BACKOFF, SUBSCRIBE_TIMEOUT, Shared, bump, within};

/// Losses in a row, with no message received in between, after which the
/// subscription is considered dead and reopened.
const LOSSES_TO_RESUBSCRIBE: u64 = 2;

/// Publishes queued invalidations, in order; retries every [`POLL_EVERY`]
/// while Redis is down.
pub(super) async fn writer(s: Arc<Shared>) {
    loop {
        tokio::select! {
            _ = s.wake_writer.notified() => {}
            _ = tokio::time::sleep(POLL_EVERY) => {}
        }
        s.flush().await;
    }
}

/// Reads the sequence every [`POLL_EVERY`]: a number seen at one poll that
/// was neither received nor published here by the next one was lost.
pub(super) async fn poller(s: Arc<Shared>) {
    let names = s.wait_names().await;
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut target = None;
    loop {
        tick.tick().await;
        if !s.breaker.allow(Instant::now()) {
            continue;
        }
        // Every number accounted for was read from this Redis before the
        // GET, so a smaller answer means Redis lost its data.
        let before = s.seqs().covered();
        let seq = match s.get_seq(&names).await {
            Ok(seq) => {
                s.breaker.success();
                seq
            }
            Err(e) => {
                s.failed("poll", &e);
                continue;
            }
        };
        if !s.pending().is_empty() {
            s.wake_writer.notify_one();
        }
        target = check(&s, before, seq, target);
    }
}

/// One poll's verdict; returns the number to check at the next poll.
fn check(s: &Shared, before: u64, seq: u64, target: Option<u64>) -> Option<u64> {
    let mut seqs = s.seqs();
    if seq < before {
        seqs.reset(seq);
        drop(seqs);
        s.resync("the invalidation sequence went back (Redis lost its data)");
        return None;
    }
    if let Some(t) = target
        && seqs.lost_up_to(t)
    {
        seqs.advance(seq);
        drop(seqs);
        s.resync("an invalidation message was lost");
        if s.subscribed.load(Ordering::Relaxed)
            && s.loss_streak.fetch_add(1, Ordering::Relaxed) + 1 >= LOSSES_TO_RESUBSCRIBE
        {
            s.loss_streak.store(0, Ordering::Relaxed);
            s.resubscribe.notify_one();
        }
        return None;
    }
    seqs.lost_up_to(seq).then_some(seq)
}

/// Keeps a subscription to the invalidation channel, reconnecting with
/// backoff. Every subscription starts by forgetting the L1: messages
/// published while there was none are lost.
pub(super) async fn subscriber(s: Arc<Shared>) {
    let names = s.wait_names().await;
    let (min, max) = SUBSCRIBE_BACKOFF;
    let mut backoff = min;
    loop {
        match subscribe(&s, &names).await {
            Ok((stream, seq)) => {
                backoff = min;
                s.seqs().reset(seq);
                s.resync("(re)subscribed");
                s.subscribed.store(true, Ordering::Relaxed);
                tracing::debug!("redis: subscribed to invalidations");
                listen(&s, stream).await;
                s.subscribed.store(false, Ordering::Relaxed);
                tracing::warn!("redis: invalidation subscription lost, reconnecting");
            }
            Err(e) => {
                bump(&s.counters.errors);
                tracing::debug!(error = %e, "redis: cannot subscribe to invalidations");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(max);
            }
        }
    }
}

/// A new subscription, and the sequence read once it is confirmed.
async fn subscribe(s: &Shared, names: &Names) -> Result<(PubSubStream, u64), OpError> {
    let connect = async {
        let mut pubsub = s.client.get_async_pubsub().await?;
        pubsub.subscribe(&names.channel).await?;
        Ok(pubsub)
    };
    let pubsub = within(SUBSCRIBE_TIMEOUT, connect).await?;
    let seq = s.get_seq(names).await?;
    Ok((pubsub.into_on_message(), seq))
}

/// Applies messages until the connection ends (or is declared dead).
async fn listen(s: &Shared, mut stream: PubSubStream) {
    loop {
        let msg = tokio::select! {
            m = stream.next() => m,
            _ = s.resubscribe.notified() => return,
        };
        let Some(msg) = msg else { return };
        on_message(s, msg.get_payload_bytes());
    }
}

fn on_message(s: &Shared, payload: &[u8]) {
    let Some(m) = decode_message(payload) else {
        tracing::debug!(
            len = payload.len(),
            "redis: ignoring an invalidation message of another format"
        );
        return;
    };
    let lost = s.seqs().received(m.seq);
    s.loss_streak.store(0, Ordering::Relaxed);
    if m.origin != s.origin {
        bump(&s.counters.invalidations_received);
        match &m.scope {
            Scope::Everything => s.invalidator.everything(),
            Scope::Database(db) => s.invalidator.database(db),
            Scope::Families(db, families) => s.invalidator.families(db, families),
            // This instance's feed brings the rows (within its bound) and
            // keys them; without such a feed, the families go whole.
            Scope::Keyed(db, _) if s.invalidator.keyed_feed(db) => {
                bump(&s.counters.keyed_left_to_feed);
            }
            Scope::Keyed(db, families) => s.invalidator.families(db, families),
        }
    }
    if lost {
        s.resync("a gap in the invalidation sequence");
    }
}
