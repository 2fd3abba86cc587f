//! The report's recommendations ([`ReportData::recommendations`]), decided from the other
//! sections of a finished [`ReportData`] only: both stores hand over identical sections, so the
//! list is identical too. Every threshold is compared exactly on integers (u128 products, never
//! a float); the page only phrases what is here.

use super::model::{
    Agg, COLD_IDLE_SECONDS, COLD_PCT, IMBALANCE_DEN, IMBALANCE_NUM, KeyRow, Measure, NO_TTL_PCT,
    Recommendation, ReportData, SMALL_MEMBERS_AVG, SmallCollections,
};

/// The recommendations for `d`, in the order of [`Recommendation`]'s variants.
pub fn recommendations(d: &ReportData) -> Vec<Recommendation> {
    let m = measure(d);
    let mut out = Vec::new();
    let big = &d.outliers.big_keys;
    let at_least = d.outliers.big_keys_total > big.len() as u64;
    let key_bytes = |k: &KeyRow| m.of(k.rdb_size, k.mem_size);

    let strings: Vec<&KeyRow> = big.iter().filter(|k| k.r#type == "string").collect();
    if let Some(first) = strings.first() {
        out.push(Recommendation::BigStrings {
            keys: strings.len() as u64,
            at_least,
            largest: first.key.clone(),
            largest_instance: first.instance.clone(),
            largest_bytes: key_bytes(first),
        });
    }
    let colls: Vec<&KeyRow> = big.iter().filter(|k| k.r#type != "string").collect();
    if let Some(first) = colls.first() {
        out.push(Recommendation::HugeCollections {
            keys: colls.len() as u64,
            at_least,
            largest: first.key.clone(),
            largest_type: first.r#type.clone(),
            largest_members: first.member_count,
        });
    }

    type Make = fn(SmallCollections) -> Recommendation;
    let compact: [(&str, &str, Make); 3] = [
        ("hash", "raw", Recommendation::SmallHash),
        ("set", "raw", Recommendation::SmallSet),
        ("zset", "skip_list", Recommendation::SmallZset),
    ];
    for (rtype, encoding, make) in compact {
        let Some(row) = d
            .by_type_encoding
            .iter()
            .find(|r| r.r#type == rtype && r.encoding == encoding)
        else {
            continue;
        };
        // The listed big keys are left out: a few huge collections would otherwise hide many
        // small ones in the average. They are a subset of the group, so nothing goes below 0.
        let (mut keys, mut members, mut bytes, mut left) = (
            row.agg.keys,
            row.agg.member_count,
            row.agg.measured(m),
            0u64,
        );
        for k in big
            .iter()
            .filter(|k| k.r#type == rtype && k.encoding == encoding)
        {
            keys = keys.saturating_sub(1);
            members = members.saturating_sub(k.member_count);
            bytes = bytes.saturating_sub(key_bytes(k));
            left += 1;
        }
        if keys == 0 || u128::from(members) > u128::from(SMALL_MEMBERS_AVG) * u128::from(keys) {
            continue;
        }
        out.push(make(SmallCollections {
            encoding: encoding.to_string(),
            keys,
            bytes,
            member_count: members,
            big_keys_left_out: left,
        }));
    }

    let total = d.totals.agg.measured(m);
    let no_ttl = d.expiry.bucket("no_ttl");
    if total > 0
        && u128::from(no_ttl.measured(m)) * 100 >= u128::from(total) * u128::from(NO_TTL_PCT)
    {
        let prefix = d
            .expiry
            .no_ttl_prefixes
            .iter()
            .find(|p| !p.prefix.text.is_empty());
        out.push(Recommendation::NoTtl {
            keys: no_ttl.keys,
            bytes: no_ttl.measured(m),
            total_bytes: total,
            prefix: prefix.map(|p| p.prefix.clone()),
            prefix_bytes: prefix.map_or(0, |p| p.no_ttl.measured(m)),
        });
    }

    let expired = d.expiry.bucket("expired");
    if expired.keys > 0 {
        out.push(Recommendation::Expired {
            keys: expired.keys,
            bytes: expired.measured(m),
        });
    }

    if d.by_db.len() > 1 {
        out.push(Recommendation::ManyDbs {
            dbs: d.by_db.iter().map(|r| r.db).collect(),
        });
    }

    let n = d.by_instance.len() as u64;
    if n > 1 && total > 0 {
        // The first instance (by name) among those holding the most.
        let biggest = d
            .by_instance
            .iter()
            .fold(None::<&super::model::InstanceRow>, |acc, r| match acc {
                Some(a) if a.agg.measured(m) >= r.agg.measured(m) => Some(a),
                _ => Some(r),
            });
        if let Some(b) = biggest {
            let bytes = b.agg.measured(m);
            if u128::from(bytes) * u128::from(n) * u128::from(IMBALANCE_DEN)
                >= u128::from(total) * u128::from(IMBALANCE_NUM)
            {
                out.push(Recommendation::Imbalance {
                    instance: b.instance.clone(),
                    bytes,
                    total_bytes: total,
                    instances: n,
                });
            }
        }
    }

    if !d.balance.shared_slots.is_empty() {
        out.push(Recommendation::SharedSlots {
            slots: d.balance.shared_slots.len() as u64,
        });
    }

    let idle = &d.cold.idle;
    let with_idle = idle.with_field.measured(m);
    if with_idle > 0 {
        let mut old = Agg::default();
        for b in idle.buckets.iter().filter(|b| b.lo >= COLD_IDLE_SECONDS) {
            old.merge(&b.agg);
        }
        if old.keys > 0
            && u128::from(old.measured(m)) * 100 >= u128::from(with_idle) * u128::from(COLD_PCT)
        {
            out.push(Recommendation::Cold {
                keys: old.keys,
                bytes: old.measured(m),
                with_idle_bytes: with_idle,
            });
        }
    }
    out
}

/// The measure the report used ([`super::model::Memory::measure`]).
fn measure(d: &ReportData) -> Measure {
    d.memory.measure.parse().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::key_text;
    use crate::report::model::*;

    fn agg(keys: u64, mem: u64, members: u64) -> Agg {
        Agg {
            keys,
            rdb_size: mem / 2,
            mem_size: mem,
            mem_missing: 0,
            member_count: members,
        }
    }

    fn hist(bounds: &[u64]) -> Histogram {
        Histogram {
            with_field: Agg::default(),
            buckets: (0..=bounds.len())
                .map(|i| HistBucket {
                    lo: if i == 0 { 0 } else { bounds[i - 1] },
                    hi: bounds.get(i).copied(),
                    agg: Agg::default(),
                })
                .collect(),
        }
    }

    /// A batch of one instance, one db, `total` bytes in strings, all with a TTL far away
    /// (nothing to recommend).
    fn base(total: Agg) -> ReportData {
        let bucket = |id: &str, agg: Agg| BucketRow { id: id.into(), agg };
        ReportData {
            format_version: FORMAT_VERSION,
            generator: "rdbinsight test".into(),
            cluster: "c".into(),
            batch: "2024-01-02T03:04:05.000000000Z".into(),
            params: Params {
                top: 100,
                prefix_threshold_pct: "1".into(),
                prefix_threshold_bytes: 1,
                delimiter: None,
                big_string_bytes: BIG_STRING_BYTES,
                big_other_bytes: BIG_OTHER_BYTES,
                big_members: BIG_MEMBERS,
            },
            memory: Memory {
                requested: "mem".into(),
                measure: "mem".into(),
                note: None,
                keys_without_mem_size: 0,
                instances: vec![],
            },
            totals: Totals {
                agg: total,
                instances: 1,
                dbs: 1,
                with_ttl: total,
            },
            by_type: vec![],
            by_type_encoding: vec![],
            by_db: vec![DbRow { db: 0, agg: total }],
            by_instance: vec![InstanceRow {
                instance: "i1".into(),
                agg: total,
            }],
            prefix_tree: PrefixTree { nodes: vec![] },
            top_keys_by_size: vec![],
            top_keys_by_members: vec![],
            expiry: Expiry {
                buckets: vec![
                    bucket("no_ttl", Agg::default()),
                    bucket("expired", Agg::default()),
                    bucket("gt_30d", total),
                ],
                no_ttl_prefixes: vec![],
            },
            cold: Cold {
                idle: hist(&IDLE_BOUNDS),
                freq: hist(&FREQ_BOUNDS),
            },
            outliers: Outliers {
                big_keys: vec![],
                big_keys_total: 0,
                big_keys_agg: Agg::default(),
            },
            balance: Balance {
                keys_max: total.keys,
                rdb_size_max: total.rdb_size,
                mem_size_max: total.mem_size,
                keys_mean: total.keys as f64,
                rdb_size_mean: total.rdb_size as f64,
                mem_size_mean: total.mem_size as f64,
                top_slots_by_bytes: vec![],
                top_slots_by_keys: vec![],
                shared_slots: vec![],
            },
            recommendations: vec![],
            changes: None,
        }
    }

    fn big_key(key: &str, rtype: &str, encoding: &str, mem: u64, members: u64) -> KeyRow {
        KeyRow {
            key: key_text(key.as_bytes()),
            instance: "i1".into(),
            db: 0,
            r#type: rtype.into(),
            encoding: encoding.into(),
            rdb_size: mem / 2,
            mem_size: Some(mem),
            member_count: members,
            expire_at: None,
            ttl_ms: None,
            idle_seconds: None,
            freq: None,
        }
    }

    fn kinds(d: &ReportData) -> Vec<String> {
        recommendations(d)
            .iter()
            .map(|r| {
                serde_json::to_value(r).unwrap()["kind"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn nothing_for_a_quiet_batch_or_an_empty_one() {
        assert!(recommendations(&base(agg(10, 1000, 10))).is_empty());
        let mut empty = base(Agg::default());
        empty.by_db.clear();
        empty.by_instance.clear();
        empty.totals.instances = 0;
        assert!(recommendations(&empty).is_empty());
    }

    #[test]
    fn big_strings_and_huge_collections_from_the_listed_big_keys() {
        let mut d = base(agg(10, 1 << 32, 10));
        d.outliers.big_keys = vec![
            big_key("h", "hash", "raw", 3 << 30, 2_000_000),
            big_key("s1", "string", "raw", 2 << 20, 1),
            big_key("s2", "string", "raw", 3 << 19, 1),
        ];
        d.outliers.big_keys_total = 3;
        let r = recommendations(&d);
        assert_eq!(
            r[0],
            Recommendation::BigStrings {
                keys: 2,
                at_least: false,
                largest: key_text(b"s1"),
                largest_instance: "i1".into(),
                largest_bytes: 2 << 20,
            }
        );
        assert_eq!(
            r[1],
            Recommendation::HugeCollections {
                keys: 1,
                at_least: false,
                largest: key_text(b"h"),
                largest_type: "hash".into(),
                largest_members: 2_000_000,
            }
        );
        // More big keys than listed: "at least"; by rdb_size, the bytes are rdb_size.
        d.outliers.big_keys_total = 4;
        d.memory.measure = "rdb".into();
        let Recommendation::BigStrings {
            at_least,
            largest_bytes,
            ..
        } = &recommendations(&d)[0]
        else {
            panic!("big strings first");
        };
        assert!(*at_least);
        assert_eq!(*largest_bytes, 1 << 20);
    }

    fn small(d: &mut ReportData, rtype: &str, encoding: &str, keys: u64, members: u64) {
        d.by_type_encoding.push(TypeEncodingRow {
            r#type: rtype.into(),
            encoding: encoding.into(),
            agg: agg(keys, keys * 100, members),
        });
    }

    #[test]
    fn small_collections_at_most_128_members_on_average() {
        for (members, want) in [(128 * 3 - 1, true), (128 * 3, true), (128 * 3 + 1, false)] {
            let mut d = base(agg(10, 1000, 10));
            small(&mut d, "hash", "raw", 3, members);
            small(&mut d, "hash", "listpack", 3, 3);
            small(&mut d, "set", "raw", 3, members);
            small(&mut d, "zset", "skip_list", 3, members);
            small(&mut d, "list", "quicklist", 3, 3);
            let k = kinds(&d);
            let expect: Vec<String> = if want {
                vec!["small-hash".into(), "small-set".into(), "small-zset".into()]
            } else {
                vec![]
            };
            assert_eq!(k, expect, "{members} members over 3 keys");
        }
        let mut d = base(agg(10, 1000, 10));
        small(&mut d, "zset", "skip_list", 3, 200);
        assert_eq!(
            recommendations(&d),
            vec![Recommendation::SmallZset(SmallCollections {
                encoding: "skip_list".into(),
                keys: 3,
                bytes: 300,
                member_count: 200,
                big_keys_left_out: 0,
            })]
        );
    }

    #[test]
    fn small_collections_leave_out_the_listed_big_keys() {
        let mut d = base(agg(10, 1 << 32, 10));
        // 4 keys: one big with 2M members, three with 128 each.
        small(&mut d, "set", "raw", 4, 2_000_000 + 3 * 128);
        d.outliers.big_keys = vec![big_key("b", "set", "raw", 250, 2_000_000)];
        d.outliers.big_keys_total = 1;
        let r = recommendations(&d);
        assert_eq!(
            r[1],
            Recommendation::SmallSet(SmallCollections {
                encoding: "raw".into(),
                keys: 3,
                bytes: 150,
                member_count: 384,
                big_keys_left_out: 1,
            })
        );
        // Only big keys in the group: nothing to average.
        let mut d = base(agg(10, 1 << 32, 10));
        small(&mut d, "set", "raw", 1, 2_000_000);
        d.outliers.big_keys = vec![big_key("b", "set", "raw", 100, 2_000_000)];
        d.outliers.big_keys_total = 1;
        assert_eq!(kinds(&d), vec!["huge-collections".to_string()]);
    }

    #[test]
    fn no_ttl_from_half_the_bytes() {
        for (no_ttl, want) in [(499, false), (500, true), (501, true)] {
            let mut d = base(agg(10, 1000, 10));
            d.expiry.buckets[0].agg = agg(3, no_ttl, 3);
            d.expiry.no_ttl_prefixes = vec![
                NoTtlPrefix {
                    node: 0,
                    prefix: key_text(b""),
                    no_ttl: agg(3, no_ttl, 3),
                    all: agg(10, 1000, 10),
                },
                NoTtlPrefix {
                    node: 1,
                    prefix: key_text(b"user:"),
                    no_ttl: agg(2, 300, 2),
                    all: agg(2, 300, 2),
                },
            ];
            let r = recommendations(&d);
            if want {
                assert_eq!(
                    r,
                    vec![Recommendation::NoTtl {
                        keys: 3,
                        bytes: no_ttl,
                        total_bytes: 1000,
                        prefix: Some(key_text(b"user:")),
                        prefix_bytes: 300,
                    }]
                );
            } else {
                assert!(r.is_empty(), "{no_ttl}: {r:?}");
            }
        }
        // Without a non-empty prefix.
        let mut d = base(agg(10, 1000, 10));
        d.expiry.buckets[0].agg = agg(10, 1000, 10);
        assert!(matches!(
            &recommendations(&d)[..],
            [Recommendation::NoTtl {
                prefix: None,
                prefix_bytes: 0,
                ..
            }]
        ));
    }

    #[test]
    fn expired_from_one_key() {
        let mut d = base(agg(10, 1000, 10));
        d.expiry.buckets[1].agg = agg(1, 0, 1);
        assert_eq!(
            recommendations(&d),
            vec![Recommendation::Expired { keys: 1, bytes: 0 }]
        );
    }

    #[test]
    fn many_dbs_from_two() {
        let mut d = base(agg(10, 1000, 10));
        d.by_db = vec![
            DbRow {
                db: 0,
                agg: agg(5, 500, 5),
            },
            DbRow {
                db: 3,
                agg: agg(5, 500, 5),
            },
        ];
        assert_eq!(
            recommendations(&d),
            vec![Recommendation::ManyDbs { dbs: vec![0, 3] }]
        );
    }

    fn instances(d: &mut ReportData, bytes: &[u64]) {
        d.by_instance = bytes
            .iter()
            .enumerate()
            .map(|(i, b)| InstanceRow {
                instance: format!("i{i}"),
                agg: agg(1, *b, 1),
            })
            .collect();
        let total: u64 = bytes.iter().sum();
        d.totals.agg = agg(bytes.len() as u64, total, bytes.len() as u64);
        d.totals.instances = bytes.len() as u64;
    }

    #[test]
    fn imbalance_from_one_and_a_half_times_the_mean() {
        // Three instances, total 900, mean 300: 450 is exactly 1.5 × the mean.
        for (big, want) in [(449, false), (450, true), (451, true)] {
            let mut d = base(agg(1, 1, 1));
            let rest = 900 - big;
            instances(&mut d, &[rest / 2, big, rest - rest / 2]);
            let r = recommendations(&d);
            if want {
                assert_eq!(
                    r,
                    vec![Recommendation::Imbalance {
                        instance: "i1".into(),
                        bytes: big,
                        total_bytes: 900,
                        instances: 3,
                    }]
                );
            } else {
                assert!(r.is_empty(), "{big}: {r:?}");
            }
        }
        // A mean of 1/3 (not exact in floating point): 1 of 1 byte over 3 instances is 3×.
        let mut d = base(agg(1, 1, 1));
        instances(&mut d, &[0, 1, 0]);
        assert_eq!(kinds(&d), vec!["imbalance".to_string()]);
        // Ties: the first by name; one instance or no bytes: nothing.
        let mut d = base(agg(1, 1, 1));
        instances(&mut d, &[10, 0, 10, 0, 0]);
        assert!(matches!(
            &recommendations(&d)[..],
            [Recommendation::Imbalance { instance, .. }] if instance == "i0"
        ));
        let mut d = base(agg(1, 1, 1));
        instances(&mut d, &[0, 0]);
        assert!(recommendations(&d).is_empty());
        let mut d = base(agg(1, 1, 1));
        instances(&mut d, &[7]);
        assert!(recommendations(&d).is_empty());
    }

    #[test]
    fn shared_slots_from_one() {
        let mut d = base(agg(10, 1000, 10));
        d.balance.shared_slots = vec![SharedSlot {
            kind: "redis".into(),
            slot: 7,
            instances: vec![],
        }];
        assert_eq!(
            recommendations(&d),
            vec![Recommendation::SharedSlots { slots: 1 }]
        );
    }

    #[test]
    fn cold_from_a_tenth_of_the_bytes_idle_30_days() {
        let cold_bucket = IDLE_BOUNDS
            .iter()
            .position(|&b| b == COLD_IDLE_SECONDS)
            .expect("30 days is a bound")
            + 1;
        for (old, want) in [(99, false), (100, true), (101, true)] {
            let mut d = base(agg(10, 1000, 10));
            // Just below 30 days never counts, whatever its size.
            d.cold.idle.buckets[cold_bucket - 1].agg = agg(5, 1000 - old - 1, 5);
            d.cold.idle.buckets[cold_bucket].agg = agg(2, old / 2, 2);
            d.cold.idle.buckets[cold_bucket + 1].agg = agg(1, old - old / 2, 1);
            d.cold.idle.buckets[0].agg = agg(1, 1, 1);
            d.cold.idle.with_field = agg(9, 1000, 9);
            let r = recommendations(&d);
            if want {
                assert_eq!(
                    r,
                    vec![Recommendation::Cold {
                        keys: 3,
                        bytes: old,
                        with_idle_bytes: 1000,
                    }]
                );
            } else {
                assert!(r.is_empty(), "{old}: {r:?}");
            }
        }
        // Idle keys with no bytes at all: nothing to weigh.
        let mut d = base(agg(10, 1000, 10));
        d.cold.idle.buckets[cold_bucket].agg = agg(2, 0, 2);
        d.cold.idle.with_field = agg(2, 0, 2);
        assert!(recommendations(&d).is_empty());
    }

    #[test]
    fn json_names_each_kind_in_kebab_case() {
        let r = Recommendation::SmallHash(SmallCollections {
            encoding: "raw".into(),
            keys: 1,
            bytes: 2,
            member_count: 3,
            big_keys_left_out: 0,
        });
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"kind":"small-hash","encoding":"raw","keys":1,"bytes":2,"member_count":3,"big_keys_left_out":0}"#
        );
        let back: Recommendation =
            serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        let n = serde_json::to_string(&Recommendation::NoTtl {
            keys: 1,
            bytes: 2,
            total_bytes: 3,
            prefix: None,
            prefix_bytes: 0,
        })
        .unwrap();
        assert!(n.starts_with(r#"{"kind":"no-ttl","#), "{n}");
    }
}
