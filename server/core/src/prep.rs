//! Request preparation (PrepRequestProcessor): a write request becomes a
//! transaction, or an error, *before* earlier transactions are applied.
//!
//! Writes are pipelined: a request is validated against the tree as it will
//! be once every transaction already prepared is applied. Those not-yet-applied
//! effects live in an [`Overlay`] of per-path [`View`]s tagged with the zxid of
//! the transaction that produced them; applying transaction `z` drops the
//! entries with zxid <= `z`, because the tree then holds the same facts.
//!
//! Check order follows ZooKeeper exactly, because the order decides which
//! error a client sees (reference §2.12).

use crate::acl::{self, AuthInfo};
use crate::path;
use crate::tree::{owner_kind, ttl_owner, DataTree, Node, OwnerKind};
use jute::txn::{CONTAINER_OWNER, TTL_MAX_MS};
use jute::{op, perms, Acl, CreateMode, ErrorCode, Txn};
use std::collections::BTreeMap;

/// What preparation needs to know about a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub version: i32,
    pub aversion: i32,
    /// Stored child-create counter.
    pub cversion: i32,
    pub num_children: i32,
    pub owner: i64,
    pub acl: Vec<Acl>,
}

impl View {
    fn of(n: &Node) -> View {
        View {
            version: n.version,
            aversion: n.aversion,
            cversion: n.cversion,
            num_children: n.children.len() as i32,
            owner: n.ephemeral_owner,
            acl: n.acl.clone(),
        }
    }
}

/// Pending (prepared, not yet applied) changes.
///
/// Invariants: every entry's zxid is greater than the tree's last applied
/// zxid; an entry is `None` for a node that will not exist.
#[derive(Debug, Clone, Default)]
pub struct Overlay {
    changes: BTreeMap<String, (i64, Option<View>)>,
}

impl Overlay {
    pub fn view(&self, tree: &DataTree, path: &str) -> Option<View> {
        match self.changes.get(path) {
            Some((_, v)) => v.clone(),
            None => tree.get(path).map(View::of),
        }
    }

    fn set(&mut self, path: &str, zxid: i64, v: Option<View>) {
        self.changes.insert(path.to_string(), (zxid, v));
    }

    /// Transaction `zxid` was applied to the tree.
    pub fn applied(&mut self, zxid: i64) {
        self.changes.retain(|_, (z, _)| *z > zxid);
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Paths of ephemerals a session will own once pending changes apply.
    pub fn session_ephemerals(&self, tree: &DataTree, session: i64) -> Vec<String> {
        let mut out: Vec<String> = tree
            .ephemerals_of(session)
            .filter(|p| !self.changes.contains_key(*p))
            .cloned()
            .collect();
        for (p, (_, v)) in &self.changes {
            if let Some(v) = v {
                if v.owner == session {
                    out.push(p.clone());
                }
            }
        }
        out.sort();
        out
    }
}

/// Everything a preparation step needs besides the request.
pub struct Ctx<'a> {
    pub tree: &'a DataTree,
    pub auth: &'a AuthInfo,
    pub session: i64,
    pub zxid: i64,
    pub skip_acl: bool,
    pub extended_types: bool,
}

type R<T> = Result<T, ErrorCode>;

fn check_perm(ctx: &Ctx, acl: &[Acl], perm: i32) -> R<()> {
    if acl::check(acl, perm, ctx.auth, ctx.skip_acl) {
        Ok(())
    } else {
        Err(ErrorCode::NoAuth)
    }
}

fn check_version(expected: i32, current: i32) -> R<()> {
    if expected == -1 || expected == current {
        Ok(())
    } else {
        Err(ErrorCode::BadVersion)
    }
}

fn validate(path: &str) -> R<()> {
    if path::validate(path) {
        Ok(())
    } else {
        Err(ErrorCode::BadArguments)
    }
}

fn existing(ov: &Overlay, ctx: &Ctx, path: &str) -> R<View> {
    ov.view(ctx.tree, path).ok_or(ErrorCode::NoNode)
}

/// A create of any kind. `opcode` is 1, 15, 19 or 21; `ttl` is -1 unless 21.
#[allow(clippy::too_many_arguments)]
pub fn create(
    ov: &mut Overlay,
    ctx: &Ctx,
    opcode: i32,
    path: &str,
    data: &Option<Vec<u8>>,
    acl_in: &[Acl],
    flags: i32,
    ttl: i64,
) -> R<Txn> {
    let mode = CreateMode::from_code(flags).ok_or(ErrorCode::BadArguments)?;
    if mode.is_ttl() || (opcode == op::CREATE_TTL) {
        if !ctx.extended_types {
            return Err(ErrorCode::Unimplemented);
        }
        if opcode != op::CREATE_TTL || !mode.is_ttl() || ttl <= 0 || ttl > TTL_MAX_MS {
            return Err(ErrorCode::BadArguments);
        }
    }
    if opcode == op::CREATE_CONTAINER && !mode.is_container() {
        return Err(ErrorCode::BadArguments);
    }
    if !path.contains('/') || path.contains('\0') {
        return Err(ErrorCode::BadArguments);
    }
    let acl = acl::fixup(acl_in, ctx.auth).ok_or(ErrorCode::InvalidAcl)?;
    let parent_path = &path[..path.rfind('/').expect("checked above")];
    let parent_path = if parent_path.is_empty() {
        "/"
    } else {
        parent_path
    };
    let parent = existing(ov, ctx, parent_path)?;
    check_perm(ctx, &parent.acl, perms::CREATE)?;
    let final_path = if mode.is_sequential() {
        format!("{path}{:010}", parent.cversion)
    } else {
        path.to_string()
    };
    validate(&final_path)?;
    if ov.view(ctx.tree, &final_path).is_some() {
        return Err(ErrorCode::NodeExists);
    }
    if let OwnerKind::Session(_) = owner_kind(parent.owner) {
        return Err(ErrorCode::NoChildrenForEphemerals);
    }
    let owner = if mode.is_ephemeral() {
        ctx.session
    } else if mode.is_container() {
        CONTAINER_OWNER
    } else if mode.is_ttl() {
        ttl_owner(ttl)
    } else {
        0
    };
    let parent_cversion = parent.cversion.wrapping_add(1);
    let mut new_parent = parent;
    new_parent.cversion = parent_cversion;
    new_parent.num_children += 1;
    ov.set(parent_path, ctx.zxid, Some(new_parent));
    ov.set(
        &final_path,
        ctx.zxid,
        Some(View {
            version: 0,
            aversion: 0,
            cversion: 0,
            num_children: 0,
            owner,
            acl: acl.clone(),
        }),
    );
    Ok(Txn::Create {
        path: final_path,
        data: data.clone(),
        acl,
        ephemeral_owner: owner,
        parent_cversion,
    })
}

fn stage_delete(ov: &mut Overlay, ctx: &Ctx, path: &str) {
    if let Some(pp) = path::parent(path) {
        if let Some(mut p) = ov.view(ctx.tree, pp) {
            p.num_children -= 1;
            ov.set(pp, ctx.zxid, Some(p));
        }
    }
    ov.set(path, ctx.zxid, None);
}

pub fn delete(ov: &mut Overlay, ctx: &Ctx, path: &str, version: i32) -> R<Txn> {
    if !path.contains('/') || path.contains('\0') || path::is_system(path) {
        return Err(ErrorCode::BadArguments);
    }
    let parent_path = path::parent(path).ok_or(ErrorCode::BadArguments)?;
    let parent = existing(ov, ctx, parent_path)?;
    check_perm(ctx, &parent.acl, perms::DELETE)?;
    let node = existing(ov, ctx, path)?;
    check_version(version, node.version)?;
    if node.num_children > 0 {
        return Err(ErrorCode::NotEmpty);
    }
    stage_delete(ov, ctx, path);
    Ok(Txn::Delete { path: path.into() })
}

/// The container/TTL reaper's delete (opcode 20).
pub fn delete_container(ov: &mut Overlay, ctx: &Ctx, path: &str) -> R<Txn> {
    let node = existing(ov, ctx, path)?;
    if let OwnerKind::Session(_) = owner_kind(node.owner) {
        return Err(ErrorCode::BadVersion);
    }
    if node.num_children > 0 {
        return Err(ErrorCode::NotEmpty);
    }
    stage_delete(ov, ctx, path);
    Ok(Txn::DeleteContainer { path: path.into() })
}

pub fn set_data(
    ov: &mut Overlay,
    ctx: &Ctx,
    path: &str,
    data: &Option<Vec<u8>>,
    version: i32,
) -> R<Txn> {
    validate(path)?;
    let mut node = existing(ov, ctx, path)?;
    check_perm(ctx, &node.acl, perms::WRITE)?;
    check_version(version, node.version)?;
    node.version = node.version.wrapping_add(1);
    let new_version = node.version;
    ov.set(path, ctx.zxid, Some(node));
    Ok(Txn::SetData {
        path: path.into(),
        data: data.clone(),
        version: new_version,
    })
}

pub fn set_acl(ov: &mut Overlay, ctx: &Ctx, path: &str, acl_in: &[Acl], version: i32) -> R<Txn> {
    validate(path)?;
    // ZooKeeper fixes up the ACL before looking the node up (InvalidACL
    // wins over NoNode and NoAuth).
    let acl = acl::fixup(acl_in, ctx.auth).ok_or(ErrorCode::InvalidAcl)?;
    let mut node = existing(ov, ctx, path)?;
    check_perm(ctx, &node.acl, perms::ADMIN)?;
    check_version(version, node.aversion)?;
    node.aversion = node.aversion.wrapping_add(1);
    node.acl = acl.clone();
    let v = node.aversion;
    ov.set(path, ctx.zxid, Some(node));
    Ok(Txn::SetAcl {
        path: path.into(),
        acl,
        version: v,
    })
}

pub fn check(ov: &mut Overlay, ctx: &Ctx, path: &str, version: i32) -> R<Txn> {
    validate(path)?;
    let node = existing(ov, ctx, path)?;
    check_perm(ctx, &node.acl, perms::READ)?;
    check_version(version, node.version)?;
    Ok(Txn::Check {
        path: path.into(),
        version,
    })
}

/// closeSession: stage the deletion of every ephemeral the session will own.
pub fn close_session(ov: &mut Overlay, ctx: &Ctx) -> Txn {
    for p in ov.session_ephemerals(ctx.tree, ctx.session) {
        stage_delete(ov, ctx, &p);
    }
    Txn::CloseSession
}

/// One multi sub-op.
pub fn multi_op(ov: &mut Overlay, ctx: &Ctx, o: &jute::MultiOp) -> R<Txn> {
    use jute::MultiOp;
    match o {
        MultiOp::Create { op, req } => {
            create(ov, ctx, *op, &req.path, &req.data, &req.acl, req.flags, -1)
        }
        MultiOp::CreateTtl(r) => create(
            ov,
            ctx,
            op::CREATE_TTL,
            &r.path,
            &r.data,
            &r.acl,
            r.flags,
            r.ttl,
        ),
        MultiOp::Delete(r) => delete(ov, ctx, &r.path, r.version),
        MultiOp::SetData(r) => set_data(ov, ctx, &r.path, &r.data, r.version),
        MultiOp::Check(r) => check(ov, ctx, &r.path, r.version),
        MultiOp::GetData(_) | MultiOp::GetChildren(_) => Err(ErrorCode::BadArguments),
    }
}

/// A whole multi: all sub-ops succeed (one Multi txn of their txns) or none
/// does, and the txn records each op's result code: 0 before the failure,
/// the failing code, then RuntimeInconsistency.
pub fn multi(ov: &mut Overlay, ctx: &Ctx, ops: &[jute::MultiOp]) -> Txn {
    let mut staged = ov.clone();
    let mut txns = Vec::with_capacity(ops.len());
    for (i, o) in ops.iter().enumerate() {
        match multi_op(&mut staged, ctx, o) {
            Ok(t) => txns.push(t),
            Err(code) => {
                crate::cover::hit(crate::cover::Mark::MultiRollback);
                let results = (0..ops.len())
                    .map(|j| Txn::Error {
                        err: match j.cmp(&i) {
                            std::cmp::Ordering::Less => 0,
                            std::cmp::Ordering::Equal => code.code(),
                            std::cmp::Ordering::Greater => ErrorCode::RuntimeInconsistency.code(),
                        },
                    })
                    .collect();
                return Txn::Multi(results);
            }
        }
    }
    *ov = staged;
    Txn::Multi(txns)
}

/// True if a multi txn records a failure.
pub fn multi_failed(txns: &[Txn]) -> bool {
    txns.iter().any(|t| matches!(t, Txn::Error { .. }))
}
