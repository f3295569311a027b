//! The data plane's layering, checked on the source: `proxy`, `auth` and
//! `snapshot` read only the immutable snapshot (the store is read by the
//! snapshot loaders, `snapshot/build.rs` and `snapshot/sync.rs`, alone), never
//! the control plane (`admin`, `manage`); `proxy` and `auth` do not link the
//! OAuth server; `auth` is below `snapshot` and `proxy` (no cycle), and `tls`
//! is a leaf naming no other module of the crate.
//!
//! Every path to a crate module counts, whatever its form: `use crate::x`,
//! `use crate::{a, x::Y}` (nested groups too), `crate :: x` spread over lines,
//! `super::super::x`, a glob `crate::*`; comments and string literals do not.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One layering rule: files under `under` (relative to `src/`), except
/// `except`, must not name the crate modules in `forbidden` (`"*"` in it:
/// any crate module outside the file's own top-level module).
struct Rule {
    under: &'static str,
    except: &'static [&'static str],
    forbidden: &'static [&'static str],
    why: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        under: "proxy",
        except: &[],
        forbidden: &["store", "admin", "manage", "oauth"],
        why: "the proxy reads the snapshot only and does not link the OAuth server",
    },
    Rule {
        under: "auth",
        except: &[],
        forbidden: &["store", "admin", "manage", "oauth", "snapshot", "proxy", "tls"],
        why: "auth::check decides from what it is given: no loader, no cycle with snapshot or proxy",
    },
    Rule {
        under: "snapshot",
        except: &["snapshot/build.rs", "snapshot/sync.rs"],
        forbidden: &["store", "admin", "manage", "oauth"],
        why: "only the loaders (snapshot::build, snapshot::sync) read the store",
    },
    Rule {
        under: "snapshot",
        except: &[],
        forbidden: &["proxy", "admin", "manage"],
        why: "the snapshot is below the proxy and independent of the control plane",
    },
    Rule {
        under: "tls",
        except: &[],
        forbidden: &["*"],
        why: "tls is a leaf: the certificate table only",
    },
];

/// Tokens of Rust source without comments, string, byte-string and char
/// literals: identifiers, `::`, and single punctuation characters.
fn tokens(src: &str) -> Vec<String> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == b'r' && matches!(b.get(i + 1), Some(b'#') | Some(b'"')) && !prev_is_ident(b, i) {
            // raw string r"..." / r#"..."#
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push("r".to_string());
                i += 1;
                continue;
            }
            j += 1;
            let close: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
            while j < b.len() && !b[j..].starts_with(&close) {
                j += 1;
            }
            i = j + close.len();
        } else if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == b'\'' {
            // a char literal ('x', '\n', '\u{..}'), else a lifetime ('a)
            if b.get(i + 1) == Some(&b'\\') {
                let mut j = i + 2;
                while j < b.len() && b[j] != b'\'' {
                    j += 1;
                }
                i = j + 1;
            } else {
                let ch_len = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                if b.get(i + 1 + ch_len) == Some(&b'\'') {
                    i += 2 + ch_len;
                } else {
                    i += 1;
                }
            }
        } else if c.is_ascii_alphanumeric() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(src[start..i].to_string());
        } else if c == b':' && b.get(i + 1) == Some(&b':') {
            out.push("::".to_string());
            i += 2;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else {
            out.push((c as char).to_string());
            i += 1;
        }
    }
    out
}

fn prev_is_ident(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
}

/// The top-level crate modules the path at `pos` names, resolved against
/// `base` (the module the path is relative to, from the crate root).
fn resolve(t: &[String], pos: usize, base: &[String], found: &mut BTreeSet<String>) {
    let Some(tok) = t.get(pos) else { return };
    let next_is_sep = t.get(pos + 1).is_some_and(|s| s == "::");
    match tok.as_str() {
        "super" if next_is_sep => {
            let parent = &base[..base.len().saturating_sub(1)];
            resolve(t, pos + 2, parent, found);
        }
        "self" if next_is_sep => resolve(t, pos + 2, base, found),
        "{" => {
            let mut depth = 0;
            let mut item_start = true;
            for (i, tok) in t.iter().enumerate().skip(pos + 1) {
                if depth == 0 && item_start && tok != "}" {
                    resolve(t, i, base, found);
                }
                item_start = false;
                match tok.as_str() {
                    "{" => depth += 1,
                    "}" if depth == 0 => break,
                    "}" => depth -= 1,
                    "," if depth == 0 => item_start = true,
                    _ => {}
                }
            }
        }
        _ if !base.is_empty() => {
            found.insert(base[0].clone());
        }
        "self" => {}
        name => {
            found.insert(name.to_string());
        }
    }
}

/// Every top-level crate module `src` names, for a file of module `module`
/// (path from the crate root; inline `mod x { .. }` blocks extend it);
/// `crate as x` aliases are reported as `crate as`.
fn named_modules(src: &str, module: &[String]) -> BTreeSet<String> {
    let t = tokens(src);
    let mut found = BTreeSet::new();
    let mut current = module.to_vec();
    // brace depth, and the depth at which each open inline module started
    let mut depth = 0usize;
    let mut inline: Vec<usize> = Vec::new();
    for i in 0..t.len() {
        let after_sep = i > 0 && t[i - 1] == "::";
        let sep = t.get(i + 1).is_some_and(|s| s == "::");
        match t[i].as_str() {
            "crate" if sep => resolve(&t, i + 2, &[], &mut found),
            "crate" if t.get(i + 1).is_some_and(|s| s == "as") => {
                found.insert("crate as".to_string());
            }
            "super" if sep && !after_sep => resolve(&t, i, &current, &mut found),
            "mod" if t.get(i + 2).is_some_and(|s| s == "{") => {
                if let Some(name) = t.get(i + 1) {
                    current.push(name.clone());
                    inline.push(depth + 1);
                }
            }
            "{" => depth += 1,
            "}" => {
                if inline.last() == Some(&depth) {
                    inline.pop();
                    current.pop();
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
    }
    found
}

/// The module path of a file under `src/` (`proxy/mod.rs` -> proxy,
/// `proxy/dispatch.rs` -> proxy::dispatch).
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        if stem != "mod" && stem != "lib" {
            parts.push(stem.to_string());
        }
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The violations of `rule` in the crate's `src/`.
fn violations(src_dir: &Path, rule: &Rule) -> Vec<String> {
    let mut files = Vec::new();
    let dir = src_dir.join(rule.under);
    if dir.is_dir() {
        rust_files(&dir, &mut files);
    }
    let single = src_dir.join(format!("{}.rs", rule.under));
    if single.is_file() {
        files.push(single);
    }
    assert!(!files.is_empty(), "src/{} has no Rust files", rule.under);
    let mut bad = Vec::new();
    for f in files {
        let rel = f.strip_prefix(src_dir).unwrap();
        let rel_s = rel.to_string_lossy().replace('\\', "/");
        if rule.except.contains(&rel_s.as_str()) {
            continue;
        }
        let module = module_of(rel);
        let own = module.first().cloned().unwrap_or_default();
        let src = std::fs::read_to_string(&f).unwrap();
        for name in named_modules(&src, &module) {
            let hit = if rule.forbidden.contains(&"*") {
                name != own
            } else {
                rule.forbidden.contains(&name.as_str()) || name == "*" || name == "crate as"
            };
            if hit {
                bad.push(format!("src/{rel_s} names crate::{name} ({})", rule.why));
            }
        }
    }
    bad
}

#[test]
fn the_data_plane_names_no_store_control_plane_or_cycle() {
    let src_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let bad: Vec<String> = RULES.iter().flat_map(|r| violations(&src_dir, r)).collect();
    assert!(bad.is_empty(), "layering violations:\n{}", bad.join("\n"));
}

fn names(src: &str, module: &str) -> Vec<String> {
    let module: Vec<String> = module.split("::").filter(|s| !s.is_empty()).map(str::to_string).collect();
    named_modules(src, &module).into_iter().collect()
}

#[test]
fn every_use_form_is_seen() {
    assert_eq!(names("use crate::store::Store;", "proxy"), ["store"]);
    assert_eq!(
        names("use crate::{model::Proxy, store::{Store, StoreError}};", "proxy"),
        ["model", "store"]
    );
    assert_eq!(names("use crate::{\n  model,\n  admin\n};", "proxy"), ["admin", "model"]);
    assert_eq!(names("use crate::{a::{b, c}, manage};", "auth"), ["a", "manage"]);
    assert_eq!(names("use crate::{{store}};", "auth"), ["store"]);
    assert_eq!(names("let s = crate\n  ::\n  store::open(&c);", "proxy"), ["store"]);
    assert_eq!(names("fn f() -> crate::manage::Manager { todo!() }", "proxy"), ["manage"]);
    assert_eq!(names("use super::super::store;", "proxy::dispatch"), ["store"]);
    assert_eq!(names("use super::respond::Reply;", "proxy::dispatch"), ["proxy"]);
    assert_eq!(names("use super::store;", "proxy"), ["store"]);
    assert_eq!(names("use super::{super::admin, Ctx};", "proxy::dispatch"), ["admin", "proxy"]);
    assert_eq!(names("use crate::*;", "tls"), ["*"]);
    assert_eq!(names("use crate as root;", "auth"), ["crate as"]);
    assert_eq!(names("use crate::{self as c};", "auth"), Vec::<String>::new());
    assert_eq!(names("mod tests { use super::*; }", "snapshot"), ["snapshot"]);
    assert_eq!(names("mod a { mod b { use super::super::super::store; } }", "proxy"), ["store"]);
    assert_eq!(names("mod t { fn f() { if x {} } } use super::store;", "proxy"), ["store"]);
}

#[test]
fn comments_and_literals_are_not_paths() {
    let src = r##"
        // use crate::store;
        /* crate::admin /* nested */ crate::manage */
        /// Reads crate::store::Store.
        const A: &str = "crate::store";
        const B: &str = r#"crate::"admin"#;
        const C: char = '"';
        fn f<'a>(x: &'a str) -> &'a str { let _ = '\''; x }
        use crate::model;
    "##;
    assert_eq!(names(src, "auth"), ["model"]);
}
