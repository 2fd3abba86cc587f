//! Stopping a dump from outside (SIGINT, SIGTERM): the request, and the error a stopped dump
//! ends with.
//!
//! The binary listens for the signals and calls [`Interrupt::fire`]; the pipeline watches the
//! same [`Interrupt`]. What an interrupt does depends on when it arrives:
//! - while instances are dumped: every source is cancelled, every writer dropped (aborting its
//!   inserts), `abort_batch` removes what the attempt wrote, and the dump ends with
//!   [`Interrupted`];
//! - while `finalize_batch` runs (the commit: a rename, or one marker insert): the commit is
//!   not cut in half; it runs to its end and the dump reports what really happened (complete,
//!   or failed and aborted). [`Interrupt::begin_commit`] decides which side of the line a
//!   signal falls on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

/// The signals that stop a dump.
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

/// A request to stop the dump, shared by the signal listener and the pipeline (cheap to clone).
#[derive(Debug, Clone)]
pub struct Interrupt {
    signal: Arc<watch::Sender<Option<Signal>>>,
    committing: Arc<AtomicBool>,
}

impl Default for Interrupt {
    fn default() -> Self {
        Interrupt {
            signal: Arc::new(watch::Sender::new(None)),
            committing: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl Interrupt {
    /// Request a stop. Returns `false` if a stop was already requested (the caller may then
    /// exit at once: the user asked twice).
    pub fn fire(&self, signal: Signal) -> bool {
        self.signal.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(signal);
            true
        })
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

    /// Whether the batch is being committed (`finalize_batch` is running): a stop requested
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

/// How a dump ended when it was interrupted; the binary maps it to exit code 130 / 143.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.describe())]
pub struct Interrupted {
    pub signal: Signal,
    /// Whether the output had been prepared (so temporary output existed and was removed).
    /// Interrupted during the preparation: no record was written (a ClickHouse claim already
    /// stored stays until it expires, as a killed run's does).
    pub after_prepare: bool,
}

impl Interrupted {
    fn describe(&self) -> String {
        if self.after_prepare {
            // `abort_batch` is best effort: an output that could not remove everything (a
            // ClickHouse out of reach) has said so in a warning; this line must not contradict it.
            format!(
                "dump interrupted by {}: the batch was not finalized, nothing of this run is \
                 visible, and its temporary output was removed unless a warning above says \
                 otherwise",
                self.signal
            )
        } else {
            format!(
                "dump interrupted by {} before any record was written",
                self.signal
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interrupt_line_does_not_claim_a_cleanup_a_warning_denies() {
        let after = Interrupted {
            signal: Signal::Term,
            after_prepare: true,
        }
        .to_string();
        assert!(after.contains("not finalized"), "{after}");
        assert!(
            after.contains("removed unless a warning above says otherwise"),
            "{after}"
        );
    }

    #[test]
    fn first_signal_wins_and_a_second_is_reported() {
        let i = Interrupt::default();
        assert_eq!(i.signal(), None);
        assert!(i.fire(Signal::Term));
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
