//! The line editor's view of the console: rustyline's helper, made of
//! [`ChunkCheck`] (Enter continues an unfinished chunk) and [`Completion`]
//! (what Tab offers).

use rustyline::completion::Completer;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::Context;

use crate::completion::Completion;
use crate::multiline::ChunkCheck;

#[derive(Default)]
pub struct ConsoleInput {
    chunks: ChunkCheck,
    pub completion: Completion,
}

impl Completer for ConsoleInput {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(self.completion.complete(line, pos))
    }
}

impl Validator for ConsoleInput {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(if self.chunks.is_unfinished(ctx.input()) {
            ValidationResult::Incomplete
        } else {
            ValidationResult::Valid(None)
        })
    }
}

impl Hinter for ConsoleInput {
    type Hint = String;
}

impl Highlighter for ConsoleInput {}

impl rustyline::Helper for ConsoleInput {}
