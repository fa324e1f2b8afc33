//! The plots of simulator runs (`--sim-runs DIR`): the `*.svg` files a
//! `peerlet sim` run wrote, listed for the page and served read-only.
//!
//! Only `.svg` files in DIR or one folder below it are served, by a
//! relative path of plain names (letters, digits, `.`, `_`, `-`; no `..`,
//! no hidden files, no links out of DIR): the page can show nothing else of the disk. An SVG may hold
//! scripts, so it is served with a policy that runs none, and the page
//! shows it as an image.

use std::path::{Component, Path, PathBuf};

/// Largest plot served: 16 MiB.
pub const MAX_PLOT_BYTES: u64 = 16 << 20;

/// Plots listed at most.
const MAX_LISTED: usize = 1000;

/// A run directory given with `--sim-runs`.
#[derive(Clone, Debug)]
pub struct SimRuns {
    dir: PathBuf,
}

impl SimRuns {
    pub fn new(dir: PathBuf) -> SimRuns {
        SimRuns { dir }
    }

    /// The plots, as paths relative to the run directory with `/`
    /// between folder and file, sorted.
    pub fn list(&self) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        for entry in read_dir(&self.dir)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_file() && is_svg(&name) {
                out.push(name);
            } else if kind.is_dir() {
                for inner in read_dir(&entry.path()).unwrap_or_default() {
                    let file = inner.file_name().to_string_lossy().into_owned();
                    let is_file = inner.file_type().is_ok_and(|k| k.is_file());
                    if is_file && is_svg(&file) && !file.starts_with('.') {
                        out.push(format!("{name}/{file}"));
                    }
                }
            }
        }
        out.sort();
        out.truncate(MAX_LISTED);
        Ok(out)
    }

    /// The bytes of the plot at `relative` (as [`SimRuns::list`] gives it).
    pub fn read(&self, relative: &str) -> Result<Vec<u8>, PlotError> {
        let path = self.resolve(relative)?;
        let meta = std::fs::metadata(&path).map_err(|_| PlotError::NotFound)?;
        if !meta.is_file() {
            return Err(PlotError::NotFound);
        }
        if meta.len() > MAX_PLOT_BYTES {
            return Err(PlotError::Refused(format!(
                "{relative} is larger than {MAX_PLOT_BYTES} bytes"
            )));
        }
        std::fs::read(&path).map_err(|_| PlotError::NotFound)
    }

    /// The file `relative` names inside the run directory, refused if it
    /// is not a `.svg` of plain names at most one folder deep, or leads
    /// out of the directory through a link.
    fn resolve(&self, relative: &str) -> Result<PathBuf, PlotError> {
        let refuse = || PlotError::Refused(format!("`{relative}` is not a plot of this run"));
        let rel = Path::new(relative);
        let plain = rel.components().all(|c| match c {
            Component::Normal(part) => !part.to_string_lossy().starts_with('.'),
            _ => false,
        });
        if !plain || rel.components().count() > 2 || !is_svg(relative) {
            return Err(refuse());
        }
        let root = self.dir.canonicalize().map_err(|_| PlotError::NotFound)?;
        let path = root
            .join(rel)
            .canonicalize()
            .map_err(|_| PlotError::NotFound)?;
        if !path.starts_with(&root) {
            return Err(refuse());
        }
        Ok(path)
    }
}

/// Why a plot was not served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlotError {
    NotFound,
    Refused(String),
}

/// A plot's name: letters, digits, `.`, `_`, `-` (as `peerlet sim`
/// writes them; nothing that needs escaping in a URL), ending `.svg`.
fn is_svg(name: &str) -> bool {
    let plain = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
    plain && name.len() > 4 && name.to_ascii_lowercase().ends_with(".svg")
}

fn read_dir(dir: &Path) -> Result<Vec<std::fs::DirEntry>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(entries.filter_map(Result::ok).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_svg_paths_inside_the_run_are_served() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("ring")).unwrap();
        std::fs::write(dir.path().join("hops.svg"), "<svg/>").unwrap();
        std::fs::write(dir.path().join("ring/load.svg"), "<svg>load</svg>").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "secret").unwrap();
        std::fs::write(dir.path().join(".hidden.svg"), "<svg/>").unwrap();
        let runs = SimRuns::new(dir.path().to_path_buf());
        assert_eq!(runs.list().unwrap(), ["hops.svg", "ring/load.svg"]);
        assert_eq!(runs.read("ring/load.svg").unwrap(), b"<svg>load</svg>");
        for bad in [
            "notes.txt",
            "../hops.svg",
            "/etc/passwd",
            "ring/../hops.svg",
            ".hidden.svg",
        ] {
            assert!(
                matches!(runs.read(bad), Err(PlotError::Refused(_))),
                "{bad}"
            );
        }
        assert_eq!(runs.read("gone.svg"), Err(PlotError::NotFound));
    }

    #[test]
    fn a_link_out_of_the_run_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("x.svg"), "<svg/>").unwrap();
        std::os::unix::fs::symlink(outside.path().join("x.svg"), dir.path().join("x.svg")).unwrap();
        let runs = SimRuns::new(dir.path().to_path_buf());
        assert!(matches!(runs.read("x.svg"), Err(PlotError::Refused(_))));
    }
}
