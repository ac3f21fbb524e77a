//! Server-side samples for the report: what each server says about itself.
//!
//! A `monitor` node (10.0.3.1) asks every server the four-letter word
//! `srvr` every [`PROBE_MS`] of simulated time and keeps its `Mode:` (the
//! role: `standalone`, `leader`, `follower`, ...) and `Zxid:` (the last
//! transaction the server applied; its high 32 bits are the epoch). A probe
//! that gets no answer within [`PROBE_TIMEOUT_MS`] (server down, paused or
//! isolated) is kept as a sample without an answer.
//!
//! This is an observer, not part of the checked record: samples go to their
//! own store (`servers.jsonl` in the report), never into the history, so no
//! checker can depend on them. The probes do travel over the simulated
//! network, so they are part of the run (a pure function of the seed, like
//! everything else); the monitor is never cut off by a `partition` (those
//! cut clients off), only by `isolate` of a server.
//!
//! The same node also samples the servers' status board (the
//! `zkserver::run::StatusBoard` every server of a run publishes its role,
//! epoch, last zxid and digest on) every [`BOARD_MS`]: a read of shared
//! memory, no network, so a paused or isolated server shows its last
//! status and a server that is down (killed, stopped, not yet recovered)
//! none. These [`BoardSample`]s draw the timeline's roles and epochs and the
//! zxid plot (`board.jsonl` in the report); like the `srvr` samples they are
//! never evidence.
//!
//! Invariants: samples are in time order; `zxid` is the server's own
//! last-applied zxid at the moment it answered.

use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

/// Sampling period, simulated.
pub const PROBE_MS: u64 = 200;
/// How long one probe may take before it counts as "no answer".
pub const PROBE_TIMEOUT_MS: u64 = 150;
/// Status board sampling period, simulated.
pub const BOARD_MS: u64 = 100;

/// One probe of one server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// Simulated µs since the run started (the history's clock).
    pub t_us: u64,
    /// 1-based server number (`server1` is 10.0.0.1).
    pub server: u32,
    /// `Mode:` of the answer; `None`: no answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// `Zxid:` of the answer (last applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zxid: Option<i64>,
}

impl Sample {
    pub fn epoch(&self) -> Option<u32> {
        self.zxid.map(|z| (z as u64 >> 32) as u32)
    }
    pub fn counter(&self) -> Option<u32> {
        self.zxid.map(|z| z as u64 as u32)
    }
}

/// One server's entry on the status board at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardSample {
    /// Simulated µs since the run started (the history's clock).
    pub t_us: u64,
    /// 1-based server id.
    pub server: u32,
    /// "standalone", "leader", "follower", "looking"; `None`: no status
    /// (the server is down, stopped, or recovering).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default)]
    pub epoch: u64,
    #[serde(default)]
    pub last_zxid: i64,
    #[serde(default)]
    pub serving: bool,
}

impl BoardSample {
    pub fn counter(&self) -> Option<u32> {
        self.role.as_ref().map(|_| self.last_zxid as u64 as u32)
    }
}

/// The samples of one run; clones share them (read after the run).
#[derive(Debug, Clone, Default)]
pub struct Probes(Arc<Mutex<(Vec<Sample>, Vec<BoardSample>)>>);

impl Probes {
    fn lock(&self) -> std::sync::MutexGuard<'_, (Vec<Sample>, Vec<BoardSample>)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub fn push(&self, s: Sample) {
        self.lock().0.push(s);
    }
    pub fn push_board(&self, s: BoardSample) {
        self.lock().1.push(s);
    }
    pub fn samples(&self) -> Vec<Sample> {
        self.lock().0.clone()
    }
    pub fn board(&self) -> Vec<BoardSample> {
        self.lock().1.clone()
    }
}

/// `Mode:` and `Zxid:` of a `srvr` answer.
pub fn parse_srvr(text: &str) -> Option<(String, i64)> {
    let mut mode = None;
    let mut zxid = None;
    for line in text.lines() {
        if let Some(m) = line.strip_prefix("Mode: ") {
            mode = Some(m.trim().to_string());
        } else if let Some(z) = line.strip_prefix("Zxid: ") {
            let z = z.trim();
            let digits = z.strip_prefix("0x").unwrap_or(z);
            zxid = u64::from_str_radix(digits, 16).ok().map(|v| v as i64);
        }
    }
    Some((mode?, zxid?))
}

/// Samples as JSON lines.
pub fn to_jsonl<T: Serialize>(samples: &[T]) -> String {
    let mut out = String::new();
    for s in samples {
        out.push_str(&serde_json::to_string(s).expect("samples serialize"));
        out.push('\n');
    }
    out
}

/// Read every server's entry on `board` every [`BOARD_MS`], forever (the
/// run ends it). `servers`: how many (ids 1..=servers).
#[cfg(madsim)]
pub async fn sample_board(
    board: zkserver::run::StatusBoard,
    servers: u32,
    now_us: impl Fn() -> u64,
    probes: Probes,
) {
    loop {
        let t_us = now_us();
        let snapshot = board.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for id in 1..=servers {
            let st = snapshot.get(&(id as u64));
            probes.push_board(BoardSample {
                t_us,
                server: id,
                role: st.map(|s| s.role.to_string()),
                epoch: st.map_or(0, |s| s.epoch),
                last_zxid: st.map_or(0, |s| s.last_zxid),
                serving: st.is_some_and(|s| s.serving),
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(BOARD_MS)).await;
    }
}

/// Ask every server `srvr` every [`PROBE_MS`], forever (the run ends it).
/// `now_us` is the history's clock.
#[cfg(madsim)]
pub async fn monitor(servers: Vec<std::net::SocketAddr>, now_us: impl Fn() -> u64, probes: Probes) {
    use std::time::Duration;
    loop {
        for (i, addr) in servers.iter().enumerate() {
            let t_us = now_us();
            let answer = tokio::time::timeout(Duration::from_millis(PROBE_TIMEOUT_MS), srvr(*addr))
                .await
                .ok()
                .flatten()
                .and_then(|t| parse_srvr(&t));
            probes.push(Sample {
                t_us,
                server: i as u32 + 1,
                mode: answer.as_ref().map(|a| a.0.clone()),
                zxid: answer.map(|a| a.1),
            });
        }
        tokio::time::sleep(Duration::from_millis(PROBE_MS)).await;
    }
}

#[cfg(madsim)]
async fn srvr(addr: std::net::SocketAddr) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(b"srvr").await.ok()?;
    // madsim's stream sends nothing until flushed.
    s.flush().await.ok()?;
    let mut buf = Vec::new();
    // Bounded: a `srvr` answer is a few hundred bytes.
    let mut chunk = [0u8; 1024];
    while buf.len() < 16 * 1024 {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_srvr() {
        let t = "Zookeeper version: 3.8.4\nLatency min/avg/max: 0/0.0/0\nZxid: 0x100000004\nMode: standalone\nNode count: 5\n";
        assert_eq!(parse_srvr(t), Some(("standalone".into(), 0x1_0000_0004)));
        assert_eq!(
            parse_srvr("This ZooKeeper instance is not currently serving requests\n"),
            None
        );
        let s = Sample {
            t_us: 0,
            server: 1,
            mode: None,
            zxid: Some(0x2_0000_0007),
        };
        assert_eq!((s.epoch(), s.counter()), (Some(2), Some(7)));
    }
}
