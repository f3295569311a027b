//! portcullis patch: deadlines without a timer per read.
//!
//! Upstream pingora applies `peer.options.read_timeout` to every read of the
//! response (`HttpSession::read_timeout` of the HTTP/1 client): each read that
//! has to wait registers a fresh timer and cancels it when data arrives. On a
//! proxied 1 KiB request that was ≈ 2,600 of ≈ 89,000 instructions (valgrind
//! callgrind, 2026-11-24), the largest single cost portcullis added to the bare
//! framework; a reused `tokio::time::Sleep` still cost ≈ 1,400 (clock reads,
//! resets, and the runtime's timer wheel on every park).
//!
//! Two users keep one [`Silence`] each instead:
//! - the exchange loop in `pingora-proxy`'s `proxy_h1` (upstream silence);
//! - the HTTP/1 server session's `read_request` (the downstream request head
//!   deadline and the keep-alive idle deadline, `HeadLimits`).
//!
//! Arming it is one clock read and one atomic store of the deadline; a
//! watchdog thread checks all deadlines every [`TICK`] and wakes the tasks
//! whose deadline has passed, as pingora's own `fast_timeout` fires its timers
//! from a clock thread. A deadline fires up to one tick late (more if that
//! thread waits for a CPU), never early: fine for a bound configured in
//! seconds. (A clock cached by the watchdog would save the clock read, but a
//! starved watchdog then arms deadlines in the past: under heavy load that
//! cut a live SSE stream.)
//!
//! The [`Watch`] state each user takes is kept per thread for the next one;
//! the watchdog holds weak references and forgets dropped ones.

use std::cell::RefCell;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::task::AtomicWaker;

/// How often the watchdog checks deadlines.
const TICK: Duration = Duration::from_millis(10);

/// Watches kept per thread for reuse; beyond this many a released one is
/// dropped. The watchdog visits every watch on each tick, pooled ones too.
const POOL_LIMIT: usize = 256;

/// [`Watch::state`] of a watch no exchange is using.
const DISARMED: u64 = 0;

/// [`Watch::state`] once the watchdog found the deadline passed.
const FIRED: u64 = u64::MAX;

/// One exchange's deadline and the task to wake when it passes.
struct Watch {
    /// [`DISARMED`], [`FIRED`], or the deadline in [`Watchdog::now`] milliseconds.
    state: AtomicU64,
    waker: AtomicWaker,
}

/// The clock origin and the list of watches, shared with the watchdog thread.
struct Watchdog {
    start: Instant,
    watches: Mutex<Vec<Weak<Watch>>>,
    /// False if the thread could not be started or has died: deadlines are then
    /// not enforced (and it was logged).
    running: AtomicBool,
}

/// Marks the watchdog dead if its thread unwinds.
struct RunningGuard(&'static Watchdog);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Release);
        log::error!("the deadline thread stopped, HTTP/1 read deadlines are off");
    }
}

impl Watchdog {
    fn global() -> &'static Watchdog {
        static WATCHDOG: OnceLock<Watchdog> = OnceLock::new();
        WATCHDOG.get_or_init(|| {
            let spawned = std::thread::Builder::new()
                .name("silence watch".into())
                .spawn(|| {
                    let watchdog = Watchdog::global();
                    let _guard = RunningGuard(watchdog);
                    watchdog.run()
                });
            if let Err(e) = &spawned {
                log::error!("cannot start the deadline thread, HTTP/1 read deadlines are off: {e}");
            }
            Watchdog {
                start: Instant::now(),
                watches: Mutex::new(Vec::new()),
                running: AtomicBool::new(spawned.is_ok()),
            }
        })
    }

    fn run(&self) -> ! {
        loop {
            std::thread::sleep(TICK);
            let now = self.now();
            let mut watches = self.watches.lock().unwrap_or_else(|e| e.into_inner());
            watches.retain(|w| {
                let Some(w) = w.upgrade() else { return false };
                let state = w.state.load(Ordering::Acquire);
                if state != DISARMED
                    && state != FIRED
                    && state <= now
                    && w.state
                        .compare_exchange(state, FIRED, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                {
                    w.waker.wake();
                }
                true
            });
        }
    }

    /// Milliseconds since `start`, plus one (so no deadline is [`DISARMED`]).
    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(FIRED - 2) + 1
    }

    fn new_watch(&self) -> Arc<Watch> {
        let w = Arc::new(Watch {
            state: AtomicU64::new(DISARMED),
            waker: AtomicWaker::new(),
        });
        self.watches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::downgrade(&w));
        w
    }
}

thread_local! {
    static POOL: RefCell<Vec<Arc<Watch>>> = const { RefCell::new(Vec::new()) };
}

/// The silence bound of one exchange: it elapses when the loop has not been
/// restarted for `limit`. Without a limit (or a watchdog) it never elapses.
pub struct Silence {
    /// The exchange's watch and its limit in milliseconds.
    watch: Option<(Arc<Watch>, u64)>,
}

impl Silence {
    pub fn new(limit: Option<Duration>) -> Self {
        let watch = limit.and_then(|limit| {
            let watchdog = Watchdog::global();
            watchdog.running.load(Ordering::Acquire).then(|| {
                let watch = POOL
                    .try_with(|p| p.borrow_mut().pop())
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| watchdog.new_watch());
                (watch, u64::try_from(limit.as_millis()).unwrap_or(u64::MAX).max(1))
            })
        });
        Silence { watch }
    }

    /// Changes the window's length; it applies from the next [`Self::restart`].
    pub fn set_limit(&mut self, limit: Duration) {
        if let Some((_, limit_ms)) = &mut self.watch {
            *limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX).max(1);
        }
    }

    /// Starts the window again from now.
    pub fn restart(&mut self) {
        if let Some((w, limit_ms)) = &self.watch {
            let now = Watchdog::global().now();
            // A limit of centuries must not wrap around to a passed deadline or
            // land on FIRED.
            let deadline = now.saturating_add(*limit_ms).min(FIRED - 1);
            w.state.store(deadline, Ordering::Release);
        }
    }

    fn poll_elapsed(&self, cx: &mut Context<'_>) -> Poll<()> {
        let Some((w, _)) = &self.watch else {
            return Poll::Pending;
        };
        if w.state.load(Ordering::Acquire) == FIRED {
            return Poll::Ready(());
        }
        w.waker.register(cx.waker());
        if w.state.load(Ordering::Acquire) == FIRED {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Resolves once the window has passed.
    pub async fn elapsed(&self) {
        poll_fn(|cx| self.poll_elapsed(cx)).await
    }

    /// Runs `fut` until it finishes (`Some`) or the window passes (`None`).
    /// `fut` is polled first, so a result that is ready wins over a passed
    /// deadline.
    pub async fn bound<F: std::future::Future>(&self, fut: F) -> Option<F::Output> {
        let mut fut = std::pin::pin!(fut);
        poll_fn(|cx| {
            if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                return Poll::Ready(Some(out));
            }
            self.poll_elapsed(cx).map(|()| None)
        })
        .await
    }
}

impl Drop for Silence {
    fn drop(&mut self) {
        if let Some((w, _)) = self.watch.take() {
            w.state.store(DISARMED, Ordering::Release);
            // The waker keeps its task's memory alive; a pooled watch must not.
            drop(w.waker.take());
            // During thread exit the pool may be gone; the watch is then dropped.
            let _ = POOL.try_with(move |p| {
                let mut pool = p.borrow_mut();
                if pool.len() < POOL_LIMIT {
                    pool.push(w);
                }
            });
        }
    }
}
