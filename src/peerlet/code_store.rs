//! The code store inside the overlay (PROST's "future work", built here):
//! every signed package installed anywhere is kept in the DHT under
//! [`code_key`]`(hash)`, on that key's replica set, so a node can fetch the
//! code a message names even after the node that first installed it is gone.
//!
//! The store speaks [`CodeMsg`] under the reserved app id [`CODE_APP`]:
//! - `Put` routed to the code key: its root keeps the package and gives a
//!   copy to every other member of the key's replica set (`Put` sent
//!   straight to each); they keep it without passing it on.
//! - When the neighbour set changes ([`CodeStore::replicate`]), each holder
//!   gives a copy to members of the replica set it has not placed one at
//!   yet, so r copies come back after failures and joins. A node that kept
//!   a package alone (its origin, before the ring grew) routes it to the
//!   code key once the key lies outside its stretch of ring.
//! - `Get` (routed to the code key, or sent to the origin node) is answered
//!   straight to its source with `Got`, the package or `None`.
//!
//! Holders check only what they can without trusting anyone: the package
//! decodes and is within the size limit; it is stored under the hash of its
//! bytes, so nobody can place other bytes under a hash. Whether to *run* it
//! is the fetching node's business ([`super::deploy`]). Copies live in
//! memory, within a byte quota; a full store refuses new packages.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

use crate::id::{AppId, Id};
use crate::kbr::Api;
use crate::package::{hex, Package};
use crate::wire::{AppKind, AppMessage, AppType, NodeRef};

/// The app id code-store messages travel under. Publishers' app ids are
/// SHA-256 prefixes, so none of them is this text.
pub const CODE_APP: AppId = AppId(*b"peerlet/codestor");

/// Copies of each package the overlay keeps (the code key's root and its
/// successors).
pub const DEFAULT_REPLICAS: usize = 3;

/// Bytes of packages one node keeps for the overlay.
pub const DEFAULT_QUOTA: usize = 16 << 20;

/// Where in the DHT the package with SHA-256 `hash` is kept.
pub fn code_key(hash: &[u8; 32]) -> Id {
    let mut h = Sha256::new();
    h.update(b"peerlet code ");
    h.update(hash);
    let digest = h.finalize();
    let mut id = [0; crate::id::ID_BYTES];
    id.copy_from_slice(&digest[..crate::id::ID_BYTES]);
    Id(id)
}

/// What code-store nodes say to each other.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CodeMsg {
    /// Keep this package.
    Put { package: ByteBuf },
    /// Answer with the package of this hash.
    Get {
        #[serde(with = "serde_bytes")]
        hash: [u8; 32],
        req: u64,
    },
    /// The answer to `Get` `req`.
    Got {
        #[serde(with = "serde_bytes")]
        hash: [u8; 32],
        req: u64,
        package: Option<ByteBuf>,
    },
}

impl CodeMsg {
    /// This message as an application message of [`CODE_APP`].
    pub fn to_app_message(&self) -> AppMessage {
        let mut data = Vec::new();
        ciborium::into_writer(self, &mut data).expect("code messages encode");
        AppMessage {
            app: CODE_APP,
            app_type: AppType::EndNode,
            code: None,
            data: ByteBuf::from(data),
            kind: AppKind::Message,
            refused_by: Vec::new(),
        }
    }

    pub fn from_app_message(msg: &AppMessage) -> Result<CodeMsg, String> {
        ciborium::from_reader(msg.data.as_slice()).map_err(|e| format!("malformed: {e}"))
    }
}

struct Held {
    package: Vec<u8>,
    /// The replica set as it was when copies were last placed.
    placed: Vec<Id>,
    /// Copies have reached other nodes (or came from one). A node that
    /// kept a package alone (installed before it had neighbours) and then
    /// finds the code key outside its stretch of ring routes it to the key.
    shared: bool,
}

/// The packages this node keeps for the overlay. See the module docs.
pub struct CodeStore {
    held: BTreeMap<[u8; 32], Held>,
    bytes: usize,
    quota: usize,
    replicas: usize,
}

impl CodeStore {
    pub fn new(quota: usize, replicas: usize) -> CodeStore {
        CodeStore {
            held: BTreeMap::new(),
            bytes: 0,
            quota,
            replicas: replicas.max(1),
        }
    }

    pub fn get(&self, hash: &[u8; 32]) -> Option<&[u8]> {
        self.held.get(hash).map(|h| h.package.as_slice())
    }

    /// Packages kept, and their bytes.
    pub fn usage(&self) -> (usize, usize) {
        (self.held.len(), self.bytes)
    }

    pub fn hashes(&self) -> impl Iterator<Item = &[u8; 32]> {
        self.held.keys()
    }

    /// Keeps `package` (if new, valid and within the quota); returns its hash.
    fn keep(&mut self, package: Vec<u8>, max_package: usize) -> Result<[u8; 32], String> {
        let hash: [u8; 32] = Sha256::digest(&package).into();
        if self.held.contains_key(&hash) {
            return Ok(hash);
        }
        Package::decode(&package, max_package).map_err(|e| e.to_string())?;
        if self.bytes + package.len() > self.quota {
            return Err(format!(
                "code store full ({} of {} bytes): package {} not kept",
                self.bytes,
                self.quota,
                hex(&hash[..8])
            ));
        }
        self.bytes += package.len();
        self.held.insert(
            hash,
            Held {
                package,
                placed: Vec::new(),
                shared: false,
            },
        );
        Ok(hash)
    }

    /// A `Put` arrived. `at_root`: it was routed to the code key and this
    /// node is its root, so copies go to the rest of the replica set.
    pub fn on_put(
        &mut self,
        api: &mut Api<'_>,
        package: Vec<u8>,
        at_root: bool,
        max_package: usize,
    ) -> Result<(), String> {
        let hash = self.keep(package, max_package)?;
        let set = self.replicas_of(api, &hash);
        if at_root {
            self.place(api, hash, &set);
        } else if let Some(h) = self.held.get_mut(&hash) {
            h.placed = set.iter().map(|n| n.id).collect();
            h.shared = true;
        }
        Ok(())
    }

    /// The neighbour set changed: give copies to replica-set members that
    /// have not had one from this node.
    pub fn replicate(&mut self, api: &mut Api<'_>) {
        let hashes: Vec<[u8; 32]> = self.held.keys().copied().collect();
        for hash in hashes {
            let set = self.replicas_of(api, &hash);
            let held = self.held.get_mut(&hash).expect("listed");
            if set.is_empty() && !held.shared {
                held.shared = true;
                let put = CodeMsg::Put {
                    package: ByteBuf::from(held.package.clone()),
                };
                api.route(code_key(&hash), put.to_app_message(), None);
            } else if !set.is_empty() && !set.iter().map(|n| n.id).eq(held.placed.iter().copied()) {
                self.place(api, hash, &set);
            }
        }
    }

    /// Sends a copy of `hash` to each member of `set` not in its last
    /// placement (never to this node).
    fn place(&mut self, api: &mut Api<'_>, hash: [u8; 32], set: &[NodeRef]) {
        let Some(held) = self.held.get_mut(&hash) else {
            return;
        };
        let me = api.id().id;
        for node in set {
            if node.id != me && !held.placed.contains(&node.id) {
                let put = CodeMsg::Put {
                    package: ByteBuf::from(held.package.clone()),
                };
                api.send(*node, put.to_app_message());
                held.shared = true;
            }
        }
        held.placed = set.iter().map(|n| n.id).collect();
    }

    /// The code key's replica set as this node sees it (empty when the key
    /// lies outside its stretch of ring).
    fn replicas_of(&self, api: &Api<'_>, hash: &[u8; 32]) -> Vec<NodeRef> {
        api.replica_set(&code_key(hash), self.replicas)
    }
}
