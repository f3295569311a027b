//! The one normalized request path every data-plane decision uses: route
//! matching, auth exemptions, protected-resource metadata and the path sent
//! upstream. Deciding on one form and forwarding another is how
//! `/.well-known/../secret` passed auth as a `/.well-known/` path and then
//! reached a backend that resolved the `..`.
//!
//! The rules: percent-encoded unreserved characters are decoded (RFC 3986
//! §6.2.2.2) and other escapes get upper-case hex (§6.2.2.1); dot segments are
//! removed (§5.2.4); runs of `/` become one (nginx's `merge_slashes`, so
//! `//admin` cannot slip past a `/admin` route). Refused with 400: a path that
//! climbs above the root, an encoded `/`, `\` or NUL (Traefik 3 refuses these
//! by default: backends decode them into separators or string ends), a raw
//! `\` or control character, a malformed escape, and a dot segment carrying
//! `;` parameters (`/..;/`, which Tomcat resolves as `..`).

use std::borrow::Cow;

/// Why a request path is refused (answered 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadPath {
    /// `..` above the root.
    EscapesRoot,
    /// `%2F`, `%5C` or `%00`.
    EncodedSeparator,
    /// `%` not followed by two hex digits.
    BadEscape,
    /// A raw `\`, a control character, or a dot segment with `;` parameters.
    Forbidden,
}

impl BadPath {
    /// The message of the 400 answer.
    pub fn message(self) -> &'static str {
        match self {
            BadPath::EscapesRoot => "the request path climbs above the root",
            BadPath::EncodedSeparator => "the request path contains an encoded '/', '\\' or NUL",
            BadPath::BadEscape => "the request path contains a malformed percent-escape",
            BadPath::Forbidden => "the request path contains a backslash, a control character or a dot segment with parameters",
        }
    }
}

/// The normalized form of `path` (the path component of the request target,
/// without the query). Borrowed, with no allocation, when `path` is already
/// normal: the usual case costs one scan of its bytes.
pub fn normalize(path: &str) -> Result<Cow<'_, str>, BadPath> {
    if !path.starts_with('/') {
        // "*" (OPTIONS *) and the empty target have no segments to resolve.
        return match path {
            "" => Ok(Cow::Borrowed("/")),
            "*" => Ok(Cow::Borrowed(path)),
            _ => Err(BadPath::Forbidden),
        };
    }
    if is_normal(path.as_bytes()) {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode(path.as_bytes())?;
    resolve(&decoded).map(Cow::Owned)
}

/// True for `.` and `..`, alone or with `;` parameters.
fn dot_segment(seg: &[u8]) -> bool {
    matches!(seg, b"." | b"..") || seg.starts_with(b".;") || seg.starts_with(b"..;")
}

/// One pass: no backslashes, control characters, empty inner segments or
/// dot segments, and escapes only in upper-case hex of characters that stay
/// escaped (the path starts with `/`).
fn is_normal(b: &[u8]) -> bool {
    let mut start = 1;
    for (i, &c) in b.iter().enumerate().skip(1) {
        match c {
            b'/' => {
                let seg = &b[start..i];
                if seg.is_empty() || dot_segment(seg) {
                    return false;
                }
                start = i + 1;
            }
            b'%' => {
                let upper = |j: usize| b.get(j).is_some_and(|d| d.is_ascii_digit() || (b'A'..=b'F').contains(d));
                if !(upper(i + 1) && upper(i + 2)) {
                    return false;
                }
                let v = hex(b[i + 1]).unwrap_or(0) << 4 | hex(b[i + 2]).unwrap_or(0);
                if unreserved(v) || matches!(v, b'/' | b'\\' | 0) {
                    return false;
                }
            }
            b'\\' | 0..=0x1f | 0x7f => return false,
            _ => {}
        }
    }
    !dot_segment(&b[start..])
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

/// Decodes escapes of unreserved characters and upper-cases the others.
fn decode(b: &[u8]) -> Result<String, BadPath> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'%' => {
                let v = match (b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
                    (Some(h), Some(l)) => h << 4 | l,
                    _ => return Err(BadPath::BadEscape),
                };
                if matches!(v, b'/' | b'\\' | 0) {
                    return Err(BadPath::EncodedSeparator);
                }
                if unreserved(v) {
                    out.push(char::from(v));
                } else {
                    out.push('%');
                    out.push(char::from(HEX[usize::from(v >> 4)]));
                    out.push(char::from(HEX[usize::from(v & 15)]));
                }
                i += 3;
            }
            b'\\' | 0..=0x1f | 0x7f => return Err(BadPath::Forbidden),
            _ => {
                // Multi-byte characters are copied whole: `b` is UTF-8 and
                // every byte matched above is ASCII.
                let len = utf8_len(c);
                let end = (i + len).min(b.len());
                out.push_str(std::str::from_utf8(&b[i..end]).map_err(|_| BadPath::Forbidden)?);
                i = end;
            }
        }
    }
    Ok(out)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xf0..=0xff => 4,
        0xe0..=0xef => 3,
        0xc0..=0xdf => 2,
        _ => 1,
    }
}

/// Removes dot segments (RFC 3986 §5.2.4) and empty inner segments; a path
/// ending in a dot segment or `/` keeps its trailing `/`.
fn resolve(path: &str) -> Result<String, BadPath> {
    let mut segs: Vec<&str> = Vec::new();
    let mut parts = path[1..].split('/').peekable();
    let mut trailing = false;
    while let Some(seg) = parts.next() {
        let last = parts.peek().is_none();
        match seg {
            "." | "" => trailing = last,
            ".." => {
                segs.pop().ok_or(BadPath::EscapesRoot)?;
                trailing = last;
            }
            s if dot_segment(s.as_bytes()) => return Err(BadPath::Forbidden),
            s => {
                segs.push(s);
                trailing = false;
            }
        }
    }
    let mut out = String::with_capacity(path.len());
    for s in &segs {
        out.push('/');
        out.push_str(s);
    }
    if trailing || segs.is_empty() {
        out.push('/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_paths_are_borrowed() {
        for p in [
            "/",
            "/a",
            "/a/b/",
            "/.well-known/oauth-protected-resource/mcp",
            "/a.b/..c/.d",
            "/~u/é",
            "/a%20b%C3%A9",
        ] {
            assert!(matches!(normalize(p), Ok(Cow::Borrowed(q)) if q == p), "{p}");
        }
    }

    #[test]
    fn dot_segments_escapes_and_slashes_are_resolved() {
        let cases = [
            ("/.well-known/../secret.txt", "/secret.txt"),
            ("/.well-known/%2e%2e/secret.txt", "/secret.txt"),
            ("/.well-known/%2E%2e/secret.txt", "/secret.txt"),
            ("/public/../secret", "/secret"),
            ("/a/./b/../c", "/a/c"),
            ("/a/b/..", "/a/"),
            ("/a/.", "/a/"),
            ("/a//b///c", "/a/b/c"),
            ("//admin", "/admin"),
            ("/%61dmin", "/admin"),
            ("/a%20b%3f", "/a%20b%3F"),
            ("/a/..", "/"),
            ("/.", "/"),
            ("/%7euser", "/~user"),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize(raw).as_deref(), Ok(want), "{raw}");
        }
    }

    #[test]
    fn dangerous_paths_are_refused() {
        let cases = [
            ("/..", BadPath::EscapesRoot),
            ("/a/../../etc/passwd", BadPath::EscapesRoot),
            ("/%2e%2e/x", BadPath::EscapesRoot),
            ("/a%2Fb", BadPath::EncodedSeparator),
            ("/a%2fb", BadPath::EncodedSeparator),
            ("/a%5Cb", BadPath::EncodedSeparator),
            ("/a%00b", BadPath::EncodedSeparator),
            ("/a%zz", BadPath::BadEscape),
            ("/a%4", BadPath::BadEscape),
            ("/a\\..\\b", BadPath::Forbidden),
            ("/public/..;/secret", BadPath::Forbidden),
            ("/a/.;x/b", BadPath::Forbidden),
            ("relative", BadPath::Forbidden),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize(raw), Err(want), "{raw}");
        }
    }

    #[test]
    fn normalizing_twice_changes_nothing() {
        for p in ["/a/./b/../c/", "/x//y/%7e/%41%2541", "/%2e/a"] {
            let once = normalize(p).unwrap().into_owned();
            assert_eq!(normalize(&once).unwrap(), once.as_str(), "{p}");
        }
    }
}
