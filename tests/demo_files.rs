//! `peerlet demo` writes only into its own directory: it signs copies of the
//! samples there, so the source tree stays as checked out and two users of
//! one clone (two homes) never touch each other's files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_peerlet");

/// Every file under `dir`, by path relative to it, with its bytes.
fn files_under(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(path.strip_prefix(dir).unwrap().to_path_buf(), bytes);
            }
        }
    }
    out
}

#[test]
fn demo_signs_copies_in_its_own_directory_and_leaves_the_samples_alone() {
    let work = tempfile::tempdir().unwrap();
    // A tree like the repository's, with the samples as checked out; the
    // demo runs from it as a user would, with a home of its own.
    let tree = work.path().join("clone");
    let samples = tree.join("peerlets");
    std::fs::create_dir_all(&samples).unwrap();
    let repo_samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("peerlets");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&repo_samples).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        std::fs::copy(&path, samples.join(name)).unwrap();
        if path.extension().is_some_and(|x| x == "lua") {
            names.push(path.file_stem().unwrap().to_str().unwrap().to_string());
        }
    }
    assert!(names.len() >= 5, "the samples: {names:?}");
    let before = files_under(&tree);
    let home = work.path().join("home");

    let out = Command::new(BIN)
        .args(["demo", "--nodes", "2", "-e", ".apps"])
        .current_dir(&tree)
        .env("HOME", &home)
        .env("PEERLET_HOME", &home)
        .output()
        .unwrap();
    let apps = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the demo ran: {apps}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert!(
        files_under(&tree) == before,
        "the demo changed the tree it ran from: {:?} became {:?}",
        before.keys().collect::<Vec<_>>(),
        files_under(&tree).keys().collect::<Vec<_>>()
    );
    let demo = home.join("demo");
    for name in &names {
        let copy = demo.join("peerlets").join(format!("{name}.lua"));
        assert_eq!(
            std::fs::read(&copy).unwrap(),
            std::fs::read(samples.join(format!("{name}.lua"))).unwrap(),
            "{} is a copy of the sample",
            copy.display()
        );
        let verify = Command::new(BIN)
            .arg("verify")
            .arg(&copy)
            .arg("-P")
            .arg(demo.join("demo.pub"))
            .output()
            .unwrap();
        assert!(verify.status.success(), "{name}: {verify:?}");
        let line = apps
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} installed on node 0: {apps}"));
        assert!(!line.contains("local (unsigned)"), "{name} signed: {line}");
    }
}
