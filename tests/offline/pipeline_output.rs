//! A new output needs nothing but the two traits: this test-only output collects rows in
//! memory and runs through the real `dump::run` pipeline (real parser, real file source), with
//! no change to the pipeline. It also pins the pipeline's lifecycle contract: the order of the
//! calls, the context handed once per writer, `finalize_batch` only on success and
//! `abort_batch` (and nothing else) on failure.

use crate::common;

use std::sync::{Arc, Mutex};

use rdbinsight::dump::{self, DumpPlan, Progress};
use rdbinsight::output::{BatchContext, ChunkWriter, Output, OutputError};
use rdbinsight::parser::{ParseOptions, RdbParser};
use rdbinsight::record::{BatchTs, Record, WriteContext};
use rdbinsight::source::{Instance, InstanceOpener};

/// What the output saw, in order.
#[derive(Debug, Default)]
struct Log {
    events: Vec<String>,
    rows: Vec<(WriteContext, Record)>,
}

#[derive(Clone, Default)]
struct Collect {
    log: Arc<Mutex<Log>>,
    /// Fail `write_record` of this instance.
    fail_instance: Option<String>,
}

impl Collect {
    fn event(&self, e: String) {
        self.log.lock().unwrap().events.push(e);
    }
}

struct CollectWriter {
    output: Collect,
    ctx: WriteContext,
}

impl Output for Collect {
    type Writer = CollectWriter;

    async fn prepare_batch(&mut self, batch: &BatchContext) -> Result<(), OutputError> {
        self.event(format!("prepare_batch {} {}", batch.cluster, batch.batch));
        Ok(())
    }

    fn writer_for(&mut self, ctx: WriteContext) -> Result<CollectWriter, OutputError> {
        self.event(format!("writer_for {}", ctx.instance));
        Ok(CollectWriter {
            output: self.clone(),
            ctx,
        })
    }

    async fn finalize_batch(&mut self) -> Result<(), OutputError> {
        self.event("finalize_batch".into());
        Ok(())
    }

    async fn abort_batch(&mut self) {
        self.event("abort_batch".into());
    }
}

impl ChunkWriter for CollectWriter {
    async fn write_record(&mut self, record: &Record) -> Result<(), OutputError> {
        if self.output.fail_instance.as_deref() == Some(&*self.ctx.instance) {
            return Err(OutputError::io(
                "cannot write (test)",
                std::io::Error::other("disk full (test)"),
            ));
        }
        let mut log = self.output.log.lock().unwrap();
        log.rows.push((self.ctx.clone(), record.clone()));
        Ok(())
    }

    async fn finalize_instance(&mut self) -> Result<(), OutputError> {
        self.output
            .event(format!("finalize_instance {}", self.ctx.instance));
        Ok(())
    }
}

fn fixture(name: &str) -> std::path::PathBuf {
    common::fixtures::own_fixtures().join(name)
}

fn plan(instances: &[(&str, &str)]) -> DumpPlan {
    DumpPlan {
        batch: BatchContext {
            cluster: "c".into(),
            batch: BatchTs::from_nanos(1_700_000_000_000_000_001),
        },
        instances: instances
            .iter()
            .map(|(name, file)| Instance {
                name: name.to_string(),
                slots: None,
                opener: InstanceOpener::File(fixture(file)),
            })
            .collect(),
        concurrency: 1,
        parse: ParseOptions::default(),
    }
}

fn parse_all(file: &str) -> Vec<Record> {
    let f = std::fs::File::open(fixture(file)).unwrap();
    let mut p = RdbParser::new(f, file, ParseOptions::default());
    let mut out = Vec::new();
    while let Some(r) = p.next_record().unwrap() {
        out.push(r);
    }
    out
}

/// The real pipeline over `instances` (`(name, fixture)`) into `output`: its result, and the
/// log of what the output saw.
fn run(
    output: Collect,
    instances: &[(&str, &str)],
) -> (anyhow::Result<dump::DumpSummary>, Arc<Mutex<Log>>) {
    let log = Arc::clone(&output.log);
    let result = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(dump::run(plan(instances), output, Progress::new(false)));
    (result, log)
}

#[test]
fn a_test_only_output_runs_through_the_real_pipeline() {
    let output = Collect::default();
    let (summary, log) = run(
        output,
        &[("a:1", "r7-strings.rdb"), ("b:2", "r7-multidb.rdb")],
    );
    let summary = summary.expect("dump");
    let log = log.lock().unwrap();
    let expected_a = parse_all("r7-strings.rdb");
    let expected_b = parse_all("r7-multidb.rdb");
    assert!(!expected_a.is_empty() && !expected_b.is_empty());
    assert_eq!(
        summary.records as usize,
        expected_a.len() + expected_b.len()
    );
    assert_eq!(
        log.events,
        [
            "prepare_batch c 2023-11-14T22:13:20.000000001Z",
            "writer_for a:1",
            "writer_for b:2",
            "finalize_instance a:1",
            "finalize_instance b:2",
            "finalize_batch",
        ]
    );
    // Every record arrived once, in parser order, with its instance's context.
    let of = |name: &str| -> Vec<Record> {
        log.rows
            .iter()
            .filter(|(ctx, _)| &*ctx.instance == name)
            .map(|(ctx, r)| {
                assert_eq!(&*ctx.cluster, "c");
                assert_eq!(ctx.batch.nanos(), 1_700_000_000_000_000_001);
                r.clone()
            })
            .collect()
    };
    assert_eq!(of("a:1"), expected_a);
    assert_eq!(of("b:2"), expected_b);
}

#[test]
fn a_failing_writer_aborts_the_batch_and_never_finalizes_it() {
    let output = Collect {
        fail_instance: Some("b:2".into()),
        ..Collect::default()
    };
    let (err, log) = run(
        output,
        &[("a:1", "r7-strings.rdb"), ("b:2", "r7-multidb.rdb")],
    );
    let err = err.expect_err("b fails");
    let text = format!("{err:#}");
    assert!(text.contains("instance b:2 failed"), "{text}");
    assert!(text.contains("disk full (test)"), "{text}");
    assert!(text.contains("the batch was not finalized"), "{text}");
    let events = &log.lock().unwrap().events;
    assert_eq!(events.last().map(String::as_str), Some("abort_batch"));
    assert!(!events.iter().any(|e| e == "finalize_batch"), "{events:?}");
    assert!(!events.iter().any(|e| e == "finalize_instance b:2"));
}

#[test]
fn an_unreadable_source_aborts_the_batch() {
    let output = Collect::default();
    let (err, log) = run(
        output,
        &[("a:1", "r7-strings.rdb"), ("gone", "no-such-file.rdb")],
    );
    let err = err.expect_err("missing file");
    assert!(format!("{err:#}").contains("no-such-file.rdb"), "{err:#}");
    let events = &log.lock().unwrap().events;
    assert_eq!(events.last().map(String::as_str), Some("abort_batch"));
    assert!(!events.iter().any(|e| e == "finalize_batch"));
}
