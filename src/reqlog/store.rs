//! Where request records are kept: Redis (the reference key schema, shared
//! by every instance) or, with the embedded store, hourly segment files.

use std::time::Duration;

use thiserror::Error;

use super::json_line::Lines;
use super::query::{Filter, Page, Stats};
use super::record::Record;
use super::redis_log::RedisLog;
use super::segments::Segments;
use crate::config::{Config, StoreBackend};

/// Records examined per query before it returns a partial page with a cursor.
pub const MAX_SCAN: usize = 20_000;

/// Why the request-log store failed.
#[derive(Debug, Error)]
pub enum LogError {
    /// Redis failed or cannot be reached.
    #[error("request log store unavailable: {0}")]
    Redis(#[from] redis::RedisError),
    /// A segment file could not be read or written.
    #[error("request log files unavailable: {0}")]
    Io(#[from] std::io::Error),
}

/// Where `follow` continues from.
#[derive(Clone, Debug)]
pub enum TailPos {
    /// After this Redis stream id.
    Stream(String),
    /// After this timestamp (µs) among the in-memory latest records.
    Ts(i64),
}

/// The request-log store of this instance.
pub enum LogStore {
    /// Redis, with the reference keys.
    Redis(RedisLog),
    /// Hourly segment files next to the embedded store's file.
    Segments(Segments),
}

impl LogStore {
    /// Opens the store the configuration names.
    pub async fn open(cfg: &Config) -> Result<LogStore, LogError> {
        Ok(match &cfg.store {
            StoreBackend::Redis => LogStore::Redis(RedisLog::connect(&cfg.redis_url).await?),
            StoreBackend::Embedded(path) => LogStore::Segments(Segments::beside(path)?),
        })
    }

    /// Stores one batch with one round trip (Redis) or one append per hour file.
    pub async fn write(&self, batch: &[Record], lines: &Lines, retention: Duration) -> Result<(), LogError> {
        match self {
            LogStore::Redis(r) => r.write(batch, lines, retention).await,
            LogStore::Segments(s) => s.write(batch, lines, retention).await,
        }
    }

    /// Up to `limit` matching records, newest first.
    pub async fn search(&self, f: &Filter, limit: usize) -> Result<Page, LogError> {
        match self {
            LogStore::Redis(r) => r.search(f, limit).await,
            LogStore::Segments(s) => s.search(f, limit).await,
        }
    }

    /// Hourly counts and per-host figures for the window of `f` (its host filters apply).
    pub async fn stats(&self, f: &Filter) -> Result<Stats, LogError> {
        match self {
            LogStore::Redis(r) => r.stats(f).await,
            LogStore::Segments(s) => s.stats(f).await,
        }
    }

    /// Where a new follower starts: now.
    pub async fn tail_start(&self) -> Result<TailPos, LogError> {
        match self {
            LogStore::Redis(r) => r.tail_start().await.map(TailPos::Stream),
            LogStore::Segments(_) => Ok(TailPos::Ts(chrono::Utc::now().timestamp_micros())),
        }
    }

    /// Records written after `pos`, oldest first, and the new position.
    pub async fn tail(&self, pos: &TailPos) -> Result<(Vec<Record>, TailPos), LogError> {
        match (self, pos) {
            (LogStore::Redis(r), TailPos::Stream(id)) => {
                let (records, next) = r.tail(id).await?;
                Ok((records, TailPos::Stream(next)))
            }
            (_, TailPos::Ts(after)) => {
                let records = super::writer::recent_after(*after);
                let next = records.last().map_or(*after, |r| r.ts);
                Ok((records, TailPos::Ts(next)))
            }
            (LogStore::Segments(_), p) => Ok((Vec::new(), p.clone())),
        }
    }
}

/// `YYYYMMDD:HH` of a timestamp (µs): the hour part of the stats keys.
pub fn hour_of(ts: i64) -> String {
    chrono::DateTime::from_timestamp_micros(ts)
        .unwrap_or_default()
        .format("%Y%m%d:%H")
        .to_string()
}

/// One hour in µs.
pub const HOUR: i64 = 3_600_000_000;

/// The start (µs) of the hour holding `ts`: the unit of segments and stats keys.
pub fn hour_start(ts: i64) -> i64 {
    ts.div_euclid(HOUR) * HOUR
}

/// The start (µs) of every hour overlapping `[since, until]`, oldest first.
pub fn hours_between(since: i64, until: i64) -> Vec<i64> {
    let mut h = hour_start(since);
    let mut out = Vec::new();
    while h <= until && out.len() < 24 * 366 {
        out.push(h);
        h += HOUR;
    }
    out
}
