//! `wan_proxy`: a TCP proxy that makes a loopback server behave like an object store across a
//! real network, for the pull benchmark (`benches/pull-bench.sh`). The kernel here has no
//! `netem`, and nginx's `limit_rate` lets every request burst for a second, so:
//!
//! - every connection is paced to `--rate-mib` MiB/s from its first byte on, with no burst:
//!   each chunk of the response leaves at `max(end of the previous chunk, now - 2 ms) + len /
//!   rate`, so idle time earns no credit beyond the timer's slack;
//! - the first byte of every response waits `--first-byte-ms` after the request that asked for
//!   it (a request is the client's bytes after the previous response started);
//! - with `--total-mib`, all connections together are paced to that rate as well (a link the
//!   client can saturate: beyond some number of connections, more buy nothing).
//!
//! Listens on 127.0.0.1 (a free port unless `--port`), prints the port on stdout, and forwards
//! every connection to `--upstream HOST:PORT` until it is killed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// Pacing proxy.
#[derive(Debug, Parser)]
struct Args {
    /// Upstream `HOST:PORT`.
    #[arg(long)]
    upstream: String,
    /// Per-connection rate, MiB/s.
    #[arg(long, default_value_t = 32.0)]
    rate_mib: f64,
    /// Delay of each response's first byte, ms.
    #[arg(long, default_value_t = 20)]
    first_byte_ms: u64,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Rate of all connections together, MiB/s (0: no shared limit).
    #[arg(long, default_value_t = 0.0)]
    total_mib: f64,
}

/// A pace: when the next chunk may leave, at `rate` bytes per second.
struct Pace {
    next: Instant,
    rate: f64,
}

impl Pace {
    fn new(rate: f64) -> Self {
        Self {
            next: Instant::now(),
            rate,
        }
    }

    /// Reserves `n` bytes; returns when they may leave.
    fn reserve(&mut self, n: usize) -> Instant {
        let now = Instant::now();
        self.next = self.next.max(now.checked_sub(SLACK).unwrap_or(now))
            + Duration::from_secs_f64(n as f64 / self.rate);
        self.next
    }
}

/// The shared pace of all connections, if any.
type Link = Option<Arc<Mutex<Pace>>>;

/// Bytes forwarded per paced write.
const QUANTUM: usize = 64 << 10;

/// How late a chunk's deadline may trail the clock: a timer wakes up to a millisecond or so
/// late, and forgetting that lateness on every chunk ran each connection at 20 MiB/s when
/// asked for 32 (measured with curl through the proxy). Idle time beyond this earns no
/// credit, so a burst is at most `SLACK × rate` (64 KiB at 32 MiB/s).
const SLACK: Duration = Duration::from_millis(2);

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> Result<()> {
    let a = Args::parse();
    let listener = TcpListener::bind(("127.0.0.1", a.port)).await?;
    println!("{}", listener.local_addr()?.port());
    let rate = a.rate_mib * f64::from(1u32 << 20);
    let delay = Duration::from_millis(a.first_byte_ms);
    let link: Link = (a.total_mib > 0.0)
        .then(|| Arc::new(Mutex::new(Pace::new(a.total_mib * f64::from(1u32 << 20)))));
    loop {
        let (client, _) = listener.accept().await?;
        let upstream = a.upstream.clone();
        let link = link.clone();
        tokio::spawn(async move {
            if let Err(e) = relay(client, &upstream, rate, delay, link).await {
                eprintln!("wan_proxy: connection ended: {e:#}");
            }
        });
    }
}

/// Forwards one connection: requests at once, responses delayed and paced.
async fn relay(
    client: TcpStream,
    upstream: &str,
    rate: f64,
    delay: Duration,
    link: Link,
) -> Result<()> {
    client.set_nodelay(true)?;
    let server = TcpStream::connect(upstream)
        .await
        .with_context(|| format!("cannot connect to {upstream}"))?;
    server.set_nodelay(true)?;
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    // When the request being answered was sent (None: the response already started).
    let asked: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let asked_up = Arc::clone(&asked);
    let up = tokio::spawn(async move {
        let mut buf = vec![0u8; QUANTUM];
        loop {
            let n = cr.read(&mut buf).await?;
            if n == 0 {
                sw.shutdown().await.ok();
                return anyhow::Ok(());
            }
            if let Ok(mut a) = asked_up.lock() {
                a.get_or_insert_with(Instant::now);
            }
            sw.write_all(buf.get(..n).unwrap_or_default()).await?;
        }
    });
    let mut buf = vec![0u8; QUANTUM];
    let mut pace = Pace::new(rate);
    loop {
        let n = sr.read(&mut buf).await?;
        if n == 0 {
            cw.shutdown().await.ok();
            break;
        }
        let request = asked.lock().ok().and_then(|mut a| a.take());
        if let Some(t) = request {
            tokio::time::sleep_until(t + delay).await;
        }
        let mut at = pace.reserve(n);
        if let Some(l) = &link {
            if let Ok(mut shared) = l.lock() {
                at = at.max(shared.reserve(n));
            }
        }
        tokio::time::sleep_until(at).await;
        cw.write_all(buf.get(..n).unwrap_or_default()).await?;
    }
    up.abort();
    Ok(())
}
