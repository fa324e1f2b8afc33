//! `peerlet verify FILE.lua -P KEY.pub`: check a peerlet's signature.

use std::path::{Path, PathBuf};

use crate::package::hex;
use crate::package::publisher::PublisherKey;
use crate::package::signing;

/// Check a peerlet's signature against a publisher's public key, as `minisign -V`
/// would, and show what it vouches for.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The peerlet source
    #[arg(value_name = "FILE.lua")]
    pub file: PathBuf,
    /// Public key: a .pub file, or its base64 line as `minisign -P` takes it
    /// [default: $PEERLET_HOME/peerlet.pub; PEERLET_HOME defaults to ~/.peerlet]
    #[arg(short = 'P', long = "pub", short_alias = 'p', value_name = "KEY.pub")]
    pub public_key: Option<String>,
    /// Signature file [default: FILE.lua.minisig]
    #[arg(short = 'x', long = "sig", value_name = "FILE.minisig")]
    pub signature: Option<PathBuf>,
}

/// Prints name, type, version, app id and publisher on success; an error
/// (non-zero exit in `main`) naming the reason otherwise.
pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let key = match &args.public_key {
        Some(arg) => public_key(arg)?,
        None => PublisherKey::from_file(&signing::default_public_key_path()?)?,
    };
    let sig_path = args
        .signature
        .unwrap_or_else(|| signing::signature_path(&args.file));
    let verified = signing::verify_file_with_key(&args.file, &sig_path, &key)?;
    println!("Signature verified: {}", args.file.display());
    println!("name:            {}", verified.name());
    println!("type:            {}", verified.app_type());
    println!("version:         {}", verified.version());
    println!("app id:          {}", verified.app_id());
    println!("publisher:       {}", verified.publisher());
    println!("code hash:       {}", hex(&verified.code_hash()));
    println!("trusted comment: {}", verified.trusted_comment());
    Ok(())
}

/// A key file if one exists at `arg`, else a base64 key line.
fn public_key(arg: &str) -> Result<PublisherKey, Box<dyn std::error::Error>> {
    let path = Path::new(arg);
    if path.exists() {
        return Ok(PublisherKey::from_file(path)?);
    }
    PublisherKey::from_base64(arg).map_err(|_| {
        format!("public key `{arg}` is neither a readable .pub file nor a base64 minisign key")
            .into()
    })
}
