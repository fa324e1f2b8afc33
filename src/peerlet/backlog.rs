//! Holding a peerlet's work while it waits for its share of the node
//! (`share.rs`), and running it again once the share has refilled.
//!
//! Everything a peerlet is asked to do goes through `Manager::drive`: when
//! the peerlet (or all peerlets together) is over its share, the step is
//! held here instead, oldest first, up to `limits.backlog`; a per-hop
//! message is held at this hop and routed on after its `forward()` ran.
//! Held work runs from the manager's timeout, in slices of at most
//! [`SLICE`], so the node's own work (reading sockets, acknowledging hops,
//! the control socket) runs between two slices. The console is the
//! operator's and never waits.

use std::time::{Duration, Instant};

use super::console::CONSOLE;
use super::manager::{Deferred, Manager};
use crate::id::AppId;
use crate::kbr::Api;
use crate::time::Time;
use crate::wire::{NodeRef, RoutedMessage};

/// Most running time the held work of all peerlets takes in one go.
const SLICE: Duration = Duration::from_millis(5);

impl Manager {
    /// Whether peerlet `app` may run a new step now: it is the console, or
    /// nothing of it waits already and both its share and the peerlets'
    /// together have something left.
    pub(super) fn may_run(&mut self, app: AppId, now: Time) -> bool {
        self.now = self.now.max(now);
        if self.running_backlog == Some(app) {
            return true;
        }
        let node_ready = self.node_share.ready(now);
        let Some(p) = self.peerlets.get_mut(&app) else {
            return true;
        };
        if p.name == CONSOLE || p.sandbox.is_stopped() {
            return true;
        }
        let ready = p.share.ready(now, node_ready);
        p.backlog.is_empty() && ready
    }

    /// Holds `work` until peerlet `app` may run; drops it when its backlog
    /// is full (a call is answered with the reason, a per-hop message goes
    /// on unchanged).
    pub(super) fn defer(&mut self, api: &mut Api<'_>, app: AppId, work: Deferred) {
        let Some(p) = self.peerlets.get_mut(&app) else {
            return;
        };
        if p.backlog.len() < self.cfg.limits.backlog {
            p.backlog.push_back(work);
            p.share.set_waiting(api.now(), true);
            return;
        }
        p.share.dropped += 1;
        let reason = format!(
            "peerlet `{}` is over its share of the node and {} upcalls wait already",
            p.name,
            p.backlog.len()
        );
        match work {
            Deferred::Forward(msg, _) => api.resume_route(msg, None),
            Deferred::Step(Some(served), _) => self.reply_error(api, app, served, &reason),
            Deferred::Step(None, _) => {}
        }
        // Reported at the 1st, 2nd, 4th, 8th... drop: not once per message.
        if self.peerlets[&app].share.dropped.is_power_of_two() {
            self.report_for(app, format!("{reason}: dropping upcalls"));
        }
    }

    /// Holds a per-hop message at this hop when its peerlet is over its
    /// share: `true` if it was held (the caller stops the message here).
    pub(super) fn hold_forward(
        &mut self,
        api: &mut Api<'_>,
        app: AppId,
        msg: &RoutedMessage,
        next: NodeRef,
    ) -> bool {
        if self.may_run(app, api.now()) {
            return false;
        }
        self.defer(api, app, Deferred::Forward(msg.clone(), next));
        true
    }

    /// The earliest time held work or a due timer of a waiting peerlet can
    /// run, if anything waits.
    pub(super) fn backlog_deadline(&self) -> Option<Time> {
        let now = self.now;
        let node_at = self.node_share.ready_at(now, 0.0);
        self.peerlets
            .values()
            .filter(|p| !p.backlog.is_empty())
            .map(|p| p.share.ready_at(now).max(node_at))
            .min()
    }

    /// Runs held work of every peerlet whose share allows it, round robin,
    /// for at most [`SLICE`]; stops peerlets that stayed over their share
    /// for `limits.overload_time`.
    pub(super) fn run_backlogs(&mut self, api: &mut Api<'_>) {
        let now = api.now();
        self.stop_overloaded(api, now);
        let clock = Instant::now();
        loop {
            let mut ran = false;
            let mut apps: Vec<AppId> = self
                .peerlets
                .iter()
                .filter(|(_, p)| !p.backlog.is_empty())
                .map(|(a, _)| *a)
                .collect();
            // Not in app id order: the last ones would wait for good.
            apps.sort_by_key(|a| self.peerlets[a].share.last_ran());
            for app in apps {
                if clock.elapsed() >= SLICE || !self.node_share.ready(now) {
                    return;
                }
                let Some(p) = self.peerlets.get_mut(&app) else {
                    continue;
                };
                if !p.share.ready(now, true) {
                    continue;
                }
                let Some(work) = p.backlog.pop_front() else {
                    continue;
                };
                p.share.set_waiting(now, !p.backlog.is_empty());
                self.running_backlog = Some(app);
                match work {
                    Deferred::Step(served, step) => {
                        self.run_step(api, app, served, step);
                    }
                    Deferred::Forward(msg, next) => self.forward_deferred(api, msg, next),
                }
                self.running_backlog = None;
                ran = true;
            }
            if !ran {
                return;
            }
        }
    }

    /// Runs a held per-hop message's `forward()`, then routes it on
    /// (unless the peerlet stopped it).
    fn forward_deferred(&mut self, api: &mut Api<'_>, mut msg: RoutedMessage, next: NodeRef) {
        let mut chosen = next;
        if self.forward_message(api, &mut msg, &mut chosen) {
            api.resume_route(msg, (chosen.id != next.id).then_some(chosen));
        }
    }

    /// Stops every peerlet that has had work waiting for its share for
    /// longer than `limits.overload_time`: it keeps the node busy for good.
    fn stop_overloaded(&mut self, api: &mut Api<'_>, now: Time) {
        let limit = self.cfg.limits.overload_time;
        let over: Vec<AppId> = self
            .peerlets
            .iter()
            .filter(|(_, p)| !p.backlog.is_empty() && p.share.over_for(now) > limit)
            .map(|(a, _)| *a)
            .collect();
        for app in over {
            let Some(p) = self.peerlets.get_mut(&app) else {
                continue;
            };
            p.sandbox.stop();
            let held: Vec<Deferred> = p.backlog.drain(..).collect();
            p.share.set_waiting(now, false);
            let line = format!(
                "peerlet `{}` stopped: over its share of the node; its work waited {:.1} s without a break (its share: {:.0}% of a core, {} instructions/s)",
                p.name,
                limit.as_secs_f64(),
                self.cfg.limits.cpu_share * 100.0,
                self.cfg.limits.instructions_per_second
            );
            self.report(line.clone());
            for work in held {
                match work {
                    Deferred::Forward(msg, _) => api.resume_route(msg, None),
                    Deferred::Step(Some(served), _) => self.reply_error(api, app, served, &line),
                    Deferred::Step(None, _) => {}
                }
            }
        }
    }
}
