//! The hostile peerlet corpus (tests/hostile/README.md): the project's own
//! scripts, and every `*.lua` of the directory named by
//! `PEERLET_EXTRA_HOSTILE` when it is set, so scripts written elsewhere are
//! held to the same bounds. Also used by benches/peerlet_upcall.rs.

#![allow(dead_code)] // each test binary and the bench use their own part

use std::path::{Path, PathBuf};

/// Names a directory of more hostile scripts to run beside the corpus.
pub const EXTRA_VAR: &str = "PEERLET_EXTRA_HOSTILE";

/// One hostile script.
pub struct Script {
    /// The file name without `.lua`: the peerlet's name in every report.
    pub name: String,
    pub path: PathBuf,
    pub source: Vec<u8>,
}

impl Script {
    /// The file name, as the chunk name that reports show.
    pub fn file_name(&self) -> String {
        format!("{}.lua", self.name)
    }
}

/// tests/hostile/, inside the repository.
pub fn own_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile")
}

/// The project's own script `name` (without `.lua`).
pub fn own(name: &str) -> Script {
    read(&own_dir().join(format!("{name}.lua")))
}

/// Every script of the corpus, by name.
pub fn own_all() -> Vec<Script> {
    scripts_in(&own_dir())
}

/// Every script of `$PEERLET_EXTRA_HOSTILE`, by name; none when it is unset.
/// Panics when it is set but names no directory, or one without scripts:
/// a run that was asked for more scripts never passes without them.
pub fn extra() -> Vec<Script> {
    let Some(dir) = std::env::var_os(EXTRA_VAR) else {
        return Vec::new();
    };
    let dir = PathBuf::from(dir);
    assert!(
        dir.is_dir(),
        "{EXTRA_VAR}={} is not a directory (unset it to run the own corpus only)",
        dir.display()
    );
    let scripts = scripts_in(&dir);
    assert!(
        !scripts.is_empty(),
        "{EXTRA_VAR}={} holds no *.lua script",
        dir.display()
    );
    scripts
}

fn scripts_in(dir: &Path) -> Vec<Script> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "lua"))
        .collect();
    paths.sort();
    paths.iter().map(|p| read(p)).collect()
}

fn read(path: &Path) -> Script {
    let source =
        std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_else(|| panic!("{} has no UTF-8 name", path.display()))
        .to_string();
    Script {
        name,
        path: path.to_path_buf(),
        source,
    }
}
