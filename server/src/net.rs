//! Client connections: framing, the four-letter-word sniff, and one reader
//! and one writer task per socket.
//!
//! Every message is `int len` + `len` bytes. The first four bytes of a new
//! connection may instead spell a four-letter word (`ruok`, `srvr`, ...): then
//! the answer is written and the connection closed. Frames whose length is
//! negative or above `jute.maxbuffer` close that connection (and only it).

use crate::run::Event;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use zkcore::server::Input;
use zkcore::ConnId;

/// What the main loop sends to a connection's writer.
#[derive(Debug)]
pub enum Out {
    Frame(Vec<u8>),
    Close,
}

/// The main loop's handle on one connection.
pub struct ConnHandle {
    pub tx: mpsc::UnboundedSender<Out>,
    pub pause: watch::Sender<bool>,
    pub addr: SocketAddr,
}

fn looks_like_word(b: &[u8; 4]) -> bool {
    b.iter().all(|c| c.is_ascii_lowercase())
}

/// Serve one accepted socket until it closes.
pub async fn serve_conn(
    stream: TcpStream,
    addr: SocketAddr,
    conn: ConnId,
    events: mpsc::UnboundedSender<Event>,
    max_frame: usize,
) {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut first = [0u8; 4];
    if rd.read_exact(&mut first).await.is_err() {
        return;
    }
    if looks_like_word(&first) {
        let (reply_tx, reply_rx) = oneshot::channel();
        if events
            .send(Event::FourLetter {
                cmd: first,
                addr,
                reply: reply_tx,
            })
            .is_err()
        {
            return;
        }
        if let Ok(Some(text)) = reply_rx.await {
            let _ = wr.write_all(text.as_bytes()).await;
            let _ = wr.flush().await;
            return; // dropping both halves closes the socket
        }
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (pause_tx, mut pause_rx) = watch::channel(false);
    let handle = ConnHandle {
        tx,
        pause: pause_tx,
        addr,
    };
    if events
        .send(Event::Accepted {
            conn,
            ip: addr.ip().to_string(),
            handle,
        })
        .is_err()
    {
        return;
    }
    // A server-side close must drop the whole socket: shutting down the write
    // half alone leaves it open under madsim. The writer tells the reader.
    let (closed_tx, mut closed_rx) = oneshot::channel::<()>();
    let writer = tokio::spawn(async move {
        while let Some(Out::Frame(f)) = rx.recv().await {
            let mut buf = Vec::with_capacity(4 + f.len());
            buf.extend_from_slice(&(f.len() as i32).to_be_bytes());
            buf.extend_from_slice(&f);
            // Coalesce whatever else is ready into one write.
            let mut closing = false;
            while let Ok(more) = rx.try_recv() {
                match more {
                    Out::Frame(f) => {
                        buf.extend_from_slice(&(f.len() as i32).to_be_bytes());
                        buf.extend_from_slice(&f);
                    }
                    Out::Close => {
                        closing = true;
                        break;
                    }
                }
            }
            // Flush every batch: madsim holds written data until a flush.
            if wr.write_all(&buf).await.is_err() || wr.flush().await.is_err() || closing {
                break;
            }
        }
        let _ = wr.flush().await;
        drop(wr);
        let _ = closed_tx.send(());
    });
    let mut len_bytes = first;
    loop {
        let len = i32::from_be_bytes(len_bytes);
        if len < 0 || len as usize > max_frame {
            tracing::debug!(?conn, len, "frame length out of range; closing");
            break;
        }
        let mut body = vec![0u8; len as usize];
        // `biased`: select!'s default branch choice uses an RNG that is not
        // the simulation's, which would break determinism.
        let read = tokio::select! {
            biased;
            r = rd.read_exact(&mut body) => r.is_ok(),
            _ = &mut closed_rx => false,
        };
        if !read {
            break;
        }
        if events
            .send(Event::Input(Input::Frame { conn, bytes: body }))
            .is_err()
        {
            break;
        }
        while *pause_rx.borrow() {
            if pause_rx.changed().await.is_err() {
                break;
            }
        }
        let read = tokio::select! {
            biased;
            r = rd.read_exact(&mut len_bytes) => r.is_ok(),
            _ = &mut closed_rx => false,
        };
        if !read {
            break;
        }
    }
    let _ = events.send(Event::Input(Input::Disconnected { conn }));
    let _ = events.send(Event::Gone {
        conn,
        ip: addr.ip().to_string(),
    });
    writer.abort();
}
