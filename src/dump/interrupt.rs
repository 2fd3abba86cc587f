//! The error a dump stopped by a signal ends with ([`Interrupted`]); the request itself is
//! [`crate::cancel::Interrupt`].

use crate::cancel::Signal;

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
}
