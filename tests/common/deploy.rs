//! A simulated overlay where every node has a peerlet manager that trusts
//! one publisher, for tests of deployment by traffic.

use peerlet::id::{AppId, Id};
use peerlet::kbr::{Api, Application};
use peerlet::package::secret_key::SigningKey;
use peerlet::package::signing::sign_source;
use peerlet::package::trust::TrustPolicy;
use peerlet::package::Package;
use peerlet::peerlet::code_store::CodeMsg;
use peerlet::peerlet::{ManagerApp, ManagerConfig};
use peerlet::sim::SimNet;
use peerlet::time::Time;
use peerlet::wire::{AppType, Body, CodeLocator, RoutedMessage};
use serde_bytes::ByteBuf;
use std::cell::Cell;
use std::rc::Rc;

use super::values::{app_message, count, decode_stored};

pub struct Overlay {
    pub net: SimNet,
    pub managers: Vec<ManagerApp>,
    pub publisher: SigningKey,
}

/// A trust policy that trusts `keys`.
pub fn trusting(keys: &[&SigningKey]) -> TrustPolicy {
    let mut policy = TrustPolicy::new();
    for k in keys {
        policy.trust(k.public().clone());
    }
    policy
}

impl Overlay {
    /// `n` converged nodes, each trusting one publisher.
    pub fn new(n: usize, seed: u64, cfg: &ManagerConfig) -> Overlay {
        let publisher = SigningKey::generate().unwrap();
        let (net, managers, _) = super::sim::with_managers(n, seed, cfg);
        for m in &managers {
            m.0.borrow_mut().set_trust(trusting(&[&publisher]));
        }
        Overlay {
            net,
            managers,
            publisher,
        }
    }

    /// Signs `text` with the overlay's publisher and installs it on `node`.
    pub fn install(&mut self, node: usize, text: &str) -> AppId {
        let sig = sign_source(&self.publisher, text.as_bytes(), "x.lua").unwrap();
        let m = self.managers[node].clone();
        self.net
            .with_node(node, |k, now| {
                m.0.borrow_mut()
                    .install_signed(&mut k.api(now), text.as_bytes(), &sig)
            })
            .unwrap()
    }

    /// The code locator of peerlet `name` on `node`.
    pub fn locator(&self, node: usize, name: &str) -> CodeLocator {
        let m = self.managers[node].0.borrow();
        m.by_name(name).unwrap().code.clone().unwrap()
    }

    /// Routes `value` for `app` to `key` from `node`, as a peerlet there would.
    pub fn route(
        &mut self,
        node: usize,
        key: Id,
        app: AppId,
        app_type: AppType,
        code: &CodeLocator,
        value: ciborium::Value,
    ) {
        let mut msg = app_message(app, app_type, &value);
        msg.code = Some(code.clone());
        self.net.with_node(node, |k, now| {
            k.api(now).route(key, msg, None);
        });
    }

    /// Nodes where peerlet `name` is installed.
    pub fn running(&self, name: &str) -> Vec<usize> {
        (0..self.managers.len())
            .filter(|&i| self.managers[i].0.borrow().by_name(name).is_some())
            .collect()
    }

    /// Counter `key` in peerlet `name`'s store on `node` (0 if absent).
    pub fn counter(&self, node: usize, name: &str, key: &str) -> i128 {
        let m = self.managers[node].0.borrow();
        let Some(p) = m.by_name(name) else { return 0 };
        count(p.store_get(key).map(|b| decode_stored(&b)))
    }

    /// Index of the node with id `id`.
    pub fn index(&self, id: &Id) -> usize {
        (0..self.net.len())
            .find(|&i| self.net.me(i).id == *id)
            .unwrap()
    }

    /// Runs a console line on `node` and waits (up to 30 s) for its outcome.
    pub fn eval(&mut self, node: usize, code: &str) -> Result<String, String> {
        let lines = [(node, code.to_string())];
        let limit = std::time::Duration::from_secs(30);
        super::sim::eval_many(&mut self.net, &self.managers, &lines, limit).remove(0)
    }

    /// Reports of `node`'s manager, joined.
    pub fn reports(&self, node: usize) -> String {
        let m = self.managers[node].0.borrow();
        m.reports().cloned().collect::<Vec<_>>().join("\n")
    }
}

/// A signed package for `text` as the code store carries it.
pub fn package(key: &SigningKey, text: &str) -> Vec<u8> {
    let sig = sign_source(key, text.as_bytes(), "x.lua").unwrap();
    Package::parse(text.as_bytes(), &sig)
        .unwrap()
        .encoded()
        .to_vec()
}

/// A code store that answers every request with the same bytes: a lying
/// (or broken) origin. Counts the requests it saw.
pub struct Liar {
    pub bytes: Vec<u8>,
    pub asked: Rc<Cell<u32>>,
}

impl Application for Liar {
    fn deliver(&mut self, api: &mut Api<'_>, msg: &RoutedMessage) {
        let Body::App(a) = &msg.body else { return };
        if let Ok(CodeMsg::Get { hash, req }) = CodeMsg::from_app_message(a) {
            self.asked.set(self.asked.get() + 1);
            let got = CodeMsg::Got {
                hash,
                req,
                package: Some(ByteBuf::from(self.bytes.clone())),
            };
            api.send(msg.source, got.to_app_message());
        }
    }

    fn next_deadline(&self) -> Option<Time> {
        None
    }
}
