//! Rustc-style diagnostics for parse and verifier errors, rendered with
//! `codespan-reporting`.

use std::fmt;

use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, termcolor, Chars, Config};
use thiserror::Error;

use crate::model::Model;
use crate::text::error::ParseError;
use crate::text::source_map::{line_col, SourceMap, Span};
use crate::verify::{Location, VerifyError};

/// An error in a named source text, ready to show to a user: a message, the
/// span it points at (if known), an optional label under the carets,
/// secondary spans and notes.
///
/// `Display` gives the one-line form `file:line:col: message`;
/// [`Diagnostic::render`] the full rustc-style form with the source line and
/// carets.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}", self.headline())]
pub struct Diagnostic {
    /// The file name shown in `--> file:line:col`.
    pub file: String,
    /// The source text the spans index into.
    pub source_text: String,
    /// What went wrong.
    pub message: String,
    /// Where, if known.
    pub span: Option<Span>,
    /// Text shown under the carets, if any.
    pub label: Option<String>,
    /// Related spans with their labels (e.g. a first definition).
    pub secondary: Vec<(Span, String)>,
    /// Notes shown after the snippet (`= note`).
    pub notes: Vec<String>,
    /// Where the error is in words, for errors without a span (a builder-made
    /// model has no source): `in function `forward`, instruction 3 (`matmul`)`.
    pub context: Option<String>,
}

impl Diagnostic {
    /// A diagnostic with a message pointing at `span` of `source_text`.
    pub fn new(
        file: impl Into<String>,
        source_text: impl Into<String>,
        message: impl Into<String>,
        span: Option<Span>,
    ) -> Self {
        Diagnostic {
            file: file.into(),
            source_text: source_text.into(),
            message: message.into(),
            span,
            label: None,
            secondary: Vec::new(),
            notes: Vec::new(),
            context: None,
        }
    }

    /// The diagnostic for a parse error of `source_text`.
    pub fn from_parse_error(file: &str, source_text: &str, error: &ParseError) -> Self {
        let mut d = Diagnostic::new(file, source_text, error.to_string(), Some(error.span()));
        if let Some((span, label)) = error.related() {
            d.secondary.push((span, label.to_string()));
        }
        d
    }

    /// The diagnostic for a verifier error of a model parsed from
    /// `source_text` with source map `map`. Without a span for the error's
    /// location (a builder-made model with an empty map, or an edited one), the
    /// diagnostic names the function and instruction instead.
    pub fn from_verify_error(
        file: &str,
        source_text: &str,
        model: &Model,
        map: &SourceMap,
        error: &VerifyError,
    ) -> Self {
        let span = map
            .span(error.location)
            .filter(|s| s.end <= source_text.len() && s.slice(source_text).is_some());
        let mut d = Diagnostic::new(file, source_text, error.kind.to_string(), span);
        if span.is_none() {
            d.context = Some(describe_location(model, error.location));
        }
        d
    }

    /// The 1-based line and column of the span's start, if there is a span.
    pub fn line_col(&self) -> Option<(usize, usize)> {
        self.span.map(|s| line_col(&self.source_text, s.start))
    }

    /// The one-line form: `file:line:col: message`, or `file: message (context)`
    /// without a span.
    pub fn headline(&self) -> String {
        match (self.line_col(), &self.context) {
            (Some((l, c)), _) => format!("{}:{l}:{c}: {}", self.file, self.message),
            (None, Some(ctx)) => format!("{}: {} ({ctx})", self.file, self.message),
            (None, None) => format!("{}: {}", self.file, self.message),
        }
    }

    /// Renders rustc-style:
    ///
    /// ```text
    /// error: unknown op `matmull` (did you mean `matmul`?)
    ///   --> model.seam:3:8
    ///   |
    /// 3 |   %y = matmull(%x, @w) : f32[4, 4]
    ///   |        ^^^^^^^
    /// ```
    ///
    /// With `color`, ANSI escape codes highlight the parts.
    pub fn render(&self, color: bool) -> String {
        let file = SimpleFile::new(self.file.as_str(), self.source_text.as_str());
        let valid =
            |s: &Span| s.end <= self.source_text.len() && s.slice(&self.source_text).is_some();
        let mut labels = Vec::new();
        if let Some(span) = self.span.filter(valid) {
            let mut l = Label::primary((), span);
            if let Some(text) = &self.label {
                l = l.with_message(text);
            }
            labels.push(l);
        }
        for (span, text) in self.secondary.iter().filter(|(s, _)| valid(s)) {
            labels.push(Label::secondary((), *span).with_message(text));
        }
        let mut notes = self.notes.clone();
        if let Some(ctx) = &self.context {
            notes.insert(0, ctx.clone());
        }
        let diag = CsDiagnostic::error()
            .with_message(&self.message)
            .with_labels(labels)
            .with_notes(notes);
        let config = Config {
            chars: Chars::ascii(),
            ..Config::default()
        };
        let rendered = if color {
            let mut buf = termcolor::Buffer::ansi();
            term::emit_to_write_style(&mut buf, &config, &file, &diag)
                .map(|()| String::from_utf8_lossy(buf.as_slice()).into_owned())
        } else {
            term::emit_into_string(&config, &file, &diag)
        };
        rendered.unwrap_or_else(|_| format!("error: {}\n", self.headline()))
    }
}

impl fmt::Display for LocationWords<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.model;
        let func = |i: usize| {
            m.functions.get(i).map_or_else(
                || format!("function #{i}"),
                |f| format!("function `{}`", f.name),
            )
        };
        let instr = |fi: usize, ii: usize| {
            let op = m
                .functions
                .get(fi)
                .and_then(|f| f.body.get(ii))
                .map_or(String::new(), |ins| format!(" (`{}`)", ins.op.name()));
            format!("{}, instruction {ii}{op}", func(fi))
        };
        match self.location {
            Location::Model => write!(f, "in model `{}`", m.name),
            Location::Dim(i) => match m.dims.get(i) {
                Some(d) => write!(f, "in dim `{}`", d.name),
                None => write!(f, "in dim #{i}"),
            },
            Location::Param(i) => match m.params.get(i) {
                Some(p) => write!(f, "in param `{}`", p.name),
                None => write!(f, "in param #{i}"),
            },
            Location::Function(i) => write!(f, "in {}", func(i)),
            Location::Input { func: fi, input } => write!(f, "in {}, input {input}", func(fi)),
            Location::Instr {
                func: fi,
                instr: ii,
            } => write!(f, "in {}", instr(fi, ii)),
            Location::Operand {
                func: fi,
                instr: ii,
                operand,
            } => write!(f, "in {}, operand {operand}", instr(fi, ii)),
            Location::ResultType {
                func: fi,
                instr: ii,
                result,
            } => write!(f, "in {}, result {result}", instr(fi, ii)),
            Location::Output { func: fi, output } => {
                write!(f, "in {}, returned value {output}", func(fi))
            }
        }
    }
}

struct LocationWords<'a> {
    model: &'a Model,
    location: Location,
}

/// Describes `location` in words, naming the function and instruction:
/// `in function `forward`, instruction 2 (`matmul`), operand 1`.
pub fn describe_location(model: &Model, location: Location) -> String {
    LocationWords { model, location }.to_string()
}
