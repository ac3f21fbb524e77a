//! Every data, request and response record of the client protocol
//! (zookeeper.jute), in declaration order. `ConnectRequest` and
//! `ConnectResponse` are written by hand: their trailing `readOnly` byte is
//! optional on the wire.

use crate::codec::{write_bool, write_buffer, write_i32, write_i64, Reader, Record};
use crate::record;
use crate::Result;

record!(
    /// An identity: `(scheme, id)`, e.g. `("world", "anyone")`.
    Id { scheme: String = ustring, id: String = ustring }
);

record!(
    /// One ACL entry: permission bits granted to an id.
    Acl { perms: i32 = int, id: Id = record }
);

impl Acl {
    pub fn new(perms: i32, scheme: &str, id: &str) -> Acl {
        Acl {
            perms,
            id: Id {
                scheme: scheme.into(),
                id: id.into(),
            },
        }
    }
    /// `world:anyone` with all permissions (OPEN_ACL_UNSAFE).
    pub fn open() -> Vec<Acl> {
        vec![Acl::new(crate::perms::ALL, "world", "anyone")]
    }
}

record!(
    /// The client-visible node metadata (68 bytes).
    Stat {
        czxid: i64 = long,
        mzxid: i64 = long,
        ctime: i64 = long,
        mtime: i64 = long,
        version: i32 = int,
        cversion: i32 = int,
        aversion: i32 = int,
        ephemeral_owner: i64 = long,
        data_length: i32 = int,
        num_children: i32 = int,
        pzxid: i64 = long,
    }
);

record!(ClientInfo {
    auth_scheme: String = ustring,
    user: String = ustring
});

record!(RequestHeader {
    xid: i32 = int,
    op: i32 = int
});
record!(ReplyHeader {
    xid: i32 = int,
    zxid: i64 = long,
    err: i32 = int
});
record!(AuthPacket { auth_type: i32 = int, scheme: String = ustring, auth: Vec<u8> = buffer });

record!(CreateRequest {
    path: String = ustring,
    data: Option<Vec<u8>> = nbuffer,
    acl: Vec<Acl> = vector,
    flags: i32 = int,
});
record!(CreateTtlRequest {
    path: String = ustring,
    data: Option<Vec<u8>> = nbuffer,
    acl: Vec<Acl> = vector,
    flags: i32 = int,
    ttl: i64 = long,
});
record!(DeleteRequest {
    path: String = ustring,
    version: i32 = int
});
record!(ExistsRequest {
    path: String = ustring,
    watch: bool = boolean
});
record!(GetDataRequest {
    path: String = ustring,
    watch: bool = boolean
});
record!(SetDataRequest { path: String = ustring, data: Option<Vec<u8>> = nbuffer, version: i32 = int });
record!(GetAclRequest {
    path: String = ustring
});
record!(SetAclRequest { path: String = ustring, acl: Vec<Acl> = vector, version: i32 = int });
record!(GetChildrenRequest {
    path: String = ustring,
    watch: bool = boolean
});
record!(CheckVersionRequest {
    path: String = ustring,
    version: i32 = int
});
record!(SyncRequest {
    path: String = ustring
});
record!(ReconfigRequest {
    joining_servers: String = ustring,
    leaving_servers: String = ustring,
    new_members: String = ustring,
    cur_config_id: i64 = long,
});
record!(
    /// checkWatches / removeWatches; `watcher_type` is a [`crate::WatcherType`] code.
    RemoveWatchesRequest { path: String = ustring, watcher_type: i32 = int }
);
record!(AddWatchRequest {
    path: String = ustring,
    mode: i32 = int
});
record!(SetWatches {
    relative_zxid: i64 = long,
    data_watches: Vec<String> = vector,
    exist_watches: Vec<String> = vector,
    child_watches: Vec<String> = vector,
});
record!(SetWatches2 {
    relative_zxid: i64 = long,
    data_watches: Vec<String> = vector,
    exist_watches: Vec<String> = vector,
    child_watches: Vec<String> = vector,
    persistent_watches: Vec<String> = vector,
    persistent_recursive_watches: Vec<String> = vector,
});
record!(PathRequest {
    path: String = ustring
});
record!(MultiHeader {
    op: i32 = int,
    done: bool = boolean,
    err: i32 = int
});

record!(CreateResponse {
    path: String = ustring
});
record!(Create2Response {
    path: String = ustring,
    stat: Stat = record
});
record!(StatResponse {
    stat: Stat = record
});
record!(GetDataResponse { data: Option<Vec<u8>> = nbuffer, stat: Stat = record });
record!(GetAclResponse { acl: Vec<Acl> = vector, stat: Stat = record });
record!(GetChildrenResponse { children: Vec<String> = vector });
record!(GetChildren2Response { children: Vec<String> = vector, stat: Stat = record });
record!(SyncResponse {
    path: String = ustring
});
record!(GetEphemeralsResponse { ephemerals: Vec<String> = vector });
record!(GetAllChildrenNumberResponse {
    total_number: i32 = int
});
record!(WhoAmIResponse { client_info: Vec<ClientInfo> = vector });
record!(ErrorResponse { err: i32 = int });
record!(WatcherEvent {
    event_type: i32 = int,
    state: i32 = int,
    path: String = ustring
});

/// First frame of a connection. `read_only` is `None` when the client did not
/// append the (non-jute) read-only byte; the reply echoes it only if sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub read_only: Option<bool>,
}

impl Record for ConnectRequest {
    fn write(&self, out: &mut Vec<u8>) {
        write_i32(out, self.protocol_version);
        write_i64(out, self.last_zxid_seen);
        write_i32(out, self.timeout_ms);
        write_i64(out, self.session_id);
        write_buffer(out, &self.passwd);
        if let Some(ro) = self.read_only {
            write_bool(out, ro);
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(ConnectRequest {
            protocol_version: r.read_i32()?,
            last_zxid_seen: r.read_i64()?,
            timeout_ms: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: r.read_buffer()?,
            read_only: if r.is_empty() {
                None
            } else {
                Some(r.read_bool()?)
            },
        })
    }
}

/// Server's answer to [`ConnectRequest`]; `timeout_ms == 0` means the session
/// is invalid or expired.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub passwd: Vec<u8>,
    pub read_only: Option<bool>,
}

impl Record for ConnectResponse {
    fn write(&self, out: &mut Vec<u8>) {
        write_i32(out, self.protocol_version);
        write_i32(out, self.timeout_ms);
        write_i64(out, self.session_id);
        write_buffer(out, &self.passwd);
        if let Some(ro) = self.read_only {
            write_bool(out, ro);
        }
    }
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        Ok(ConnectResponse {
            protocol_version: r.read_i32()?,
            timeout_ms: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: r.read_buffer()?,
            read_only: if r.is_empty() {
                None
            } else {
                Some(r.read_bool()?)
            },
        })
    }
}
