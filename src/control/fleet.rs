//! The nodes of one process, for the console's fault commands (`.nodes`,
//! `.crash N`, `.leave N`, `.spawn`): `peerlet demo` gives its control
//! servers a [`Fleet`]; a lone `peerlet node` has none, and says so.

/// What a console may do to the nodes of its process.
pub trait Fleet: Send + Sync {
    /// One line per node: number, address, id, state.
    fn nodes(&self) -> String;
    /// Stops node `node` at once, telling nobody.
    fn crash(&self, node: usize) -> Result<String, String>;
    /// Makes node `node` leave the ring gracefully.
    fn leave(&self, node: usize) -> Result<String, String>;
    /// Starts one more node, joining the ring; says which.
    fn spawn(&self) -> Result<String, String>;
}
