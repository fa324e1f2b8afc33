//! `peerlet keygen [-p KEY.pub] [-s KEY.key] [-f]`: make a publisher key pair.

use std::path::PathBuf;

use crate::package::signing;

/// Make an unencrypted minisign key pair for signing peerlets (like `minisign -G -W`).
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Public key file to write [default: $PEERLET_HOME/peerlet.pub; PEERLET_HOME defaults to ~/.peerlet]
    #[arg(short = 'p', long = "pub", value_name = "KEY.pub")]
    pub public_key: Option<PathBuf>,
    /// Secret key file to write [default: $PEERLET_HOME/peerlet.key]
    #[arg(short = 's', long = "sec", value_name = "KEY.key")]
    pub secret_key: Option<PathBuf>,
    /// Overwrite existing key files
    #[arg(short = 'f', long)]
    pub force: bool,
}

/// Writes the key pair and tells the user how to use it.
pub fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let pub_path = match args.public_key {
        Some(p) => p,
        None => signing::default_public_key_path()?,
    };
    let sec_path = match args.secret_key {
        Some(p) => p,
        None => signing::default_secret_key_path()?,
    };
    let key = signing::keygen(&pub_path, &sec_path, args.force)?;
    println!(
        "The secret key was saved as {} - keep it secret.",
        sec_path.display()
    );
    println!(
        "The public key was saved as {} - that one can be public.",
        pub_path.display()
    );
    println!("Key id: {}", key.key_id_hex());
    println!();
    println!("Nodes run peerlets signed with it when started with:");
    println!("  peerlet node --trust {} ...", pub_path.display());
    println!("Signatures can be checked with minisign too:");
    println!("  minisign -Vm <file> -P {}", key.to_base64());
    Ok(())
}
