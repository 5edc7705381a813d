//! The expression language of the `fused` op: one element-wise expression over
//! the op's operands, written in prefix-call form.
//!
//! ```text
//! expr  := "$" INDEX                      operand INDEX (0-based)
//!        | NUMBER                         an f32 constant: 1, -0.5, 2.5e-3
//!        | UNARY "(" expr ")"             a unary function: neg exp silu gelu_erf …
//!        | BINARY "(" expr "," expr ")"   a binary function: add sub mul div …
//! ```
//!
//! The functions are seam-core's [`UnaryFn`]s and the [`BinaryFn`]s allowed in
//! a fused expression ([`BinaryFn::in_fused`]), by name. Each computes exactly
//! what its element-wise op computes (`gelu_erf` is `gelu {approx=erf}`,
//! `gelu_tanh` is `gelu {approx=tanh}`), in `f32`. Whitespace between tokens is ignored; the
//! printer writes the canonical form `mul(silu($0), $1)`.

use std::fmt;

use thiserror::Error;

use seam_core::{BinaryFn, UnaryFn};

/// An element-wise expression over the operands of a `fused` op.
#[derive(Clone, Debug, PartialEq)]
pub enum FusedExpr {
    /// Operand `i` at this element (broadcast as numpy does).
    Operand(usize),
    /// A constant.
    Const(f32),
    /// A unary function.
    Unary(UnaryFn, Box<FusedExpr>),
    /// A binary function.
    Binary(BinaryFn, Box<FusedExpr>, Box<FusedExpr>),
}

/// Why an expression does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("at byte {at} of the fused expression: {detail}")]
pub struct FusedParseError {
    /// Byte offset into the expression text.
    pub at: usize,
    /// What is wrong.
    pub detail: String,
}

impl FusedExpr {
    /// `op(x)`.
    pub fn unary(op: UnaryFn, x: FusedExpr) -> FusedExpr {
        FusedExpr::Unary(op, Box::new(x))
    }

    /// `op(a, b)`.
    pub fn binary(op: BinaryFn, a: FusedExpr, b: FusedExpr) -> FusedExpr {
        FusedExpr::Binary(op, Box::new(a), Box::new(b))
    }

    /// The names of the functions an expression may apply: every unary
    /// function, then the binary ones allowed in a fused expression, in their
    /// tables' order.
    pub fn function_names() -> Vec<&'static str> {
        let unary = UnaryFn::ALL.iter().map(|f| f.name());
        let binary = BinaryFn::ALL.iter().filter(|f| f.in_fused());
        unary.chain(binary.map(|f| f.name())).collect()
    }

    /// Parses the text form (see the module docs).
    pub fn parse(text: &str) -> Result<FusedExpr, FusedParseError> {
        let mut p = Parser { text, pos: 0 };
        let e = p.expr(0)?;
        p.skip_ws();
        if p.pos != text.len() {
            return Err(p.err("unexpected text after the expression"));
        }
        Ok(e)
    }

    /// Evaluates the expression at one element, `operand(i)` giving operand `i`'s value.
    pub fn eval(&self, operand: &impl Fn(usize) -> f32) -> f32 {
        match self {
            FusedExpr::Operand(i) => operand(*i),
            FusedExpr::Const(c) => *c,
            FusedExpr::Unary(op, x) => op.apply(x.eval(operand)),
            FusedExpr::Binary(op, a, b) => op.apply(a.eval(operand), b.eval(operand)),
        }
    }

    /// The expression with operand `i` replaced by `f(i)`.
    pub fn map_operands(&self, f: &impl Fn(usize) -> FusedExpr) -> FusedExpr {
        match self {
            FusedExpr::Operand(i) => f(*i),
            FusedExpr::Const(c) => FusedExpr::Const(*c),
            FusedExpr::Unary(op, x) => FusedExpr::unary(*op, x.map_operands(f)),
            FusedExpr::Binary(op, a, b) => {
                FusedExpr::binary(*op, a.map_operands(f), b.map_operands(f))
            }
        }
    }

    /// One plus the highest operand index used (0 when none is).
    pub fn operand_count(&self) -> usize {
        match self {
            FusedExpr::Operand(i) => i + 1,
            FusedExpr::Const(_) => 0,
            FusedExpr::Unary(_, x) => x.operand_count(),
            FusedExpr::Binary(_, a, b) => a.operand_count().max(b.operand_count()),
        }
    }

    /// Whether operand `i` occurs in the expression.
    pub fn uses(&self, i: usize) -> bool {
        match self {
            FusedExpr::Operand(j) => *j == i,
            FusedExpr::Const(_) => false,
            FusedExpr::Unary(_, x) => x.uses(i),
            FusedExpr::Binary(_, a, b) => a.uses(i) || b.uses(i),
        }
    }

    /// The number of function applications (the FLOPs per element, roughly).
    pub fn ops(&self) -> usize {
        match self {
            FusedExpr::Operand(_) | FusedExpr::Const(_) => 0,
            FusedExpr::Unary(_, x) => 1 + x.ops(),
            FusedExpr::Binary(_, a, b) => 1 + a.ops() + b.ops(),
        }
    }
}

impl fmt::Display for FusedExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FusedExpr::Operand(i) => write!(f, "${i}"),
            FusedExpr::Const(c) => write!(f, "{c:?}"),
            FusedExpr::Unary(op, x) => write!(f, "{}({x})", op.name()),
            FusedExpr::Binary(op, a, b) => write!(f, "{}({a}, {b})", op.name()),
        }
    }
}

/// Deepest nesting accepted (bounds the parser's recursion).
const MAX_NESTING: usize = 256;

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, detail: impl Into<String>) -> FusedParseError {
        FusedParseError {
            at: self.pos,
            detail: detail.into(),
        }
    }

    fn skip_ws(&mut self) {
        let rest = &self.text[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn eat(&mut self, c: char) -> Result<(), FusedParseError> {
        self.skip_ws();
        if self.text[self.pos..].starts_with(c) {
            self.pos += c.len_utf8();
            Ok(())
        } else {
            Err(self.err(format!("expected `{c}`")))
        }
    }

    fn take_while(&mut self, ok: impl Fn(char) -> bool) -> &str {
        let rest = &self.text[self.pos..];
        let len = rest.find(|c: char| !ok(c)).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    fn expr(&mut self, depth: usize) -> Result<FusedExpr, FusedParseError> {
        if depth > MAX_NESTING {
            return Err(self.err(format!("nested deeper than {MAX_NESTING}")));
        }
        self.skip_ws();
        let start = self.pos;
        let rest = &self.text[self.pos..];
        if rest.starts_with('$') {
            self.pos += 1;
            let digits = self.take_while(|c| c.is_ascii_digit());
            return digits
                .parse::<usize>()
                .map(FusedExpr::Operand)
                .map_err(|_| FusedParseError {
                    at: start,
                    detail: "expected an operand index after `$`".into(),
                });
        }
        if rest.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.') {
            let num =
                self.take_while(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '+');
            return num
                .parse::<f32>()
                .map(FusedExpr::Const)
                .map_err(|_| FusedParseError {
                    at: start,
                    detail: format!("`{num}` is not a number"),
                });
        }
        let name = self.take_while(|c| c.is_ascii_alphanumeric() || c == '_');
        if name.is_empty() {
            return Err(self.err("expected `$N`, a number or a function"));
        }
        let name = name.to_string();
        if let Some(op) = UnaryFn::from_name(&name) {
            self.eat('(')?;
            let x = self.expr(depth + 1)?;
            self.eat(')')?;
            return Ok(FusedExpr::unary(op, x));
        }
        if let Some(op) = BinaryFn::from_name(&name).filter(|f| f.in_fused()) {
            self.eat('(')?;
            let a = self.expr(depth + 1)?;
            self.eat(',')?;
            let b = self.expr(depth + 1)?;
            self.eat(')')?;
            return Ok(FusedExpr::binary(op, a, b));
        }
        Err(FusedParseError {
            at: start,
            detail: format!(
                "unknown function `{name}` (known: {})",
                FusedExpr::function_names().join(", ")
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prints_and_evaluates() {
        let e = FusedExpr::parse(" mul( silu($0) ,add($1, -0.5))").unwrap();
        assert_eq!(e.to_string(), "mul(silu($0), add($1, -0.5))");
        assert_eq!(FusedExpr::parse(&e.to_string()).unwrap(), e);
        assert_eq!(e.operand_count(), 2);
        assert!(e.uses(1) && !e.uses(2));
        assert_eq!(e.ops(), 3);
        // silu(2)·(3 - 0.5) = 1.7615942·2.5
        let v = e.eval(&|i| [2.0, 3.0][i]);
        assert!((v - 1.761_594_2 * 2.5).abs() < 1e-5);
        let c = FusedExpr::parse("gelu_tanh(1e-3)").unwrap();
        assert_eq!(c.to_string(), "gelu_tanh(0.001)");
    }

    #[test]
    fn rejects_bad_text() {
        let err = |s: &str| FusedExpr::parse(s).unwrap_err();
        assert_eq!(err("relu($0)").at, 0);
        assert!(err("relu($0)").detail.contains("unknown function `relu`"));
        assert!(err("add($0)").detail.contains("expected `,`"));
        assert!(err("$").detail.contains("operand index"));
        assert!(err("$0 $1").detail.contains("after the expression"));
        assert!(err("1.2.3").detail.contains("not a number"));
        assert!(err("").detail.contains("expected"));
        let deep = "neg(".repeat(300) + "$0" + &")".repeat(300);
        assert!(err(&deep).detail.contains("nested deeper"));
    }
}
