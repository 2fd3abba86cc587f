//! Stopping work from outside: [`Cancel`], the flag blocking code checks, and [`Interrupt`],
//! the request a SIGINT or SIGTERM makes (the binary listens for the signals and calls
//! [`Interrupt::fire`]). The dump and the report use both: the dump's pipeline awaits the
//! interrupt and cancels its instances with a [`Cancel`]; the report's Parquet reader and sorter
//! check the interrupt's [`Cancel`], its ClickHouse reader awaits the interrupt.
//!
//! For the dump, what an interrupt does depends on when it arrives:
//! - while instances are dumped: every source is cancelled, every writer dropped (aborting its
//!   inserts), `abort_batch` removes what the attempt wrote, and the dump ends with
//!   `dump::Interrupted`;
//! - while `finalize_batch` runs (the commit: a rename, or one marker insert): the commit is
//!   not cut in half; it runs to its end and the dump reports what really happened (complete,
//!   or failed and aborted). [`Interrupt::begin_commit`] decides which side of the line a
//!   signal falls on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

/// A cancel flag shared between threads (cheap to clone): set once, checked often.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// Set the flag (for every clone).
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether the flag is set.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The signals that stop a dump or a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Int,
    /// SIGTERM (`kill`, `timeout`, `systemctl stop`).
    Term,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Int => "SIGINT",
            Signal::Term => "SIGTERM",
        }
    }

    /// The signal number (the same on every Unix).
    pub fn number(self) -> i32 {
        match self {
            Signal::Int => 2,
            Signal::Term => 15,
        }
    }

    /// The shell convention for "ended by this signal": 128 + its number (130, 143).
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Int => 130,
            Signal::Term => 143,
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A request to stop (SIGINT, SIGTERM), shared by the signal listener and the dump or the
/// report (cheap to clone): async code awaits [`Self::fired`], blocking code checks the
/// [`Cancel`] of [`Self::cancel`], which firing sets.
#[derive(Debug, Clone)]
pub struct Interrupt {
    signal: Arc<watch::Sender<Option<Signal>>>,
    cancel: Cancel,
    committing: Arc<AtomicBool>,
}

impl Default for Interrupt {
    fn default() -> Self {
        Interrupt {
            signal: Arc::new(watch::Sender::new(None)),
            cancel: Cancel::default(),
            committing: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl Interrupt {
    /// Request a stop (and set [`Self::cancel`]). Returns `false` if a stop was already
    /// requested (the caller may then exit at once: the user asked twice).
    pub fn fire(&self, signal: Signal) -> bool {
        self.cancel.cancel();
        self.signal.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(signal);
            true
        })
    }

    /// The flag a blocking task checks: set once a stop is requested.
    pub fn cancel(&self) -> &Cancel {
        &self.cancel
    }

    /// The signal that requested a stop, if any.
    pub fn signal(&self) -> Option<Signal> {
        *self.signal.borrow()
    }

    /// Wait until a stop is requested (at once if it already was).
    pub async fn fired(&self) -> Signal {
        let mut rx = self.signal.subscribe();
        loop {
            if let Some(s) = *rx.borrow_and_update() {
                return s;
            }
            if rx.changed().await.is_err() {
                // The sender lives in `self`: it cannot be dropped while we wait.
                std::future::pending::<()>().await;
            }
        }
    }

    /// (The dump.) Whether the batch is being committed (`finalize_batch` is running): a stop requested
    /// now takes effect only once the commit has ended.
    pub fn is_committing(&self) -> bool {
        self.committing.load(Ordering::SeqCst)
    }

    /// Enter the commit unless a stop was already requested (then `Err` with its signal).
    /// A signal that arrives after this returned `Ok` finds [`Self::is_committing`] true.
    pub fn begin_commit(&self) -> Result<(), Signal> {
        self.committing.store(true, Ordering::SeqCst);
        match self.signal() {
            Some(s) => {
                self.committing.store(false, Ordering::SeqCst);
                Err(s)
            }
            None => Ok(()),
        }
    }

    pub fn end_commit(&self) {
        self.committing.store(false, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_signal_wins_and_a_second_is_reported() {
        let i = Interrupt::default();
        assert_eq!(i.signal(), None);
        assert!(!i.cancel().is_cancelled());
        assert!(i.fire(Signal::Term));
        assert!(i.cancel().is_cancelled(), "firing sets the cancel flag");
        assert!(!i.fire(Signal::Int), "a second request");
        assert_eq!(i.signal(), Some(Signal::Term));
        assert_eq!(Signal::Term.exit_code(), 143);
        assert_eq!(Signal::Int.exit_code(), 128 + Signal::Int.number() as u8);
    }

    #[test]
    fn commit_refused_after_a_signal() {
        let i = Interrupt::default();
        assert_eq!(i.begin_commit(), Ok(()));
        assert!(i.is_committing());
        i.end_commit();
        i.fire(Signal::Int);
        assert_eq!(i.begin_commit(), Err(Signal::Int));
        assert!(!i.is_committing());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn fired_wakes_waiters_and_late_comers() {
        let i = Interrupt::default();
        let waiter = {
            let i = i.clone();
            tokio::spawn(async move { i.fired().await })
        };
        tokio::task::yield_now().await;
        i.fire(Signal::Int);
        assert_eq!(waiter.await.unwrap(), Signal::Int);
        assert_eq!(i.fired().await, Signal::Int, "already fired");
    }
}
