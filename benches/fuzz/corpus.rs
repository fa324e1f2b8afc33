//! The inputs mutations start from: the seeds, plus every input that made
//! a decoder do something new.
//!
//! "Something new" is a new *shape*: the outcome a target reports (the
//! message variant decoded, the error's text) reduced to its words, so
//! "offset 17" and "offset 18" are one shape, and so are two errors that
//! differ only in the input they quote (between backquotes), in anything
//! but ASCII letters and spaces, or past their first [`SHAPE_CHARS`]
//! letters. Without coverage feedback this
//! is what lets the search go deeper: an input that got one field further
//! before failing is kept and mutated again.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use peerlet::sim::Rng;

/// Entries kept at most; beyond it a new entry replaces a random non-seed.
const CAPACITY: usize = 1024;
/// Larger inputs are run but not kept: copying them for every mutation
/// would slow the search more than they add.
const MAX_KEPT_BYTES: usize = 64 * 1024;

/// Characters of an outcome that make its shape.
const SHAPE_CHARS: usize = 80;

pub struct Corpus {
    entries: Vec<Vec<u8>>,
    seeds: usize,
    shapes: HashSet<u64>,
}

impl Corpus {
    pub fn new(seeds: Vec<Vec<u8>>) -> Corpus {
        assert!(!seeds.is_empty(), "a target needs at least one seed");
        Corpus {
            seeds: seeds.len(),
            entries: seeds,
            shapes: HashSet::new(),
        }
    }

    /// A random entry.
    pub fn pick(&self, rng: &mut Rng) -> &[u8] {
        &self.entries[rng.below(self.entries.len() as u64) as usize]
    }

    /// Records the shape of `input`'s outcome; keeps `input` if the shape
    /// is new. Returns whether it was new.
    pub fn observe(&mut self, shape: &str, input: &[u8], rng: &mut Rng) -> bool {
        let mut h = DefaultHasher::new();
        let mut quoted = false;
        let kept = shape.chars().filter(|c| {
            if *c == '`' {
                quoted = !quoted;
            }
            !quoted && (c.is_ascii_alphabetic() || *c == ' ')
        });
        for c in kept.take(SHAPE_CHARS) {
            c.hash(&mut h);
        }
        if !self.shapes.insert(h.finish()) {
            return false;
        }
        if input.len() <= MAX_KEPT_BYTES {
            if self.entries.len() < CAPACITY {
                self.entries.push(input.to_vec());
            } else {
                let i = self.seeds + rng.below((CAPACITY - self.seeds) as u64) as usize;
                self.entries[i] = input.to_vec();
            }
        }
        true
    }

    pub fn entry(&self, i: usize) -> &[u8] {
        &self.entries[i]
    }

    pub fn shapes(&self) -> usize {
        self.shapes.len()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}
