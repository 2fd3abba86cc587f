//! [`Aggregates`] + prefix tree → [`ReportData`]: every sum, order and cut of the report, in one
//! place shared by both readers (so the stores can only differ in what they hand over).

use std::cmp::Reverse;
use std::collections::BTreeMap;

use crate::record::expire::format_ms;
use crate::record::{BatchContext, InstanceSummary};
use crate::slot::SlotKind;

use super::aggregate::{Aggregates, EXPIRY_BUCKETS, KeyCandidate, rank_cmp};
use super::keytext::{form_text, key_text};
use super::model::{
    Agg, BIG_MEMBERS, BIG_OTHER_BYTES, BIG_STRING_BYTES, Balance, BucketRow, Cold, DbRow, Expiry,
    FORMAT_VERSION, FREQ_BOUNDS, HistBucket, Histogram, IDLE_BOUNDS, InstanceMemory, InstanceRow,
    KeyRow, Measure, Memory, NoTtlPrefix, Outliers, Params, PrefixTree, ReportData, SharedSlot,
    SlotRow, TOP_SLOTS, Totals, TypeEncodingRow, TypeRow,
};
use super::options::ReportOptions;

/// The parameters section, with the threshold in bytes for this total of the measure.
pub fn params(opts: &ReportOptions, total_measured: u64) -> Params {
    Params {
        top: opts.top,
        prefix_threshold_pct: opts.prefix_threshold.normalized(),
        prefix_threshold_bytes: opts.prefix_threshold.bytes(total_measured),
        delimiter: opts.delimiter.as_ref().map(|d| d.as_str().to_string()),
        big_string_bytes: BIG_STRING_BYTES,
        big_other_bytes: BIG_OTHER_BYTES,
        big_members: BIG_MEMBERS,
    }
}

/// The sum over all groups (the batch totals without `with_ttl`).
pub fn total_agg(a: &Aggregates) -> Agg {
    let mut t = Agg::default();
    for agg in a.groups.values() {
        t.merge(agg);
    }
    t
}

/// Why the pieces do not fit together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the batch changed while it was read ({0}); is another dump writing the same batch? Run the \
     report again"
)]
pub struct Inconsistent(pub String);

/// Build the report.
pub fn assemble(
    id: &BatchContext,
    opts: &ReportOptions,
    a: Aggregates,
    tree: PrefixTree,
) -> Result<ReportData, Inconsistent> {
    let total = total_agg(&a);
    let bms = id.batch.millis();
    let m = a.measure;
    let params = params(opts, total.measured(m));
    let top = usize::try_from(opts.top).unwrap_or(usize::MAX);

    // Consistency: the tree's first node holds every key (with or without snapping), and
    // there is a tree exactly when there are bytes.
    match tree.nodes.first() {
        Some(root) if root.agg != total => {
            return Err(Inconsistent(format!(
                "{} keys / {} bytes in the key listing, {} keys / {} bytes in the aggregates",
                root.agg.keys, root.agg.rdb_size, total.keys, total.rdb_size
            )));
        }
        None if total.measured(m) > 0 => {
            return Err(Inconsistent("no keys in the key listing".into()));
        }
        _ => {}
    }
    let mut expiry_sum = Agg::default();
    for b in &a.expiry {
        expiry_sum.merge(b);
    }
    if expiry_sum != total {
        return Err(Inconsistent(format!(
            "{} keys by expiry, {} in the aggregates",
            expiry_sum.keys, total.keys
        )));
    }

    let mut by_type: BTreeMap<&str, Agg> = BTreeMap::new();
    let mut by_type_encoding: BTreeMap<(&str, &str), Agg> = BTreeMap::new();
    let mut by_db: BTreeMap<u64, Agg> = BTreeMap::new();
    let mut by_instance: BTreeMap<&str, Agg> = BTreeMap::new();
    for (g, agg) in &a.groups {
        by_type.entry(&g.rtype).or_default().merge(agg);
        by_type_encoding
            .entry((&g.rtype, &g.encoding))
            .or_default()
            .merge(agg);
        by_db.entry(g.db).or_default().merge(agg);
        by_instance.entry(&g.instance).or_default().merge(agg);
    }
    let mut with_ttl = Agg::default();
    for b in &a.expiry[1..] {
        with_ttl.merge(b);
    }
    let totals = Totals {
        agg: total,
        instances: by_instance.len() as u64,
        dbs: by_db.len() as u64,
        with_ttl,
    };

    let mut by_type: Vec<TypeRow> = by_type
        .into_iter()
        .map(|(t, agg)| TypeRow {
            r#type: t.to_string(),
            agg,
        })
        .collect();
    // Largest first; ties by name.
    by_type.sort_by(|x, y| {
        (Reverse(x.agg.measured(m)), &x.r#type).cmp(&(Reverse(y.agg.measured(m)), &y.r#type))
    });
    let mut by_type_encoding: Vec<TypeEncodingRow> = by_type_encoding
        .into_iter()
        .map(|((t, e), agg)| TypeEncodingRow {
            r#type: t.to_string(),
            encoding: e.to_string(),
            agg,
        })
        .collect();
    by_type_encoding.sort_by(|x, y| {
        (Reverse(x.agg.measured(m)), &x.r#type, &x.encoding).cmp(&(
            Reverse(y.agg.measured(m)),
            &y.r#type,
            &y.encoding,
        ))
    });
    let by_db: Vec<DbRow> = by_db
        .into_iter()
        .map(|(db, agg)| DbRow { db, agg })
        .collect();
    let by_instance: Vec<InstanceRow> = by_instance
        .into_iter()
        .map(|(i, agg)| InstanceRow {
            instance: i.to_string(),
            agg,
        })
        .collect();

    let key_rows = |mut v: Vec<KeyCandidate>, by_members: bool| -> Vec<KeyRow> {
        let metric = |c: &KeyCandidate| {
            if by_members {
                c.member_count
            } else {
                c.measured(m)
            }
        };
        v.sort_by(|x, y| {
            rank_cmp(
                (metric(x), &x.key, &x.instance, x.db),
                (metric(y), &y.key, &y.instance, y.db),
            )
        });
        v.truncate(top);
        v.into_iter().map(|c| key_row(c, bms)).collect()
    };

    let expiry = Expiry {
        buckets: EXPIRY_BUCKETS
            .iter()
            .zip(a.expiry.iter())
            .map(|(id, agg)| BucketRow {
                id: id.to_string(),
                agg: *agg,
            })
            .collect(),
        no_ttl_prefixes: no_ttl_prefixes(&tree, top, m),
    };

    let cold = Cold {
        idle: histogram(&IDLE_BOUNDS, &a.idle),
        freq: histogram(&FREQ_BOUNDS, &a.freq),
    };

    let outliers = Outliers {
        big_keys: key_rows(a.big_keys, false),
        big_keys_total: a.big_agg.keys,
        big_keys_agg: a.big_agg,
    };

    let balance = balance(&totals, &by_instance, &a.slots, m);
    let memory = memory(opts, m, &totals, &by_instance, &a.summaries);

    let mut data = ReportData {
        format_version: FORMAT_VERSION,
        generator: format!("rdbinsight {}", env!("CARGO_PKG_VERSION")),
        cluster: id.cluster.clone(),
        batch: id.batch.rfc3339(),
        params,
        memory,
        totals,
        by_type,
        by_type_encoding,
        by_db,
        by_instance,
        top_keys_by_size: key_rows(a.top_by_size, false),
        top_keys_by_members: key_rows(a.top_by_members, true),
        prefix_tree: tree,
        expiry,
        cold,
        outliers,
        balance,
        recommendations: Vec::new(),
        changes: None,
    };
    data.recommendations = super::advice::recommendations(&data);
    Ok(data)
}

fn key_row(c: KeyCandidate, batch_ms: i64) -> KeyRow {
    KeyRow {
        key: form_text(&c.key),
        instance: c.instance.to_string(),
        db: c.db,
        r#type: c.rtype.as_str().to_string(),
        encoding: c.encoding.to_string(),
        rdb_size: c.rdb_size,
        mem_size: c.mem_size,
        member_count: c.member_count,
        expire_at: c.expire_ms.map(format_ms),
        // |expire_ms| <= i64::MAX / 1000 (report_expire_ms): no overflow.
        ttl_ms: c.expire_ms.map(|ms| ms - batch_ms),
        idle_seconds: c.idle_seconds,
        freq: c.freq,
    }
}

fn no_ttl_prefixes(tree: &PrefixTree, top: usize, m: Measure) -> Vec<NoTtlPrefix> {
    let mut v: Vec<(usize, &super::model::PrefixNode)> = tree
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.no_ttl.measured(m) > 0)
        .collect();
    // The nodes are sorted by prefix bytes, so a stable sort by bytes keeps that order on ties.
    v.sort_by_key(|x| Reverse(x.1.no_ttl.measured(m)));
    v.truncate(top);
    v.into_iter()
        .map(|(i, n)| NoTtlPrefix {
            // i < MAX_PREFIX_NODES.
            node: i as u32,
            prefix: n.prefix.clone(),
            no_ttl: n.no_ttl,
            all: n.agg,
        })
        .collect()
}

fn histogram(bounds: &[u64], buckets: &[Agg]) -> Histogram {
    let mut with_field = Agg::default();
    let mut out = Vec::with_capacity(buckets.len());
    for (i, agg) in buckets.iter().enumerate() {
        with_field.merge(agg);
        out.push(HistBucket {
            lo: if i == 0 { 0 } else { bounds[i - 1] },
            hi: bounds.get(i).copied(),
            agg: *agg,
        });
    }
    Histogram {
        with_field,
        buckets: out,
    }
}

fn balance(
    totals: &Totals,
    by_instance: &[InstanceRow],
    slots: &BTreeMap<(SlotKind, u16, String), Agg>,
    m: Measure,
) -> Balance {
    let max = |f: fn(&Agg) -> u64| by_instance.iter().map(|r| f(&r.agg)).max().unwrap_or(0);
    let mean = |x: u64| {
        if totals.instances == 0 {
            0.0
        } else {
            x as f64 / totals.instances as f64
        }
    };
    // (kind, slot) -> (sum, instances with their sums, in name order: the map is ordered).
    let mut per_slot: BTreeMap<(SlotKind, u16), (Agg, Vec<InstanceRow>)> = BTreeMap::new();
    for ((kind, slot, instance), agg) in slots {
        let e = per_slot.entry((*kind, *slot)).or_default();
        e.0.merge(agg);
        e.1.push(InstanceRow {
            instance: instance.clone(),
            agg: *agg,
        });
    }
    let rows: Vec<SlotRow> = per_slot
        .iter()
        .map(|((kind, slot), (agg, insts))| SlotRow {
            kind: kind.as_str().to_string(),
            slot: *slot,
            instances: insts.len() as u64,
            agg: *agg,
        })
        .collect();
    // `rows` is in (kind, slot) order, so stable sorts keep it on ties.
    let mut by_bytes = rows.clone();
    by_bytes.sort_by_key(|x| Reverse(x.agg.measured(m)));
    by_bytes.truncate(TOP_SLOTS);
    let mut by_keys = rows;
    by_keys.sort_by_key(|x| Reverse(x.agg.keys));
    by_keys.truncate(TOP_SLOTS);
    let shared_slots = per_slot
        .into_iter()
        .filter(|(_, (_, insts))| insts.len() > 1)
        .map(|((kind, slot), (_, instances))| SharedSlot {
            kind: kind.as_str().to_string(),
            slot,
            instances,
        })
        .collect();
    Balance {
        keys_max: max(|a| a.keys),
        rdb_size_max: max(|a| a.rdb_size),
        mem_size_max: max(|a| a.mem_size),
        keys_mean: mean(totals.agg.keys),
        rdb_size_mean: mean(totals.agg.rdb_size),
        mem_size_mean: mean(totals.agg.mem_size),
        top_slots_by_bytes: by_bytes,
        top_slots_by_keys: by_keys,
        shared_slots,
    }
}

/// The memory section: the measure used (and why, if not the one asked for), the keys
/// without `mem_size`, and per instance its model and the reconciliation with `used-mem`.
fn memory(
    opts: &ReportOptions,
    m: Measure,
    totals: &Totals,
    by_instance: &[InstanceRow],
    summaries: &BTreeMap<String, InstanceSummary>,
) -> Memory {
    let note = (m != opts.measure).then(|| {
        format!(
            "none of the batch's {} keys has a mem_size (it was stored before rdbinsight \
             measured memory, or by a store without the column): every ranking, the prefix \
             tree and the big keys use rdb_size, the serialized size, instead",
            totals.agg.keys
        )
    });
    let instances = by_instance
        .iter()
        .map(|r| {
            let s = summaries.get(&r.instance);
            let keyspace_tables = s.and_then(|s| s.keyspace_tables);
            InstanceMemory {
                instance: r.instance.clone(),
                summary: s.is_some(),
                model: s.and_then(|s| s.memory_model.clone()),
                approximate: s.is_some_and(|s| s.memory_approximate),
                rdb_server: s.and_then(|s| s.rdb_server.clone()),
                mem_size: r.agg.mem_size,
                keys_without_mem_size: r.agg.mem_missing,
                keyspace_tables,
                keys_and_tables: keyspace_tables.and_then(|t| r.agg.mem_size.checked_add(t)),
                used_mem: s.and_then(|s| s.used_mem),
            }
        })
        .collect();
    Memory {
        requested: opts.measure.as_str().to_string(),
        measure: m.as_str().to_string(),
        note,
        keys_without_mem_size: totals.agg.mem_missing,
        instances,
    }
}

/// The raw bytes of a [`KeyText`].
pub fn key_bytes(k: &crate::report::model::KeyText) -> Vec<u8> {
    use base64::Engine as _;
    match &k.base64 {
        Some(b) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .unwrap_or_else(|_| k.text.as_bytes().to_vec()),
        None => k.text.as_bytes().to_vec(),
    }
}

/// The union of two trees' prefixes, ascending: (bytes, in the current tree, in the baseline's).
pub fn union_prefixes(
    current: &crate::report::model::PrefixTree,
    baseline: &crate::report::model::PrefixTree,
) -> Vec<(Vec<u8>, bool, bool)> {
    let mut all: Vec<(Vec<u8>, bool, bool)> = current
        .nodes
        .iter()
        .map(|n| (key_bytes(&n.prefix), true, false))
        .chain(
            baseline
                .nodes
                .iter()
                .map(|n| (key_bytes(&n.prefix), false, true)),
        )
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(Vec<u8>, bool, bool)> = Vec::with_capacity(all.len());
    for (p, c, b) in all {
        match out.last_mut() {
            Some(last) if last.0 == p => {
                last.1 |= c;
                last.2 |= b;
            }
            _ => out.push((p, c, b)),
        }
    }
    out
}

/// What `changes` is made from besides the two reports.
pub struct ChangeInputs<'a> {
    pub measure: Measure,
    pub note: Option<String>,
    pub current_threshold: u64,
    pub baseline_threshold: u64,
    /// [`union_prefixes`] of the two trees built with `measure`.
    pub union: &'a [(Vec<u8>, bool, bool)],
    pub parts: crate::report::diff::DiffParts,
}

fn change_row(name: String, current: Agg, baseline: Agg) -> crate::report::model::ChangeRow {
    crate::report::model::ChangeRow {
        name,
        delta: crate::report::model::Delta::between(&current, &baseline),
        current,
        baseline,
    }
}

/// Rows of both batches' groups, joined by name, in `order`.
fn join_rows<K: Ord>(
    cur: impl Iterator<Item = (K, String, Agg)>,
    base: impl Iterator<Item = (K, String, Agg)>,
) -> Vec<crate::report::model::ChangeRow> {
    let mut m: BTreeMap<K, (String, Agg, Agg)> = BTreeMap::new();
    for (k, name, a) in cur {
        m.entry(k)
            .or_insert((name, Agg::default(), Agg::default()))
            .1 = a;
    }
    for (k, name, a) in base {
        m.entry(k)
            .or_insert((name, Agg::default(), Agg::default()))
            .2 = a;
    }
    m.into_values()
        .map(|(name, c, b)| change_row(name, c, b))
        .collect()
}

/// The "changes since the baseline" part (its orders: see [`crate::report::model::Changes`]).
pub fn changes(
    cur: &ReportData,
    base: &ReportData,
    top: u64,
    inp: ChangeInputs<'_>,
) -> Result<crate::report::model::Changes, Inconsistent> {
    use crate::report::model::{Changes, Delta, KeyChange, PrefixChange};
    let m = inp.measure;
    let top = usize::try_from(top).unwrap_or(usize::MAX);
    if inp.union.len() != inp.parts.prefix_sums.len() {
        return Err(Inconsistent("prefix sums do not match the prefixes".into()));
    }
    let prefixes: Vec<PrefixChange> = inp
        .union
        .iter()
        .zip(&inp.parts.prefix_sums)
        .map(|((p, in_c, in_b), (c, b))| PrefixChange {
            prefix: key_text(p),
            prefix_len: p.len() as u64,
            in_current: *in_c,
            in_baseline: *in_b,
            current: *c,
            baseline: *b,
            delta: Delta::between(c, b),
        })
        .collect();
    let ranked =
        |keep: &dyn Fn(&PrefixChange) -> bool, rank: &dyn Fn(&PrefixChange) -> i128| -> Vec<u32> {
            let mut v: Vec<(i128, u32)> = prefixes
                .iter()
                .enumerate()
                .filter(|(_, p)| keep(p))
                .map(|(i, p)| (rank(p), i as u32))
                .collect();
            v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            v.truncate(top);
            v.into_iter().map(|x| x.1).collect()
        };
    let growth = ranked(&|p| p.delta.measured(m) > 0, &|p| p.delta.measured(m));
    let shrink = ranked(&|p| p.delta.measured(m) < 0, &|p| -p.delta.measured(m));
    let appeared = ranked(&|p| p.baseline.keys == 0, &|p| {
        i128::from(p.current.measured(m))
    });
    let vanished = ranked(&|p| p.current.keys == 0, &|p| {
        i128::from(p.baseline.measured(m))
    });
    let bt = inp.baseline_threshold;
    let mut rel: Vec<u32> = prefixes
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            let b = p.baseline.measured(m);
            b > 0 && b >= bt && p.delta.measured(m) > 0
        })
        .map(|(i, _)| i as u32)
        .collect();
    rel.sort_by(|&x, &y| {
        let (px, py) = (&prefixes[x as usize], &prefixes[y as usize]);
        let lhs = u128::from(px.current.measured(m)) * u128::from(py.baseline.measured(m));
        let rhs = u128::from(py.current.measured(m)) * u128::from(px.baseline.measured(m));
        rhs.cmp(&lhs).then(x.cmp(&y))
    });
    rel.truncate(top);
    let key_row = |c: &crate::report::diff::KeyCand| KeyChange {
        key: form_text(&c.key),
        db: c.db,
        r#type: c
            .current
            .rtype
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        baseline_type: c.baseline.rtype.map(|t| t.as_str().to_string()),
        type_changed: matches!((c.current.rtype, c.baseline.rtype), (Some(a), Some(b)) if a != b),
        current: c.current.agg.measured(m),
        baseline: c.baseline.agg.measured(m),
        delta: i128::from(c.current.agg.measured(m)) - i128::from(c.baseline.agg.measured(m)),
    };
    let type_rows = |d: &ReportData| {
        d.by_type
            .iter()
            .map(|r| (r.r#type.clone(), r.r#type.clone(), r.agg))
            .collect::<Vec<_>>()
    };
    let db_rows = |d: &ReportData| {
        d.by_db
            .iter()
            .map(|r| (r.db, r.db.to_string(), r.agg))
            .collect::<Vec<_>>()
    };
    let inst_rows = |d: &ReportData| {
        d.by_instance
            .iter()
            .map(|r| (r.instance.clone(), r.instance.clone(), r.agg))
            .collect::<Vec<_>>()
    };
    Ok(Changes {
        baseline: base.batch.clone(),
        measure: m.as_str().to_string(),
        note: inp.note,
        baseline_prefix_threshold_bytes: inp.baseline_threshold,
        current_prefix_threshold_bytes: inp.current_threshold,
        totals: change_row(String::new(), cur.totals.agg, base.totals.agg),
        no_ttl: change_row(
            "no_ttl".into(),
            cur.expiry.bucket("no_ttl"),
            base.expiry.bucket("no_ttl"),
        ),
        expired: change_row(
            "expired".into(),
            cur.expiry.bucket("expired"),
            base.expiry.bucket("expired"),
        ),
        by_type: join_rows(type_rows(cur).into_iter(), type_rows(base).into_iter()),
        by_db: join_rows(db_rows(cur).into_iter(), db_rows(base).into_iter()),
        by_instance: join_rows(inst_rows(cur).into_iter(), inst_rows(base).into_iter()),
        keys_type_changed: inp.parts.keys_type_changed,
        growth,
        relative_growth: rel,
        appeared,
        vanished,
        shrink,
        top_key_growth: inp.parts.top_growth.iter().map(key_row).collect(),
        top_new_keys: inp.parts.top_new.iter().map(key_row).collect(),
        prefixes,
    })
}
