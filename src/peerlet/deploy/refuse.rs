//! Refusing: a node that will not run an app passes an end-node message on
//! to the next replica of its key that has not refused it; when none is
//! left (or the code never came), the sender is told.

use crate::kbr::Api;
use crate::peerlet::manager::{Manager, Served};
use crate::wire::{AppKind, AppMessage, Body, RoutedMessage};

impl Manager {
    /// This node will not run `msg`'s app: pass the message on to the next
    /// replica of its key that has not refused it, or tell its sender.
    pub(in crate::peerlet) fn refuse(
        &mut self,
        api: &mut Api<'_>,
        msg: &RoutedMessage,
        reason: &str,
    ) {
        let Body::App(app_msg) = &msg.body else {
            return;
        };
        let me = api.id();
        let replicas = self.cfg.deploy.replicas;
        let mut refused_by = app_msg.refused_by.clone();
        refused_by.push(me.id);
        // A message sent to one node (not routed to a key) has no replicas.
        let routed = !msg.direct || !app_msg.refused_by.is_empty();
        // The replica set is the root and its successors; a replica past the
        // root does not see the key in its own stretch of ring, so it passes
        // the message to its successor.
        let next = api
            .replica_set(&msg.key, replicas)
            .into_iter()
            .chain(api.view().successors())
            .find(|n| !refused_by.contains(&n.id));
        match next {
            Some(next) if routed && refused_by.len() < replicas => {
                let mut on = msg.clone();
                if let Body::App(a) = &mut on.body {
                    a.refused_by = refused_by;
                }
                self.report(format!(
                    "app {}: message to key {} not run here ({reason}); passed on to {next:?}",
                    app_msg.app,
                    msg.key.short(8)
                ));
                api.pass_on(on, next);
            }
            _ => {
                let tried = refused_by.len();
                self.undelivered(api, msg, &format!("refused by {tried} node(s); {reason}"));
            }
        }
    }

    /// Tells the sender of `msg` that it was not delivered.
    pub(in crate::peerlet) fn undelivered(
        &mut self,
        api: &mut Api<'_>,
        msg: &RoutedMessage,
        reason: &str,
    ) {
        let Body::App(a) = &msg.body else {
            return;
        };
        self.report(format!(
            "app {}: message to key {} from {:?} not delivered: {reason}",
            a.app,
            msg.key.short(8),
            msg.source
        ));
        match &a.kind {
            AppKind::Call { call, .. } => {
                let to = Served {
                    from: msg.source,
                    call: *call,
                };
                self.reply_error(api, a.app, to, &format!("not delivered: {reason}"));
            }
            AppKind::Message => {
                let notice = AppMessage {
                    app: a.app,
                    app_type: a.app_type,
                    code: None,
                    data: a.data.clone(),
                    kind: AppKind::Undelivered {
                        key: msg.key,
                        reason: reason.to_string(),
                    },
                    refused_by: Vec::new(),
                };
                api.send(msg.source, notice);
            }
            AppKind::Reply { .. } | AppKind::Undelivered { .. } => {}
        }
    }
}
