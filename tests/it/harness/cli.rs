//! The real `portcullis` CLI run against a real server: one bound to a server
//! and a token, and what one run printed and how it exited, with the checks
//! every CLI test makes (exit 0 / 1 / 2, `--json` parses, one `error: ...`
//! line on stderr).

use std::process::Output;

use serde_json::Value;

use super::{run_bin, Portcullis};

/// A CLI bound to one server and one token, in its own HOME and directory.
pub struct Cli {
    pub api_url: String,
    pub token: String,
    pub dir: tempfile::TempDir,
}

/// What one CLI run printed and how it exited.
pub struct Run {
    pub code: Option<i32>,
    pub out: String,
    pub err: String,
}

impl Run {
    /// Exit 0: stdout.
    pub fn ok(self) -> String {
        assert_eq!(self.code, Some(0), "stdout:\n{}\nstderr:\n{}", self.out, self.err);
        self.out
    }

    /// Exit 0 and stdout is JSON.
    pub fn json(self) -> Value {
        let out = self.ok();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("--json printed no JSON ({e}):\n{out}"))
    }

    /// Refused or failed: exit 1 and one `error: ...` line on stderr, nothing
    /// on stdout; the message after `error: `.
    pub fn refused(self) -> String {
        assert_eq!(self.code, Some(1), "stdout:\n{}\nstderr:\n{}", self.out, self.err);
        assert!(self.out.is_empty(), "stdout on failure:\n{}", self.out);
        let lines: Vec<&str> = self.err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "one error line expected:\n{}", self.err);
        let msg = lines[0]
            .strip_prefix("error: ")
            .unwrap_or_else(|| panic!("not `error: ...`: {}", lines[0]));
        msg.to_string()
    }

    /// A bad command line: exit 2 and clap's `error: ...` (with a usage or
    /// help hint) on stderr.
    pub fn usage(self) -> String {
        assert_eq!(self.code, Some(2), "stdout:\n{}\nstderr:\n{}", self.out, self.err);
        assert!(self.out.is_empty(), "stdout on a usage error:\n{}", self.out);
        assert!(self.err.starts_with("error: "), "{}", self.err);
        assert!(self.err.contains("Usage:") || self.err.contains("--help"), "{}", self.err);
        self.err
    }
}

impl Cli {
    /// A CLI calling `p` with `token`.
    pub fn new(p: &Portcullis, token: &str) -> Cli {
        Cli::at(&format!("http://127.0.0.1:{}", p.api_port), token)
    }

    /// A CLI calling the admin API at `api_url` with `token`.
    pub fn at(api_url: &str, token: &str) -> Cli {
        Cli {
            api_url: api_url.to_string(),
            token: token.to_string(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Runs `portcullis ARGS` with only HOME, API_URL and ADMIN_TOKEN set.
    pub fn run(&self, args: &[&str]) -> Run {
        let home = self.dir.path().to_string_lossy().into_owned();
        let env = [("HOME", home.as_str()), ("API_URL", &self.api_url), ("ADMIN_TOKEN", &self.token)];
        let out: Output = run_bin(self.dir.path(), args, &env);
        Run {
            code: out.status.code(),
            out: String::from_utf8_lossy(&out.stdout).into_owned(),
            err: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// A file in the CLI's working directory; its path.
    pub fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    }
}

/// Asserts that `v` is an object whose `fields` have the JSON types named
/// (`"string"`, `"number"`, `"bool"`, `"array"`, `"object"`, `"null"`,
/// `"string|null"` for either).
pub fn assert_shape(v: &Value, fields: &[(&str, &str)]) {
    assert!(v.is_object(), "not an object: {v}");
    for (name, kinds) in fields {
        let got = &v[*name];
        let ok = kinds.split('|').any(|k| match k {
            "string" => got.is_string(),
            "number" => got.is_number(),
            "bool" => got.is_boolean(),
            "array" => got.is_array(),
            "object" => got.is_object(),
            "null" => got.is_null(),
            other => panic!("unknown kind {other}"),
        });
        assert!(ok, "field {name} is not {kinds}: {got} in {v}");
    }
}
