//! The one snapshot of the routing state that every application shares
//! (see `view.rs`): taken again when the core's neighbours change or when
//! it is a second old.

use std::rc::Rc;
use std::time::Duration;

use super::core::RoutingCore;
use super::view::RoutingView;
use crate::time::Time;

/// How old a shared view may get while the neighbours stay the same
/// (fingers change without a neighbour change).
const MAX_AGE: Duration = Duration::from_secs(1);

/// The shared snapshot and when it was taken.
pub struct ViewCache {
    view: Rc<dyn RoutingView>,
    /// The core's neighbour version and the time of the snapshot.
    taken: Option<(u64, Time)>,
}

impl ViewCache {
    pub fn new(core: &RoutingCore) -> ViewCache {
        ViewCache {
            view: core.snapshot(),
            taken: None,
        }
    }

    /// The snapshot, taken anew from `core` when its neighbours changed
    /// or the snapshot is older than a second.
    pub fn get(&mut self, now: Time, core: &RoutingCore) -> Rc<dyn RoutingView> {
        let version = core.neighbors_version();
        let stale = match self.taken {
            Some((v, at)) => v != version || now.since(at) > MAX_AGE,
            None => true,
        };
        if stale {
            self.view = core.snapshot();
            self.taken = Some((version, now));
        }
        self.view.clone()
    }
}
