//! The request log on Redis, with the reference key schema:
//!
//! - `req:{ts}:{ip}`: the record as a hash (`ts` in µs, unique per instance);
//! - sorted sets scored by `ts`: `idx:req:ip:{ip}`, `idx:req:host:{hostname}`,
//!   `idx:req:user:{username}`, `idx:req:status:{code}`, `idx:req:errors`,
//!   `idx:req:slow` (over 1 s), `idx:req:path:{method}:{path}`, and three
//!   more for the query API: `idx:req:client:{client_id}`, `idx:req:oauth`
//!   (OAuth flow events), `idx:req:all`;
//! - `stream:requests`: every record, for live following;
//! - `stats:requests:{YYYYMMDD:HH}` and `stats:errors:{YYYYMMDD:HH}`: hashes
//!   of counts by hostname; `stats:unique_ips:{hostname}:{YYYYMMDD:HH}`: a
//!   HyperLogLog; `stats:latency:{hostname}:{YYYYMMDD:HH}`: the latest
//!   [`LATENCY_SAMPLES`] durations of the hour, for percentiles.
//!
//! Retention: every key expires after `LOG_RETENTION_HOURS` (stats keys an
//! hour later, so the last hour stays whole), each batch trims the indexes
//! it touched by score and the stream by `MINID`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use redis::aio::ConnectionManager;

use super::query::{finish_stats, percentile, rate, Filter, HostStats, HourCount, Page, Stats, StatusFilter};
use super::record::{truncate, Record};
use super::store::{hour_of, hour_start, hours_between, LogError, MAX_SCAN};
use super::writer::rfc3339;

/// The live stream.
const STREAM: &str = "stream:requests";
/// The one field of a stream entry: the record as its JSON line. One field
/// instead of the hash's two dozen keeps the entry cheap for Redis to add.
const STREAM_FIELD: &str = "json";
/// Durations kept per host and hour for the percentiles.
pub const LATENCY_SAMPLES: isize = 1024;
/// Requests slower than this (ms) go into `idx:req:slow`.
const SLOW_MS: f64 = 1000.0;
/// Keys read per round trip while paging through an index.
const CHUNK: isize = 200;
/// Longest key part taken from a request (path, user, client id).
const MAX_KEY_PART: usize = 256;

/// The request log's Redis connection.
pub struct RedisLog {
    conn: ConnectionManager,
}

/// `hour_of` for the records of one batch, which nearly always share an
/// hour: formatted once per hour instead of once per record.
#[derive(Default)]
struct HourCache {
    start: i64,
    text: String,
}

impl HourCache {
    fn of(&mut self, ts: i64) -> &str {
        let start = hour_start(ts);
        if self.text.is_empty() || start != self.start {
            self.start = start;
            self.text = hour_of(ts);
        }
        &self.text
    }
}

/// The index keys a record is added to.
fn index_keys(r: &Record, key_of: &impl Fn(&str) -> String) -> Vec<String> {
    let mut keys = vec![
        "idx:req:all".to_string(),
        format!("idx:req:ip:{}", r.client_ip),
        format!("idx:req:host:{}", r.host),
    ];
    if r.kind == "oauth" {
        keys.push("idx:req:oauth".into());
    } else {
        keys.push(format!("idx:req:status:{}", r.status));
        keys.push(format!("idx:req:path:{}:{}", r.method, key_of(&r.path)));
    }
    if let Some(u) = &r.user {
        keys.push(format!("idx:req:user:{}", key_of(u)));
    }
    if let Some(c) = &r.client_id {
        keys.push(format!("idx:req:client:{}", key_of(c)));
    }
    if r.is_error() {
        keys.push("idx:req:errors".into());
    }
    if r.duration_ms > SLOW_MS {
        keys.push("idx:req:slow".into());
    }
    keys
}

/// A key part cut to [`MAX_KEY_PART`] bytes.
fn part(s: &str) -> String {
    truncate(s, MAX_KEY_PART).to_string()
}

/// The most selective index for a filter (everything else is checked per record).
fn primary_index(f: &Filter) -> String {
    if let Some(ip) = &f.ip {
        return format!("idx:req:ip:{ip}");
    }
    if let Some(c) = &f.client_id {
        return format!("idx:req:client:{}", part(c));
    }
    if let Some(u) = &f.user {
        return format!("idx:req:user:{}", part(u));
    }
    if let Some(h) = &f.host {
        return format!("idx:req:host:{h}");
    }
    if let Some(only) = f.allowed_hosts.as_ref().filter(|a| a.len() == 1).and_then(|a| a.iter().next()) {
        return format!("idx:req:host:{only}");
    }
    if let Some(StatusFilter::Code(c)) = f.status {
        return format!("idx:req:status:{c}");
    }
    if f.kind.as_deref() == Some("oauth") {
        return "idx:req:oauth".into();
    }
    if f.errors_only || matches!(f.status, Some(StatusFilter::Class(4 | 5))) {
        return "idx:req:errors".into();
    }
    if f.min_ms.is_some_and(|m| m > SLOW_MS) {
        return "idx:req:slow".into();
    }
    "idx:req:all".into()
}

impl RedisLog {
    /// Connects (one multiplexed, self-healing connection).
    pub async fn connect(url: &str) -> Result<RedisLog, LogError> {
        let client = redis::Client::open(url)?;
        let conn = client.get_connection_manager().await?;
        Ok(RedisLog { conn })
    }

    /// Writes a batch in one pipeline. Per record only the hash, its expiry
    /// and the stream entry (the record's JSON line from `lines`, made once
    /// for the access log too); index members, counts, visitors and latency
    /// samples are grouped by key, one command per key and batch, so Redis
    /// does a few commands per record instead of fifteen.
    pub async fn write(&self, batch: &[Record], lines: &[String], retention: Duration) -> Result<(), LogError> {
        let keep_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let stats_ms = keep_ms.saturating_add(3_600_000);
        let now = chrono::Utc::now().timestamp_micros();
        let cutoff = now - keep_ms.saturating_mul(1000);
        let mut p = redis::pipe();
        let mut members: HashMap<String, Vec<(i64, usize)>> = HashMap::new();
        let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
        let mut visitors: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
        let mut latencies: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut hours = HourCache::default();
        let keys: Vec<String> = batch.iter().map(|r| format!("req:{}:{}", r.ts, r.client_ip)).collect();
        for (i, (r, line)) in batch.iter().zip(lines).enumerate() {
            let key = &keys[i];
            p.cmd("HSET").arg(key).arg(r.to_fields()).ignore();
            p.cmd("PEXPIRE").arg(key).arg(keep_ms).ignore();
            p.cmd("XADD")
                .arg(STREAM)
                .arg("MINID")
                .arg("~")
                .arg(cutoff / 1000)
                .arg("*")
                .arg(STREAM_FIELD)
                .arg(line)
                .ignore();
            for idx in index_keys(r, &part) {
                members.entry(idx).or_default().push((r.ts, i));
            }
            let hour = hours.of(r.ts);
            *counts.entry((format!("stats:requests:{hour}"), r.host.clone())).or_default() += 1;
            if r.is_error() {
                *counts.entry((format!("stats:errors:{hour}"), r.host.clone())).or_default() += 1;
            }
            visitors
                .entry(format!("stats:unique_ips:{}:{hour}", r.host))
                .or_default()
                .insert(&r.client_ip);
            if r.kind == "request" {
                latencies
                    .entry(format!("stats:latency:{}:{hour}", r.host))
                    .or_default()
                    .push(r.duration_ms);
            }
        }
        for (idx, m) in &members {
            let scored: Vec<(i64, &str)> = m.iter().map(|(ts, i)| (*ts, keys[*i].as_str())).collect();
            p.cmd("ZADD").arg(idx).arg(scored).ignore();
            p.cmd("ZREMRANGEBYSCORE").arg(idx).arg("-inf").arg(format!("({cutoff}")).ignore();
            p.cmd("PEXPIRE").arg(idx).arg(keep_ms).ignore();
        }
        let mut stats_keys: BTreeSet<&str> = BTreeSet::new();
        for ((key, host), n) in &counts {
            p.cmd("HINCRBY").arg(key).arg(host).arg(n).ignore();
            stats_keys.insert(key);
        }
        for (key, ips) in &visitors {
            p.cmd("PFADD").arg(key).arg(ips).ignore();
            stats_keys.insert(key);
        }
        for (key, ms) in &latencies {
            p.cmd("RPUSH").arg(key).arg(ms).ignore();
            p.cmd("LTRIM").arg(key).arg(-LATENCY_SAMPLES).arg(-1).ignore();
            stats_keys.insert(key);
        }
        for k in stats_keys {
            p.cmd("PEXPIRE").arg(k).arg(stats_ms).ignore();
        }
        p.cmd("PEXPIRE").arg(STREAM).arg(keep_ms).ignore();
        let mut conn = self.conn.clone();
        p.query_async::<()>(&mut conn).await?;
        Ok(())
    }

    /// Pages through the primary index, newest first, checking each record.
    pub async fn search(&self, f: &Filter, limit: usize) -> Result<Page, LogError> {
        let index = primary_index(f);
        let mut conn = self.conn.clone();
        let mut max = f.until;
        let mut out = Vec::new();
        let mut scanned = 0usize;
        loop {
            if max < f.since {
                return Ok(Page {
                    records: out,
                    next_cursor: None,
                });
            }
            let keys: Vec<(String, f64)> = redis::cmd("ZREVRANGEBYSCORE")
                .arg(&index)
                .arg(max)
                .arg(f.since)
                .arg("WITHSCORES")
                .arg("LIMIT")
                .arg(0)
                .arg(CHUNK)
                .query_async(&mut conn)
                .await?;
            if keys.is_empty() {
                return Ok(Page {
                    records: out,
                    next_cursor: None,
                });
            }
            let mut p = redis::pipe();
            for (k, _) in &keys {
                p.cmd("HGETALL").arg(k);
            }
            let hashes: Vec<HashMap<String, String>> = p.query_async(&mut conn).await?;
            for ((_, score), h) in keys.iter().zip(&hashes) {
                scanned += 1;
                let ts = *score as i64;
                max = ts - 1;
                let Some(r) = Record::from_fields(h.iter().map(|(k, v)| (k.as_str(), v.as_str()))) else {
                    continue;
                };
                if f.matches(&r) {
                    out.push(r);
                    if out.len() >= limit {
                        return Ok(Page {
                            records: out,
                            next_cursor: Some(ts.to_string()),
                        });
                    }
                }
            }
            if keys.len() < CHUNK as usize {
                return Ok(Page {
                    records: out,
                    next_cursor: None,
                });
            }
            if scanned >= MAX_SCAN {
                return Ok(Page {
                    records: out,
                    next_cursor: Some((max + 1).to_string()),
                });
            }
        }
    }

    /// Hourly counts from the stats hashes, percentiles from the latency
    /// samples, unique visitors from the HyperLogLogs (merged over the window).
    pub async fn stats(&self, f: &Filter) -> Result<Stats, LogError> {
        let hours = hours_between(f.since, f.until);
        let mut conn = self.conn.clone();
        let mut p = redis::pipe();
        for h in &hours {
            p.cmd("HGETALL").arg(format!("stats:requests:{}", hour_of(*h)));
            p.cmd("HGETALL").arg(format!("stats:errors:{}", hour_of(*h)));
        }
        let counts: Vec<HashMap<String, u64>> = p.query_async(&mut conn).await?;
        let visible = |host: &str| f.allowed_hosts.as_ref().is_none_or(|a| a.contains(host)) && f.host.as_deref().is_none_or(|h| h == host);
        let mut per_host: HashMap<String, HostStats> = HashMap::new();
        let mut hourly = Vec::new();
        for (i, h) in hours.iter().enumerate() {
            let (req, err) = (&counts[2 * i], &counts[2 * i + 1]);
            let mut hc = HourCount {
                hour: rfc3339(*h),
                ..HourCount::default()
            };
            for (host, n) in req.iter().filter(|(host, _)| visible(host)) {
                hc.requests += n;
                let e = per_host.entry(host.clone()).or_insert_with(|| HostStats {
                    host: host.clone(),
                    ..HostStats::default()
                });
                e.requests += n;
            }
            for (host, n) in err.iter().filter(|(host, _)| visible(host)) {
                hc.errors += n;
                if let Some(e) = per_host.get_mut(host) {
                    e.errors += n;
                }
            }
            hourly.push(hc);
        }
        let hosts: Vec<String> = per_host.keys().cloned().collect();
        let mut p = redis::pipe();
        for host in &hosts {
            let hlls: Vec<String> = hours.iter().map(|h| format!("stats:unique_ips:{host}:{}", hour_of(*h))).collect();
            p.cmd("PFCOUNT").arg(hlls);
            for h in &hours {
                p.cmd("LRANGE").arg(format!("stats:latency:{host}:{}", hour_of(*h))).arg(0).arg(-1);
            }
        }
        let replies: Vec<redis::Value> = if hosts.is_empty() {
            Vec::new()
        } else {
            p.query_async(&mut conn).await?
        };
        let per = 1 + hours.len();
        for (i, host) in hosts.iter().enumerate() {
            let Some(s) = per_host.get_mut(host) else { continue };
            let chunk = &replies[i * per..(i + 1) * per];
            s.unique_ips = redis::from_redis_value::<u64>(&chunk[0]).unwrap_or(0);
            let mut samples: Vec<f64> = chunk[1..]
                .iter()
                .flat_map(|v| redis::from_redis_value::<Vec<f64>>(v).unwrap_or_default())
                .collect();
            samples.sort_by(f64::total_cmp);
            s.p50_ms = percentile(&samples, 50.0);
            s.p95_ms = percentile(&samples, 95.0);
            s.p99_ms = percentile(&samples, 99.0);
            s.error_rate = rate(s.errors, s.requests);
        }
        Ok(finish_stats(Stats {
            since: rfc3339(f.since),
            hourly,
            hosts: per_host.into_values().collect(),
            ..Stats::default()
        }))
    }

    /// The stream's last id (followers start after it).
    pub async fn tail_start(&self) -> Result<String, LogError> {
        let mut conn = self.conn.clone();
        let last: Vec<(String, HashMap<String, String>)> = redis::cmd("XREVRANGE")
            .arg(STREAM)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut conn)
            .await?;
        Ok(last.into_iter().next().map_or_else(|| "0-0".to_string(), |(id, _)| id))
    }

    /// Stream entries after `after` (at most 1000), oldest first, and the last id.
    pub async fn tail(&self, after: &str) -> Result<(Vec<Record>, String), LogError> {
        let mut conn = self.conn.clone();
        let entries: Vec<(String, HashMap<String, String>)> = redis::cmd("XRANGE")
            .arg(STREAM)
            .arg(format!("({after}"))
            .arg("+")
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        let next = entries.last().map_or_else(|| after.to_string(), |(id, _)| id.clone());
        let records = entries
            .iter()
            .filter_map(|(_, h)| match h.get(STREAM_FIELD) {
                Some(line) => serde_json::from_str(line).ok(),
                // An entry of an older instance on the same Redis: the flat form.
                None => Record::from_fields(h.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            })
            .collect();
        Ok((records, next))
    }
}
