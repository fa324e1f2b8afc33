//! Installing signed peerlets: from files given to this node (it becomes
//! the code's origin and publishes the package in the overlay's code
//! store), or from a package fetched by traffic ([`super::deploy`]).

use super::code_store::{code_key, CodeMsg};
use super::console::CONSOLE;
use super::manager::{InstallError, Manager, PeerletSpec};
use super::names::record::NameRecord;
use crate::id::AppId;
use crate::kbr::Api;
use crate::package::verified::VerifiedPackage;
use crate::package::Package;
use crate::wire::CodeLocator;
use serde_bytes::ByteBuf;

impl Manager {
    /// Installs a signed peerlet: `source` and its detached minisign
    /// `signature` (the `.minisig` file's text). The signature must be by a
    /// publisher this node trusts, the name, type and version come from the
    /// signed `--@peerlet` header, and the app id is bound to the publisher's
    /// key and the name. A version older than the one installed is refused;
    /// a newer one replaces it (with `save`/`restore`, as a reload).
    ///
    /// This node is the code's origin: its messages' code locators name it,
    /// and the package goes to the overlay's code store (routed to its code
    /// key), so other nodes can fetch it even when this one is gone; its
    /// name record goes to the name's key, so any node can call it by name
    /// and nodes running an older version upgrade.
    pub fn install_signed(
        &mut self,
        api: &mut Api<'_>,
        source: &[u8],
        signature: &str,
    ) -> Result<AppId, InstallError> {
        let package = Package::parse(source, signature)
            .inspect_err(|e| self.trust().record_refusal(e.reason()))?;
        let verified = self.trust().verify(&package)?;
        let locator = CodeLocator {
            hash: verified.code_hash(),
            size: package.size() as u64,
            origin: Some(api.id()),
        };
        let encoded = package.encoded().to_vec();
        let app = self.install_verified(api, &verified, encoded.clone(), locator.clone())?;
        let put = CodeMsg::Put {
            package: ByteBuf::from(encoded),
        };
        api.route(code_key(&verified.code_hash()), put.to_app_message(), None);
        let record = NameRecord {
            publisher: verified.publisher().key_id(),
            name: verified.name().to_string(),
            app,
            app_type: verified.app_type(),
            version: verified.version(),
            code: locator,
        };
        self.publish_name(api, record);
        Ok(app)
    }

    /// Installs checked code whose package is `encoded`; its messages will
    /// carry `locator`. Refuses a version older than the one installed.
    pub(super) fn install_verified(
        &mut self,
        api: &mut Api<'_>,
        verified: &VerifiedPackage,
        encoded: Vec<u8>,
        locator: CodeLocator,
    ) -> Result<AppId, InstallError> {
        if verified.name() == CONSOLE {
            return Err(InstallError::Reserved(verified.name().to_string()));
        }
        if let Some(old) = self.peerlets.get(&verified.app_id()) {
            if old.version > verified.version() {
                return Err(InstallError::Older {
                    name: old.name.clone(),
                    offered: verified.version(),
                    installed: old.version,
                });
            }
        }
        let chunk_name = format!("{}.lua", verified.name());
        let hash = verified.code_hash();
        let spec = PeerletSpec {
            name: verified.name(),
            app: verified.app_id(),
            app_type: verified.app_type(),
            version: verified.version(),
            chunk_name: &chunk_name,
            source: verified.source().as_bytes(),
            signed: Some((locator, verified.publisher().key_id_hex())),
        };
        let app = self.install(api, &spec)?;
        self.packages.insert(hash, encoded);
        self.schedule_name_check(api.now());
        Ok(app)
    }
}
