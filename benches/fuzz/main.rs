//! A structure-aware mutation fuzzer for every decoder that reads bytes from
//! outside the node: frames, messages, CBOR into Lua, packages, signatures,
//! key files, the trust policy, the control protocol (issue 12).
//!
//! `cargo bench --bench fuzz -- [--inputs N] [--target NAME[,NAME...]] [--seed S] [--save DIR]`
//!
//! Not coverage-guided (no instrumentation on the stable toolchain here):
//! inputs start from valid seeds made by the crate's own encoders and are
//! mutated byte-wise and CBOR- or text-aware; inputs with a new outcome are
//! kept (`corpus.rs`). Each input runs under `catch_unwind`, timed, with a
//! counting allocator measuring its peak. Exits non-zero on any panic,
//! input over 100 ms, or allocation over the target's bound; failing inputs
//! are saved to `--save DIR/<target>/` (default `target/fuzz-failures`).
//! Commit them to `tests/fuzz_corpus/<target>/`: `tests/fuzz_regressions.rs`
//! runs them on every `cargo test`. `--replay PATH` runs saved inputs (a
//! file or a directory) before the mutants: `--inputs 0 --replay FILE`.

mod alloc;
mod corpus;
mod engine;
mod handshake;
mod mutate;
mod seeds;
mod targets;

use std::path::PathBuf;
use std::process::ExitCode;

use engine::{Failure, Stats};

#[global_allocator]
static COUNTING: alloc::Counting = alloc::Counting;

/// Failing inputs saved per target and kind; more are counted only.
const MAX_SAVED: usize = 20;

struct Options {
    inputs: Option<u64>,
    target: Option<String>,
    seed: u64,
    save: PathBuf,
    /// Saved inputs to run before the mutants (a file or a directory).
    replay: Vec<Vec<u8>>,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        inputs: None,
        target: None,
        seed: 1,
        save: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/fuzz-failures")),
        replay: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--inputs" => {
                o.inputs = Some(
                    value()?
                        .replace('_', "")
                        .parse()
                        .map_err(|e| format!("--inputs: {e}"))?,
                )
            }
            "--target" => o.target = Some(value()?),
            "--seed" => o.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--save" => o.save = value()?.into(),
            "--replay" => o.replay.extend(read_inputs(&PathBuf::from(value()?))?),
            "--bench" => {} // what cargo bench passes
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("fuzz: {e}\nusage: cargo bench --bench fuzz -- [--inputs N] [--target NAME[,NAME...]] [--seed S] [--save DIR]");
            return ExitCode::from(2);
        }
    };
    let entries: Vec<_> = targets::all()
        .into_iter()
        .filter(|e| {
            o.target
                .as_deref()
                .is_none_or(|t| t.split(',').any(|t| t == e.name))
        })
        .collect();
    if entries.is_empty() {
        let names: Vec<_> = targets::all().iter().map(|e| e.name).collect();
        eprintln!(
            "fuzz: no target `{}`; targets: {}",
            o.target.unwrap_or_default(),
            names.join(", ")
        );
        return ExitCode::from(2);
    }
    println!(
        "seed {}; an input over {:?} counts as a hang",
        o.seed,
        engine::SLOW
    );
    println!(
        "{:<12} {:>11} {:>9} {:>6} {:>9} {:>7} {:>11} {:>6} {:>7}  limit",
        "target",
        "inputs",
        "inputs/s",
        "panics",
        "max time",
        ">100ms",
        "peak bytes",
        "use",
        "shapes"
    );
    let mut failed = false;
    for e in entries {
        let dir = o.save.join(e.name);
        let mut saved = [0usize; 3];
        let mut save = |why: Failure, input: &[u8]| {
            let n = &mut saved[why as usize];
            if *n < MAX_SAVED {
                *n += 1;
                let _ = std::fs::create_dir_all(&dir);
                let name = format!("{}-{:016x}", why.label(), fnv(input));
                let _ = std::fs::write(dir.join(name), input);
            }
        };
        let stats = (e.run)(
            &o.replay,
            o.inputs.unwrap_or(e.default_inputs),
            o.seed,
            &mut save,
        );
        report(e.name, &stats);
        if stats.failed() {
            failed = true;
            if let Some(p) = &stats.first_panic {
                println!("  first panic: {p}");
            }
            println!("  failing inputs saved in {}", dir.display());
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn report(name: &str, s: &Stats) {
    let rate = s.inputs as f64 / s.elapsed.as_secs_f64();
    println!(
        "{:<12} {:>11} {:>9.0} {:>6} {:>7.1}ms {:>7} {:>11} {:>5.0}% {:>7}  {}{}",
        name,
        s.inputs,
        rate,
        s.panics,
        s.max_time.as_secs_f64() * 1e3,
        s.slow,
        s.peak,
        s.worst_use * 100.0,
        s.shapes,
        s.limit,
        if s.alloc_breaches > 0 {
            format!(" ({} inputs over it)", s.alloc_breaches)
        } else {
            String::new()
        }
    );
}

/// The file at `path`, or every file in the directory `path`.
fn read_inputs(path: &std::path::Path) -> Result<Vec<Vec<u8>>, String> {
    let files = match std::fs::read_dir(path) {
        Ok(dir) => dir.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => vec![path.to_path_buf()],
    };
    files
        .iter()
        .map(|f| std::fs::read(f).map_err(|e| format!("{}: {e}", f.display())))
        .collect()
}

/// A name for a saved input that stays the same across runs.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}
