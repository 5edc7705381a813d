//! Byte spans, line/column conversion, and the source map that ties every
//! [`Location`] of a parsed model back to its text.

use std::fmt;
use std::ops::Range;

use crate::verify::Location;

/// A byte range `start..end` in the source text (`end` exclusive).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    /// Offset of the first byte.
    pub start: usize,
    /// Offset one past the last byte.
    pub end: usize,
}

impl Span {
    /// The span `start..end`.
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The empty span at `offset`.
    pub fn at(offset: usize) -> Self {
        Span {
            start: offset,
            end: offset,
        }
    }

    /// The smallest span covering both `self` and `other`.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    /// Number of bytes covered.
    pub fn len(self) -> usize {
        self.end.saturating_sub(self.start)
    }

    /// Whether the span covers no bytes.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// The covered text, if the span lies within `source` on character boundaries.
    pub fn slice(self, source: &str) -> Option<&str> {
        source.get(self.start..self.end)
    }
}

impl From<Span> for Range<usize> {
    fn from(s: Span) -> Range<usize> {
        s.start..s.end
    }
}

impl From<Range<usize>> for Span {
    fn from(r: Range<usize>) -> Span {
        Span::new(r.start, r.end)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// The 1-based line and column of byte `offset` in `source`.
///
/// Columns count characters (not bytes), as rustc and `codespan-reporting` do.
/// An offset past the end is clamped to the end; an offset inside a multi-byte
/// character is moved back to the character's start.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let col = source[line_start..offset].chars().count() + 1;
    (line, col)
}

/// Spans of one instruction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct InstrSpans {
    /// The op name.
    pub op: Span,
    /// Each operand token.
    pub operands: Vec<Span>,
    /// Each declared result type.
    pub results: Vec<Span>,
}

/// Spans of one function.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FunctionSpans {
    /// The function name.
    pub name: Span,
    /// Each input, `%name: type`.
    pub inputs: Vec<Span>,
    /// Each instruction.
    pub instrs: Vec<InstrSpans>,
    /// Each returned value.
    pub outputs: Vec<Span>,
}

/// Where each part of a parsed model is in its source text, so that verifier
/// errors (which carry a [`Location`]) can be shown at the right place.
///
/// Produced by [`crate::text::parse`]; indices match the parsed [`crate::Model`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceMap {
    pub(crate) model: Span,
    pub(crate) dims: Vec<Span>,
    pub(crate) params: Vec<Span>,
    pub(crate) functions: Vec<FunctionSpans>,
}

impl SourceMap {
    /// The span of `location`, or `None` if the map has no such entry (for
    /// example after the model was edited).
    ///
    /// - [`Location::Model`]: the `model NAME` header;
    /// - [`Location::Dim`], [`Location::Param`], [`Location::Function`]: the declared name;
    /// - [`Location::Input`]: `%name: type`;
    /// - [`Location::Instr`]: the op name;
    /// - [`Location::Operand`], [`Location::Output`]: the `%value` or `@param` token;
    /// - [`Location::ResultType`]: the declared result type.
    pub fn span(&self, location: Location) -> Option<Span> {
        match location {
            Location::Model => Some(self.model),
            Location::Dim(i) => self.dims.get(i).copied(),
            Location::Param(i) => self.params.get(i).copied(),
            Location::Function(f) => self.functions.get(f).map(|f| f.name),
            Location::Input { func, input } => self.functions.get(func)?.inputs.get(input).copied(),
            Location::Instr { func, instr } => {
                Some(self.functions.get(func)?.instrs.get(instr)?.op)
            }
            Location::Operand {
                func,
                instr,
                operand,
            } => self
                .functions
                .get(func)?
                .instrs
                .get(instr)?
                .operands
                .get(operand)
                .copied(),
            Location::ResultType {
                func,
                instr,
                result,
            } => self
                .functions
                .get(func)?
                .instrs
                .get(instr)?
                .results
                .get(result)
                .copied(),
            Location::Output { func, output } => {
                self.functions.get(func)?.outputs.get(output).copied()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_lines_and_chars() {
        let s = "ab\ncdé\n\nx";
        assert_eq!(line_col(s, 0), (1, 1));
        assert_eq!(line_col(s, 1), (1, 2));
        assert_eq!(line_col(s, 2), (1, 3));
        assert_eq!(line_col(s, 3), (2, 1));
        assert_eq!(line_col(s, 5), (2, 3));
        // Inside `é` (2 bytes): clamped back to its start.
        assert_eq!(line_col(s, 6), (2, 3));
        assert_eq!(line_col(s, 7), (2, 4));
        assert_eq!(line_col(s, 8), (3, 1));
        assert_eq!(line_col(s, 9), (4, 1));
        assert_eq!(line_col(s, 1000), (4, 2));
        assert_eq!(line_col("", 0), (1, 1));
    }

    #[test]
    fn span_helpers() {
        let a = Span::new(3, 5);
        assert_eq!(a.to(Span::new(1, 4)), Span::new(1, 5));
        assert_eq!(a.len(), 2);
        assert!(Span::at(7).is_empty());
        assert_eq!(a.slice("0123456"), Some("34"));
        assert_eq!(Span::new(5, 9).slice("0123"), None);
        assert_eq!(Range::from(a), 3..5);
        assert_eq!(a.to_string(), "3..5");
    }

    #[test]
    fn empty_map_has_only_model() {
        let m = SourceMap::default();
        assert_eq!(m.span(Location::Model), Some(Span::default()));
        assert_eq!(m.span(Location::Dim(0)), None);
        assert_eq!(m.span(Location::Instr { func: 0, instr: 0 }), None);
    }
}
