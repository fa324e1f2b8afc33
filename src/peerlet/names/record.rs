//! What the overlay keeps about a peerlet name, and what nodes say about
//! names to each other ([`NameMsg`], under the reserved app id
//! [`NAME_APP`]).

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

use crate::id::{AppId, Id};
use crate::package::publisher::key_id_hex;
use crate::package::trust::TrustPolicy;
use crate::wire::{AppKind, AppMessage, AppType, CodeLocator, NodeRef};

/// The app id name messages travel under. Publishers' app ids are SHA-256
/// prefixes, so none of them is this text.
pub const NAME_APP: AppId = AppId(*b"peerlet/namestor");

/// Longest peerlet name a record may carry (as a `--@peerlet` header's).
pub const NAME_BYTES: usize = 64;

/// Where in the DHT the records of peerlet name `name` are kept: one key for
/// every publisher's `name`, so one question finds them all (and an
/// ambiguity shows at once).
pub fn name_key(name: &str) -> Id {
    let mut h = Sha256::new();
    h.update(b"peerlet name ");
    h.update(name.as_bytes());
    let digest = h.finalize();
    let mut id = [0; crate::id::ID_BYTES];
    id.copy_from_slice(&digest[..crate::id::ID_BYTES]);
    Id(id)
}

/// One publisher's newest version of one peerlet name: enough to call it
/// from any node, and for the key's root to fetch its code.
///
/// Holders cannot check a record (they trust nobody); a resolving node
/// checks that the app id is the one its trusted key of that id and the
/// name make ([`NameRecord::trusted_by`]), and the code itself is checked
/// in full when fetched. So a forged record can at most name code that
/// every node then refuses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameRecord {
    /// The publisher's minisign key id (as stored, little-endian).
    #[serde(with = "serde_bytes")]
    pub publisher: [u8; 8],
    pub name: String,
    pub app: AppId,
    pub app_type: AppType,
    pub version: u32,
    pub code: CodeLocator,
}

impl NameRecord {
    /// The publisher's key id as minisign prints it.
    pub fn publisher_hex(&self) -> String {
        key_id_hex(self.publisher)
    }

    /// Whether `trust` holds a key of this record's key id whose app id for
    /// this name is the record's.
    pub fn trusted_by(&self, trust: &TrustPolicy) -> bool {
        trust
            .keys_with_id(self.publisher)
            .any(|k| AppId::derive(k.ed25519(), &self.name) == self.app)
    }

    /// Does this record replace `old` (same publisher and name)?
    pub fn supersedes(&self, old: &NameRecord) -> bool {
        self.version > old.version
    }
}

/// A node that runs an app, and which version, as it last said.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runner {
    pub node: NodeRef,
    pub app: AppId,
    pub version: u32,
}

/// What nodes say to each other about names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum NameMsg {
    /// Keep this record (routed to its name key: the root also gives copies
    /// to the rest of the replica set; sent directly: keep it only).
    Publish { record: NameRecord },
    /// Answer with the records of `name` (routed to its name key). `running`:
    /// the asker runs this version of one of them (its periodic check),
    /// which the root notes for `.versions`.
    Ask {
        name: String,
        req: u64,
        running: Vec<Runner>,
    },
    /// The answer to `Ask` `req`: every publisher's newest record of the
    /// name, and the nodes known to run them.
    Answer {
        req: u64,
        records: Vec<NameRecord>,
        runners: Vec<(Runner, u64)>,
    },
}

impl NameMsg {
    /// This message as an application message of [`NAME_APP`].
    pub fn to_app_message(&self) -> AppMessage {
        let mut data = Vec::new();
        ciborium::into_writer(self, &mut data).expect("name messages encode");
        AppMessage {
            app: NAME_APP,
            app_type: AppType::EndNode,
            code: None,
            data: ByteBuf::from(data),
            kind: AppKind::Message,
            refused_by: Vec::new(),
        }
    }

    pub fn from_app_message(msg: &AppMessage) -> Result<NameMsg, String> {
        ciborium::from_reader(msg.data.as_slice()).map_err(|e| format!("malformed: {e}"))
    }
}
