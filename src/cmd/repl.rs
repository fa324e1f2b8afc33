//! `peerlet repl [SOCKET] [-e CODE]`: attach an interactive Lua console to a
//! running node through its control socket (the console is the crate
//! `peerlet-repl`; [`crate::control::ControlSocket`] takes it to the node).

use std::path::{Path, PathBuf};

use crate::control::ControlSocket;

/// The console's history, beside the socket in the node's owner-only data
/// directory.
const HISTORY: &str = "repl_history";

/// Attach to a node.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The node's control socket: DATA/control.sock of its `--data` directory.
    #[arg(default_value = "control.sock")]
    pub socket: PathBuf,
    /// Evaluate CODE (Lua or a meta command) once, print the result and
    /// exit; non-zero exit status on error.
    #[arg(short = 'e', value_name = "CODE")]
    pub eval: Option<String>,
}

pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    match &args.eval {
        Some(code) => eval_once(&args.socket, code),
        None => {
            // At the prompt the editor reads Ctrl-C itself; while a line
            // runs, the signal interrupts the line instead of the REPL.
            let socket = args.socket.clone();
            ctrlc::set_handler(move || interrupt(&socket))?;
            attach(&args.socket)
        }
    }
}

/// The console on this terminal, until Ctrl-D.
pub fn attach(socket: &Path) -> Result<(), Box<dyn std::error::Error>> {
    peerlet_repl::run(&ControlSocket::new(socket), &socket.with_file_name(HISTORY))
}

/// One console line, its answer on stdout (see [`peerlet_repl::eval_once`]).
pub fn eval_once(socket: &Path, code: &str) -> Result<(), Box<dyn std::error::Error>> {
    peerlet_repl::eval_once(&ControlSocket::new(socket), code)
}

/// Interrupts the console line running on the node behind `socket`.
pub fn interrupt(socket: &Path) {
    peerlet_repl::interrupt(&ControlSocket::new(socket))
}
