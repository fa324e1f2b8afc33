//! `peerlet sign FILE.lua [-s KEY.key]`: sign a peerlet, writing FILE.lua.minisig.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::package::secret_key::KeyPassword;
use crate::package::signing;

/// Sign a peerlet; writes FILE.minisig exactly as `minisign -S` does.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The peerlet source; its first line must be `--@peerlet name=NAME ...`
    #[arg(value_name = "FILE.lua")]
    pub file: PathBuf,
    /// Secret key [default: $PEERLET_HOME/peerlet.key; PEERLET_HOME defaults to ~/.peerlet]
    #[arg(short = 's', long = "sec", value_name = "KEY.key")]
    pub secret_key: Option<PathBuf>,
}

/// Signs the file and says what was signed. A password-protected key (from
/// plain `minisign -G`) is asked for on the terminal, if there is one.
pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let sec_path = match args.secret_key {
        Some(p) => p,
        None => signing::default_secret_key_path()?,
    };
    let password = if std::io::stdin().is_terminal() {
        KeyPassword::Prompt
    } else {
        KeyPassword::Refuse
    };
    let signed = signing::sign_file_with(&args.file, &sec_path, &password)?;
    let header = signed.header;
    println!(
        "Signed peerlet `{}` ({}, version {}); signature written to {}",
        header.name,
        header.app_type,
        header.version,
        signed.signature_path.display()
    );
    Ok(())
}
