//! The request-log writer's own Redis connection: commands are encoded as
//! RESP2 straight into one reused buffer, sent as one pipeline, and the
//! replies are only checked, never built into values.
//!
//! Why not redis-rs here (it serves every other Redis use, queries of the
//! request log included): the writer sends about eight commands per
//! request, and redis-rs builds each as a `Cmd` (two vectors, one string
//! per argument) and parses each reply into a `Value` with a combinator
//! parser. Under callgrind that was ≈ 30 k instructions per logged request
//! on the writer's thread, a third of what the whole data plane spends on
//! the request itself. RESP2 framing is a few lines; connecting (address,
//! `AUTH`, `SELECT` from the same `REDIS_URL`) reuses redis-rs's parsing.

use std::io;
use std::time::Duration;

use redis::{ConnectionAddr, IntoConnectionInfo};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use super::store::LogError;

/// Longest a connect, or one pipeline's write and replies, may take.
const DEADLINE: Duration = Duration::from_secs(10);

/// Commands encoded back to back, not yet sent.
#[derive(Default)]
pub struct Pipe {
    buf: Vec<u8>,
    /// Where the command being built starts in `buf`: its `*<argc>` header
    /// goes there once the count is known.
    start: usize,
    argc: usize,
    /// The argument count written up front by [`Pipe::cmd_of`], if it was.
    declared: Option<usize>,
    count: usize,
}

impl Pipe {
    /// Empties the pipeline, keeping its memory.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.start = 0;
        self.argc = 0;
        self.declared = None;
        self.count = 0;
    }

    /// Commands encoded so far.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Starts a command named `name`; arguments follow, [`Pipe::end`] closes it.
    pub fn cmd(&mut self, name: &str) -> &mut Self {
        self.start = self.buf.len();
        self.argc = 0;
        self.declared = None;
        self.arg(name)
    }

    /// Starts a command of `argc` arguments, its name included, with its
    /// `*<argc>` header written at once: [`Pipe::end`] then moves nothing.
    /// For the commands the writer sends per record, whose count is known
    /// before their arguments.
    pub fn cmd_of(&mut self, argc: usize, name: &str) -> &mut Self {
        let mut head = [0u8; 24];
        let n = frame(b'*', argc, &mut head);
        self.buf.extend_from_slice(&head[..n]);
        self.start = self.buf.len();
        self.argc = 0;
        self.declared = Some(argc);
        self.arg(name)
    }

    /// One argument of the current command, framed as a bulk string.
    pub fn arg(&mut self, a: impl AsRef<[u8]>) -> &mut Self {
        let a = a.as_ref();
        let mut head = [0u8; 24];
        let n = frame(b'$', a.len(), &mut head);
        self.buf.reserve(n + a.len() + 2);
        self.buf.extend_from_slice(&head[..n]);
        self.buf.extend_from_slice(a);
        self.buf.extend_from_slice(b"\r\n");
        self.argc += 1;
        self
    }

    /// `count` arguments framed elsewhere (see [`Pipe::as_bytes`]), copied as they are.
    pub fn framed_args(&mut self, framed: &[u8], count: usize) -> &mut Self {
        self.buf.extend_from_slice(framed);
        self.argc += count;
        self
    }

    /// An integer argument.
    pub fn int(&mut self, n: i64) -> &mut Self {
        let mut b = itoa::Buffer::new();
        let s = b.format(n);
        self.arg(s)
    }

    /// A float argument, in the shortest form that reads back exactly (the
    /// formatter serde_json uses: half ryu's instructions per value).
    pub fn float(&mut self, f: f64) -> &mut Self {
        if f.is_finite() {
            let mut b = zmij::Buffer::new();
            let s = b.format_finite(f);
            self.arg(s)
        } else if f.is_nan() {
            self.arg("NaN")
        } else {
            self.arg(if f > 0.0 { "inf" } else { "-inf" })
        }
    }

    /// Closes the current command: unless [`Pipe::cmd_of`] wrote it, its
    /// `*<argc>` header goes in front of the arguments written since
    /// [`Pipe::cmd`] (one move of those bytes). A command of
    /// [`Pipe::cmd_of`] that got another number of arguments than it
    /// declared is a bug in the caller, caught by the tests (debug builds).
    pub fn end(&mut self) {
        match self.declared.take() {
            Some(argc) => debug_assert_eq!(argc, self.argc, "a RESP command got another argument count than declared"),
            None => {
                let mut head = [0u8; 24];
                let n = frame(b'*', self.argc, &mut head);
                self.buf.splice(self.start..self.start, head[..n].iter().copied());
            }
        }
        self.count += 1;
    }

    /// The bytes encoded so far (a scratch pipe frames arguments for
    /// [`Pipe::framed_args`] this way).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// Writes `kind` (`$` or `*`), `n` in decimal and CRLF into `out`; returns
/// the length written. One or two digits by hand (nearly every length the
/// writer frames), longer ones through `itoa`.
fn frame(kind: u8, n: usize, out: &mut [u8; 24]) -> usize {
    out[0] = kind;
    let digits = if n < 10 {
        out[1] = b'0' + n as u8;
        1
    } else if n < 100 {
        out[1] = b'0' + (n / 10) as u8;
        out[2] = b'0' + (n % 10) as u8;
        2
    } else {
        let mut b = itoa::Buffer::new();
        let s = b.format(n).as_bytes();
        out[1..=s.len()].copy_from_slice(s);
        s.len()
    };
    out[1 + digits] = b'\r';
    out[2 + digits] = b'\n';
    3 + digits
}

/// A byte stream to Redis (TCP or a Unix socket).
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One connection, used by one writer at a time.
pub struct Conn {
    io: BufReader<Box<dyn Stream>>,
    line: Vec<u8>,
}

/// A refusal by Redis (an error reply) as an I/O error of the batch.
fn refused(msg: &[u8]) -> LogError {
    LogError::Io(io::Error::other(format!("redis: {}", String::from_utf8_lossy(msg).trim_end())))
}

impl Conn {
    /// Connects to the server `url` names and authenticates as it says.
    pub async fn connect(url: &str) -> Result<Conn, LogError> {
        let info = url.into_connection_info()?;
        let stream: Box<dyn Stream> = match &info.addr {
            ConnectionAddr::Tcp(host, port) => {
                let s = within(tokio::net::TcpStream::connect((host.as_str(), *port))).await?;
                s.set_nodelay(true)?;
                Box::new(s)
            }
            ConnectionAddr::Unix(path) => Box::new(within(tokio::net::UnixStream::connect(path)).await?),
            ConnectionAddr::TcpTls { .. } => {
                return Err(LogError::Io(io::Error::other(
                    "rediss:// is not supported (built without TLS for Redis)",
                )))
            }
        };
        let mut conn = Conn {
            io: BufReader::new(stream),
            line: Vec::new(),
        };
        let mut hello = Pipe::default();
        if let Some(password) = &info.redis.password {
            hello.cmd("AUTH");
            if let Some(user) = &info.redis.username {
                hello.arg(user);
            }
            hello.arg(password).end();
        }
        if info.redis.db != 0 {
            hello.cmd("SELECT").int(info.redis.db).end();
        }
        if hello.len() > 0 {
            conn.send(&hello).await?;
        }
        Ok(conn)
    }

    /// Sends the pipeline and reads one reply per command; the first error
    /// reply fails the call (after all replies are read, so the connection
    /// stays in step).
    pub async fn send(&mut self, pipe: &Pipe) -> Result<(), LogError> {
        tokio::time::timeout(DEADLINE, self.exchange(pipe))
            .await
            .map_err(|_| LogError::Io(io::Error::new(io::ErrorKind::TimedOut, "redis did not answer in time")))?
    }

    async fn exchange(&mut self, pipe: &Pipe) -> Result<(), LogError> {
        self.io.get_mut().write_all(&pipe.buf).await?;
        self.io.get_mut().flush().await?;
        let mut first_error = None;
        for _ in 0..pipe.count {
            if let Some(e) = self.reply().await? {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Skips `n` bytes of a reply (a bulk string's payload) in the read buffer.
    async fn skip(&mut self, mut n: u64) -> Result<(), LogError> {
        while n > 0 {
            let available = self.io.fill_buf().await?;
            if available.is_empty() {
                return Err(LogError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "redis closed the connection",
                )));
            }
            let used = available.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            self.io.consume(used);
            n -= used as u64;
        }
        Ok(())
    }

    /// Reads one reply whole (nested arrays included); `Some` for an error reply.
    async fn reply(&mut self) -> Result<Option<LogError>, LogError> {
        let mut pending = 1u64;
        let mut error = None;
        while pending > 0 {
            pending -= 1;
            self.line.clear();
            let n = self.io.read_until(b'\n', &mut self.line).await?;
            if n < 3 || !self.line.ends_with(b"\r\n") {
                return Err(LogError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "redis closed the connection",
                )));
            }
            let body = &self.line[1..self.line.len() - 2];
            match self.line[0] {
                b'+' | b':' => {}
                b'-' => {
                    error.get_or_insert_with(|| refused(body));
                }
                b'$' => {
                    if let Some(len) = length(body)? {
                        self.skip(len + 2).await?;
                    }
                }
                b'*' => pending += length(body)?.unwrap_or(0),
                _ => return Err(LogError::Io(io::Error::other("redis sent a reply this writer does not read"))),
            }
        }
        Ok(error)
    }
}

/// The length of a bulk string or array header; `None` for `-1` (null).
fn length(body: &[u8]) -> Result<Option<u64>, LogError> {
    if body == b"-1" {
        return Ok(None);
    }
    std::str::from_utf8(body)
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Some)
        .ok_or_else(|| LogError::Io(io::Error::other("redis sent a malformed length")))
}

/// `fut` within [`DEADLINE`].
async fn within<T>(fut: impl std::future::Future<Output = io::Result<T>>) -> io::Result<T> {
    tokio::time::timeout(DEADLINE, fut)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "redis did not accept the connection in time"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_framed_as_resp_arrays_of_bulk_strings() {
        let mut p = Pipe::default();
        p.cmd("SET").arg("k").arg("").end();
        p.cmd("L").arg("x".repeat(10)).arg("y".repeat(100)).end();
        p.cmd("PEXPIRE").arg("k").int(-5).end();
        p.cmd("X").float(0.25).float(3.0).end();
        assert_eq!(p.len(), 4);
        assert_eq!(
            String::from_utf8(p.buf.clone()).unwrap(),
            format!(
                "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n\
             *3\r\n$1\r\nL\r\n$10\r\nxxxxxxxxxx\r\n$100\r\n{}\r\n\
             *3\r\n$7\r\nPEXPIRE\r\n$1\r\nk\r\n$2\r\n-5\r\n\
             *3\r\n$1\r\nX\r\n$4\r\n0.25\r\n$3\r\n3.0\r\n",
                "y".repeat(100)
            )
        );
        p.clear();
        assert_eq!(p.len(), 0);
        assert!(p.buf.is_empty());
    }

    #[test]
    fn a_declared_count_frames_as_a_counted_one() {
        let (mut declared, mut counted) = (Pipe::default(), Pipe::default());
        declared.cmd_of(4, "HSET").arg("k").arg("f").float(1.5).end();
        counted.cmd("HSET").arg("k").arg("f").float(1.5).end();
        declared.cmd("PFADD").arg("h").arg("a").end();
        counted.cmd("PFADD").arg("h").arg("a").end();
        assert_eq!(declared.as_bytes(), counted.as_bytes());
        assert_eq!(declared.len(), 2);
        let mut odd = Pipe::default();
        odd.float(f64::NAN)
            .float(f64::INFINITY)
            .float(f64::NEG_INFINITY)
            .float(1e21)
            .float(0.001);
        assert_eq!(
            odd.as_bytes(),
            b"$3\r\nNaN\r\n$3\r\ninf\r\n$4\r\n-inf\r\n$5\r\n1e+21\r\n$5\r\n0.001\r\n"
        );
    }

    /// The check is a `debug_assert`: a release build would send the
    /// command as declared and Redis would refuse the batch.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "another argument count")]
    fn a_wrong_declared_count_is_caught_in_tests() {
        Pipe::default().cmd_of(3, "PEXPIRE").arg("k").end();
    }

    #[test]
    fn framed_arguments_and_long_commands_count_every_argument() {
        let mut members = Pipe::default();
        members.int(7).arg("k1");
        let mut p = Pipe::default();
        p.cmd("ZADD")
            .arg("i")
            .framed_args(members.as_bytes(), 2)
            .framed_args(members.as_bytes(), 2)
            .end();
        p.cmd("PFADD").arg("h");
        for _ in 0..148 {
            p.arg("a");
        }
        p.end();
        let pair = "$1\r\n7\r\n$2\r\nk1\r\n";
        let mut want = format!("*6\r\n$4\r\nZADD\r\n$1\r\ni\r\n{pair}{pair}*150\r\n$5\r\nPFADD\r\n$1\r\nh\r\n");
        want.push_str(&"$1\r\na\r\n".repeat(148));
        assert_eq!(String::from_utf8(p.buf.clone()).unwrap(), want);
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn lengths_parse_or_fail_cleanly() {
        assert_eq!(length(b"12").unwrap(), Some(12));
        assert_eq!(length(b"-1").unwrap(), None);
        assert!(length(b"x").is_err());
        assert!(length(b"-2").is_err());
    }
}
