//! What a running dump shows and who can see it: the per-instance [`InstanceStatus`] table,
//! progress bars on a terminal or progress log lines otherwise, and the [`Interrupt`] the
//! binary's signal listener fires.
//!
//! On a terminal, one bar per running instance (bytes read, rate and ETA when the source knows
//! its length; a spinner with bytes and rate otherwise) is drawn by one display task that reads
//! the status table ten times a second; the pipeline never touches a bar. Log lines are printed
//! above the bars by the binary's log writer through [`indicatif::MultiProgress::suspend`], so
//! a log line and a bar never share a line. When the dump ends, however it ends, every bar is
//! cleared: what remains on screen is the log (one "done" line per instance and the outcome).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::status::{InstanceState, InstanceStatus};
use crate::cancel::Interrupt;

/// Progress is logged per instance every this many records (without bars), plus a final line.
pub const REPORT_INTERVAL: u64 = 1_000_000;
/// How often the bars are redrawn from the status table.
const DISPLAY_INTERVAL: Duration = Duration::from_millis(100);

/// Counts one instance's records and says when a progress report is due: at every multiple of
/// [`REPORT_INTERVAL`].
#[derive(Debug, Default, Clone)]
pub struct ProgressCounter {
    total: u64,
    unreported: u64,
}

impl ProgressCounter {
    /// Count `n` records; returns true when a report is due.
    #[inline]
    pub fn add(&mut self, n: u64) -> bool {
        self.total += n;
        self.unreported += n;
        if self.unreported >= REPORT_INTERVAL {
            self.unreported %= REPORT_INTERVAL;
            true
        } else {
            false
        }
    }

    pub fn total(&self) -> u64 {
        self.total
    }
}

/// The live state of a dump, shared by the pipeline, the display, the signal listener and the
/// metrics exporter.
pub struct Progress {
    started: Instant,
    /// Records of every instance, for the log lines' overall rate.
    total: AtomicU64,
    bars: Option<MultiProgress>,
    instances: RwLock<Vec<Arc<InstanceStatus>>>,
    interrupt: Interrupt,
}

/// Bars on stderr (a terminal) that stop two columns short of its right edge.
///
/// indicatif pads every bar line to the terminal's width, leaving the cursor in the "pending
/// wrap" state at the right edge. The terminal's own echo of Ctrl-C (`^C`) then wraps to a new
/// line, and clearing the bars afterwards erases the wrong lines: a bar would stay on screen
/// after an interrupted dump. Two spare columns hold the `^C`.
pub fn terminal_bars() -> MultiProgress {
    MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::term_like_with_hz(
        Box::new(NarrowTerm(console::Term::buffered_stderr())),
        20,
    ))
}

#[derive(Debug)]
struct NarrowTerm(console::Term);

impl indicatif::TermLike for NarrowTerm {
    fn width(&self) -> u16 {
        self.0.size().1.saturating_sub(2).max(1)
    }
    fn height(&self) -> u16 {
        self.0.size().0
    }
    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_up(n)
    }
    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_down(n)
    }
    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_right(n)
    }
    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_left(n)
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.0.write_line(s)
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.0.write_str(s)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        self.0.clear_line()
    }
    fn flush(&self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl Progress {
    /// `interactive`: draw progress bars on stderr (meant for a terminal) instead of logging.
    pub fn new(interactive: bool) -> Arc<Self> {
        Self::with_bars(interactive.then(terminal_bars))
    }

    /// Draw bars on `bars` (shared with the log writer, which prints through it), or log
    /// progress lines when `None`.
    pub fn with_bars(bars: Option<MultiProgress>) -> Arc<Self> {
        Arc::new(Progress {
            started: Instant::now(),
            total: AtomicU64::new(0),
            bars,
            instances: RwLock::new(Vec::new()),
            interrupt: Interrupt::default(),
        })
    }

    /// The stop request the pipeline obeys.
    pub fn interrupt(&self) -> &Interrupt {
        &self.interrupt
    }

    /// The cluster of the dump's instances (`None` until the dump has started).
    pub fn cluster(&self) -> Option<String> {
        self.instances().first().map(|s| s.cluster().to_string())
    }

    /// The status of every instance of the dump (empty until the dump has started).
    pub(crate) fn instances(&self) -> Vec<Arc<InstanceStatus>> {
        self.instances.read().map(|v| v.clone()).unwrap_or_default()
    }

    /// Register the instances of a dump (all pending); returns their status, in plan order.
    pub(crate) fn begin(&self, cluster: &str, names: &[&str]) -> Vec<Arc<InstanceStatus>> {
        let statuses: Vec<Arc<InstanceStatus>> = names
            .iter()
            .map(|n| Arc::new(InstanceStatus::new(cluster, n, self.started)))
            .collect();
        if let Ok(mut v) = self.instances.write() {
            *v = statuses.clone();
        }
        statuses
    }

    /// A progress line (without bars), due every [`REPORT_INTERVAL`] records of an instance.
    pub(crate) fn report(&self, status: &InstanceStatus, newly: u64) {
        let all = self.total.fetch_add(newly, Ordering::Relaxed) + newly;
        if self.bars.is_some() {
            return; // the bar shows it
        }
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let rate = all as f64 / secs;
        let instance = status.instance();
        let records = status.records();
        match status.total_bytes() {
            Some(t) => tracing::info!(
                "progress: instance {instance}: {records} records ({:.1}% of bytes), {all} \
                 records in all, {rate:.0} records/s",
                status.bytes_read() as f64 * 100.0 / t as f64
            ),
            None => tracing::info!(
                "progress: instance {instance}: {records} records, {all} records in all, \
                 {rate:.0} records/s"
            ),
        }
    }

    /// The line logged when an instance is done (bars or not).
    pub(crate) fn instance_done(&self, status: &InstanceStatus, unreported: u64) {
        self.total.fetch_add(unreported, Ordering::Relaxed);
        let secs = status.duration().unwrap_or_default().as_secs_f64();
        tracing::info!(
            "done: instance {}: {} records, {} RDB bytes in {secs:.2}s",
            status.instance(),
            status.records(),
            status.bytes_read(),
        );
    }

    /// Erase the bars now (before an immediate exit).
    pub fn clear_bars(&self) {
        if let Some(bars) = &self.bars {
            let _ = bars.clear();
        }
    }

    /// Start drawing bars (when there are any); stop with [`Display::stop`].
    pub(crate) fn display(self: &Arc<Self>) -> Display {
        let Some(bars) = self.bars.clone() else {
            return Display(None);
        };
        let (stop_tx, stop_rx) = oneshot::channel();
        let progress = Arc::clone(self);
        let task = tokio::spawn(draw(progress, bars, stop_rx));
        Display(Some((stop_tx, task)))
    }
}

/// The running display task; [`Display::stop`] clears the bars.
pub(crate) struct Display(Option<(oneshot::Sender<()>, JoinHandle<()>)>);

impl Display {
    /// Stop drawing and erase every bar; the screen keeps only the log lines.
    pub(crate) async fn stop(self) {
        if let Some((stop, task)) = self.0 {
            let _ = stop.send(());
            let _ = task.await;
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// The bar of an instance whose length is known: bytes, rate, ETA.
fn sized_style() -> ProgressStyle {
    style(
        "{prefix} [{bar:25}] {percent:>3}% {bytes}/{total_bytes} {binary_bytes_per_sec} \
         ETA {eta} {msg}",
    )
}

/// The bar of a stream of unknown length (diskless replication): bytes and rate.
fn spinner_style() -> ProgressStyle {
    style("{prefix} {spinner} {bytes} {binary_bytes_per_sec} {elapsed} {msg}")
}

/// The display loop: a bar per running instance, updated from the status table.
async fn draw(progress: Arc<Progress>, multi: MultiProgress, mut stop: oneshot::Receiver<()>) {
    let mut bars: HashMap<usize, (ProgressBar, bool)> = HashMap::new();
    let mut tick = tokio::time::interval(DISPLAY_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        for (i, status) in progress.instances().iter().enumerate() {
            match status.state() {
                InstanceState::Pending => {}
                InstanceState::Running => {
                    let total = status.total_bytes();
                    let (bar, sized) = bars.entry(i).or_insert_with(|| {
                        let bar = multi.add(ProgressBar::new_spinner().with_style(spinner_style()));
                        bar.set_prefix(status.instance().to_string());
                        (bar, false)
                    });
                    if let (Some(t), false) = (total, *sized) {
                        bar.set_length(t);
                        bar.set_style(sized_style());
                        bar.reset_eta();
                        *sized = true;
                    }
                    bar.set_position(status.bytes_read());
                    bar.set_message(format!("{} records", status.records()));
                    bar.tick();
                }
                InstanceState::Done | InstanceState::Failed => {
                    if let Some((bar, _)) = bars.remove(&i) {
                        bar.finish_and_clear();
                        multi.remove(&bar);
                    }
                }
            }
        }
    }
    for (_, (bar, _)) in bars.drain() {
        bar.finish_and_clear();
        multi.remove(&bar);
    }
    let _ = multi.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_interval() {
        let mut c = ProgressCounter::default();
        let mut due = 0;
        for _ in 0..(3 * REPORT_INTERVAL / 1024 + 1) {
            if c.add(1024) {
                due += 1;
            }
        }
        assert_eq!(due, 3);
        assert!(!ProgressCounter::default().add(REPORT_INTERVAL - 1));
        assert!(ProgressCounter::default().add(REPORT_INTERVAL));
    }
}
