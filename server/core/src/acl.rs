//! ACLs and authentication (ZooKeeperServer.checkACL, PrepRequestProcessor.fixupACL).
//!
//! A connection carries a list of authenticated ids (`ip:<addr>` always, plus
//! `digest:user:hash` after an auth packet, plus `super` for the super user).
//! A permission check passes if the node ACL is empty, the connection is super,
//! or some entry grants any of the requested bits to `world:anyone` or to an id
//! the connection holds under the same scheme (`ip` entries match by address
//! mask).

use base64::Engine;
use jute::{Acl, Id};
use sha1::{Digest, Sha1};
use std::net::Ipv4Addr;

/// `user:` + base64(sha1("user:password")), the digest scheme's id.
pub fn digest_id(user_password: &str) -> Option<String> {
    let (user, _) = user_password.split_once(':')?;
    let hash = Sha1::digest(user_password.as_bytes());
    Some(format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    ))
}

/// Authentication state of one connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthInfo {
    pub ids: Vec<Id>,
}

impl AuthInfo {
    pub fn for_ip(ip: &str) -> AuthInfo {
        AuthInfo {
            ids: vec![Id {
                scheme: "ip".into(),
                id: ip.into(),
            }],
        }
    }

    pub fn is_super(&self) -> bool {
        self.ids.iter().any(|i| i.scheme == "super")
    }

    pub fn add(&mut self, id: Id) {
        if !self.ids.contains(&id) {
            self.ids.push(id);
        }
    }

    /// Ids from "authenticated" providers (what the `auth` ACL scheme expands to).
    pub fn authenticated(&self) -> impl Iterator<Item = &Id> {
        self.ids
            .iter()
            .filter(|i| i.scheme != "ip" && i.scheme != "super")
    }
}

/// Outcome of an auth packet.
pub enum AuthOutcome {
    Ok(Vec<Id>),
    Failed,
}

/// Process `AuthPacket(scheme, auth)`; `super_digest` is the configured
/// `super:<digest>` id, if any.
pub fn authenticate(scheme: &str, auth: &[u8], super_digest: Option<&str>) -> AuthOutcome {
    match scheme {
        "digest" => {
            let Ok(text) = std::str::from_utf8(auth) else {
                return AuthOutcome::Failed;
            };
            let Some(id) = digest_id(text) else {
                return AuthOutcome::Failed;
            };
            let mut ids = vec![Id {
                scheme: "digest".into(),
                id: id.clone(),
            }];
            if super_digest == Some(id.as_str()) {
                ids.push(Id {
                    scheme: "super".into(),
                    id: String::new(),
                });
            }
            AuthOutcome::Ok(ids)
        }
        _ => AuthOutcome::Failed,
    }
}

/// Does the connection hold `perm` on a node with `acl`?
pub fn check(acl: &[Acl], perm: i32, auth: &AuthInfo, skip_acl: bool) -> bool {
    if skip_acl || acl.is_empty() || auth.is_super() {
        return true;
    }
    acl.iter().any(|a| {
        a.perms & perm != 0
            && ((a.id.scheme == "world" && a.id.id == "anyone")
                || auth.ids.iter().any(|id| id_matches(&a.id, id)))
    })
}

fn id_matches(acl_id: &Id, have: &Id) -> bool {
    if acl_id.scheme != have.scheme {
        return false;
    }
    match acl_id.scheme.as_str() {
        "ip" => ip_matches(&acl_id.id, &have.id),
        _ => acl_id.id == have.id,
    }
}

fn parse_ip_mask(s: &str) -> Option<(u32, u32)> {
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (a, b.parse::<u32>().ok()?),
        None => (s, 32),
    };
    if bits > 32 {
        return None;
    }
    let a: Ipv4Addr = addr.parse().ok()?;
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    Some((u32::from(a), mask))
}

fn ip_matches(acl: &str, addr: &str) -> bool {
    let (Some((net, mask)), Ok(a)) = (parse_ip_mask(acl), addr.parse::<Ipv4Addr>()) else {
        return false;
    };
    u32::from(a) & mask == net & mask
}

/// Validate and expand an ACL list for create/setACL: de-duplicates, expands
/// `auth` to the connection's authenticated ids. `None` means InvalidACL.
pub fn fixup(acl: &[Acl], auth: &AuthInfo) -> Option<Vec<Acl>> {
    if acl.is_empty() {
        return None;
    }
    let mut out: Vec<Acl> = Vec::new();
    let push = |a: Acl, out: &mut Vec<Acl>| {
        if !out.contains(&a) {
            out.push(a);
        }
    };
    for a in acl {
        match a.id.scheme.as_str() {
            "world" if a.id.id == "anyone" => push(a.clone(), &mut out),
            "auth" => {
                let mut any = false;
                for id in auth.authenticated() {
                    any = true;
                    push(
                        Acl {
                            perms: a.perms,
                            id: id.clone(),
                        },
                        &mut out,
                    );
                }
                if !any {
                    return None;
                }
            }
            "digest" if a.id.id.matches(':').count() == 1 => push(a.clone(), &mut out),
            "ip" if parse_ip_mask(&a.id.id).is_some() => push(a.clone(), &mut out),
            _ => return None,
        }
    }
    Some(out)
}

/// getACL without ADMIN masks digest ids as `user:x`.
pub fn mask_digests(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| {
            let mut a = a.clone();
            if a.id.scheme == "digest" {
                if let Some((u, _)) = a.id.id.split_once(':') {
                    a.id.id = format!("{u}:x");
                }
            }
            a
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jute::perms;

    #[test]
    fn digest_matches_zookeeper() {
        // Value observed on Apache ZooKeeper 3.8.0.
        assert_eq!(
            digest_id("bob:secret").unwrap(),
            "bob:fyVmFCwVbTJYrznoSu1koqYEYF0="
        );
    }

    #[test]
    fn checks() {
        let bob = AuthInfo {
            ids: vec![
                Id {
                    scheme: "ip".into(),
                    id: "127.0.0.1".into(),
                },
                Id {
                    scheme: "digest".into(),
                    id: digest_id("bob:secret").unwrap(),
                },
            ],
        };
        let acl = vec![Acl::new(
            perms::READ,
            "digest",
            &digest_id("bob:secret").unwrap(),
        )];
        assert!(check(&acl, perms::READ, &bob, false));
        assert!(!check(&acl, perms::WRITE, &bob, false));
        assert!(!check(
            &acl,
            perms::READ,
            &AuthInfo::for_ip("127.0.0.1"),
            false
        ));
        let ipacl = vec![Acl::new(perms::ALL, "ip", "127.0.0.0/8")];
        assert!(check(
            &ipacl,
            perms::WRITE,
            &AuthInfo::for_ip("127.0.0.5"),
            false
        ));
        assert!(!check(
            &ipacl,
            perms::WRITE,
            &AuthInfo::for_ip("10.0.0.5"),
            false
        ));
        assert!(check(&[], perms::ADMIN, &AuthInfo::default(), false));
    }

    #[test]
    fn fixups() {
        let anon = AuthInfo::for_ip("127.0.0.1");
        assert!(fixup(&[], &anon).is_none());
        assert!(fixup(&[Acl::new(31, "auth", "")], &anon).is_none());
        assert!(fixup(&[Acl::new(31, "world", "someone")], &anon).is_none());
        assert!(fixup(&[Acl::new(31, "nope", "x")], &anon).is_none());
        let twice = [
            Acl::new(31, "world", "anyone"),
            Acl::new(31, "world", "anyone"),
        ];
        assert_eq!(fixup(&twice, &anon).unwrap().len(), 1);
        let mut bob = anon.clone();
        bob.add(Id {
            scheme: "digest".into(),
            id: "bob:h".into(),
        });
        assert_eq!(
            fixup(&[Acl::new(31, "auth", "")], &bob).unwrap(),
            vec![Acl::new(31, "digest", "bob:h")]
        );
    }
}
