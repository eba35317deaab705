//! When the change feed polls next (`feed.rs`, "Delay" and "Cost").

use std::time::Duration;

/// Shortest time between a poll and one woken by a suspension.
pub(super) const WAKE_GAP: Duration = Duration::from_millis(10);

/// A decoding poll waits at least this many times as long as the previous
/// one took, so that the polling backend is busy at most a fifth of the
/// time, unless [`WINDOW`] says otherwise.
const POLL_DUTY: u32 = 4;
/// The most that may pass from the start of one poll to the end of the
/// next (the previous poll, the wait, the next poll): a commit flushed
/// just after a poll started is invalidated by the next one, so this is
/// the feed's share of the 1 s bound. The rest is the WAL flush of an
/// asynchronous commit (`wal_writer_delay`) and the delivery.
///
/// The back-off used to stop at 500 ms between polls, whatever the polls
/// took: with polls of 100-200 ms (then mostly waiting for the WAL writer,
/// see `replication::SETTLE`) consecutive poll starts were 700-820 ms
/// apart, and writes that bypassed pgpulse were read stale just past 1 s
/// in CI.
pub(super) const WINDOW: Duration = Duration::from_millis(600);

/// The wait before the next decoding poll, after one that took `took`:
/// the configured interval, longer when polls are expensive (every poll
/// decodes again from the slot's restart point: module doc, "Cost"), but
/// short enough that the previous poll, the wait and a next poll as long
/// as the previous fit in [`WINDOW`]. Polls that take half of it or more
/// run back to back. An interval configured at or above the window is
/// the operator's own bound and is kept.
pub(super) fn next_poll(configured: Duration, took: Duration) -> Duration {
    if configured >= WINDOW {
        return configured;
    }
    configured
        .max(took * POLL_DUTY)
        .min(WINDOW.saturating_sub(took * 2))
}

/// The wait before the next poll while suspensions wait for it (`took`:
/// the last poll): a poll settles the WAL (`Slot::poll`) so that it can
/// resolve them, but if it could not (settling refused), waiting the
/// regular interval held their keyed reads for 100 ms or more. Polls with
/// nothing newly flushed return after one query; the backend stays busy
/// at most a third of the time.
pub(super) fn resolve_soon(took: Duration) -> Duration {
    WAKE_GAP.max(took * 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_back_off_when_they_are_expensive() {
        let ms = Duration::from_millis;
        assert_eq!(next_poll(ms(100), ms(3)), ms(100));
        assert_eq!(next_poll(ms(100), ms(50)), ms(200));
        assert_eq!(next_poll(ms(100), ms(90)), ms(360));
        // ... but the previous poll, the wait and the next fit the window.
        assert_eq!(next_poll(ms(100), ms(120)), ms(360));
        assert_eq!(next_poll(ms(100), ms(200)), ms(200));
        assert_eq!(next_poll(ms(100), ms(280)), ms(40));
        assert_eq!(next_poll(ms(100), ms(400)), ms(0));
        for took in (0..800).step_by(7).map(ms) {
            let next = next_poll(ms(100), took);
            assert!(took + next + took <= WINDOW || next.is_zero(), "{took:?}");
        }
        // A configured interval at or past the window is kept.
        assert_eq!(next_poll(ms(800), ms(400)), ms(800));
    }
}
