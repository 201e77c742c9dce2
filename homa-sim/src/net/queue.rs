//! The event queue: a binary min-heap on `(time << 64) | seq`, so events at
//! the same time come out in the order they were scheduled.
//!
//! (A radix heap, which exploits that simulation keys are monotone, was
//! measured against this one on the paper workload and lost by 10–30 %:
//! redistributing buckets cost more than the heap's comparisons.)

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Min-priority queue of `(key, value)`.
pub(crate) struct EventQueue<T> {
    heap: BinaryHeap<Entry<T>>,
}

struct Entry<T>(u128, T);

impl<T> PartialEq for Entry<T> {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for Entry<T> {
    // Reversed: BinaryHeap is a max-heap, we want the smallest key.
    fn cmp(&self, o: &Self) -> Ordering {
        o.0.cmp(&self.0)
    }
}

impl<T> EventQueue<T> {
    pub(crate) fn new() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
        }
    }

    pub(crate) fn push(&mut self, key: u128, value: T) {
        self.heap.push(Entry(key, value));
    }

    pub(crate) fn peek_key(&self) -> Option<u128> {
        self.heap.peek().map(|e| e.0)
    }

    pub(crate) fn pop(&mut self) -> Option<(u128, T)> {
        self.heap.pop().map(|e| (e.0, e.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn pops_in_key_order_ties_in_schedule_order() {
        let mut rng = Rng::new(3);
        let mut q = EventQueue::new();
        let mut model: Vec<u128> = Vec::new();
        let mut seq = 0u128;
        for _ in 0..5_000 {
            for _ in 0..rng.below(4) {
                let key = (u128::from(rng.below(50)) << 64) | seq;
                seq += 1;
                q.push(key, key as u64);
                model.push(key);
            }
            if rng.below(3) > 0 {
                model.sort_unstable();
                let want = (!model.is_empty()).then(|| model.remove(0));
                assert_eq!(q.peek_key(), want);
                assert_eq!(
                    q.pop().map(|(k, v)| {
                        assert_eq!(k as u64, v);
                        k
                    }),
                    want
                );
            }
        }
    }
}
