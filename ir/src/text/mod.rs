//! The text format: the IR's face.
//!
//! ```text
//! # Comments start with # and run to end of line.
//! model readme_moe
//!
//! dim tokens <= 2048
//!
//! param embed: f32[1024, 256]
//! param layers.0.wq: f32[256, 256]
//!
//! func forward(%ids: i32[tokens]) -> (f32[tokens, 256]) {
//!   %x = gather(@embed, %ids) : f32[tokens, 256]
//!   %q = matmul(%x, @layers.0.wq) : f32[tokens, 256]
//!   return %q
//! }
//! ```
//!
//! - [`parse`] / [`parse_bytes`] read a model and a [`SourceMap`], resolving
//!   every name; errors are [`ParseError`]s with byte [`Span`]s.
//! - [`print()`] writes the canonical form; `parse(&print(&m))` gives back `m`.
//! - [`parse_and_verify`] also runs the verifier and turns any error into a
//!   rustc-style [`Diagnostic`] (file, line, column, source line and carets).
//!
//! Grammar (whitespace and `#` comments are free between tokens):
//!
//! ```text
//! model  := "model" IDENT decl* func*
//! decl   := "dim" IDENT "<=" INT | "param" NAME ":" type
//! func   := "func" IDENT "(" [input ("," input)*] ")" "->" results "{" instr* return "}"
//! input  := ["state"] %NAME ":" type
//! results:= "(" [result ("," result)*] ")" | type    result := ["state"] type
//! instr  := %NAME ("," %NAME)* "=" IDENT "(" [arg ("," arg)*] ")" ":" type ("," type)*
//! arg    := %NAME | @NAME | IDENT "=" attr        (operands before attributes)
//! attr   := ["-"] INT | ["-"] FLOAT | ["-"] "inf" | "nan" | "true" | "false"
//!         | IDENT | STRING | "[" [["-"] INT ("," ["-"] INT)*] "]"
//! return := "return" [%NAME ("," %NAME)*]
//! type   := DTYPE "[" [dim ("," dim)*] "]"          dim := INT | IDENT
//! IDENT  := [A-Za-z_][A-Za-z0-9_.]*                 NAME := [A-Za-z0-9_][A-Za-z0-9_.]*
//! ```
//!
//! `state` marks session state ([`crate::StateBinding`]): the k-th `state`
//! input pairs with the k-th `state` result, e.g.
//! `func decode(%ids: i32[1], state %k: f32[kv_len, 2, 64]) -> (f32[1, 1024], state f32[kv_len, 2, 64])`.
//!
//! A model with no function parses (the verifier reports it), as do unknown
//! dims, zero bounds, duplicate dims and duplicate functions; duplicate
//! params and values are parse errors because names are resolved while
//! parsing.

mod diagnostic;
mod error;
mod lexer;
mod parser;
mod printer;
mod source_map;

pub use diagnostic::{describe_location, Diagnostic};
pub use error::ParseError;
pub use printer::print;
pub use source_map::{line_col, SourceMap, Span};

use crate::model::Model;
use crate::verify::verify;

/// Parses a model from text, returning it with the [`SourceMap`] of its parts.
pub fn parse(source: &str) -> Result<(Model, SourceMap), ParseError> {
    parser::parse_str(source)
}

/// Parses a model from bytes. Input that is not UTF-8 is rejected with
/// [`ParseError::InvalidUtf8`], naming the byte offset, line and column of the
/// first invalid byte.
pub fn parse_bytes(bytes: &[u8]) -> Result<(Model, SourceMap), ParseError> {
    let source = utf8(bytes)?;
    parse(source)
}

fn utf8(bytes: &[u8]) -> Result<&str, ParseError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let offset = e.valid_up_to();
        // The prefix is valid UTF-8 by definition of `valid_up_to`.
        let prefix = std::str::from_utf8(&bytes[..offset]).unwrap_or("");
        let (line, column) = line_col(prefix, offset);
        ParseError::InvalidUtf8 {
            byte: bytes.get(offset).copied().unwrap_or(0),
            offset,
            line,
            column,
            span: Span::at(offset),
        }
    })
}

/// Parses and verifies a model; any error becomes a [`Diagnostic`] for file
/// `name` (boxed: it carries the source text).
pub fn parse_and_verify(name: &str, source: &str) -> Result<(Model, SourceMap), Box<Diagnostic>> {
    let (model, map) =
        parse(source).map_err(|e| Box::new(Diagnostic::from_parse_error(name, source, &e)))?;
    verify(&model).map_err(|e| {
        Box::new(Diagnostic::from_verify_error(
            name, source, &model, &map, &e,
        ))
    })?;
    Ok((model, map))
}

/// [`parse_and_verify`] for bytes (a file read from disk). A non-UTF-8 input
/// gives a diagnostic pointing at the first invalid byte.
pub fn parse_bytes_and_verify(
    name: &str,
    bytes: &[u8],
) -> Result<(Model, SourceMap), Box<Diagnostic>> {
    match utf8(bytes) {
        Ok(source) => parse_and_verify(name, source),
        Err(e) => {
            // Show the valid prefix and the rest of the offending line (lossily,
            // at most 200 bytes), so the carets land on the invalid byte.
            let offset = e.span().start.min(bytes.len());
            let rest = &bytes[offset..];
            let line_end = rest
                .iter()
                .take(200)
                .position(|&b| b == b'\n')
                .unwrap_or(rest.len().min(200));
            let mut text = String::from_utf8_lossy(&bytes[..offset]).into_owned();
            let tail = String::from_utf8_lossy(&rest[..line_end]);
            let width = tail.chars().next().map_or(0, char::len_utf8);
            text.push_str(&tail);
            let mut d = Diagnostic::from_parse_error(name, &text, &e);
            d.span = Some(Span::new(offset, offset + width));
            Err(Box::new(d))
        }
    }
}
