//! The drivers' timers, kept on a thread of their own.
//!
//! An engine has a deadline whenever it has RPCs in flight (its tick, for
//! retransmission and timeouts). Armed as a tokio timer, that deadline turns
//! every wait of the runtime into an `epoll_wait` with a timeout, and a
//! timed wait costs a kernel timer armed before sleeping and cancelled on
//! waking. On a virtual machine that is two timer-register writes, each a
//! trap to the hypervisor: measured here, a 100-byte RPC between two
//! processes sharing a core took about 70 µs with the timer and 30 µs
//! without, against 22 µs for TCP (whose runtime waits without a timeout).
//!
//! So the deadlines live here instead: one thread per process sleeps until
//! the earliest of them and wakes the driver tasks that are due. While its
//! engine holds RPCs, a driver's deadline moves a few times per tick, not
//! per RPC; an engine that holds none has no tick (or one far off, when
//! what it remembers about peers expires), so the RPC that starts it
//! ticking again pulls the deadline in and wakes this thread once. The
//! thread is woken early only when a deadline earlier than the one it
//! sleeps for arrives. The runtimes the drivers live on then wait without
//! a timeout unless the application has timers of its own.
//!
//! Deadlines are in real time (`std::time::Instant`): a tokio runtime with a
//! paused clock does not move them.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::task::Waker;
use std::time::Instant;

/// The process's timer thread, started on first use.
fn ticker() -> &'static Ticker {
    static TICKER: OnceLock<&'static Ticker> = OnceLock::new();
    TICKER.get_or_init(|| {
        let t: &'static Ticker = Box::leak(Box::new(Ticker {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("homa-ticker".into())
            .spawn(move || {
                // Linux lets a sleeping thread wake up to 50 µs late by
                // default, to batch timer interrupts; the pacer's deadlines
                // are that far apart. Best effort: without it, timers are
                // merely late.
                let _ = nix::sys::prctl::set_timerslack(1);
                t.run()
            })
            .expect("cannot start the homa-ticker thread");
        t
    })
}

struct Ticker {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    /// Every deadline armed, earliest first; an entry whose timer has since
    /// moved or been cancelled is skipped when it comes up.
    queue: BinaryHeap<Reverse<(Instant, u64)>>,
    /// The live deadline of each timer and the task to wake.
    armed: HashMap<u64, (Instant, Waker)>,
    /// What the thread sleeps until (`None`: until something is armed).
    sleeping_until: Option<Instant>,
}

impl Ticker {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn run(&self) {
        let mut due = Vec::new();
        let mut st = self.lock();
        loop {
            let now = Instant::now();
            while let Some(&Reverse((at, id))) = st.queue.peek() {
                if at > now {
                    break;
                }
                st.queue.pop();
                if st.armed.get(&id).is_some_and(|(d, _)| *d == at) {
                    if let Some((_, w)) = st.armed.remove(&id) {
                        due.push(w);
                    }
                }
            }
            let next = st.queue.peek().map(|Reverse((at, _))| *at);
            st.sleeping_until = next;
            if !due.is_empty() {
                drop(st);
                for w in due.drain(..) {
                    w.wake();
                }
                st = self.lock();
                continue;
            }
            st = match next {
                Some(at) => {
                    let wait = at.saturating_duration_since(now);
                    self.wake
                        .wait_timeout(st, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => self.wake.wait(st).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }
}

/// One driver's timer.
pub(crate) struct Timer {
    id: u64,
    /// The deadline last armed (a wake-up may have used it up since).
    at: Option<Instant>,
}

impl Timer {
    pub fn new() -> Timer {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Timer {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            at: None,
        }
    }

    /// Wake `waker` at `at` (replacing what was armed before). Arming the
    /// same deadline again is cheap: a lock and a map lookup.
    pub fn arm(&mut self, at: Instant, waker: &Waker) {
        let t = ticker();
        let mut st = t.lock();
        if self.at == Some(at) {
            if let Some((d, w)) = st.armed.get_mut(&self.id) {
                if *d == at {
                    if !w.will_wake(waker) {
                        *w = waker.clone();
                    }
                    return;
                }
            }
        }
        self.at = Some(at);
        st.armed.insert(self.id, (at, waker.clone()));
        st.queue.push(Reverse((at, self.id)));
        if st.sleeping_until.is_none_or(|s| at < s) {
            // The thread sleeps past this deadline (or without one).
            st.sleeping_until = Some(at);
            t.wake.notify_one();
        }
    }

    /// Disarm: nothing will be woken.
    pub fn cancel(&mut self) {
        if self.at.take().is_some() {
            ticker().lock().armed.remove(&self.id);
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::Wake;
    use std::time::Duration;

    /// Counts wake-ups and records when the first one came.
    struct Probe {
        woken: AtomicU64,
        when: Mutex<Option<Instant>>,
    }

    impl Wake for Probe {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.woken.fetch_add(1, Ordering::SeqCst);
            self.when.lock().unwrap().get_or_insert_with(Instant::now);
        }
    }

    fn probe() -> (Arc<Probe>, Waker) {
        let p = Arc::new(Probe {
            woken: AtomicU64::new(0),
            when: Mutex::new(None),
        });
        (p.clone(), Waker::from(p))
    }

    fn wait_for(p: &Probe, n: u64) {
        // Generous: the machine may be busy; the test is about order and
        // counts, not timing.
        let end = Instant::now() + Duration::from_secs(10);
        while p.woken.load(Ordering::SeqCst) < n && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn wakes_once_at_or_after_the_deadline() {
        let (p, w) = probe();
        let mut t = Timer::new();
        let at = Instant::now() + Duration::from_millis(20);
        t.arm(at, &w);
        t.arm(at, &w); // the same deadline again: still one wake-up
        wait_for(&p, 1);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(p.woken.load(Ordering::SeqCst), 1);
        assert!(p.when.lock().unwrap().unwrap() >= at);
    }

    #[test]
    fn an_earlier_deadline_interrupts_the_sleep_and_a_moved_one_fires_once() {
        let (late, wl) = probe();
        let mut far = Timer::new();
        far.arm(Instant::now() + Duration::from_secs(3600), &wl);
        let (p, w) = probe();
        let mut t = Timer::new();
        t.arm(Instant::now() + Duration::from_secs(3600), &w);
        // Moved much earlier: the thread, asleep for an hour, must notice.
        t.arm(Instant::now() + Duration::from_millis(5), &w);
        wait_for(&p, 1);
        assert_eq!(p.woken.load(Ordering::SeqCst), 1);
        assert_eq!(late.woken.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_cancelled_timer_does_not_wake() {
        let (p, w) = probe();
        let mut t = Timer::new();
        t.arm(Instant::now() + Duration::from_millis(5), &w);
        t.cancel();
        let (q, wq) = probe();
        let mut u = Timer::new();
        u.arm(Instant::now() + Duration::from_millis(20), &wq);
        wait_for(&q, 1);
        assert_eq!(p.woken.load(Ordering::SeqCst), 0);
        drop(u);
    }
}
