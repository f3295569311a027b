//! One-time migration of the JSON state file the embedded store used before
//! redb (format 1: every key in one JSON object, rewritten on each write).
//! The new database is built beside it and renamed into place, so a crash
//! part-way leaves the JSON file to migrate again; the JSON file is kept as
//! `{name}.migrated`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::tables::{now_ms, Writer};
use super::{db_err, io_err, open_db};
use crate::store::{StoreError, StoreResult};

/// The only format the JSON store wrote.
const FORMAT: u32 = 1;

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Value {
    Str(String),
    Set(BTreeSet<String>),
}

#[derive(Deserialize)]
struct Entry {
    value: Value,
    #[serde(default)]
    expires_ms: Option<u64>,
}

#[derive(Deserialize)]
struct Snapshot {
    format: u32,
    entries: BTreeMap<String, Entry>,
}

/// True when the file starts like a JSON object (a redb file starts with its magic bytes).
fn is_json(path: &Path) -> bool {
    let mut head = [0u8; 64];
    let Ok(n) = std::fs::File::open(path).and_then(|mut f| f.read(&mut head)) else {
        return false;
    };
    head[..n].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// The JSON state file to migrate into `path`, if any: `path` itself, or,
/// when `path` does not exist yet, the same name with a `.json` extension.
pub(super) fn legacy_source(path: &Path) -> Option<PathBuf> {
    if is_json(path) {
        return Some(path.to_path_buf());
    }
    let sibling = path.with_extension("json");
    (!path.exists() && sibling != path && is_json(&sibling)).then_some(sibling)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Builds the database at `path` from the JSON state file `source`
/// (unexpired keys only), keeping `source` as `{source}.migrated`.
pub(super) fn from_json(source: &Path, path: &Path) -> StoreResult<()> {
    let bytes = std::fs::read(source).map_err(|e| io_err(source, e))?;
    let snap: Snapshot = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt(format!("{}: {e}", source.display())))?;
    if snap.format != FORMAT {
        return Err(StoreError::Corrupt(format!("{}: unknown format {}", source.display(), snap.format)));
    }
    let tmp = with_suffix(path, ".migrating");
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(&tmp, e)),
        _ => {}
    }
    let now = now_ms();
    {
        let db = open_db(&tmp)?;
        let tx = db.begin_write().map_err(db_err)?;
        {
            let mut w = Writer::open(&tx, now).map_err(db_err)?;
            for (key, e) in &snap.entries {
                let expires = e.expires_ms.unwrap_or(0);
                if expires != 0 && expires <= now {
                    continue;
                }
                match &e.value {
                    Value::Str(s) => w.put_string(key, s, expires).map_err(db_err)?,
                    Value::Set(members) => {
                        for m in members {
                            w.sadd(key, m, e.expires_ms).map_err(db_err)?;
                        }
                    }
                }
            }
        }
        tx.commit().map_err(db_err)?;
    }
    let backup = with_suffix(source, ".migrated");
    if source == path {
        std::fs::copy(source, &backup).map_err(|e| io_err(&backup, e))?;
        std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))?;
    } else {
        std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))?;
        std::fs::rename(source, &backup).map_err(|e| io_err(&backup, e))?;
    }
    tracing::info!(
        from = %source.display(),
        to = %path.display(),
        keys = snap.entries.len(),
        "migrated the JSON state file into the embedded database"
    );
    Ok(())
}
