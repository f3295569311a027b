//! The request log without Redis: one append-only JSON-lines file per hour
//! (`requests-YYYYMMDD-HH.jsonl`) in a `request-log` folder beside the
//! embedded store's file. Appending needs no index and no compaction,
//! retention deletes whole hours, and queries read only the hours of their
//! window, newest first. A single instance owns the folder (as it owns the
//! embedded store).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use super::json_line::Lines;
use super::query::{finish_stats, percentile, rate, Filter, HostStats, HourCount, Page, Stats};
use super::record::Record;
use super::store::{hour_start, LogError, HOUR, MAX_SCAN};
use super::writer::rfc3339;

/// How often old segments are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(10);
/// Records read for one statistics answer at most.
const MAX_STATS_RECORDS: usize = 500_000;

/// The segment folder.
pub struct Segments {
    dir: PathBuf,
    last_sweep: Mutex<Option<Instant>>,
}

/// The file name of the hour starting at `hour` (µs).
fn file_name(hour: i64) -> String {
    let t = chrono::DateTime::from_timestamp_micros(hour).unwrap_or_default();
    format!("requests-{}.jsonl", t.format("%Y%m%d-%H"))
}

/// The hour (µs) a segment file holds, from its name.
fn hour_of_name(name: &str) -> Option<i64> {
    let stamp = name.strip_prefix("requests-")?.strip_suffix(".jsonl")?;
    let t = chrono::NaiveDateTime::parse_from_str(&format!("{stamp}:00:00"), "%Y%m%d-%H:%M:%S").ok()?;
    Some(t.and_utc().timestamp_micros())
}

impl Segments {
    /// The folder `request-log` beside the embedded store's file (created).
    pub fn beside(store_file: &Path) -> Result<Segments, LogError> {
        let dir = store_file.parent().unwrap_or_else(|| Path::new(".")).join("request-log");
        std::fs::create_dir_all(&dir)?;
        Ok(Segments {
            dir,
            last_sweep: Mutex::new(None),
        })
    }

    /// Appends a batch (one write per hour it spans) and, now and then,
    /// deletes the hours that left the retention window.
    pub async fn write(&self, batch: &[Record], lines: &Lines, retention: Duration) -> Result<(), LogError> {
        let mut by_hour: BTreeMap<i64, Vec<u8>> = BTreeMap::new();
        for (r, line) in batch.iter().zip(lines.iter()) {
            let buf = by_hour.entry(hour_start(r.ts)).or_default();
            buf.extend_from_slice(line);
            buf.push(b'\n');
        }
        for (hour, bytes) in by_hour {
            let mut f = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join(file_name(hour)))
                .await?;
            f.write_all(&bytes).await?;
        }
        let due = {
            let mut last = self.last_sweep.lock().unwrap_or_else(|p| p.into_inner());
            let due = last.is_none_or(|t| t.elapsed() >= SWEEP_EVERY);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if due {
            let cutoff = chrono::Utc::now().timestamp_micros() - i64::try_from(retention.as_micros()).unwrap_or(i64::MAX);
            for (hour, path) in self.files().await? {
                if hour + HOUR <= cutoff {
                    let _ = tokio::fs::remove_file(path).await;
                }
            }
        }
        Ok(())
    }

    /// Every segment with its hour, newest first.
    async fn files(&self) -> Result<Vec<(i64, PathBuf)>, LogError> {
        let mut out = Vec::new();
        let mut dir = tokio::fs::read_dir(&self.dir).await?;
        while let Some(e) = dir.next_entry().await? {
            if let Some(hour) = e.file_name().to_str().and_then(hour_of_name) {
                out.push((hour, e.path()));
            }
        }
        out.sort_by_key(|f| std::cmp::Reverse(f.0));
        Ok(out)
    }

    /// The records of the hours overlapping the filter's window, newest
    /// first, passed to `visit` until it returns false.
    async fn scan(&self, f: &Filter, mut visit: impl FnMut(Record) -> bool) -> Result<(), LogError> {
        for (hour, path) in self.files().await? {
            if hour > f.until || hour + HOUR <= f.since {
                continue;
            }
            let text = match tokio::fs::read_to_string(&path).await {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            let mut records: Vec<Record> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
            records.sort_by_key(|r| std::cmp::Reverse(r.ts));
            for r in records {
                if !visit(r) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Matching records, newest first, up to `limit`.
    pub async fn search(&self, f: &Filter, limit: usize) -> Result<Page, LogError> {
        let mut page = Page::default();
        let mut scanned = 0usize;
        self.scan(f, |r| {
            scanned += 1;
            let ts = r.ts;
            if f.matches(&r) {
                page.records.push(r);
                if page.records.len() >= limit {
                    page.next_cursor = Some(ts.to_string());
                    return false;
                }
            }
            if scanned >= MAX_SCAN {
                page.next_cursor = Some(ts.to_string());
                return false;
            }
            true
        })
        .await?;
        Ok(page)
    }

    /// Statistics computed from the records of the window.
    pub async fn stats(&self, f: &Filter) -> Result<Stats, LogError> {
        let mut hourly: BTreeMap<i64, HourCount> = BTreeMap::new();
        for h in super::store::hours_between(f.since, f.until) {
            hourly.insert(
                h,
                HourCount {
                    hour: rfc3339(h),
                    ..HourCount::default()
                },
            );
        }
        let mut hosts: HashMap<String, (HostStats, Vec<f64>, HashSet<String>)> = HashMap::new();
        let mut seen = 0usize;
        self.scan(f, |r| {
            seen += 1;
            if f.matches(&r) {
                let err = r.is_error();
                if let Some(h) = hourly.get_mut(&(hour_start(r.ts))) {
                    h.requests += 1;
                    h.errors += u64::from(err);
                }
                let e = hosts.entry(r.host.clone()).or_insert_with(|| {
                    (
                        HostStats {
                            host: r.host.clone(),
                            ..HostStats::default()
                        },
                        Vec::new(),
                        HashSet::new(),
                    )
                });
                e.0.requests += 1;
                e.0.errors += u64::from(err);
                if r.kind == "request" {
                    e.1.push(r.duration_ms);
                }
                e.2.insert(r.client_ip);
            }
            seen < MAX_STATS_RECORDS
        })
        .await?;
        let hosts = hosts
            .into_values()
            .map(|(mut s, mut samples, ips)| {
                samples.sort_by(f64::total_cmp);
                s.p50_ms = percentile(&samples, 50.0);
                s.p95_ms = percentile(&samples, 95.0);
                s.p99_ms = percentile(&samples, 99.0);
                s.unique_ips = ips.len() as u64;
                s.error_rate = rate(s.errors, s.requests);
                s
            })
            .collect();
        Ok(finish_stats(Stats {
            since: rfc3339(f.since),
            hourly: hourly.into_values().collect(),
            hosts,
            ..Stats::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip_their_hour() {
        let hour = 1_765_000_800_000_000 / HOUR * HOUR;
        assert_eq!(hour_of_name(&file_name(hour)), Some(hour));
        assert_eq!(hour_of_name("requests-x.jsonl"), None);
        assert_eq!(hour_of_name("other.json"), None);
    }
}
