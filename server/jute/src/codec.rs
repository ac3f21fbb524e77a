//! Primitive jute encodings and the [`Record`] trait.

use crate::{JuteError, Result};

/// A cursor over an input buffer. All reads are bounds-checked.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    /// The unread rest of the input.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Fails if any bytes are left unread.
    pub fn finish(&self) -> Result<()> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(JuteError::Trailing(n)),
        }
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(JuteError::Eof {
                needed: n - self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn read_i32(&mut self) -> Result<i32> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn read_i64(&mut self) -> Result<i64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    pub fn read_bool(&mut self) -> Result<bool> {
        Ok(self.take(1)?[0] != 0)
    }

    /// A length prefix: -1 is null (`None`); other negatives, and lengths
    /// larger than the bytes that follow, are errors.
    fn read_len(&mut self, min_elem: usize) -> Result<Option<usize>> {
        let n = self.read_i32()?;
        if n == -1 {
            return Ok(None);
        }
        if n < 0 || (n as usize).saturating_mul(min_elem) > self.remaining() {
            return Err(JuteError::BadLength(n as i64));
        }
        Ok(Some(n as usize))
    }

    /// `buffer`, keeping null distinct from empty.
    pub fn read_nbuffer(&mut self) -> Result<Option<Vec<u8>>> {
        match self.read_len(1)? {
            None => Ok(None),
            Some(n) => Ok(Some(self.take(n)?.to_vec())),
        }
    }

    /// `buffer`, null read as empty.
    pub fn read_buffer(&mut self) -> Result<Vec<u8>> {
        Ok(self.read_nbuffer()?.unwrap_or_default())
    }

    /// `ustring`, null read as empty (kazoo sends "" as null).
    pub fn read_string(&mut self) -> Result<String> {
        match self.read_len(1)? {
            None => Ok(String::new()),
            Some(n) => {
                let b = self.take(n)?;
                String::from_utf8(b.to_vec()).map_err(|_| JuteError::Utf8)
            }
        }
    }

    /// `vector<T>`, null read as empty.
    pub fn read_vec<T: Record>(&mut self) -> Result<Vec<T>> {
        match self.read_len(T::MIN_LEN)? {
            None => Ok(Vec::new()),
            Some(n) => (0..n).map(|_| T::read(self)).collect(),
        }
    }
}

pub fn write_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub fn write_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub fn write_bool(out: &mut Vec<u8>, v: bool) {
    out.push(v as u8);
}

pub fn write_buffer(out: &mut Vec<u8>, v: &[u8]) {
    write_i32(out, v.len() as i32);
    out.extend_from_slice(v);
}

pub fn write_nbuffer(out: &mut Vec<u8>, v: &Option<Vec<u8>>) {
    match v {
        None => write_i32(out, -1),
        Some(b) => write_buffer(out, b),
    }
}

pub fn write_string(out: &mut Vec<u8>, v: &str) {
    write_buffer(out, v.as_bytes());
}

pub fn write_vec<T: Record>(out: &mut Vec<u8>, v: &[T]) {
    write_i32(out, v.len() as i32);
    for e in v {
        e.write(out);
    }
}

/// A jute record: encodes to and decodes from its wire form.
pub trait Record: Sized {
    /// Smallest encoded size; used to reject vector counts that the input
    /// cannot possibly hold.
    const MIN_LEN: usize = 1;
    fn write(&self, out: &mut Vec<u8>);
    fn read(r: &mut Reader<'_>) -> Result<Self>;
}

impl Record for i32 {
    const MIN_LEN: usize = 4;
    fn write(&self, out: &mut Vec<u8>) {
        write_i32(out, *self)
    }
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.read_i32()
    }
}

impl Record for i64 {
    const MIN_LEN: usize = 8;
    fn write(&self, out: &mut Vec<u8>) {
        write_i64(out, *self)
    }
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.read_i64()
    }
}

impl Record for bool {
    fn write(&self, out: &mut Vec<u8>) {
        write_bool(out, *self)
    }
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.read_bool()
    }
}

impl Record for String {
    const MIN_LEN: usize = 4;
    fn write(&self, out: &mut Vec<u8>) {
        write_string(out, self)
    }
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.read_string()
    }
}

/// Field codecs used by the `record!` macro: each names how a field is
/// encoded, since a Rust type alone (e.g. `Vec<u8>`) does not say whether it
/// is a `buffer` or a `vector`.
#[doc(hidden)]
pub mod field {
    use super::*;
    pub fn r_int(r: &mut Reader<'_>) -> Result<i32> {
        r.read_i32()
    }
    pub fn w_int(o: &mut Vec<u8>, v: &i32) {
        write_i32(o, *v)
    }
    pub fn r_long(r: &mut Reader<'_>) -> Result<i64> {
        r.read_i64()
    }
    pub fn w_long(o: &mut Vec<u8>, v: &i64) {
        write_i64(o, *v)
    }
    pub fn r_boolean(r: &mut Reader<'_>) -> Result<bool> {
        r.read_bool()
    }
    pub fn w_boolean(o: &mut Vec<u8>, v: &bool) {
        write_bool(o, *v)
    }
    pub fn r_ustring(r: &mut Reader<'_>) -> Result<String> {
        r.read_string()
    }
    pub fn w_ustring(o: &mut Vec<u8>, v: &str) {
        write_string(o, v)
    }
    pub fn r_buffer(r: &mut Reader<'_>) -> Result<Vec<u8>> {
        r.read_buffer()
    }
    pub fn w_buffer(o: &mut Vec<u8>, v: &[u8]) {
        write_buffer(o, v)
    }
    pub fn r_nbuffer(r: &mut Reader<'_>) -> Result<Option<Vec<u8>>> {
        r.read_nbuffer()
    }
    pub fn w_nbuffer(o: &mut Vec<u8>, v: &Option<Vec<u8>>) {
        write_nbuffer(o, v)
    }
    pub fn r_vector<T: Record>(r: &mut Reader<'_>) -> Result<Vec<T>> {
        r.read_vec()
    }
    pub fn w_vector<T: Record>(o: &mut Vec<u8>, v: &[T]) {
        write_vec(o, v)
    }
    pub fn r_record<T: Record>(r: &mut Reader<'_>) -> Result<T> {
        T::read(r)
    }
    pub fn w_record<T: Record>(o: &mut Vec<u8>, v: &T) {
        v.write(o)
    }
}

/// Declares a record struct and its [`Record`] impl. Each field names its jute
/// codec: `int`, `long`, `boolean`, `ustring`, `buffer` (null read as empty),
/// `nbuffer` (null kept as `None`), `vector`, `record`.
#[macro_export]
macro_rules! record {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $f:ident : $t:ty = $codec:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name { $($(#[$fm])* pub $f: $t,)* }
        impl $crate::codec::Record for $name {
            fn write(&self, out: &mut Vec<u8>) {
                let _ = &out;
                $( $crate::record!(@w $codec, out, &self.$f); )*
            }
            fn read(r: &mut $crate::codec::Reader<'_>) -> $crate::Result<Self> {
                let _ = &r;
                Ok($name { $($f: $crate::record!(@r $codec, r)?,)* })
            }
        }
    };
    (@w int, $o:ident, $v:expr) => { $crate::codec::field::w_int($o, $v) };
    (@w long, $o:ident, $v:expr) => { $crate::codec::field::w_long($o, $v) };
    (@w boolean, $o:ident, $v:expr) => { $crate::codec::field::w_boolean($o, $v) };
    (@w ustring, $o:ident, $v:expr) => { $crate::codec::field::w_ustring($o, $v) };
    (@w buffer, $o:ident, $v:expr) => { $crate::codec::field::w_buffer($o, $v) };
    (@w nbuffer, $o:ident, $v:expr) => { $crate::codec::field::w_nbuffer($o, $v) };
    (@w vector, $o:ident, $v:expr) => { $crate::codec::field::w_vector($o, $v) };
    (@w record, $o:ident, $v:expr) => { $crate::codec::field::w_record($o, $v) };
    (@r int, $r:ident) => { $crate::codec::field::r_int($r) };
    (@r long, $r:ident) => { $crate::codec::field::r_long($r) };
    (@r boolean, $r:ident) => { $crate::codec::field::r_boolean($r) };
    (@r ustring, $r:ident) => { $crate::codec::field::r_ustring($r) };
    (@r buffer, $r:ident) => { $crate::codec::field::r_buffer($r) };
    (@r nbuffer, $r:ident) => { $crate::codec::field::r_nbuffer($r) };
    (@r vector, $r:ident) => { $crate::codec::field::r_vector($r) };
    (@r record, $r:ident) => { $crate::codec::field::r_record($r) };
}
