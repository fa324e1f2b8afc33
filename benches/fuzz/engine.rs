//! The loop that runs one target: pick an input from the corpus, mutate it,
//! run it under `catch_unwind`, time it, measure what it allocated, keep it
//! if it did something new. Shared by the bench (10 million inputs a
//! target) and `tests/fuzz_regressions.rs` (a short run with a fixed seed).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use peerlet::sim::Rng;

use crate::alloc;
use crate::corpus::Corpus;
use crate::mutate::{mutate, Form};

/// An input over this long counts as a hang.
pub const SLOW: Duration = Duration::from_millis(100);

/// One decoder (or a few that see the same input) under test.
///
/// Adding a target is one struct implementing this (and `targets::Make`)
/// and one line in `targets::all`.
pub trait Target {
    /// What one input made the decoder return.
    type Outcome;

    /// What the inputs are, for the structure-aware mutations.
    fn form(&self) -> Form;

    /// Valid inputs made with the crate's own encoders.
    fn seeds(&self) -> Vec<Vec<u8>>;

    /// Most bytes one input of `input_len` bytes may hold live at once,
    /// beyond what was live before it ran.
    fn alloc_limit(&self, input_len: usize) -> usize;

    /// [`alloc_limit`](Self::alloc_limit) in words, for the report.
    fn limit_text(&self) -> String;

    /// A fix-up after mutation, so more inputs pass the first check (a
    /// frame's length prefix made to match its body, most of the time).
    fn prepare(&self, _input: &mut Vec<u8>, _rng: &mut Rng) {}

    /// Runs the decoders on one input. Anything but a panic is fine.
    fn run(&mut self, input: &[u8]) -> Self::Outcome;

    /// The outcome as text (variant decoded, error message), for the
    /// corpus's notion of new behaviour. Not measured.
    fn shape(&self, outcome: &Self::Outcome) -> String;
}

/// Why an input is a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    Panic,
    Slow,
    Alloc,
}

impl Failure {
    pub fn label(self) -> &'static str {
        match self {
            Failure::Panic => "panic",
            Failure::Slow => "slow",
            Failure::Alloc => "alloc",
        }
    }
}

/// What a run of one target found.
#[derive(Debug, Default)]
pub struct Stats {
    /// The target's allocation bound, in words.
    pub limit: String,
    pub inputs: u64,
    pub elapsed: Duration,
    pub panics: u64,
    /// The first panic's message.
    pub first_panic: Option<String>,
    pub max_time: Duration,
    pub slow: u64,
    /// Largest peak of one input, and that input's length.
    pub peak: usize,
    pub peak_input_len: usize,
    /// Largest peak as a share of its input's limit.
    pub worst_use: f64,
    pub alloc_breaches: u64,
    pub shapes: usize,
    pub corpus: usize,
}

impl Stats {
    pub fn failed(&self) -> bool {
        self.panics + self.slow + self.alloc_breaches > 0
    }
}

/// Runs `extra` inputs as given (saved regressions), then the seeds, then
/// `inputs` mutants; `failed` gets every failing input.
pub fn fuzz<T: Target>(
    target: &mut T,
    extra: &[Vec<u8>],
    inputs: u64,
    seed: u64,
    mut failed: impl FnMut(Failure, &[u8]),
) -> Stats {
    quiet_panics();
    let mut rng = Rng::new(seed);
    let mut corpus = Corpus::new(target.seeds());
    let mut stats = Stats {
        limit: target.limit_text(),
        ..Stats::default()
    };
    let started = Instant::now();
    let given: Vec<Vec<u8>> = extra
        .iter()
        .cloned()
        .chain((0..corpus.len()).map(|i| corpus.entry(i).to_vec()))
        .collect();
    for input in given {
        run_one(
            target,
            &input,
            &mut stats,
            &mut corpus,
            &mut rng,
            &mut failed,
        );
    }
    let form = target.form();
    for _ in 0..inputs {
        let mut input = mutate(corpus.pick(&mut rng), corpus.pick(&mut rng), form, &mut rng);
        target.prepare(&mut input, &mut rng);
        run_one(
            target,
            &input,
            &mut stats,
            &mut corpus,
            &mut rng,
            &mut failed,
        );
    }
    stats.elapsed = started.elapsed();
    stats.shapes = corpus.shapes();
    stats.corpus = corpus.len();
    stats
}

fn run_one<T: Target>(
    target: &mut T,
    input: &[u8],
    stats: &mut Stats,
    corpus: &mut Corpus,
    rng: &mut Rng,
    failed: &mut impl FnMut(Failure, &[u8]),
) {
    stats.inputs += 1;
    let base = alloc::start();
    let t0 = Instant::now();
    IN_INPUT.with(|f| f.set(true));
    let outcome = catch_unwind(AssertUnwindSafe(|| target.run(input)));
    IN_INPUT.with(|f| f.set(false));
    let took = t0.elapsed();
    let peak = alloc::peak_since(base);

    stats.max_time = stats.max_time.max(took);
    if took > SLOW {
        stats.slow += 1;
        failed(Failure::Slow, input);
    }
    let limit = target.alloc_limit(input.len());
    let usage = peak as f64 / limit as f64;
    if usage > stats.worst_use {
        stats.worst_use = usage;
    }
    if peak > stats.peak {
        stats.peak = peak;
        stats.peak_input_len = input.len();
    }
    if peak > limit {
        stats.alloc_breaches += 1;
        failed(Failure::Alloc, input);
    }
    let shape = match &outcome {
        Ok(out) => target.shape(out),
        Err(_) => {
            stats.panics += 1;
            if stats.first_panic.is_none() {
                stats.first_panic = LAST_PANIC.lock().unwrap().take();
            }
            failed(Failure::Panic, input);
            "panic".to_string()
        }
    };
    corpus.observe(&shape, input, rng);
}

/// The message and place of the last panic of an input, caught by our hook
/// instead of printed: ten million inputs may panic a million times.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

thread_local! {
    /// An input is running on this thread: its panics are the fuzzer's.
    static IN_INPUT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Keeps the panics of inputs quiet; any other panic (a failing test's
/// assertion) goes to the hook that was there before.
fn quiet_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_INPUT.with(|f| f.get()) {
                if let Ok(mut last) = LAST_PANIC.lock() {
                    *last = Some(info.to_string());
                }
            } else {
                previous(info);
            }
        }))
    });
}
