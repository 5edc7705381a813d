//! The parser: a recursive-descent reader of the text format that resolves
//! names as it goes and records a [`SourceMap`].

use std::collections::HashMap;
use std::str::FromStr;

use crate::model::DimDecl;
use crate::model::{Function, Instr, Model, Operand, ParamDecl, ParamId, StateBinding, ValueId};
use crate::op::{op_names, AttrValue, Op, OpError};
use crate::shape::{Dim, Shape, TensorType};
use crate::text::error::{suggest, ParseError};
use crate::text::lexer::{describe, is_sigil_name, shorten, Lexer, Tok, Token};
use crate::text::source_map::{FunctionSpans, InstrSpans, SourceMap, Span};
use seam_core::{DType, WeightFormat};

/// Parses a whole model from `src`.
pub(crate) fn parse_str(src: &str) -> Result<(Model, SourceMap), ParseError> {
    Parser {
        src,
        lex: Lexer::new(src),
        peeked: None,
        model: Model::default(),
        map: SourceMap::default(),
        params: HashMap::new(),
    }
    .model()
}

/// The values of the function being parsed, by name: id and defining span.
type Scope<'s> = HashMap<&'s str, (ValueId, Span)>;

struct Parser<'s> {
    src: &'s str,
    lex: Lexer<'s>,
    peeked: Option<Token<'s>>,
    model: Model,
    map: SourceMap,
    /// Declared params by name: index and declaring span.
    params: HashMap<&'s str, (usize, Span)>,
}

impl<'s> Parser<'s> {
    // ----- token helpers -------------------------------------------------

    fn peek(&mut self) -> Result<Token<'s>, ParseError> {
        match &self.peeked {
            Some(t) => Ok(t.clone()),
            None => {
                let t = self.lex.next_token()?;
                self.peeked = Some(t.clone());
                Ok(t)
            }
        }
    }

    fn bump(&mut self) -> Result<Token<'s>, ParseError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lex.next_token(),
        }
    }

    /// Consumes the next token if it is `want`.
    fn eat(&mut self, want: &Tok<'_>) -> Result<Option<Span>, ParseError> {
        let t = self.peek()?;
        if t.tok == *want {
            self.peeked = None;
            Ok(Some(t.span))
        } else {
            Ok(None)
        }
    }

    fn expected(&self, found: &Token<'_>, expected: &str) -> ParseError {
        ParseError::Expected {
            expected: expected.to_string(),
            found: describe(found, self.src),
            span: found.span,
        }
    }

    /// Consumes `want` or fails with "expected `what`".
    fn expect(&mut self, want: &Tok<'_>, what: &str) -> Result<Span, ParseError> {
        let t = self.bump()?;
        if t.tok == *want {
            Ok(t.span)
        } else {
            Err(self.expected(&t, what))
        }
    }

    /// Consumes an identifier.
    fn ident(&mut self, what: &str) -> Result<(&'s str, Span), ParseError> {
        let t = self.bump()?;
        match t.tok {
            Tok::Ident(name) => Ok((name, t.span)),
            _ => Err(self.expected(&t, what)),
        }
    }

    // ----- numbers -------------------------------------------------------

    fn bad_number(text: &str, reason: &str, span: Span) -> ParseError {
        ParseError::BadNumber {
            text: shorten(text),
            reason: reason.to_string(),
            span,
        }
    }

    /// A non-negative integer (dims, bounds).
    fn uint(&mut self, what: &str) -> Result<(u64, Span), ParseError> {
        let t = self.bump()?;
        match t.tok {
            Tok::Int(text) => text
                .parse::<u64>()
                .map(|v| (v, t.span))
                .map_err(|_| Self::bad_number(text, "does not fit in 64 bits", t.span)),
            Tok::Word(text) => Err(Self::bad_number(text, "not a number", t.span)),
            _ => Err(self.expected(&t, what)),
        }
    }

    fn int_value(text: &str, negative: bool, span: Span) -> Result<i64, ParseError> {
        let shown = if negative {
            format!("-{text}")
        } else {
            text.to_string()
        };
        text.parse::<i128>()
            .ok()
            .map(|v| if negative { -v } else { v })
            .and_then(|v| i64::try_from(v).ok())
            .ok_or_else(|| {
                Self::bad_number(&shown, "does not fit in a 64-bit signed integer", span)
            })
    }

    fn float_value(text: &str, negative: bool, span: Span) -> Result<f64, ParseError> {
        let shown = if negative {
            format!("-{text}")
        } else {
            text.to_string()
        };
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(if negative { -v } else { v }),
            Ok(_) => Err(Self::bad_number(
                &shown,
                "out of range for a 64-bit float (write `inf` for infinity)",
                span,
            )),
            Err(_) => Err(Self::bad_number(&shown, "not a number", span)),
        }
    }

    // ----- model and declarations ----------------------------------------

    fn model(mut self) -> Result<(Model, SourceMap), ParseError> {
        let t = self.bump()?;
        match t.tok {
            Tok::Eof => return Err(ParseError::EmptyInput { span: Span::at(0) }),
            Tok::Ident("model") => {}
            _ => {
                return Err(ParseError::MissingHeader {
                    found: describe(&t, self.src),
                    span: t.span,
                })
            }
        }
        let (name, name_span) = self.ident("a model name after `model`")?;
        self.model.name = name.to_string();
        self.map.model = t.span.to(name_span);
        loop {
            let t = self.peek()?;
            match t.tok {
                Tok::Ident("dim") => self.dim_decl()?,
                Tok::Ident("param") => self.param_decl()?,
                Tok::Ident("func") | Tok::Eof => break,
                Tok::Ident("model") => return Err(self.duplicate_header(t.span)),
                _ => return Err(self.expected(&t, "a `dim`, `param` or `func` declaration")),
            }
        }
        loop {
            let t = self.peek()?;
            match t.tok {
                Tok::Eof => break,
                Tok::Ident("func") => self.function()?,
                Tok::Ident("dim") => {
                    return Err(ParseError::DeclarationAfterFunction {
                        keyword: "dim",
                        span: t.span,
                    })
                }
                Tok::Ident("param") => {
                    return Err(ParseError::DeclarationAfterFunction {
                        keyword: "param",
                        span: t.span,
                    })
                }
                Tok::Ident("model") => return Err(self.duplicate_header(t.span)),
                _ => return Err(self.expected(&t, "`func` or end of file")),
            }
        }
        Ok((self.model, self.map))
    }

    fn duplicate_header(&self, span: Span) -> ParseError {
        ParseError::DuplicateHeader {
            span,
            previous: self.map.model,
        }
    }

    /// `dim NAME <= BOUND`
    fn dim_decl(&mut self) -> Result<(), ParseError> {
        self.bump()?;
        let (name, span) = self.ident("a dim name after `dim`")?;
        self.expect(&Tok::Le, "`<=` and an upper bound after the dim name")?;
        let (max, _) = self.uint("an integer upper bound after `<=`")?;
        self.model.dims.push(DimDecl {
            name: name.to_string(),
            max,
        });
        self.map.dims.push(span);
        Ok(())
    }

    /// `param NAME: TYPE [as FORMAT]`
    fn param_decl(&mut self) -> Result<(), ParseError> {
        self.bump()?;
        let t = self.bump()?;
        let name = match t.tok {
            Tok::Ident(n) | Tok::Int(n) | Tok::Float(n) | Tok::Word(n) if is_sigil_name(n) => n,
            _ => return Err(self.expected(&t, "a param name after `param`")),
        };
        if let Some(&(_, previous)) = self.params.get(name) {
            return Err(ParseError::DuplicateParam {
                name: name.to_string(),
                span: t.span,
                previous,
            });
        }
        self.expect(&Tok::Colon, "`:` and a type after the param name")?;
        let (ty, _) = self.ty()?;
        let format = self.weight_format()?;
        self.params.insert(name, (self.model.params.len(), t.span));
        self.model.params.push(ParamDecl {
            format,
            ..ParamDecl::new(name, ty)
        });
        self.map.params.push(t.span);
        Ok(())
    }

    /// An optional `as FORMAT` after a param's type (`f32` without one).
    fn weight_format(&mut self) -> Result<WeightFormat, ParseError> {
        if self.eat(&Tok::Ident("as"))?.is_none() {
            return Ok(WeightFormat::F32);
        }
        let (name, span) = self.ident("a weight format after `as`")?;
        name.parse()
            .map_err(|reason| ParseError::UnknownFormat { reason, span })
    }

    // ----- types ----------------------------------------------------------

    /// `dtype[dim, ...]`
    fn ty(&mut self) -> Result<(TensorType, Span), ParseError> {
        let t = self.bump()?;
        let dtype = match t.tok {
            Tok::Ident(name) => DType::from_str(name).map_err(|()| ParseError::UnknownDType {
                name: shorten(name),
                suggestion: suggest(name, DType::ALL.iter().map(|d| d.name())),
                span: t.span,
            })?,
            _ => return Err(self.expected(&t, "a type like `f32[tokens, 256]`")),
        };
        self.expect(&Tok::LBracket, "`[` and a shape after the dtype")?;
        let mut dims = Vec::new();
        let end = if let Some(end) = self.eat(&Tok::RBracket)? {
            end
        } else {
            loop {
                let d = self.bump()?;
                dims.push(match d.tok {
                    Tok::Int(text) => {
                        Dim::Static(text.parse::<u64>().map_err(|_| {
                            Self::bad_number(text, "does not fit in 64 bits", d.span)
                        })?)
                    }
                    Tok::Ident(name) => Dim::Sym(name.to_string()),
                    Tok::Word(text) => return Err(Self::bad_number(text, "not a number", d.span)),
                    _ => return Err(self.expected(&d, "a dim (an integer or a dim name)")),
                });
                let sep = self.bump()?;
                match sep.tok {
                    Tok::Comma => {}
                    Tok::RBracket => break sep.span,
                    _ => return Err(self.expected(&sep, "`,` or `]` after dim")),
                }
            }
        };
        Ok((
            TensorType {
                dtype,
                shape: Shape(dims),
            },
            t.span.to(end),
        ))
    }

    // ----- functions ------------------------------------------------------

    fn define(scope: &Scope<'s>, name: &'s str, span: Span) -> Result<(), ParseError> {
        match scope.get(name) {
            Some(&(_, previous)) => Err(ParseError::RedefinedValue {
                name: name.to_string(),
                span,
                previous,
            }),
            None => Ok(()),
        }
    }

    fn resolve_value(scope: &Scope<'s>, name: &str, span: Span) -> Result<ValueId, ParseError> {
        match scope.get(name) {
            Some(&(id, _)) => Ok(id),
            None => Err(ParseError::UndefinedValue {
                name: shorten(name),
                suggestion: suggest(name, scope.keys().copied()),
                span,
            }),
        }
    }

    fn resolve_param(&self, name: &str, span: Span) -> Result<ParamId, ParseError> {
        match self.params.get(name) {
            Some(&(i, _)) => Ok(ParamId(i as u32)),
            None => Err(ParseError::UnknownParam {
                name: shorten(name),
                suggestion: suggest(name, self.params.keys().copied()),
                span,
            }),
        }
    }

    /// `func NAME(%in: TYPE, ...) -> (TYPE, ...) { INSTR* return %v, ... }`
    fn function(&mut self) -> Result<(), ParseError> {
        self.bump()?;
        let (name, name_span) = self.ident("a function name after `func`")?;
        let mut f = Function::new(name);
        let mut spans = FunctionSpans {
            name: name_span,
            ..FunctionSpans::default()
        };
        let mut scope: Scope<'s> = HashMap::new();
        let (mut state_inputs, mut state_outputs) = (Vec::new(), Vec::new());
        self.expect(&Tok::LParen, "`(` and the inputs after the function name")?;
        if self.eat(&Tok::RParen)?.is_none() {
            loop {
                if self.eat(&Tok::Ident("state"))?.is_some() {
                    state_inputs.push(f.inputs.len());
                }
                let t = self.bump()?;
                let Tok::Value(vname) = t.tok else {
                    return Err(self.expected(&t, "an input like `%x: f32[tokens, 256]`"));
                };
                Self::define(&scope, vname, t.span)?;
                self.expect(&Tok::Colon, "`:` and a type after the input name")?;
                let (ty, ty_span) = self.ty()?;
                let id = f.add_value(vname, ty);
                f.inputs.push(id);
                scope.insert(vname, (id, t.span));
                spans.inputs.push(t.span.to(ty_span));
                let sep = self.bump()?;
                match sep.tok {
                    Tok::Comma => {}
                    Tok::RParen => break,
                    _ => return Err(self.expected(&sep, "`,` or `)` after input")),
                }
            }
        }
        self.expect(&Tok::Arrow, "`->` and the result types after the inputs")?;
        let mut signature = Vec::new();
        if self.eat(&Tok::LParen)?.is_some() {
            if self.eat(&Tok::RParen)?.is_none() {
                loop {
                    if self.eat(&Tok::Ident("state"))?.is_some() {
                        state_outputs.push(signature.len());
                    }
                    signature.push(self.ty()?.0);
                    let sep = self.bump()?;
                    match sep.tok {
                        Tok::Comma => {}
                        Tok::RParen => break,
                        _ => return Err(self.expected(&sep, "`,` or `)` after result type")),
                    }
                }
            }
        } else {
            signature.push(self.ty()?.0);
        }
        if state_inputs.len() != state_outputs.len() {
            return Err(ParseError::StateCount {
                func: f.name.clone(),
                inputs: state_inputs.len(),
                outputs: state_outputs.len(),
                span: name_span,
            });
        }
        f.states = state_inputs
            .into_iter()
            .zip(state_outputs)
            .map(|(input, output)| StateBinding { input, output })
            .collect();
        self.expect(&Tok::LBrace, "`{` to start the function body")?;
        loop {
            let t = self.peek()?;
            match t.tok {
                Tok::Value(_) => self.instr(&mut f, &mut spans, &mut scope)?,
                Tok::Ident("return") => break,
                _ => {
                    return Err(self.expected(
                        &t,
                        "an instruction like `%y = op(%x) : f32[4]`, or `return`",
                    ))
                }
            }
        }
        let ret = self.bump()?;
        let mut ret_span = ret.span;
        if self.eat(&Tok::RBrace)?.is_none() {
            loop {
                let t = self.bump()?;
                let Tok::Value(vname) = t.tok else {
                    return Err(self.expected(&t, "a returned value like `%y`"));
                };
                f.outputs.push(Self::resolve_value(&scope, vname, t.span)?);
                spans.outputs.push(t.span);
                ret_span = ret_span.to(t.span);
                let sep = self.bump()?;
                match sep.tok {
                    Tok::Comma => {}
                    Tok::RBrace => break,
                    _ => return Err(self.expected(&sep, "`,` or `}` after returned value")),
                }
            }
        }
        if f.outputs.len() != signature.len() {
            return Err(ParseError::ReturnCount {
                func: f.name.clone(),
                expected: signature.len(),
                found: f.outputs.len(),
                span: ret_span,
            });
        }
        for ((&out, expected), &span) in f.outputs.iter().zip(&signature).zip(&spans.outputs) {
            let value = f.value(out);
            if value.ty != *expected {
                return Err(ParseError::ReturnType {
                    name: value.name.clone(),
                    expected: expected.clone(),
                    found: value.ty.clone(),
                    span,
                });
            }
        }
        self.model.functions.push(f);
        self.map.functions.push(spans);
        Ok(())
    }

    /// `%r1, %r2 = op(operands..., attr=value, ...) : TYPE, TYPE`
    fn instr(
        &mut self,
        f: &mut Function,
        spans: &mut FunctionSpans,
        scope: &mut Scope<'s>,
    ) -> Result<(), ParseError> {
        let mut results: Vec<(&'s str, Span)> = Vec::new();
        loop {
            let t = self.bump()?;
            let Tok::Value(name) = t.tok else {
                return Err(self.expected(&t, "a result name like `%y`"));
            };
            Self::define(scope, name, t.span)?;
            if let Some(&(_, previous)) = results.iter().find(|(n, _)| *n == name) {
                return Err(ParseError::RedefinedValue {
                    name: name.to_string(),
                    span: t.span,
                    previous,
                });
            }
            results.push((name, t.span));
            let sep = self.bump()?;
            match sep.tok {
                Tok::Comma => {}
                Tok::Assign => break,
                _ => return Err(self.expected(&sep, "`,` or `=` after result name")),
            }
        }
        let op_tok = self.bump()?;
        let names = op_names();
        let op_name = match op_tok.tok {
            Tok::Ident(name) if names.contains(&name) => name,
            Tok::Ident(name) => {
                return Err(ParseError::UnknownOp {
                    name: shorten(name),
                    suggestion: suggest(name, names.iter().copied()),
                    span: op_tok.span,
                })
            }
            _ => return Err(self.expected(&op_tok, "an op name after `=`")),
        };
        self.expect(&Tok::LParen, "`(` after the op name")?;
        let mut operands = Vec::new();
        let mut operand_spans = Vec::new();
        let mut attrs: Vec<(String, AttrValue)> = Vec::new();
        // (name span, value span) of each attribute.
        let mut attr_spans: Vec<(Span, Span)> = Vec::new();
        if self.eat(&Tok::RParen)?.is_none() {
            loop {
                let t = self.bump()?;
                let what = match t.tok {
                    Tok::Value(_) | Tok::Param(_) if !attrs.is_empty() => {
                        return Err(self.expected(
                            &t,
                            "an attribute like `name=value` (operands come before attributes)",
                        ))
                    }
                    Tok::Value(name) => {
                        operands.push(Operand::Value(Self::resolve_value(scope, name, t.span)?));
                        operand_spans.push(t.span);
                        "operand"
                    }
                    Tok::Param(name) => {
                        operands.push(Operand::Param(self.resolve_param(name, t.span)?));
                        operand_spans.push(t.span);
                        "operand"
                    }
                    Tok::Ident(name) => {
                        self.expect(&Tok::Assign, "`=` and a value after the attribute name")?;
                        let (value, value_span) = self.attr_value()?;
                        attrs.push((name.to_string(), value));
                        attr_spans.push((t.span, value_span));
                        "attribute"
                    }
                    _ => {
                        return Err(self.expected(
                            &t,
                            "an operand (`%value` or `@param`) or an attribute (`name=value`)",
                        ))
                    }
                };
                let sep = self.bump()?;
                match sep.tok {
                    Tok::Comma => {}
                    Tok::RParen => break,
                    _ => return Err(self.expected(&sep, &format!("`)` or `,` after {what}"))),
                }
            }
        }
        let op = Op::from_parts(op_name, &attrs)
            .map_err(|e| Self::op_error(e, op_tok.span, &attrs, &attr_spans))?;
        self.expect(&Tok::Colon, "`:` and the result types after `)`")?;
        let mut types = Vec::new();
        let mut type_spans = Vec::new();
        loop {
            let (ty, span) = self.ty()?;
            types.push(ty);
            type_spans.push(span);
            if self.eat(&Tok::Comma)?.is_none() {
                break;
            }
        }
        if types.len() != results.len() {
            let first = type_spans.first().copied().unwrap_or_default();
            let last = type_spans.last().copied().unwrap_or_default();
            return Err(ParseError::ResultTypeCount {
                results: results.len(),
                types: types.len(),
                span: first.to(last),
            });
        }
        let mut result_ids = Vec::with_capacity(results.len());
        for ((name, span), ty) in results.into_iter().zip(types) {
            let id = f.add_value(name, ty);
            scope.insert(name, (id, span));
            result_ids.push(id);
        }
        f.body.push(Instr {
            op,
            operands,
            results: result_ids,
        });
        spans.instrs.push(InstrSpans {
            op: op_tok.span,
            operands: operand_spans,
            results: type_spans,
        });
        Ok(())
    }

    /// Points an [`OpError`] at the attribute it is about (or the op name).
    fn op_error(
        error: OpError,
        op_span: Span,
        attrs: &[(String, AttrValue)],
        attr_spans: &[(Span, Span)],
    ) -> ParseError {
        let find = |name: &str, last: bool| {
            let mut it = attrs.iter().zip(attr_spans).filter(|((n, _), _)| n == name);
            let hit = if last { it.next_back() } else { it.next() };
            hit.map(|(_, spans)| *spans)
        };
        let span = match &error {
            OpError::UnknownOp(_) | OpError::MissingAttr { .. } => Some(op_span),
            OpError::UnknownAttr { attr, .. } => find(attr, false).map(|s| s.0),
            OpError::DuplicateAttr { attr } => find(attr, true).map(|s| s.0),
            OpError::BadAttr { attr, .. } => find(attr, false).map(|s| s.1),
        };
        ParseError::OpAttr {
            error,
            span: span.unwrap_or(op_span),
        }
    }

    /// An attribute value: number, `true`/`false`, `inf`/`nan`, identifier,
    /// string, or list of integers.
    fn attr_value(&mut self) -> Result<(AttrValue, Span), ParseError> {
        let t = self.bump()?;
        let value = match t.tok {
            Tok::Minus => {
                let n = self.bump()?;
                let span = t.span.to(n.span);
                let v = match n.tok {
                    Tok::Int(text) => AttrValue::Int(Self::int_value(text, true, span)?),
                    Tok::Float(text) => AttrValue::Float(Self::float_value(text, true, span)?),
                    Tok::Ident("inf") => AttrValue::Float(f64::NEG_INFINITY),
                    Tok::Ident("nan") => AttrValue::Float(-f64::NAN),
                    Tok::Word(text) => {
                        return Err(Self::bad_number(&format!("-{text}"), "not a number", span))
                    }
                    _ => return Err(self.expected(&n, "a number after `-`")),
                };
                return Ok((v, span));
            }
            Tok::Int(text) => AttrValue::Int(Self::int_value(text, false, t.span)?),
            Tok::Float(text) => AttrValue::Float(Self::float_value(text, false, t.span)?),
            Tok::Word(text) => return Err(Self::bad_number(text, "not a number", t.span)),
            Tok::Ident("true") => AttrValue::Bool(true),
            Tok::Ident("false") => AttrValue::Bool(false),
            Tok::Ident("inf") => AttrValue::Float(f64::INFINITY),
            Tok::Ident("nan") => AttrValue::Float(f64::NAN),
            Tok::Ident(name) => AttrValue::Ident(name.to_string()),
            Tok::Str(ref s) => AttrValue::Str(s.clone()),
            Tok::LBracket => return self.int_list(t.span),
            _ => {
                return Err(self.expected(
                    &t,
                    "an attribute value (a number, `true`, `false`, a name, a string or a list of integers)",
                ))
            }
        };
        Ok((value, t.span))
    }

    /// The rest of `[1, -2, 3]` after the `[`.
    fn int_list(&mut self, open: Span) -> Result<(AttrValue, Span), ParseError> {
        let mut items = Vec::new();
        if let Some(close) = self.eat(&Tok::RBracket)? {
            return Ok((AttrValue::Ints(items), open.to(close)));
        }
        loop {
            let t = self.bump()?;
            let (neg, n) = if t.tok == Tok::Minus {
                (true, self.bump()?)
            } else {
                (false, t.clone())
            };
            match n.tok {
                Tok::Int(text) => items.push(Self::int_value(text, neg, t.span.to(n.span))?),
                Tok::Word(text) => return Err(Self::bad_number(text, "not a number", n.span)),
                _ => return Err(self.expected(&n, "an integer in the list")),
            }
            let sep = self.bump()?;
            match sep.tok {
                Tok::Comma => {}
                Tok::RBracket => return Ok((AttrValue::Ints(items), open.to(sep.span))),
                _ => return Err(self.expected(&sep, "`,` or `]` after list item")),
            }
        }
    }
}
