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
use std::ops::Range;
use std::time::Duration;

use redis::aio::ConnectionManager;

use super::json_line::Lines;
use super::query::{finish_stats, percentile, rate, Filter, HostStats, HourCount, Page, Stats, StatusFilter};
use super::record::{truncate, Field, Record};
use super::resp::{Conn, Pipe};
use super::store::{hour_of, hour_start, hours_between, LogError, MAX_SCAN};
use super::writer::rfc3339;

/// The live stream.
const STREAM: &str = "stream:requests";
/// The one field of a stream entry: the record as its JSON line. One field
/// instead of the hash's two dozen keeps the entry cheap for Redis to add.
const STREAM_FIELD: &str = "json";
/// Durations kept per host and hour for the percentiles.
pub const LATENCY_SAMPLES: i64 = 1024;
/// Requests slower than this (ms) go into `idx:req:slow`.
const SLOW_MS: f64 = 1000.0;
/// Keys read per round trip while paging through an index.
const CHUNK: isize = 200;
/// Longest key part taken from a request (path, user, client id).
const MAX_KEY_PART: usize = 256;

/// The request log's Redis connections: redis-rs for queries, and the
/// writer's own pipelined connection (see [`resp`](super::resp)), opened
/// on the first batch and again after a failure.
pub struct RedisLog {
    conn: ConnectionManager,
    url: String,
    writer: tokio::sync::Mutex<WriteState>,
}

/// What the writer keeps between batches: its connection and the
/// pipeline's buffers.
#[derive(Default)]
struct WriteState {
    conn: Option<Conn>,
    pipe: Pipe,
}

/// `req:{ts}:{ip}`, without the formatting machinery (once per record).
fn record_key(r: &Record) -> String {
    let mut digits = itoa::Buffer::new();
    let ts = digits.format(r.ts);
    let mut key = String::with_capacity(5 + ts.len() + r.client_ip.len());
    key.push_str("req:");
    key.push_str(ts);
    key.push(':');
    key.push_str(&r.client_ip);
    key
}

/// Calls `f` with each index key a record is added to, built in `buf`
/// (one buffer for the whole batch instead of a string per key).
fn each_index(r: &Record, buf: &mut String, mut f: impl FnMut(&str)) {
    let mut emit = |parts: &[&str]| {
        buf.clear();
        for p in parts {
            buf.push_str(p);
        }
        f(buf);
    };
    emit(&["idx:req:all"]);
    emit(&["idx:req:ip:", &r.client_ip]);
    emit(&["idx:req:host:", &r.host]);
    if r.kind == "oauth" {
        emit(&["idx:req:oauth"]);
    } else {
        emit(&["idx:req:status:", itoa::Buffer::new().format(r.status)]);
        emit(&["idx:req:path:", &r.method, ":", part(&r.path)]);
    }
    if let Some(u) = &r.user {
        emit(&["idx:req:user:", part(u)]);
    }
    if let Some(c) = &r.client_id {
        emit(&["idx:req:client:", part(c)]);
    }
    if r.is_error() {
        emit(&["idx:req:errors"]);
    }
    if r.duration_ms > SLOW_MS {
        emit(&["idx:req:slow"]);
    }
}

/// A key part cut to [`MAX_KEY_PART`] bytes.
fn part(s: &str) -> &str {
    truncate(s, MAX_KEY_PART)
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

/// Encodes a batch. Per record only the hash, its expiry and the stream
/// entry (the record's JSON line from `lines`, made once for the access
/// log too); index members, counts, visitors and latency samples are
/// grouped by key, one command per key and batch, so Redis does a few
/// commands per record instead of fifteen.
fn encode(p: &mut Pipe, batch: &[Record], lines: &Lines, retention: Duration, now: i64) {
    let keep_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    let cutoff = now - keep_ms.saturating_mul(1000);
    let keys: Vec<String> = batch.iter().map(record_key).collect();
    let mut groups = Groups::default();
    for (i, (r, line)) in batch.iter().zip(lines.iter()).enumerate() {
        let key = &keys[i];
        let mut fields = 0;
        r.each_field(|_, _| fields += 1);
        p.cmd_of(2 + 2 * fields, "HSET").arg(key);
        r.each_field(|name, value| {
            p.framed_args(name.resp.as_bytes(), 1);
            match value {
                Field::Text(t) => p.arg(t),
                Field::Int(n) => p.int(n),
                Field::Float(f) => p.float(f),
            };
        });
        p.end();
        p.cmd_of(3, "PEXPIRE").arg(key).int(keep_ms).end();
        p.cmd_of(8, "XADD")
            .arg(STREAM)
            .arg("MINID")
            .arg("~")
            .int(cutoff / 1000)
            .arg("*")
            .arg(STREAM_FIELD)
            .arg(line)
            .end();
        groups.add(i, r);
    }
    // A record's score and key recur in each of its indexes: framed once.
    let mut members = Pipe::default();
    let spans: Vec<Range<usize>> = batch
        .iter()
        .zip(&keys)
        .map(|(r, key)| {
            let start = members.as_bytes().len();
            members.int(r.ts).arg(key);
            start..members.as_bytes().len()
        })
        .collect();
    groups.encode(p, members.as_bytes(), &spans, keep_ms, cutoff);
    p.cmd("PEXPIRE").arg(STREAM).int(keep_ms).end();
}

/// A batch's records grouped by index key and by (hour, host). Records in
/// a batch mostly repeat the one before (same client, host, path), so a
/// record that would land in the same groups as its predecessor skips the
/// key building and the lookups.
#[derive(Default)]
struct Groups<'a> {
    /// Index key and the records (positions in the batch) it gains.
    indexes: Vec<(String, Vec<usize>)>,
    index_of: HashMap<String, usize>,
    /// The index groups of the record before.
    last_indexes: Vec<usize>,
    last: Option<&'a Record>,
    hours: Vec<HourHost<'a>>,
    hour_index: BTreeMap<(i64, &'a str), usize>,
    /// The hour group of the record before.
    last_hour: usize,
    key_buf: String,
}

/// One host's figures for one hour of the batch.
struct HourHost<'a> {
    start: i64,
    host: &'a str,
    requests: i64,
    errors: i64,
    ips: BTreeSet<&'a str>,
    durations: Vec<f64>,
}

/// True when `a` and `b` go into the same indexes.
fn same_indexes(a: &Record, b: &Record) -> bool {
    a.client_ip == b.client_ip
        && a.host == b.host
        && a.kind == b.kind
        && a.status == b.status
        && a.method == b.method
        && a.path == b.path
        && a.user == b.user
        && a.client_id == b.client_id
        && a.is_error() == b.is_error()
        && (a.duration_ms > SLOW_MS) == (b.duration_ms > SLOW_MS)
}

impl<'a> Groups<'a> {
    fn add(&mut self, i: usize, r: &'a Record) {
        if !self.last.is_some_and(|l| same_indexes(l, r)) {
            self.last_indexes.clear();
            let Groups {
                indexes,
                index_of,
                last_indexes,
                key_buf,
                ..
            } = self;
            each_index(r, key_buf, |key| {
                let g = match index_of.get(key) {
                    Some(&g) => g,
                    None => {
                        indexes.push((key.to_string(), Vec::new()));
                        index_of.insert(key.to_string(), indexes.len() - 1);
                        indexes.len() - 1
                    }
                };
                last_indexes.push(g);
            });
        }
        for &g in &self.last_indexes {
            self.indexes[g].1.push(i);
        }
        let start = hour_start(r.ts);
        let same_hour = self.last.is_some_and(|l| hour_start(l.ts) == start && l.host == r.host);
        if !same_hour {
            let Groups { hours, hour_index, .. } = self;
            self.last_hour = *hour_index.entry((start, r.host.as_str())).or_insert_with(|| {
                hours.push(HourHost {
                    start,
                    host: &r.host,
                    requests: 0,
                    errors: 0,
                    ips: BTreeSet::new(),
                    durations: Vec::new(),
                });
                hours.len() - 1
            });
        }
        let h = self.last_hour;
        let hh = &mut self.hours[h];
        hh.requests += 1;
        if r.is_error() {
            hh.errors += 1;
        }
        hh.ips.insert(&r.client_ip);
        if r.kind == "request" {
            hh.durations.push(r.duration_ms);
        }
        self.last = Some(r);
    }

    /// The commands of the groups: one `ZADD` per index (and its trim and
    /// expiry), the hourly counts, visitors and latency samples.
    /// `members[spans[i]]` is record `i`'s score and key, framed.
    fn encode(&self, p: &mut Pipe, members: &[u8], spans: &[Range<usize>], keep_ms: i64, cutoff: i64) {
        let below_cutoff = format!("({cutoff}");
        for (idx, records) in &self.indexes {
            p.cmd("ZADD").arg(idx);
            for &i in records {
                p.framed_args(&members[spans[i].clone()], 2);
            }
            p.end();
            p.cmd("ZREMRANGEBYSCORE").arg(idx).arg("-inf").arg(&below_cutoff).end();
            p.cmd("PEXPIRE").arg(idx).int(keep_ms).end();
        }
        let stats_ms = keep_ms.saturating_add(3_600_000);
        let mut hours: BTreeMap<i64, String> = BTreeMap::new();
        let mut stats_keys: BTreeSet<String> = BTreeSet::new();
        for hh in &self.hours {
            let hour = hours.entry(hh.start).or_insert_with(|| hour_of(hh.start));
            let requests = format!("stats:requests:{hour}");
            p.cmd("HINCRBY").arg(&requests).arg(hh.host).int(hh.requests).end();
            stats_keys.insert(requests);
            if hh.errors > 0 {
                let key = format!("stats:errors:{hour}");
                p.cmd("HINCRBY").arg(&key).arg(hh.host).int(hh.errors).end();
                stats_keys.insert(key);
            }
            let key = format!("stats:unique_ips:{}:{hour}", hh.host);
            p.cmd("PFADD").arg(&key);
            for ip in &hh.ips {
                p.arg(ip);
            }
            p.end();
            stats_keys.insert(key);
            if !hh.durations.is_empty() {
                // Only the newest samples survive the trim: send no more.
                let newest = &hh.durations[hh.durations.len().saturating_sub(LATENCY_SAMPLES as usize)..];
                let key = format!("stats:latency:{}:{hour}", hh.host);
                p.cmd("RPUSH").arg(&key);
                for &v in newest {
                    p.float(v);
                }
                p.end();
                p.cmd("LTRIM").arg(&key).int(-LATENCY_SAMPLES).int(-1).end();
                stats_keys.insert(key);
            }
        }
        for k in &stats_keys {
            p.cmd("PEXPIRE").arg(k).int(stats_ms).end();
        }
    }
}

impl RedisLog {
    /// Connects (one multiplexed, self-healing connection).
    pub async fn connect(url: &str) -> Result<RedisLog, LogError> {
        let client = redis::Client::open(url)?;
        let conn = client.get_connection_manager().await?;
        Ok(RedisLog {
            conn,
            url: url.to_string(),
            writer: tokio::sync::Mutex::default(),
        })
    }

    /// Writes a batch in one pipeline on the writer's connection; a failed
    /// batch drops the connection, and the next batch opens a new one.
    pub async fn write(&self, batch: &[Record], lines: &Lines, retention: Duration) -> Result<(), LogError> {
        let mut state = self.writer.lock().await;
        let WriteState { conn, pipe } = &mut *state;
        pipe.clear();
        encode(pipe, batch, lines, retention, chrono::Utc::now().timestamp_micros());
        let c = match conn {
            Some(c) => c,
            None => conn.insert(Conn::connect(&self.url).await?),
        };
        let sent = c.send(pipe).await;
        if sent.is_err() {
            *conn = None;
        }
        sent
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
