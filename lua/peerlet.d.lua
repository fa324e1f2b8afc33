---@meta
-- lua/peerlet.d.lua: the whole host API a peerlet sees, declared once for
-- lua-language-server (add this folder to `workspace.library`). Nothing else
-- is reachable from a peerlet: the standard library is stripped to
-- `string`, `table`, `math`, `utf8`, `coroutine` and a safe base library
-- (no io, os, debug, package, load, dofile, string.dump).
--
-- A test (tests/api_declared.rs) checks that every host function is declared
-- here and every function declared here exists.

---A node of the overlay.
---@class Node
---@field id string  40 lowercase hex digits
---@field addr string  "ip:port"

---A peerlet module: the table the script returns. Every field is optional.
---@class Peerlet
---@field deliver? fun(key: string, msg: any, from: Node)  at the root of `key`
---@field forward? fun(key: string, msg: any, next_hop: Node): (any, Node?)|false  per-hop apps, at every hop
---@field update? fun(node: Node, joined: boolean)  a neighbour joined or left
---@field undelivered? fun(key: string, msg: any, reason: string)  a message this peerlet routed went nowhere: every replica of `key` refused its code, or the code could not be fetched
---@field init? fun()  after install and after reload
---@field save? fun(): any  before a reload: the state to hand over
---@field restore? fun(state: any)  after a reload, with what save() returned

---Key-based routing: the common API of Dabek et al. (IPTPS 2003).
kbr = {}

---Routes `msg` to the root of `key`. Values are nil, booleans, numbers,
---strings and tables of those (no functions, cycles, tables as keys, or
---nesting deeper than the limit). Raises an error when the value is refused,
---the outgoing queue is full or the send rate limit is hit.
---@param key string  40 hex digits (see kbr.key)
---@param msg any
---@param opts? {first_hop?: Node}  a first hop to use instead of the routing table's
function kbr.route(key, msg, opts) end

---Sends `msg` straight to `node`; it is delivered there whoever owns the key.
---@param node Node
---@param msg any
function kbr.send(node, msg) end

---Up to `n` good next hops towards `key`, best first.
---@param key string
---@param n? integer  default 1
---@param safe? boolean  accepted; this overlay keeps no separate safe table
---@return Node[]
function kbr.local_lookup(key, n, safe) end

---Up to `n` neighbours: successors (nearest first), then the predecessor.
---@param n? integer
---@return Node[]
function kbr.neighbor_set(n) end

---The nodes holding the replicas of `key`, its root first (the root and its
---successors), up to `max_rank`. Empty when `key` is outside the stretch of
---ring this node knows.
---@param key string
---@param max_rank? integer  default 3
---@return Node[]
function kbr.replica_set(key, max_rank) end

---The keys for which `node` is the `rank`-th root, as the interval
---(after, up_to]; nil when this node does not know enough of the ring.
---@param node Node
---@param rank? integer  default 0 (the keys `node` owns)
---@return string? after
---@return string? up_to
function kbr.range(node, rank) end

---This node.
---@return Node
function kbr.id() end

---The key of a name: the first 20 bytes of SHA-256(name), as 40 hex digits.
---@param name string
---@return string
function kbr.key(name) end

---Remote peerlets (the paper's lookupPeerlet).
peerlet = {}

---This peerlet's name, app id (32 hex digits) and type.
---@type string
peerlet.name = nil
---@type string
peerlet.app = nil
---@type "end-node"|"per-hop"
peerlet.type = nil

---A handle on the peerlet `app` (default: this one) at the root of `key`.
---Calling a method on it, `h:put(k, v)`, runs that function of the remote
---peerlet's module and returns its results; the calling upcall waits while
---the node goes on. A name is resolved on any node, among the publishers this
---node trusts (the overlay keeps a record per published name), and the call
---carries the code locator, so the root deploys the peerlet on the first
---call; `KEYID/name` picks one publisher's. Errors (raised at the call) say
---the cause and the fix: an ambiguous or untrusted name, a timeout (naming
---the key and first hop), no such method (listing those there are), code
---refused or not fetchable. Upcall names (deliver, forward, ...) cannot be
---called.
---@param key string
---@param app? string  32 hex digits, a peerlet's name, or KEYID/name
---@return table handle
function peerlet.lookup(key, app) end

---A handle on the peerlet `app` (default: this one) at `node` itself: its
---method calls go straight to that node, as kbr.send does, whoever is the
---root of which key. For asking each member of a replica set in turn; a
---node that is gone shows as a timeout. Errors as for peerlet.lookup.
---@param node Node
---@param app? string  32 hex digits, or the name of a peerlet installed on this node
---@param opts? {timeout?: number}  seconds a call may wait, at most the node's call timeout (5 s)
---@return table handle
function peerlet.at(node, app, opts) end

---Timers; callbacks run as upcalls, each under its own budget.
timer = {}

---Calls `fn` once after `secs` seconds (shorter than 0.001, 0 included, counts as 0.001). Returns the timer's id.
---@param secs number
---@param fn fun()
---@return integer
function timer.after(secs, fn) end

---Calls `fn` every `secs` seconds (at least 0.01). Returns the timer's id.
---@param secs number
---@param fn fun()
---@return integer
function timer.every(secs, fn) end

---Disarms a timer; true if it was armed.
---@param id integer
---@return boolean
function timer.cancel(id) end

clock = {}

---Seconds since the node started (monotonic).
---@return number
function clock.now() end

---Lines in the node's log, tagged with the peerlet's name. Arguments are
---joined with spaces; tables and functions show as their type.
log = {}
---@param ... any
function log.debug(...) end
---@param ... any
function log.info(...) end
---@param ... any
function log.warn(...) end
---@param ... any
function log.error(...) end

---A small persistent store of this peerlet's own, in the node's data
---directory (in memory on a node without one), with a quota.
store = {}

---@param key string
---@return any
function store.get(key) end

---Raises an error when the value is refused or the quota is exceeded.
---@param key string
---@param value any
function store.put(key, value) end

---@param key string
---@return boolean removed
function store.remove(key) end

---@return string[]
function store.keys() end
