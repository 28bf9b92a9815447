//! Per-slot request counters, read by the console for draining and watching.

use model::SlotColor;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Debug, Default)]
pub struct SlotMetrics {
    in_flight: [AtomicU64; 2],
    requests: [AtomicU64; 2],
    errors: [AtomicU64; 2],
}

/// One number per slot, as it appears in `GET /admin/status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerSlot {
    pub blue: u64,
    pub green: u64,
}

impl PerSlot {
    pub fn get(&self, slot: SlotColor) -> u64 {
        match slot {
            SlotColor::Blue => self.blue,
            SlotColor::Green => self.green,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    /// Requests forwarded to the slot whose response has not finished yet.
    pub in_flight: PerSlot,
    /// Requests forwarded to the slot since the proxy started.
    pub requests: PerSlot,
    /// Of those, answered 5xx by the slot, unreachable, or timed out.
    pub errors: PerSlot,
}

fn index(slot: SlotColor) -> usize {
    match slot {
        SlotColor::Blue => 0,
        SlotColor::Green => 1,
    }
}

impl SlotMetrics {
    /// Counts a request towards `slot`; it stays in flight until the guard drops.
    pub fn begin(self: &Arc<Self>, slot: SlotColor) -> InFlightGuard {
        self.requests[index(slot)].fetch_add(1, Ordering::Relaxed);
        self.in_flight[index(slot)].fetch_add(1, Ordering::AcqRel);
        InFlightGuard {
            metrics: Arc::clone(self),
            slot,
        }
    }

    pub fn record_error(&self, slot: SlotColor) {
        self.errors[index(slot)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn in_flight(&self, slot: SlotColor) -> u64 {
        self.in_flight[index(slot)].load(Ordering::Acquire)
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        let read = |counters: &[AtomicU64; 2], ordering| PerSlot {
            blue: counters[0].load(ordering),
            green: counters[1].load(ordering),
        };
        MetricsSnapshot {
            in_flight: read(&self.in_flight, Ordering::Acquire),
            requests: read(&self.requests, Ordering::Relaxed),
            errors: read(&self.errors, Ordering::Relaxed),
        }
    }
}

/// Decrements the in-flight count when dropped, so a request counts as
/// finished however it ends (complete body, client gone, error, panic).
#[derive(Debug)]
pub struct InFlightGuard {
    metrics: Arc<SlotMetrics>,
    slot: SlotColor,
}

impl InFlightGuard {
    pub fn slot(&self) -> SlotColor {
        self.slot
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.metrics.in_flight[index(self.slot)].fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_tracks_in_flight_per_slot() {
        let m = Arc::new(SlotMetrics::default());
        let a = m.begin(SlotColor::Blue);
        let b = m.begin(SlotColor::Blue);
        let c = m.begin(SlotColor::Green);
        assert_eq!(m.snapshot().in_flight, PerSlot { blue: 2, green: 1 });
        drop(a);
        drop(c);
        m.record_error(SlotColor::Blue);
        let snap = m.snapshot();
        assert_eq!(snap.in_flight, PerSlot { blue: 1, green: 0 });
        assert_eq!(snap.requests, PerSlot { blue: 2, green: 1 });
        assert_eq!(snap.errors.get(SlotColor::Blue), 1);
        drop(b);
        assert_eq!(m.in_flight(SlotColor::Blue), 0);
    }
}
