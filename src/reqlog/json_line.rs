//! A record as its JSON line, written by hand from [`Record::each_field`].
//!
//! Why not `serde_json` here (it serves every other JSON of the request
//! log, reading these lines back included): the line is made for every
//! logged request, and serde escapes each key and value byte by byte
//! through its formatter: ≈ 5.7 k instructions per record under callgrind,
//! over a quarter of the writer's work. Keys here are constants, values
//! are checked for characters to escape in one vectorisable pass and then
//! copied whole. The output is byte for byte what `serde_json` writes for
//! the same [`Record`] (the tests compare them).

use super::record::{Field, Record};

/// Room for a typical line from the start, so a batch's buffer does not
/// grow step by step.
const LINE_CAPACITY: usize = 640;

/// A batch's JSON lines in one buffer, each followed by its newline: the
/// access log prints the buffer as it is and the stores take each line,
/// with no string, UTF-8 check or copy per record.
pub struct Lines {
    buf: Vec<u8>,
    /// Where each line ends (the position of its newline).
    ends: Vec<usize>,
}

impl Lines {
    /// The lines of `batch`, in its order.
    pub fn of(batch: &[Record]) -> Lines {
        let mut lines = Lines {
            buf: Vec::with_capacity(batch.len() * LINE_CAPACITY),
            ends: Vec::with_capacity(batch.len()),
        };
        for r in batch {
            write(r, &mut lines.buf);
            lines.ends.push(lines.buf.len());
            lines.buf.push(b'\n');
        }
        lines
    }

    /// Each line without its newline, in the batch's order. Lines are built
    /// from `&str`s with ASCII escapes only, so each is valid UTF-8.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().map(|e| e + 1));
        starts.zip(&self.ends).map(|(start, &end)| &self.buf[start..end])
    }

    /// Every line with its newline, as the access log prints them.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// Appends `r` as one JSON object (no newline) to `out`.
pub fn write(r: &Record, out: &mut Vec<u8>) {
    let mut first = true;
    r.each_field(|name, value| {
        // `,"name":`; the first key opens the object instead.
        if first {
            out.push(b'{');
            out.extend_from_slice(&name.json.as_bytes()[1..]);
            first = false;
        } else {
            out.extend_from_slice(name.json.as_bytes());
        }
        match value {
            Field::Text(t) => string(t, out),
            Field::Int(n) => out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
            Field::Float(f) if f.is_finite() => out.extend_from_slice(zmij::Buffer::new().format_finite(f).as_bytes()),
            Field::Float(_) => out.extend_from_slice(b"null"),
        }
    });
    out.extend_from_slice(if first { b"{}" } else { b"}" });
}

/// True for a byte JSON requires escaped inside a string.
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Appends `s` as a JSON string. The check folds over every byte without
/// stopping early, so the compiler turns it into vector compares; nearly
/// every value (paths, hosts, ids) then costs one copy.
fn string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let clean = !s.bytes().fold(false, |any, b| any | needs_escape(b));
    if clean {
        out.extend_from_slice(s.as_bytes());
    } else {
        escaped(s.as_bytes(), out);
    }
    out.push(b'"');
}

/// The escapes `serde_json` writes: the short forms it has, `\u00XX` with
/// lowercase hex digits for the other control characters.
fn escaped(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !needs_escape(b) {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reqlog::record::tests::full_record as full;

    fn line(r: &Record) -> String {
        let mut out = Vec::new();
        write(r, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_batch_s_lines_are_each_record_s_line() {
        let records = [full(), Record::default(), full()];
        let lines = Lines::of(&records);
        let each: Vec<&[u8]> = lines.iter().collect();
        assert_eq!(each.len(), 3);
        for (r, l) in records.iter().zip(&each) {
            assert_eq!(*l, line(r).as_bytes());
        }
        let printed: Vec<u8> = each.iter().flat_map(|l| l.iter().copied().chain([b'\n'])).collect();
        assert_eq!(lines.as_bytes(), &printed[..]);
        assert_eq!(Lines::of(&[]).iter().count(), 0);
        assert!(Lines::of(&[]).as_bytes().is_empty());
    }

    #[test]
    fn lines_equal_what_serde_writes() {
        let empty = Record::default();
        let sparse = Record {
            ts: -5,
            status: 0,
            duration_ms: 1e21,
            upstream_ms: Some(123_456.789),
            ..Record::default()
        };
        for r in [full(), empty, sparse] {
            assert_eq!(line(&r), serde_json::to_string(&r).unwrap());
        }
    }

    #[test]
    fn every_escape_matches_serde() {
        let mut nasty = String::from("q\"uote\\back/slash é ✓ \u{7f}");
        nasty.extend((0u8..0x20).map(char::from));
        for text in [nasty.as_str(), "\"", "\\", "\u{1}", "tail\n", "\nhead", ""] {
            let r = Record {
                path: text.into(),
                user: Some(text.into()),
                reason: Some(format!("{text}{text}")),
                ..full()
            };
            let ours = line(&r);
            assert_eq!(ours, serde_json::to_string(&r).unwrap(), "{text:?}");
            assert_eq!(serde_json::from_str::<Record>(&ours).unwrap(), r);
        }
    }

    #[test]
    fn a_float_that_is_not_finite_is_null_as_in_serde() {
        let r = Record {
            duration_ms: f64::NAN,
            upstream_ms: Some(f64::INFINITY),
            ..full()
        };
        assert_eq!(line(&r), serde_json::to_string(&r).unwrap());
    }
}
