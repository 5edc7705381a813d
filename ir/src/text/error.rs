//! Parse errors of the text format, each with the byte span it points at.

use thiserror::Error;

use crate::op::OpError;
use crate::shape::TensorType;
use crate::text::source_map::Span;

/// Why a text could not be parsed. Every variant carries the [`Span`] it points
/// at ([`ParseError::span`]); the message says what was expected.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ParseError {
    /// The input has no tokens (it is empty or only whitespace and comments).
    #[error("empty input: expected a `model NAME` header")]
    EmptyInput {
        /// Where the header was expected.
        span: Span,
    },
    /// The input does not start with `model NAME`.
    #[error("expected a `model NAME` header, found {found}")]
    MissingHeader {
        /// What was found instead.
        found: String,
        /// Where.
        span: Span,
    },
    /// The input is not valid UTF-8.
    #[error(
        "input is not valid UTF-8: invalid byte 0x{byte:02x} at offset {offset} (line {line}, column {column})"
    )]
    InvalidUtf8 {
        /// The first invalid byte (or the last byte of a truncated sequence).
        byte: u8,
        /// Its byte offset.
        offset: usize,
        /// Its 1-based line.
        line: usize,
        /// Its 1-based column.
        column: usize,
        /// `offset..offset`.
        span: Span,
    },
    /// A character that starts no token.
    #[error("unexpected character `{}`", .ch.escape_debug())]
    UnexpectedChar {
        /// The character.
        ch: char,
        /// Where.
        span: Span,
    },
    /// A `%` or `@` not followed by a name.
    #[error("expected a {what} name after `{sigil}`")]
    MissingName {
        /// `value` or `param`.
        what: &'static str,
        /// `%` or `@`.
        sigil: char,
        /// Where.
        span: Span,
    },
    /// A string literal without its closing quote on the same line.
    #[error("unterminated string (missing the closing `\"` on this line)")]
    UnterminatedString {
        /// From the opening quote to the end of the line.
        span: Span,
    },
    /// An unknown escape in a string literal.
    #[error("unknown escape `{escape}` in string (use `\\\"`, `\\\\`, `\\n`, `\\t`, `\\r`, `\\0` or `\\u{{...}}`)")]
    BadEscape {
        /// The escape as written.
        escape: String,
        /// Where.
        span: Span,
    },
    /// A token other than the one the grammar needs here.
    #[error("expected {expected}, found {found}")]
    Expected {
        /// What the grammar needs, e.g. ``"`)` or `,` after operand"``.
        expected: String,
        /// What was found, e.g. ``"`:`"`` or `"end of file"`.
        found: String,
        /// Where.
        span: Span,
    },
    /// A malformed or out-of-range number.
    #[error("bad number `{text}`: {reason}")]
    BadNumber {
        /// The literal as written (shortened if very long).
        text: String,
        /// What is wrong with it.
        reason: String,
        /// Where.
        span: Span,
    },
    /// A dtype name that does not exist.
    #[error("unknown dtype `{name}` (expected f32, f16, i32 or u32){}", did_you_mean(.suggestion))]
    UnknownDType {
        /// The name given.
        name: String,
        /// A close dtype name, if any.
        suggestion: Option<String>,
        /// Where.
        span: Span,
    },
    /// A weight format name that does not exist.
    #[error("{reason}")]
    UnknownFormat {
        /// What is wrong, with the formats that exist.
        reason: String,
        /// Where.
        span: Span,
    },
    /// An op name that does not exist.
    #[error("unknown op `{name}`{}", did_you_mean(.suggestion))]
    UnknownOp {
        /// The name given.
        name: String,
        /// A close op name, if any.
        suggestion: Option<String>,
        /// Where.
        span: Span,
    },
    /// The op's attributes are wrong: unknown, missing, duplicated or of a bad value.
    #[error("{error}")]
    OpAttr {
        /// The op-level error.
        error: OpError,
        /// The attribute (or the op name, for a missing attribute).
        span: Span,
    },
    /// A `%value` that is not defined before this point in its function.
    #[error("undefined value `%{name}`{}", did_you_mean_sigil('%', .suggestion))]
    UndefinedValue {
        /// The name.
        name: String,
        /// A close defined name, if any.
        suggestion: Option<String>,
        /// Where.
        span: Span,
    },
    /// A `%value` defined twice in one function.
    #[error("value `%{name}` is already defined")]
    RedefinedValue {
        /// The name.
        name: String,
        /// The second definition.
        span: Span,
        /// The first definition.
        previous: Span,
    },
    /// A `@param` that the model does not declare.
    #[error("unknown param `@{name}`{}", did_you_mean_sigil('@', .suggestion))]
    UnknownParam {
        /// The name.
        name: String,
        /// A close declared name, if any.
        suggestion: Option<String>,
        /// Where.
        span: Span,
    },
    /// A param declared twice.
    #[error("param `{name}` is already declared")]
    DuplicateParam {
        /// The name.
        name: String,
        /// The second declaration.
        span: Span,
        /// The first declaration.
        previous: Span,
    },
    /// A second `model` header.
    #[error("the model header may appear only once")]
    DuplicateHeader {
        /// The second header.
        span: Span,
        /// The first header.
        previous: Span,
    },
    /// A `dim` or `param` declaration after the first function.
    #[error("`{keyword}` declarations must come before the first `func`")]
    DeclarationAfterFunction {
        /// `dim` or `param`.
        keyword: &'static str,
        /// Where.
        span: Span,
    },
    /// An instruction with a different number of results and declared types.
    #[error("instruction defines {results} value(s) but declares {types} type(s)")]
    ResultTypeCount {
        /// Number of `%results`.
        results: usize,
        /// Number of types after `:`.
        types: usize,
        /// The type list.
        span: Span,
    },
    /// `return` with a different number of values than the signature declares.
    #[error("function `{func}` returns {found} value(s) but its signature declares {expected}")]
    ReturnCount {
        /// The function.
        func: String,
        /// Number of types after `->`.
        expected: usize,
        /// Number of returned values.
        found: usize,
        /// The `return` statement.
        span: Span,
    },
    /// The signature marks different numbers of inputs and results as `state`.
    #[error("function `{func}` marks {inputs} input(s) but {outputs} result(s) as `state`; they pair in order")]
    StateCount {
        /// The function.
        func: String,
        /// State inputs.
        inputs: usize,
        /// State results.
        outputs: usize,
        /// The function's name.
        span: Span,
    },
    /// A returned value whose type differs from the signature.
    #[error("returned value `%{name}` has type {found} but the signature declares {expected}")]
    ReturnType {
        /// The value.
        name: String,
        /// The type in the signature.
        expected: TensorType,
        /// The value's type.
        found: TensorType,
        /// The returned value.
        span: Span,
    },
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

fn did_you_mean_sigil(sigil: char, suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map(|s| format!(" (did you mean `{sigil}{s}`?)"))
        .unwrap_or_default()
}

impl ParseError {
    /// The byte span the error points at.
    pub fn span(&self) -> Span {
        match self {
            ParseError::EmptyInput { span }
            | ParseError::MissingHeader { span, .. }
            | ParseError::InvalidUtf8 { span, .. }
            | ParseError::UnexpectedChar { span, .. }
            | ParseError::MissingName { span, .. }
            | ParseError::UnterminatedString { span }
            | ParseError::BadEscape { span, .. }
            | ParseError::Expected { span, .. }
            | ParseError::BadNumber { span, .. }
            | ParseError::UnknownDType { span, .. }
            | ParseError::UnknownFormat { span, .. }
            | ParseError::UnknownOp { span, .. }
            | ParseError::OpAttr { span, .. }
            | ParseError::UndefinedValue { span, .. }
            | ParseError::RedefinedValue { span, .. }
            | ParseError::UnknownParam { span, .. }
            | ParseError::DuplicateParam { span, .. }
            | ParseError::DuplicateHeader { span, .. }
            | ParseError::DeclarationAfterFunction { span, .. }
            | ParseError::ResultTypeCount { span, .. }
            | ParseError::ReturnCount { span, .. }
            | ParseError::StateCount { span, .. }
            | ParseError::ReturnType { span, .. } => *span,
        }
    }

    /// A related earlier span with its label (the first definition of a
    /// redefined name), shown as a secondary label when rendering.
    pub fn related(&self) -> Option<(Span, &'static str)> {
        match self {
            ParseError::RedefinedValue { previous, .. } => Some((*previous, "first defined here")),
            ParseError::DuplicateParam { previous, .. }
            | ParseError::DuplicateHeader { previous, .. } => {
                Some((*previous, "first declared here"))
            }
            _ => None,
        }
    }
}

/// The Levenshtein distance between two strings (by characters).
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `name`, if it is close enough to be a likely typo
/// (distance at most a third of the name's length, rounded; so never for
/// one-character names).
pub(crate) fn suggest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    // Long names are never typos of short ones; skip absurd inputs cheaply.
    if name.len() > 256 {
        return None;
    }
    let limit = (name.chars().count() + 1) / 3;
    candidates
        .into_iter()
        .filter(|c| c.len() <= 256 && *c != name)
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("matmull", "matmul"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("topk", "tokp"), 2);
    }

    #[test]
    fn suggestions() {
        let names = crate::op::op_names();
        let ops = names.iter().copied();
        assert_eq!(suggest("matmull", ops.clone()), Some("matmul".into()));
        assert_eq!(suggest("sofmax", ops.clone()), Some("softmax".into()));
        assert_eq!(suggest("frobnicate", ops.clone()), None);
        assert_eq!(suggest("x", ["y"]), None);
        assert_eq!(suggest("wq", ["w"]), Some("w".into()));
        assert_eq!(suggest("x", ["x"]), None);
    }

    #[test]
    fn messages() {
        let e = ParseError::UnknownOp {
            name: "matmull".into(),
            suggestion: Some("matmul".into()),
            span: Span::new(0, 7),
        };
        assert_eq!(
            e.to_string(),
            "unknown op `matmull` (did you mean `matmul`?)"
        );
        let e = ParseError::UndefinedValue {
            name: "y".into(),
            suggestion: None,
            span: Span::new(0, 2),
        };
        assert_eq!(e.to_string(), "undefined value `%y`");
        assert_eq!(e.span(), Span::new(0, 2));
        let e = ParseError::UnexpectedChar {
            ch: '\u{0}',
            span: Span::new(0, 1),
        };
        assert_eq!(e.to_string(), "unexpected character `\\0`");
    }
}
