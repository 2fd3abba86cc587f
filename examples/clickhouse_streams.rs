//! Many instances into ClickHouse at once, through the real pipeline: `N` instances that all
//! read the same RDB file (named `i1`..`iN`), `--concurrency N`, into ClickHouse or into
//! nothing (`null`, the parser alone). `bench/clickhouse.sh` runs both under `/usr/bin/time`:
//! the difference in peak RSS divided by N is the ClickHouse writer's memory per instance.
//!
//! ```text
//! cargo run --release --example clickhouse_streams -- FILE.rdb N clickhouse 'http://host:port?database=DB'
//! cargo run --release --example clickhouse_streams -- FILE.rdb N null
//! ```

use rdbinsight::dump::{self, DumpPlan, Progress};
use rdbinsight::output::BatchContext;
use rdbinsight::output::clickhouse::ClickHouseOutput;
use rdbinsight::output::null::NullOutput;
use rdbinsight::parser::ParseOptions;
use rdbinsight::record::BatchTs;
use rdbinsight::source::{Instance, InstanceOpener};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: clickhouse_streams FILE.rdb N (clickhouse URL | null)";
    let (file, n, target) = match args.as_slice() {
        [file, n, target, ..] => (file, n.parse::<usize>()?, target.as_str()),
        _ => return Err(usage.into()),
    };
    let plan = DumpPlan {
        batch: BatchContext {
            cluster: "streams".into(),
            batch: BatchTs::now(),
        },
        instances: (1..=n)
            .map(|i| Instance {
                name: format!("i{i}"),
                slots: None,
                opener: InstanceOpener::File(file.into()),
            })
            .collect(),
        concurrency: n,
        parse: ParseOptions::default(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(n.clamp(2, 8))
        .enable_all()
        .build()?;
    let progress = Progress::new(false);
    let summary = match (target, args.get(3)) {
        ("null", _) => runtime.block_on(dump::run(plan, NullOutput, progress))?,
        ("clickhouse", Some(url)) => {
            let output = ClickHouseOutput::from_args(url, None, true, 30)?;
            runtime.block_on(dump::run(plan, output, progress))?
        }
        _ => return Err(usage.into()),
    };
    println!(
        "{} records from {} instances in {:.2} s",
        summary.records,
        summary.instances,
        summary.elapsed.as_secs_f64()
    );
    Ok(())
}
