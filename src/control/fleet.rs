//! The nodes of one process, for the console's fault commands (`.nodes`,
//! `.crash N`, `.leave N`, `.spawn`, `.partition`, `.heal`): `peerlet demo`
//! and `peerlet testnet` give their control servers a [`Fleet`]; a lone
//! `peerlet node` has none, and says so.

/// What a console may do to the nodes of its process.
pub trait Fleet: Send + Sync {
    /// One line per node: number, address, id, state.
    fn nodes(&self) -> String;
    /// The number of the node listening at `addr`, if it is one of these.
    fn number_of(&self, addr: std::net::SocketAddr) -> Option<usize>;
    /// Stops node `node` at once, telling nobody.
    fn crash(&self, node: usize) -> Result<String, String>;
    /// Makes node `node` leave the ring gracefully.
    fn leave(&self, node: usize) -> Result<String, String>;
    /// Starts one more node, joining the ring; says which.
    fn spawn(&self) -> Result<String, String>;
    /// Cuts the network between `groups` of nodes (the nodes no group
    /// names form one group more); replaces any earlier partition.
    fn partition(&self, groups: &[Vec<usize>]) -> Result<String, String>;
    /// Lifts the partition.
    fn heal(&self) -> Result<String, String>;
}
