//! `peerlet repl [SOCKET] [-e CODE]`: attach an interactive Lua console to a
//! running node through its control socket (see [`crate::repl`]).

use std::path::PathBuf;

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
        Some(code) => crate::repl::eval_once(&args.socket, code),
        None => {
            // At the prompt the editor reads Ctrl-C itself; while a line
            // runs, the signal interrupts the line instead of the REPL.
            let socket = args.socket.clone();
            ctrlc::set_handler(move || crate::repl::interrupt(&socket))?;
            crate::repl::run(&args.socket)
        }
    }
}
