//! Upcall activations: running a peerlet function as a Lua thread until it
//! returns, fails or suspends in a host call, and reporting failures.

use std::borrow::Cow;

use mlua::thread::ThreadStatus;
use mlua::{Function, IntoLuaMulti, MultiValue, Value};

use super::activation::{Activation, CallId, UpcallOutcome, SPARE_THREADS};
use super::budget::{Kill, Spent};
use super::error::{cause, Cause, SandboxError};
use super::Sandbox;

impl Sandbox {
    pub(super) fn start(
        &mut self,
        f: Function,
        upcall: Cow<'static, str>,
        args: MultiValue,
    ) -> Result<UpcallOutcome, SandboxError> {
        let thread = match self.spare_threads.pop() {
            // A spare is already in `upcall_threads`; resetting a finished
            // thread only empties its stack and pushes `f`.
            Some(t) if t.reset(f.clone()).is_ok() => t,
            _ => {
                let thread = match self.lua.create_thread(f) {
                    Ok(t) => t,
                    Err(e) => return Err(self.failed(&upcall, &e, None)),
                };
                if let Err(e) = self.prelude.upcall_threads.raw_set(&thread, true) {
                    return Err(self.failed(&upcall, &e, None));
                }
                thread
            }
        };
        self.drive(
            Activation {
                thread,
                upcall,
                used: 0,
                ran: std::time::Duration::ZERO,
            },
            args,
        )
    }

    /// Runs an activation until it returns, fails or suspends.
    pub(super) fn drive(
        &mut self,
        mut act: Activation,
        mut args: MultiValue,
    ) -> Result<UpcallOutcome, SandboxError> {
        loop {
            self.budget.begin(act.used, act.ran);
            let result = act.thread.resume::<MultiValue>(args);
            let spent = self
                .budget
                .finish(&self.lua)
                .map_err(|e| self.host_error(e))?;
            act.used = spent.used;
            act.ran = spent.ran;
            let values = match result {
                Ok(values) if spent.killed.is_none() => values,
                other => {
                    // Drop the dead thread first, so the collection after
                    // the abort can free what its stack held.
                    let upcall = act.upcall;
                    drop(act.thread);
                    let e = other
                        .err()
                        .unwrap_or_else(|| mlua::Error::runtime("killed"));
                    return Err(self.failed(&upcall, &e, Some(spent)));
                }
            };
            match act.thread.status() {
                ThreadStatus::Resumable => {}
                ThreadStatus::Finished => {
                    if self.spare_threads.len() < SPARE_THREADS {
                        self.spare_threads.push(act.thread);
                    }
                    return Ok(UpcallOutcome::Done(values));
                }
                _ => return Ok(UpcallOutcome::Done(values)),
            }
            let mut values = values.into_iter();
            let is_host_call =
                matches!(values.next(), Some(Value::Table(t)) if t == self.prelude.mark);
            if !is_host_call {
                return Err(SandboxError::Runtime {
                    peerlet: self.name.to_string(),
                    upcall: act.upcall.into_owned(),
                    message: "the upcall yielded outside a coroutine".into(),
                });
            }
            let request = values.next().unwrap_or(Value::Nil);
            if self.pending.len() >= self.limits.pending_calls {
                let refusal = format!(
                    "too many host calls waiting (limit {})",
                    self.limits.pending_calls
                );
                args = (self.prelude.mark.clone(), false, refusal)
                    .into_lua_multi(&self.lua)
                    .map_err(|e| self.host_error(e))?;
                continue;
            }
            let call = CallId(self.next_call);
            self.next_call += 1;
            self.pending.insert(call, act);
            return Ok(UpcallOutcome::Suspended { call, request });
        }
    }

    /// Turns a failed activation into its report, counts the strike, stops
    /// the peerlet when it has had too many, and gives memory back.
    fn failed(&mut self, upcall: &str, e: &mlua::Error, spent: Option<Spent>) -> SandboxError {
        let peerlet = self.name.to_string();
        let upcall = upcall.to_string();
        let err = match spent {
            Some(Spent {
                killed: Some(Kill::Instructions),
                at,
                ..
            }) => SandboxError::Budget {
                peerlet,
                upcall,
                limit: self.budget.limit(),
                at,
            },
            Some(Spent {
                killed: Some(Kill::Time),
                at,
                ..
            }) => SandboxError::Time {
                peerlet,
                upcall,
                limit_ms: self.budget.time_limit().as_millis() as u64,
                at,
            },
            Some(Spent {
                killed: Some(Kill::Shutdown),
                ..
            }) => SandboxError::Limit {
                peerlet,
                upcall,
                detail: "the node is shutting down".to_string(),
            },
            Some(Spent {
                killed: Some(Kill::Memory { used }),
                at,
                ..
            }) => SandboxError::Memory {
                peerlet,
                upcall,
                limit: self.limits.memory_bytes,
                detail: format!(
                    "{used} bytes still live after a full collection{}",
                    at.map(|at| format!(" at {at}")).unwrap_or_default()
                ),
            },
            _ => match cause(e) {
                Cause::Memory(detail) => SandboxError::Memory {
                    peerlet,
                    upcall,
                    limit: self.limits.memory_bytes,
                    detail,
                },
                Cause::Other(m) if m.ends_with("not enough memory") => SandboxError::Memory {
                    peerlet,
                    upcall,
                    limit: self.limits.memory_bytes,
                    detail: m,
                },
                Cause::Limit(detail) => SandboxError::Limit {
                    peerlet,
                    upcall,
                    detail,
                },
                Cause::Other(message) => SandboxError::Runtime {
                    peerlet,
                    upcall,
                    message,
                },
            },
        };
        if err.is_abort() {
            self.aborts += 1;
            tracing::warn!(target: "peerlet", peerlet = %self.name, "{err}");
            if self.aborts >= self.limits.strikes {
                self.stop();
            }
        }
        let _ = self.lua.gc_collect();
        err
    }

    /// Stops the peerlet for good and drops everything it holds so its
    /// memory goes back (after too many aborts, or when the host says so).
    pub fn stop(&mut self) {
        self.stopped = true;
        self.module = None;
        self.pending.clear();
        self.spare_threads.clear();
        self.budget.forget_aborted();
        super::value::forget_keys(&self.lua);
        for forget in &self.stop_hooks {
            forget(&self.lua);
        }
        let _ = self.lua.globals().clear();
        // Lua shrinks its string table and stacks a step per cycle.
        for _ in 0..8 {
            let before = self.lua.used_memory();
            let _ = self.lua.gc_collect();
            if self.lua.used_memory() + 1024 >= before {
                break;
            }
        }
    }
}
