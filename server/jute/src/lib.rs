//! Jute: the binary record encoding of the ZooKeeper client protocol.
//!
//! Everything is big-endian. `int` is 4 bytes, `long` 8, `boolean` 1 (any
//! non-zero reads as true), `buffer`/`ustring` are an `int` length followed by
//! bytes (length -1 means null), `vector<T>` is an `int` count followed by the
//! elements (-1 means null). A record is its fields concatenated in declaration
//! order: no tags, no lengths.
//!
//! This crate is pure: no I/O, no allocation beyond what the input justifies.
//! Decoding arbitrary bytes never panics: every length is checked against the
//! bytes actually remaining before anything is allocated, so a hostile length
//! prefix cannot make the decoder reserve gigabytes.
//!
//! Layout:
//! - [`codec`]: [`Reader`], [`Record`], the primitive encodings.
//! - [`codes`]: opcodes, error codes, event types, create modes, permissions.
//! - [`records`]: every request, response and data record of the protocol.
//! - [`request`]: a decoded client request ([`Request`]) including `multi`.
//! - [`txn`]: transaction records (what the server logs and replicates).

pub mod codec;
pub mod codes;
pub mod records;
pub mod request;
pub mod txn;

pub use codec::{Reader, Record};
pub use codes::*;
pub use records::*;
pub use request::{MultiOp, MultiResult, Request};
pub use txn::{Txn, TxnHeader, TxnRecord};

/// A decoding failure. Encoding cannot fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JuteError {
    #[error("unexpected end of input: needed {needed} more bytes")]
    Eof { needed: usize },
    #[error("unreasonable length {0}")]
    BadLength(i64),
    #[error("string is not valid UTF-8")]
    Utf8,
    #[error("unknown {what} {value}")]
    Unknown { what: &'static str, value: i32 },
    #[error("{0} trailing bytes after record")]
    Trailing(usize),
    #[error("malformed multi: {0}")]
    Multi(&'static str),
}

pub type Result<T> = std::result::Result<T, JuteError>;

/// Encode a record into a fresh buffer.
pub fn to_bytes<R: Record>(r: &R) -> Vec<u8> {
    let mut out = Vec::new();
    r.write(&mut out);
    out
}

/// Decode a record that must span exactly `bytes`.
pub fn from_bytes<R: Record>(bytes: &[u8]) -> Result<R> {
    let mut r = Reader::new(bytes);
    let v = R::read(&mut r)?;
    r.finish()?;
    Ok(v)
}
