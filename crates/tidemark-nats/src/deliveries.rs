//! Accounting of a follower session's deliveries, so that none is ever skipped.
//!
//! A session's consumer is new (ephemeral, `AckPolicy::None`) and numbers its deliveries 1, 2, 3,
//! ... without gaps. A delivery the server made but this process never read is lost for good
//! with `AckPolicy::None`: the consumer has moved past it. That happens when async-nats ends a
//! fetch by its own timer (`fetch_wait` + 5 s, "batch timeout timer triggered") while the server
//! is still sending to it, as under CPU load, or when a connection drops mid-fetch. Such a
//! session must end and the next one start from the checkpoint: skipping would advance the
//! checkpoint past positions never stored.
//!
//! A missing delivery shows either at the next delivery read (its number is not the one
//! expected) or, when nothing follows it, in the consumer's own count of what it delivered.

/// Deliveries read so far in one session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deliveries {
    read: u64,
}

/// Deliveries the consumer made that this session never read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliveryGap {
    /// First delivery number missing.
    pub first: u64,
    /// Last delivery number missing.
    pub last: u64,
}

impl std::fmt::Display for DeliveryGap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "deliveries {}..={} of the consumer never arrived (a fetch ended before the server \
             finished sending); resuming from the checkpoint",
            self.first, self.last
        )
    }
}

impl Deliveries {
    /// A new session: its consumer has delivered nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the delivery numbered `delivery` (the message's `consumer_sequence`). Errors if
    /// deliveries before it were never read; the message must then not be applied.
    pub fn receive(&mut self, delivery: u64) -> Result<(), DeliveryGap> {
        let expected = self.read + 1;
        if delivery != expected {
            return Err(DeliveryGap {
                first: expected,
                last: delivery.saturating_sub(1).max(expected),
            });
        }
        self.read = delivery;
        Ok(())
    }

    /// Compares with the consumer's count of what it delivered (`delivered.consumer_sequence` of
    /// its info), taken while no fetch is open: more than was read means the tail of a fetch
    /// was lost.
    pub fn confirm(&self, delivered: u64) -> Result<(), DeliveryGap> {
        if delivered > self.read {
            return Err(DeliveryGap {
                first: self.read + 1,
                last: delivered,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_read_in_order_pass() {
        let mut deliveries = Deliveries::new();
        for delivery in 1..=5 {
            deliveries.receive(delivery).unwrap();
        }
        deliveries.confirm(5).unwrap();
        assert_eq!(
            deliveries.confirm(6),
            Err(DeliveryGap { first: 6, last: 6 })
        );
        deliveries.confirm(0).unwrap();
    }

    #[test]
    fn the_first_deliveries_of_a_session_are_checked_too() {
        // A session whose first fetch lost its messages: the first message read is number 22.
        let mut deliveries = Deliveries::new();
        assert_eq!(
            deliveries.receive(22),
            Err(DeliveryGap { first: 1, last: 21 })
        );
        // The message after the gap was not counted: delivery 1 is still the one expected.
        deliveries.receive(1).unwrap();
    }

    #[test]
    fn a_gap_between_fetches_is_reported_with_its_range() {
        let mut deliveries = Deliveries::new();
        for delivery in 1..=9_993 {
            deliveries.receive(delivery).unwrap();
        }
        let gap = deliveries.receive(10_015).unwrap_err();
        assert_eq!(
            gap,
            DeliveryGap {
                first: 9_994,
                last: 10_014
            }
        );
        assert!(gap.to_string().contains("deliveries 9994..=10014"), "{gap}");
    }

    #[test]
    fn an_out_of_order_delivery_ends_the_session_too() {
        let mut deliveries = Deliveries::new();
        deliveries.receive(1).unwrap();
        deliveries.receive(2).unwrap();
        assert_eq!(
            deliveries.receive(2),
            Err(DeliveryGap { first: 3, last: 3 })
        );
    }

    #[test]
    fn a_lost_tail_shows_in_the_consumers_count() {
        // The last fetch ended by the client's timer: nothing follows to reveal the gap.
        let mut deliveries = Deliveries::new();
        for delivery in 1..=100 {
            deliveries.receive(delivery).unwrap();
        }
        assert_eq!(
            deliveries.confirm(130),
            Err(DeliveryGap {
                first: 101,
                last: 130
            })
        );
    }
}
