//! The Lua sandbox: one Lua 5.4 state per peerlet, holding what the script
//! can reach ([`stdlib`]: the stripped library; `pattern.rs`: bounded
//! pattern matching) and what it can spend ([`Limits`]; `budget.rs`: the
//! instruction hook and the wall-clock backstop), the upcalls that run in it
//! (`activation.rs`, `upcall.rs`: threads that return, fail or suspend), and
//! values crossing to and from the wire ([`value`]). It knows nothing of
//! packages, routing or the runtime: the host registers its API on
//! [`Sandbox::lua`]. The defences, one per threat, are listed in
//! docs/design.md ("The sandbox").

use std::borrow::Cow;
use std::collections::HashMap;
use std::rc::Rc;

use mlua::chunk::ChunkMode;
use mlua::{Function, IntoLuaMulti, Lua, LuaString, MultiValue, Table, Thread, Value};

mod activation;
mod budget;
mod error;
mod limits;
mod pattern;
mod stdlib;
mod upcall;
pub mod value;

use self::activation::Activation;
use self::budget::Budget;

use self::stdlib::Prelude;

pub use self::activation::{CallId, UpcallOutcome};
pub use self::budget::shut_down;
pub(crate) use self::error::describe;
pub use self::error::SandboxError;
pub use self::limits::Limits;
pub use self::value::{
    cbor_to_lua, decode_array, encode_array, lua_to_cbor, ValueError, ValueErrorKind,
};

/// Upcalls the host starts on every message or routing change.
const HOT_UPCALLS: [&str; 3] = ["deliver", "forward", "update"];
/// Their names in reports.
const HOT_LABELS: [&str; 3] = ["deliver()", "forward()", "update()"];

/// A sandboxed Lua state running one peerlet.
///
/// What the caller can rely on: script code only ever runs inside
/// [`load`](Sandbox::load), [`start_upcall`](Sandbox::start_upcall) and
/// [`resume`](Sandbox::resume), each under the instruction budget and the
/// memory limit of the [`Limits`] given at creation; each returns in bounded
/// time; a failure is a [`SandboxError`] naming the peerlet, the upcall and the
/// reason. After `limits.strikes` aborts the sandbox drops the peerlet's state
/// and answers [`SandboxError::Stopped`].
///
/// Not `Send`: a sandbox lives on the thread that created it.
///
/// # Examples
/// ```
/// use peerlet::sandbox::{Limits, Sandbox, UpcallOutcome};
/// let mut sb = Sandbox::new("hello", &Limits::default()).unwrap();
/// sb.load("hello.lua", b"local P = {} function P.add(a, b) return a + b end return P").unwrap();
/// let UpcallOutcome::Done(r) = sb.start_upcall("add", (2, 3)).unwrap() else { panic!() };
/// assert_eq!(r[0].as_i64(), Some(5));
/// ```
pub struct Sandbox {
    name: Rc<str>,
    limits: Limits,
    lua: Lua,
    budget: Rc<Budget>,
    prelude: Prelude,
    module: Option<Table>,
    /// A load was attempted (successful or not): a sandbox loads once.
    load_tried: bool,
    pending: HashMap<CallId, Activation>,
    /// [`HOT_UPCALLS`] as Lua strings, made once.
    hot_names: Vec<LuaString>,
    /// Upcall threads that finished cleanly, kept for reuse (see
    /// [`SPARE_THREADS`](activation::SPARE_THREADS)).
    spare_threads: Vec<Thread>,
    next_call: u64,
    aborts: u32,
    stopped: bool,
    /// What the host asked to forget when the peerlet is stopped (caches it
    /// keeps in the state's app data), so the state's memory goes back.
    stop_hooks: Vec<fn(&Lua)>,
}

impl Sandbox {
    /// A fresh state with the stripped library, the budget hook and the
    /// memory limit in place, and no peerlet loaded yet.
    pub fn new(name: &str, limits: &Limits) -> Result<Sandbox, SandboxError> {
        let host = |e: mlua::Error| SandboxError::Host {
            peerlet: name.to_string(),
            message: describe(&e),
        };
        let lua = stdlib::new_state().map_err(host)?;
        let peerlet: Rc<str> = name.into();
        let budget = Budget::new(limits.instructions, limits.memory_bytes, limits.upcall_time);
        let prelude = stdlib::install(&lua, &peerlet, limits, &budget).map_err(host)?;
        lua.set_memory_limit(limits.memory_bytes).map_err(host)?;
        budget::arm(&lua, &budget, false).map_err(host)?;
        let hot_names = HOT_UPCALLS
            .iter()
            .map(|n| lua.create_string(n))
            .collect::<mlua::Result<_>>()
            .map_err(host)?;
        Ok(Sandbox {
            name: peerlet,
            limits: limits.clone(),
            lua,
            budget,
            prelude,
            module: None,
            load_tried: false,
            pending: HashMap::new(),
            hot_names,
            spare_threads: Vec::new(),
            stop_hooks: Vec::new(),
            next_call: 1,
            aborts: 0,
            stopped: false,
        })
    }

    /// The peerlet's name, as used in every report.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The limits this sandbox enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The host's own Lua code `source` as a function of this state,
    /// compiled once per process and loaded from its binary chunk (host
    /// code only: a peerlet's code is always compiled from text).
    pub fn host_function(
        &self,
        name: &'static str,
        source: &'static str,
    ) -> mlua::Result<Function> {
        self.lua
            .load(stdlib::trusted_chunk(name, source))
            .set_name(name)
            .set_mode(ChunkMode::Binary)
            .into_function()
    }

    /// The Lua state, for registering the host API (`kbr`, `timer`, ...)
    /// before [`load`](Sandbox::load). Do not run script code on it directly:
    /// only the sandbox's own entry points run under the budget. Host
    /// functions that read script values must use raw access
    /// ([`lua_to_cbor`](super::lua_to_cbor) does).
    pub fn lua(&self) -> &Lua {
        &self.lua
    }

    /// Runs `forget` on the state when the peerlet is stopped: for caches
    /// the host keeps in the state's app data.
    pub fn on_stop(&mut self, forget: fn(&Lua)) {
        self.stop_hooks.push(forget);
    }

    /// Compiles and runs the peerlet's chunk, which must return a table of
    /// upcalls (the module `P`). Source text only: a chunk starting with
    /// Lua's binary signature (`"\x1bLua"`) is refused before compiling.
    ///
    /// A sandbox loads once. If loading fails the sandbox keeps no module and
    /// refuses upcalls; drop it (a new one costs well under a millisecond).
    pub fn load(&mut self, chunk_name: &str, source: &[u8]) -> Result<(), SandboxError> {
        self.usable()?;
        let peerlet = self.name.to_string();
        let load_err = |message: String| SandboxError::Load {
            peerlet: peerlet.clone(),
            chunk: chunk_name.to_string(),
            message,
        };
        if self.load_tried {
            return Err(load_err("a sandbox loads one chunk once".into()));
        }
        self.load_tried = true;
        if source.first() == Some(&0x1b) {
            return Err(SandboxError::BinaryChunk {
                peerlet: self.name.to_string(),
                chunk: chunk_name.to_string(),
            });
        }
        let compiled = self
            .lua
            .load(source)
            .set_name(format!("@{chunk_name}"))
            .set_mode(ChunkMode::Text)
            .into_function();
        let main = match compiled {
            Ok(f) => f,
            Err(e) => {
                let _ = self.lua.gc_collect();
                return Err(load_err(describe(&e)));
            }
        };
        let outcome = self.start(
            main,
            format!("the main chunk of {chunk_name}").into(),
            MultiValue::new(),
        );
        let result = match outcome? {
            UpcallOutcome::Done(values) => match values.into_iter().next() {
                Some(Value::Table(module)) => {
                    self.module = Some(module);
                    // Compiling and running the main chunks (the prelude's,
                    // the host API's and the peerlet's) leaves about 15 KB of
                    // garbage. An idle state allocates nothing, so its
                    // collector would never run to free it.
                    let _ = self.lua.gc_collect();
                    return Ok(());
                }
                other => load_err(format!(
                    "the chunk must return a table of upcalls, not {}",
                    other.map_or("nothing", |v| v.type_name())
                )),
            },
            UpcallOutcome::Suspended { call, .. } => {
                self.pending.remove(&call);
                load_err("the chunk made a waiting host call while loading".into())
            }
        };
        let _ = self.lua.gc_collect();
        Err(result)
    }

    /// The loaded module table `P`, for the host to read fields with raw
    /// access (`rawget`), e.g. a declared app type. `None` before a successful
    /// load and after the peerlet is stopped.
    pub fn module(&self) -> Option<&Table> {
        self.module.as_ref()
    }

    /// Whether the loaded module has a function named `name`.
    pub fn has_upcall(&self, name: &str) -> bool {
        self.module
            .as_ref()
            .is_some_and(|m| matches!(self.upcall_of(m, name), Ok(Value::Function(_))))
    }

    /// The names of the loaded module's functions, sorted, leaving out
    /// `skip` (at most 32: for error messages).
    pub fn method_names(&self, skip: &[&str]) -> Vec<String> {
        let Some(module) = &self.module else {
            return Vec::new();
        };
        let mut names: Vec<String> = module
            .pairs::<Value, Value>()
            .filter_map(|kv| match kv {
                Ok((Value::String(k), Value::Function(_))) => {
                    k.to_str().ok().map(|s| s.to_string())
                }
                _ => None,
            })
            .filter(|n| !skip.contains(&n.as_str()))
            .take(32)
            .collect();
        names.sort();
        names
    }

    /// `module[name]`, read raw. The names in [`HOT_UPCALLS`] use strings made
    /// once: under a memory limit mlua makes every new string in a protected
    /// call, and the host looks these up for every message.
    fn upcall_of(&self, module: &Table, name: &str) -> mlua::Result<Value> {
        match HOT_UPCALLS.iter().position(|n| *n == name) {
            Some(i) => module.raw_get(&self.hot_names[i]),
            None => module.raw_get(name),
        }
    }

    /// Starts upcall `name` (any function of the module: `deliver`, `init`,
    /// or a named method) with `args`, in a new activation with a full
    /// instruction budget.
    pub fn start_upcall(
        &mut self,
        name: &str,
        args: impl IntoLuaMulti,
    ) -> Result<UpcallOutcome, SandboxError> {
        self.usable()?;
        let module = self
            .module
            .as_ref()
            .ok_or_else(|| SandboxError::NotLoaded {
                peerlet: self.name.to_string(),
            })?;
        let Ok(Value::Function(f)) = self.upcall_of(module, name) else {
            return Err(SandboxError::NoUpcall {
                peerlet: self.name.to_string(),
                upcall: name.to_string(),
            });
        };
        let args = args
            .into_lua_multi(&self.lua)
            .map_err(|e| self.host_error(e))?;
        let label = match HOT_UPCALLS.iter().position(|n| *n == name) {
            Some(i) => Cow::Borrowed(HOT_LABELS[i]),
            None => Cow::Owned(format!("{name}()")),
        };
        self.start(f, label, args)
    }

    /// Starts a function the script handed the host earlier (a timer's
    /// callback) as an upcall named `label`, under a full budget, exactly
    /// like [`start_upcall`](Sandbox::start_upcall).
    pub fn start_function(
        &mut self,
        f: Function,
        label: &str,
        args: impl IntoLuaMulti,
    ) -> Result<UpcallOutcome, SandboxError> {
        self.usable()?;
        if self.module.is_none() {
            return Err(SandboxError::NotLoaded {
                peerlet: self.name.to_string(),
            });
        }
        let args = args
            .into_lua_multi(&self.lua)
            .map_err(|e| self.host_error(e))?;
        self.start(f, label.to_string().into(), args)
    }

    /// Resumes a suspended activation with the host's reply: `Ok(values)` are
    /// returned by the suspending function; `Err(message)` is raised as a Lua
    /// error at the script's call (a timeout, a missing remote peerlet).
    pub fn resume(
        &mut self,
        call: CallId,
        reply: Result<MultiValue, String>,
    ) -> Result<UpcallOutcome, SandboxError> {
        self.usable()?;
        let act = self
            .pending
            .remove(&call)
            .ok_or_else(|| SandboxError::NoSuchCall {
                peerlet: self.name.to_string(),
                call: call.get(),
            })?;
        let mut args = MultiValue::new();
        args.push_back(Value::Table(self.prelude.mark.clone()));
        match reply {
            Ok(values) => {
                args.push_back(Value::Boolean(true));
                args.extend(values);
            }
            Err(message) => {
                args.push_back(Value::Boolean(false));
                let msg = self
                    .lua
                    .create_string(message)
                    .map_err(|e| self.host_error(e))?;
                args.push_back(Value::String(msg));
            }
        }
        self.drive(act, args)
    }

    /// Drops a suspended activation without resuming it (its coroutine is
    /// garbage). Returns whether `call` was pending.
    pub fn cancel(&mut self, call: CallId) -> bool {
        self.pending.remove(&call).is_some()
    }

    /// Makes a Lua function that suspends the calling upcall, for host calls
    /// that wait (a `peerlet.lookup` handle's methods). When the script calls
    /// it, `prepare` runs at once with the arguments: it validates them
    /// (its error is raised at the script's call) and returns the request.
    /// The upcall then ends its turn with [`UpcallOutcome::Suspended`] carrying
    /// that request, and continues when the host calls [`Sandbox::resume`].
    /// Works from inside coroutines the script made, too. More than
    /// `limits.pending_calls` waiting at once fail with a Lua error.
    pub fn create_suspending_function<F>(&self, prepare: F) -> Result<Function, SandboxError>
    where
        F: Fn(&Lua, MultiValue) -> mlua::Result<Value> + 'static,
    {
        let prepare = self
            .lua
            .create_function(move |lua, args: MultiValue| prepare(lua, args))
            .map_err(|e| self.host_error(e))?;
        self.prelude
            .make_suspending
            .call(prepare)
            .map_err(|e| self.host_error(e))
    }

    /// Bytes the Lua state holds now.
    pub fn memory_used(&self) -> usize {
        self.lua.used_memory()
    }

    /// Instructions counted across all activations since creation (to the
    /// hook's granularity).
    pub fn instructions_used(&self) -> u64 {
        self.budget.total()
    }

    /// Limit aborts so far (strikes).
    pub fn aborts(&self) -> u32 {
        self.aborts
    }

    /// Whether the peerlet was stopped after too many aborts.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Activations suspended in a host call.
    pub fn pending_calls(&self) -> usize {
        self.pending.len()
    }

    fn usable(&self) -> Result<(), SandboxError> {
        if self.stopped {
            return Err(SandboxError::Stopped {
                peerlet: self.name.to_string(),
                strikes: self.aborts,
            });
        }
        Ok(())
    }

    fn host_error(&self, e: mlua::Error) -> SandboxError {
        SandboxError::Host {
            peerlet: self.name.to_string(),
            message: describe(&e),
        }
    }
}
