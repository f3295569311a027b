//! Every environment variable the server reads is documented in `.env.example`.
//!
//! A variable counts as read when `src/**/*.rs` passes an UPPER_SNAKE string
//! literal to one of the config readers (`raw(`, `parse(`, `seconds(`,
//! `url_var(`, `list(`, `port(`), or when `src/config` names it in a
//! `const X: &str = "..."`. Documented means a line `NAME=...` (optionally
//! commented out) in `.env.example`.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use regex::Regex;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The variables read by the sources under `src`, with where each was found.
fn variables_read(src: &Path) -> Vec<(String, String)> {
    let reader = Regex::new(r#"\b(?:raw|parse|seconds|url_var|list|port)\(\s*"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)""#).unwrap();
    let constant = Regex::new(r#"\bconst\s+[A-Z][A-Z0-9_]*\s*:\s*&(?:'static\s+)?str\s*=\s*"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)""#).unwrap();
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut found = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let in_config = f.strip_prefix(src).is_ok_and(|rel| rel.starts_with("config"));
        let rel = f.strip_prefix(src.parent().unwrap_or(src)).unwrap_or(&f).display().to_string();
        for (n, line) in text.lines().enumerate() {
            let mut add = |name: &str| found.push((name.to_string(), format!("{rel}:{}", n + 1)));
            for c in reader.captures_iter(line) {
                add(&c[1]);
            }
            if in_config {
                for c in constant.captures_iter(line) {
                    add(&c[1]);
                }
            }
        }
    }
    found
}

/// The names assigned in an env file (`NAME=`, `# NAME=`, `export NAME=`).
fn documented(env_file: &str) -> BTreeSet<String> {
    let assignment = Regex::new(r"^\s*#?\s*(?:export\s+)?([A-Z][A-Z0-9_]*)=").unwrap();
    env_file
        .lines()
        .filter_map(|l| assignment.captures(l).map(|c| c[1].to_string()))
        .collect()
}

#[test]
fn every_variable_read_is_in_env_example() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let env_file = std::fs::read_to_string(root.join(".env.example")).expect(".env.example exists");
    let documented = documented(&env_file);
    let read = variables_read(&root.join("src"));

    // Guard against the scan silently finding nothing (a renamed reader, a moved file).
    let names: BTreeSet<&str> = read.iter().map(|(n, _)| n.as_str()).collect();
    for expected in [
        "REDIS_URL",
        "OAUTH_ISSUER",
        "ACME_DIRECTORY_URL",
        "OAUTH_ACCESS_TOKEN_LIFETIME",
        "OAUTH_ALLOWED_GITHUB_USERS",
    ] {
        assert!(
            names.contains(expected),
            "the scan no longer finds {expected}; update tests/env_example.rs"
        );
    }

    let mut missing = std::collections::BTreeMap::new();
    for (name, at) in read.iter().filter(|(n, _)| !documented.contains(n)) {
        missing.entry(name.as_str()).or_insert(at.as_str());
    }
    let missing: Vec<String> = missing.iter().map(|(n, at)| format!("{n} (read at {at})")).collect();
    assert!(
        missing.is_empty(),
        "add these variables to .env.example with their default and a one-line comment:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn the_scan_recognizes_the_reader_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("config")).unwrap();
    std::fs::create_dir_all(src.join("other")).unwrap();
    std::fs::write(
        src.join("config").join("mod.rs"),
        r#"pub const A_VAR: &str = "A_VAR";
           const V_ISSUER: &str = "OAUTH_X_ISSUER";
           let t = seconds("B_VAR", 1)?; let u = url_var( "C_VAR", "x")?; list("D_VAR"); parse(vars::E, 1, "x");
           let m = "NOT_READ";"#,
    )
    .unwrap();
    std::fs::write(
        src.join("other").join("x.rs"),
        r#"raw("F_VAR"); const G_VAR: &str = "G_VAR"; x.parse("lower_case");"#,
    )
    .unwrap();
    let mut names: Vec<String> = variables_read(&src).into_iter().map(|(n, _)| n).collect();
    names.sort();
    assert_eq!(names, ["A_VAR", "B_VAR", "C_VAR", "D_VAR", "F_VAR", "OAUTH_X_ISSUER"]);
    let env = documented("# comment\nA_VAR=1\n# B_VAR=\nexport C_VAR=x\nlower=1\n  D_VAR = no\n");
    assert_eq!(env.into_iter().collect::<Vec<_>>(), ["A_VAR", "B_VAR", "C_VAR"]);
}
