//! The expression language of the `fused` op: one element-wise expression over
//! the op's operands, written in prefix-call form.
//!
//! ```text
//! expr  := "$" INDEX                      operand INDEX (0-based)
//!        | NUMBER                         an f32 constant: 1, -0.5, 2.5e-3
//!        | UNARY "(" expr ")"             neg exp silu gelu_erf gelu_tanh sigmoid tanh
//!        | BINARY "(" expr "," expr ")"   add sub mul div
//! ```
//!
//! Each function computes exactly what the element-wise op of the same name
//! computes (`gelu_erf` is `gelu {approx=erf}`, `gelu_tanh` is
//! `gelu {approx=tanh}`), in `f32`. Whitespace between tokens is ignored; the
//! printer writes the canonical form `mul(silu($0), $1)`.

use std::fmt;

use thiserror::Error;

use crate::eval::elementwise::{gelu_erf, gelu_tanh, sigmoid, silu};

/// A unary function of a fused expression.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum FusedUnary {
    /// `-x`.
    Neg,
    /// `exp(x)`.
    Exp,
    /// `x · sigmoid(x)`.
    Silu,
    /// `gelu {approx=erf}`.
    GeluErf,
    /// `gelu {approx=tanh}`.
    GeluTanh,
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
}

/// A binary function of a fused expression.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum FusedBinary {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b`.
    Div,
}

const UNARY: &[(&str, FusedUnary)] = &[
    ("neg", FusedUnary::Neg),
    ("exp", FusedUnary::Exp),
    ("silu", FusedUnary::Silu),
    ("gelu_erf", FusedUnary::GeluErf),
    ("gelu_tanh", FusedUnary::GeluTanh),
    ("sigmoid", FusedUnary::Sigmoid),
    ("tanh", FusedUnary::Tanh),
];

const BINARY: &[(&str, FusedBinary)] = &[
    ("add", FusedBinary::Add),
    ("sub", FusedBinary::Sub),
    ("mul", FusedBinary::Mul),
    ("div", FusedBinary::Div),
];

impl FusedUnary {
    /// The function's name in the expression text.
    pub fn name(self) -> &'static str {
        UNARY
            .iter()
            .find(|(_, u)| *u == self)
            .map_or("?", |(n, _)| n)
    }

    /// Applies the function to one `f32`.
    pub fn apply(self, x: f32) -> f32 {
        match self {
            FusedUnary::Neg => -x,
            FusedUnary::Exp => x.exp(),
            FusedUnary::Silu => silu(x),
            FusedUnary::GeluErf => gelu_erf(x),
            FusedUnary::GeluTanh => gelu_tanh(x),
            FusedUnary::Sigmoid => sigmoid(x),
            FusedUnary::Tanh => x.tanh(),
        }
    }
}

impl FusedBinary {
    /// The function's name in the expression text.
    pub fn name(self) -> &'static str {
        BINARY
            .iter()
            .find(|(_, b)| *b == self)
            .map_or("?", |(n, _)| n)
    }

    /// Applies the function to two `f32`s.
    pub fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            FusedBinary::Add => a + b,
            FusedBinary::Sub => a - b,
            FusedBinary::Mul => a * b,
            FusedBinary::Div => a / b,
        }
    }
}

/// An element-wise expression over the operands of a `fused` op.
#[derive(Clone, Debug, PartialEq)]
pub enum FusedExpr {
    /// Operand `i` at this element (broadcast as numpy does).
    Operand(usize),
    /// A constant.
    Const(f32),
    /// A unary function.
    Unary(FusedUnary, Box<FusedExpr>),
    /// A binary function.
    Binary(FusedBinary, Box<FusedExpr>, Box<FusedExpr>),
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
    pub fn unary(op: FusedUnary, x: FusedExpr) -> FusedExpr {
        FusedExpr::Unary(op, Box::new(x))
    }

    /// `op(a, b)`.
    pub fn binary(op: FusedBinary, a: FusedExpr, b: FusedExpr) -> FusedExpr {
        FusedExpr::Binary(op, Box::new(a), Box::new(b))
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
        if let Some((_, op)) = UNARY.iter().find(|(n, _)| *n == name) {
            self.eat('(')?;
            let x = self.expr(depth + 1)?;
            self.eat(')')?;
            return Ok(FusedExpr::unary(*op, x));
        }
        if let Some((_, op)) = BINARY.iter().find(|(n, _)| *n == name) {
            self.eat('(')?;
            let a = self.expr(depth + 1)?;
            self.eat(',')?;
            let b = self.expr(depth + 1)?;
            self.eat(')')?;
            return Ok(FusedExpr::binary(*op, a, b));
        }
        let known: Vec<&str> = UNARY
            .iter()
            .map(|(n, _)| *n)
            .chain(BINARY.iter().map(|(n, _)| *n))
            .collect();
        Err(FusedParseError {
            at: start,
            detail: format!("unknown function `{name}` (known: {})", known.join(", ")),
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
