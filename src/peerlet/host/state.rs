//! What the host functions of one peerlet share with the manager: its
//! limits, the clock, the routing view, its outbox, timers, store and the
//! remote calls it waits on.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use super::calls::CallRequest;
use super::timers::TimerSet;
use crate::id::{AppId, Id};
use crate::kbr::view::RoutingView;
use crate::peerlet::share::{Bucket, LogGate};
use crate::peerlet::store::Store;
use crate::sandbox::Limits;
use crate::time::Time;
use crate::wire::{AppType, NodeRef};

/// Something a peerlet asked the node to send.
#[derive(Clone, Debug, PartialEq)]
pub enum Outgoing {
    /// `kbr.route(key, msg, {first_hop = node})`.
    Route {
        key: Id,
        data: Vec<u8>,
        first_hop: Option<NodeRef>,
    },
    /// `kbr.send(node, msg)`.
    Send { node: NodeRef, data: Vec<u8> },
}

/// What the host functions of one peerlet share with the manager.
pub struct HostState {
    pub name: String,
    pub app: AppId,
    pub app_type: AppType,
    pub limits: Limits,
    pub now: Cell<Time>,
    /// The node's routing state as of the last refresh.
    pub ring: RefCell<Rc<dyn RoutingView>>,
    pub outbox: RefCell<VecDeque<Outgoing>>,
    pub timers: RefCell<TimerSet>,
    pub store: RefCell<Option<Store>>,
    /// Outgoing messages refused because the queue was full.
    pub refused: Cell<u64>,
    /// Remote calls made by suspended upcalls, by token, until the manager
    /// sends them.
    pub calls: RefCell<HashMap<u64, CallRequest>>,
    next_token: Cell<u64>,
    /// `limits.messages_per_second`, with bursts of `limits.outgoing_queue`.
    send_tokens: RefCell<Bucket>,
    /// What the peerlet may write to the node's log.
    pub log: RefCell<LogGate>,
}

impl HostState {
    pub fn new(
        name: &str,
        app: AppId,
        app_type: AppType,
        limits: &Limits,
        ring: Rc<dyn RoutingView>,
        store: Option<Store>,
    ) -> Rc<HostState> {
        Rc::new(HostState {
            name: name.to_string(),
            app,
            app_type,
            limits: limits.clone(),
            now: Cell::new(Time::ZERO),
            ring: RefCell::new(ring),
            outbox: RefCell::new(VecDeque::new()),
            timers: RefCell::new(TimerSet::default()),
            store: RefCell::new(store),
            refused: Cell::new(0),
            calls: RefCell::new(HashMap::new()),
            next_token: Cell::new(0),
            send_tokens: RefCell::new(Bucket::new(
                limits.messages_per_second as f64,
                limits.outgoing_queue.max(1) as f64,
            )),
            log: RefCell::new(LogGate::new(limits, format!("peerlet `{name}`"))),
        })
    }

    pub fn me(&self) -> NodeRef {
        self.ring.borrow().me()
    }

    pub(super) fn next_token(&self) -> u64 {
        self.next_token.set(self.next_token.get() + 1);
        self.next_token.get()
    }

    /// Takes one message from the send-rate bucket, or says why not.
    pub fn take_send_token(&self, what: &str) -> mlua::Result<()> {
        if self.send_tokens.borrow_mut().take_one(self.now.get()) {
            return Ok(());
        }
        self.refused.set(self.refused.get() + 1);
        Err(mlua::Error::runtime(format!(
            "{what}: send rate limit of {} messages/s exceeded",
            self.limits.messages_per_second
        )))
    }

    /// Queues an outgoing message, or refuses it when the queue is full or
    /// the peerlet sends faster than its rate limit.
    pub(super) fn queue(&self, what: &str, out: Outgoing) -> mlua::Result<()> {
        self.take_send_token(what)?;
        let mut outbox = self.outbox.borrow_mut();
        if outbox.len() >= self.limits.outgoing_queue {
            self.refused.set(self.refused.get() + 1);
            return Err(mlua::Error::runtime(format!(
                "{what}: outgoing queue full ({} messages waiting)",
                self.limits.outgoing_queue
            )));
        }
        outbox.push_back(out);
        Ok(())
    }
}
