//! The embedded store's tables and the Redis-like operations on them.
//! Strings and sets live in separate tables; every key that expires has an
//! entry `(expires_ms, key)` in an expiry index, so a sweep reads only what
//! is due.

use std::time::{SystemTime, UNIX_EPOCH};

use redb::{ReadOnlyTable, ReadTransaction, ReadableTable, Table, TableDefinition, WriteTransaction};

use crate::store::backend::{Applied, Batch, Check, Depth, Expiry};

/// Strings: key -> (expires_ms or 0 for never, value).
const STRINGS: TableDefinition<&str, (u64, &str)> = TableDefinition::new("strings");
/// Set members: (key, member).
const SETS: TableDefinition<(&str, &str), ()> = TableDefinition::new("sets");
/// A set's expiry (Unix milliseconds); absent: never.
const SET_EXPIRY: TableDefinition<&str, u64> = TableDefinition::new("set_expiry");
/// Expiry index: (expires_ms, key) for every string or set that expires.
const EXPIRY: TableDefinition<(u64, &str), ()> = TableDefinition::new("expiry");

/// Expired keys removed per sweep, so one write never carries a large sweep.
const SWEEP_LIMIT: usize = 1000;

/// Now, in Unix milliseconds.
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn live(expires: u64, now: u64) -> bool {
    expires == 0 || expires > now
}

type R<T> = Result<T, redb::Error>;

fn string_in(t: &impl ReadableTable<&'static str, (u64, &'static str)>, key: &str, now: u64) -> R<Option<(u64, String)>> {
    Ok(t.get(key)?
        .map(|g| {
            let (exp, v) = g.value();
            (exp, v.to_string())
        })
        .filter(|(exp, _)| live(*exp, now)))
}

fn set_live_in(expiry: &impl ReadableTable<&'static str, u64>, key: &str, now: u64) -> R<bool> {
    Ok(expiry.get(key)?.is_none_or(|g| live(g.value(), now)))
}

fn members_in(sets: &impl ReadableTable<(&'static str, &'static str), ()>, key: &str, limit: usize) -> R<Vec<String>> {
    let mut out = Vec::new();
    for item in sets.range((key, "")..)? {
        let (k, _) = item?;
        let (set, member) = k.value();
        if set != key || out.len() >= limit {
            break;
        }
        out.push(member.to_string());
    }
    Ok(out)
}

fn scan_in(t: &impl ReadableTable<&'static str, (u64, &'static str)>, prefix: &str, depth: Depth, now: u64) -> R<Vec<(String, String)>> {
    let mut out = Vec::new();
    for item in t.range(prefix..)? {
        let (k, v) = item?;
        let key = k.value();
        if !key.starts_with(prefix) {
            break;
        }
        let (exp, value) = v.value();
        if live(exp, now) && (depth == Depth::All || !key[prefix.len()..].contains(':')) {
            out.push((key.to_string(), value.to_string()));
        }
    }
    Ok(out)
}

/// Reads in one read transaction (a consistent snapshot).
pub(super) struct Reader {
    strings: ReadOnlyTable<&'static str, (u64, &'static str)>,
    sets: ReadOnlyTable<(&'static str, &'static str), ()>,
    set_expiry: ReadOnlyTable<&'static str, u64>,
    now: u64,
}

impl Reader {
    pub(super) fn open(tx: &ReadTransaction, now: u64) -> R<Self> {
        Ok(Self {
            strings: tx.open_table(STRINGS)?,
            sets: tx.open_table(SETS)?,
            set_expiry: tx.open_table(SET_EXPIRY)?,
            now,
        })
    }
    pub(super) fn string(&self, key: &str) -> R<Option<String>> {
        Ok(string_in(&self.strings, key, self.now)?.map(|(_, v)| v))
    }
    pub(super) fn members(&self, key: &str) -> R<Vec<String>> {
        if !set_live_in(&self.set_expiry, key, self.now)? {
            return Ok(Vec::new());
        }
        members_in(&self.sets, key, usize::MAX)
    }
    pub(super) fn scan(&self, prefix: &str, depth: Depth) -> R<Vec<(String, String)>> {
        scan_in(&self.strings, prefix, depth, self.now)
    }
}

/// Reads and writes in one write transaction.
pub(super) struct Writer<'t> {
    strings: Table<'t, &'static str, (u64, &'static str)>,
    sets: Table<'t, (&'static str, &'static str), ()>,
    set_expiry: Table<'t, &'static str, u64>,
    expiry: Table<'t, (u64, &'static str), ()>,
    now: u64,
}

impl<'t> Writer<'t> {
    /// Opens (creating on first use) every table.
    pub(super) fn open(tx: &'t WriteTransaction, now: u64) -> R<Self> {
        Ok(Self {
            strings: tx.open_table(STRINGS)?,
            sets: tx.open_table(SETS)?,
            set_expiry: tx.open_table(SET_EXPIRY)?,
            expiry: tx.open_table(EXPIRY)?,
            now,
        })
    }

    fn string(&self, key: &str) -> R<Option<(u64, String)>> {
        string_in(&self.strings, key, self.now)
    }

    fn members(&self, key: &str) -> R<Vec<String>> {
        if !set_live_in(&self.set_expiry, key, self.now)? {
            return Ok(Vec::new());
        }
        members_in(&self.sets, key, usize::MAX)
    }

    fn exists(&self, key: &str) -> R<bool> {
        Ok(self.string(key)?.is_some() || (set_live_in(&self.set_expiry, key, self.now)? && !members_in(&self.sets, key, 1)?.is_empty()))
    }

    /// Applies `batch` if its checks hold (the caller commits or aborts).
    pub(super) fn apply(&mut self, batch: &Batch) -> R<Applied> {
        for c in &batch.checks {
            let failed = match c {
                Check::Absent(k) => self.exists(k)?.then(|| Applied::Conflict(k.clone())),
                Check::Present(k) => (!self.exists(k)?).then(|| Applied::Missing(k.clone())),
                Check::Equals(k, v) => (self.string(k)?.map(|(_, s)| s).as_ref() != Some(v)).then(|| Applied::Changed(k.clone())),
                Check::Members(k, m) => {
                    let mut want = m.clone();
                    want.sort();
                    (self.members(k)? != want).then(|| Applied::Changed(k.clone()))
                }
            };
            if let Some(f) = failed {
                return Ok(f);
            }
        }
        for k in &batch.del {
            self.del_string(k)?;
            self.del_set(k)?;
        }
        for (k, v, e) in &batch.set {
            let expires = match e {
                Expiry::Never => 0,
                Expiry::Secs(s) => self.now.saturating_add(s.saturating_mul(1000)),
                Expiry::Keep => self.string(k)?.map_or(0, |(exp, _)| exp),
            };
            self.put_string(k, v, expires)?;
        }
        for (k, m, ttl) in &batch.sadd {
            let expires = ttl.map(|s| self.now.saturating_add(s.saturating_mul(1000)));
            self.sadd(k, m, expires)?;
        }
        for (k, m) in &batch.srem {
            self.sets.remove((k.as_str(), m.as_str()))?;
            if members_in(&self.sets, k, 1)?.is_empty() {
                self.del_set(k)?;
            }
        }
        Ok(Applied::Ok)
    }

    /// Writes a string expiring at `expires` (Unix ms; 0 never), moving its expiry index entry.
    pub(super) fn put_string(&mut self, key: &str, value: &str, expires: u64) -> R<()> {
        let old = self.strings.insert(key, (expires, value))?.map(|g| g.value().0);
        if let Some(old) = old.filter(|&o| o != 0 && o != expires) {
            self.expiry.remove((old, key))?;
        }
        if expires != 0 {
            self.expiry.insert((expires, key), ())?;
        }
        Ok(())
    }

    /// Adds a member; an expired set starts afresh; `expires` (Unix ms) restarts the set's expiry.
    pub(super) fn sadd(&mut self, key: &str, member: &str, expires: Option<u64>) -> R<()> {
        if !set_live_in(&self.set_expiry, key, self.now)? {
            self.del_set(key)?;
        }
        self.sets.insert((key, member), ())?;
        if let Some(exp) = expires {
            let old = self.set_expiry.insert(key, exp)?.map(|g| g.value());
            if let Some(old) = old.filter(|&o| o != exp) {
                self.expiry.remove((old, key))?;
            }
            self.expiry.insert((exp, key), ())?;
        }
        Ok(())
    }

    fn del_string(&mut self, key: &str) -> R<()> {
        let old = self.strings.remove(key)?.map(|g| g.value().0);
        if let Some(exp) = old.filter(|&e| e != 0) {
            self.expiry.remove((exp, key))?;
        }
        Ok(())
    }

    fn del_set(&mut self, key: &str) -> R<()> {
        for m in members_in(&self.sets, key, usize::MAX)? {
            self.sets.remove((key, m.as_str()))?;
        }
        let old = self.set_expiry.remove(key)?.map(|g| g.value());
        if let Some(exp) = old {
            self.expiry.remove((exp, key))?;
        }
        Ok(())
    }

    /// Removes up to [`SWEEP_LIMIT`] keys whose expiry has passed.
    pub(super) fn sweep(&mut self) -> R<()> {
        let mut due = Vec::new();
        for item in self.expiry.range(..(self.now, ""))? {
            let (k, _) = item?;
            let (exp, key) = k.value();
            due.push((exp, key.to_string()));
            if due.len() >= SWEEP_LIMIT {
                break;
            }
        }
        for (exp, key) in due {
            if self.strings.get(key.as_str())?.is_some_and(|g| g.value().0 == exp) {
                self.strings.remove(key.as_str())?;
            }
            if self.set_expiry.get(key.as_str())?.is_some_and(|g| g.value() == exp) {
                self.del_set(&key)?;
            }
            self.expiry.remove((exp, key.as_str()))?;
        }
        Ok(())
    }
}
