//! The lexer: turns source text into tokens on demand, skipping whitespace and
//! `#` comments.

use crate::text::error::ParseError;
use crate::text::source_map::Span;

/// The kind of a token, borrowing its text from the source where possible.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok<'s> {
    /// `[A-Za-z_][A-Za-z0-9_.]*`: names, keywords, dtypes, `true`, `inf`, ...
    Ident(&'s str),
    /// Decimal digits.
    Int(&'s str),
    /// Digits with a fraction and/or an exponent: `0.5`, `1e-5`, `2.5E+3`.
    Float(&'s str),
    /// A digit-led word that is not a number (`0abc`, `1.2.3`, `10x`); valid as
    /// a param name in `param` declarations, a bad number everywhere else.
    Word(&'s str),
    /// `%name`: the name without the sigil.
    Value(&'s str),
    /// `@name`: the name without the sigil.
    Param(&'s str),
    /// A string literal, escapes decoded.
    Str(String),
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `,`
    Comma,
    /// `:`
    Colon,
    /// `=`
    Assign,
    /// `->`
    Arrow,
    /// `<=`
    Le,
    /// `-`
    Minus,
    /// The end of the input.
    Eof,
}

/// A token and its span.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Token<'s> {
    /// What it is.
    pub tok: Tok<'s>,
    /// Where it is.
    pub span: Span,
}

/// Longest token text quoted in a message before it is shortened.
const MAX_QUOTED: usize = 40;

/// Describes a token for "found ..." messages: `` `:` `` or `end of file`.
pub(crate) fn describe(token: &Token<'_>, source: &str) -> String {
    if token.tok == Tok::Eof {
        return "end of file".to_string();
    }
    let text = token.span.slice(source).unwrap_or("?");
    format!("`{}`", shorten(text))
}

/// `text`, cut to [`MAX_QUOTED`] characters with `...` appended if longer.
pub(crate) fn shorten(text: &str) -> String {
    if text.chars().count() <= MAX_QUOTED {
        text.to_string()
    } else {
        let cut: String = text.chars().take(MAX_QUOTED).collect();
        format!("{cut}...")
    }
}

/// Whether `c` may continue an identifier or name.
fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'.'
}

/// Whether `text` is a valid `%value`/`@param` name: `[A-Za-z0-9_][A-Za-z0-9_.]*`.
pub(crate) fn is_sigil_name(text: &str) -> bool {
    let b = text.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|&c| is_name_char(c))
}

/// An on-demand lexer over one source text.
pub(crate) struct Lexer<'s> {
    src: &'s str,
    pos: usize,
    /// End of the last token returned (where end-of-file errors point).
    last_end: usize,
}

impl<'s> Lexer<'s> {
    /// A lexer at the start of `src`.
    pub fn new(src: &'s str) -> Self {
        Lexer {
            src,
            pos: 0,
            last_end: 0,
        }
    }

    fn byte(&self, at: usize) -> Option<u8> {
        self.src.as_bytes().get(at).copied()
    }

    fn skip_trivia(&mut self) {
        let bytes = self.src.as_bytes();
        while let Some(&c) = bytes.get(self.pos) {
            match c {
                b' ' | b'\t' | b'\r' | b'\n' => self.pos += 1,
                b'#' => {
                    while let Some(&c) = bytes.get(self.pos) {
                        if c == b'\n' {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    /// The next token; [`Tok::Eof`] (repeatedly) at the end.
    pub fn next_token(&mut self) -> Result<Token<'s>, ParseError> {
        self.skip_trivia();
        let start = self.pos;
        let Some(c) = self.byte(start) else {
            return Ok(Token {
                tok: Tok::Eof,
                span: Span::at(self.last_end),
            });
        };
        let tok = match c {
            b'(' => self.punct(Tok::LParen, 1),
            b')' => self.punct(Tok::RParen, 1),
            b'[' => self.punct(Tok::LBracket, 1),
            b']' => self.punct(Tok::RBracket, 1),
            b'{' => self.punct(Tok::LBrace, 1),
            b'}' => self.punct(Tok::RBrace, 1),
            b',' => self.punct(Tok::Comma, 1),
            b':' => self.punct(Tok::Colon, 1),
            b'=' => self.punct(Tok::Assign, 1),
            b'-' if self.byte(start + 1) == Some(b'>') => self.punct(Tok::Arrow, 2),
            b'-' => self.punct(Tok::Minus, 1),
            b'<' if self.byte(start + 1) == Some(b'=') => self.punct(Tok::Le, 2),
            b'%' => self.sigil_name('%', "value")?,
            b'@' => self.sigil_name('@', "param")?,
            b'"' => self.string()?,
            b'0'..=b'9' => self.number(),
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let end = self.name_end(start);
                self.pos = end;
                Tok::Ident(&self.src[start..end])
            }
            _ => {
                let ch = self.src[start..].chars().next().unwrap_or('\u{fffd}');
                return Err(ParseError::UnexpectedChar {
                    ch,
                    span: Span::new(start, start + ch.len_utf8()),
                });
            }
        };
        self.last_end = self.pos;
        Ok(Token {
            tok,
            span: Span::new(start, self.pos),
        })
    }

    fn punct(&mut self, tok: Tok<'s>, len: usize) -> Tok<'s> {
        self.pos += len;
        tok
    }

    /// The end of the run of name characters starting at `from`.
    fn name_end(&self, from: usize) -> usize {
        let bytes = self.src.as_bytes();
        let mut end = from;
        while end < bytes.len() && is_name_char(bytes[end]) {
            end += 1;
        }
        end
    }

    fn sigil_name(&mut self, sigil: char, what: &'static str) -> Result<Tok<'s>, ParseError> {
        let start = self.pos;
        let name_start = start + 1;
        let first_ok = self
            .byte(name_start)
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_');
        if !first_ok {
            return Err(ParseError::MissingName {
                what,
                sigil,
                span: Span::new(start, name_start),
            });
        }
        let end = self.name_end(name_start);
        self.pos = end;
        let name = &self.src[name_start..end];
        Ok(if sigil == '%' {
            Tok::Value(name)
        } else {
            Tok::Param(name)
        })
    }

    fn digits_end(&self, from: usize) -> usize {
        let bytes = self.src.as_bytes();
        let mut end = from;
        while end < bytes.len() && bytes[end].is_ascii_digit() {
            end += 1;
        }
        end
    }

    fn number(&mut self) -> Tok<'s> {
        let start = self.pos;
        let mut end = self.digits_end(start);
        let mut float = false;
        if self.byte(end) == Some(b'.') && self.byte(end + 1).is_some_and(|c| c.is_ascii_digit()) {
            end = self.digits_end(end + 1);
            float = true;
        }
        if matches!(self.byte(end), Some(b'e' | b'E')) {
            let digits_at = match self.byte(end + 1) {
                Some(b'+' | b'-') => end + 2,
                _ => end + 1,
            };
            if self.byte(digits_at).is_some_and(|c| c.is_ascii_digit()) {
                end = self.digits_end(digits_at);
                float = true;
            }
        }
        if self.byte(end).is_some_and(is_name_char) {
            end = self.name_end(end);
            self.pos = end;
            return Tok::Word(&self.src[start..end]);
        }
        self.pos = end;
        let text = &self.src[start..end];
        if float {
            Tok::Float(text)
        } else {
            Tok::Int(text)
        }
    }

    fn string(&mut self) -> Result<Tok<'s>, ParseError> {
        let start = self.pos;
        let mut out = String::new();
        let mut chars = self.src[start + 1..].char_indices();
        let unterminated = |src: &str| {
            let line_end = src[start..].find('\n').map_or(src.len(), |i| start + i);
            ParseError::UnterminatedString {
                span: Span::new(start, line_end),
            }
        };
        loop {
            let Some((i, c)) = chars.next() else {
                return Err(unterminated(self.src));
            };
            let at = start + 1 + i;
            match c {
                '"' => {
                    self.pos = at + 1;
                    return Ok(Tok::Str(out));
                }
                '\n' => return Err(unterminated(self.src)),
                '\\' => {
                    let Some((_, e)) = chars.next() else {
                        return Err(unterminated(self.src));
                    };
                    let decoded = match e {
                        '"' => '"',
                        '\\' => '\\',
                        '\'' => '\'',
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        '0' => '\0',
                        'u' => self.unicode_escape(at, &mut chars)?,
                        '\n' => return Err(unterminated(self.src)),
                        other => {
                            return Err(ParseError::BadEscape {
                                escape: format!("\\{other}"),
                                span: Span::new(at, at + 1 + other.len_utf8()),
                            })
                        }
                    };
                    out.push(decoded);
                }
                c => out.push(c),
            }
        }
    }

    /// Decodes the `{HEX}` part of `\u{HEX}`. `at` is the offset of the
    /// backslash; `chars` continues right after the `u`.
    fn unicode_escape(
        &self,
        at: usize,
        chars: &mut std::str::CharIndices<'_>,
    ) -> Result<char, ParseError> {
        let mut end = at + 2;
        let mut hex = String::new();
        let mut ok = false;
        for (n, (_, c)) in chars.by_ref().enumerate() {
            end += c.len_utf8();
            match (n, c) {
                (0, '{') => {}
                (0, _) => break,
                (_, '}') => {
                    ok = !hex.is_empty();
                    break;
                }
                (_, c) if c.is_ascii_hexdigit() && hex.len() < 6 => hex.push(c),
                _ => break,
            }
        }
        let bad = || ParseError::BadEscape {
            escape: shorten(self.src.get(at..end).unwrap_or("\\u")),
            span: Span::new(at, end.min(self.src.len())),
        };
        if !ok {
            return Err(bad());
        }
        u32::from_str_radix(&hex, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex(src: &str) -> Result<Vec<Tok<'_>>, ParseError> {
        let mut l = Lexer::new(src);
        let mut out = Vec::new();
        loop {
            let t = l.next_token()?;
            if t.tok == Tok::Eof {
                return Ok(out);
            }
            out.push(t.tok);
        }
    }

    #[test]
    fn tokens() {
        let toks = lex(
            "model m # comment\n%x, %0 = @layers.0.wq(-3, 1e-5, 2.5, [1]) -> <= {}: \"a\\\"b\"",
        )
        .unwrap();
        assert_eq!(
            toks,
            vec![
                Tok::Ident("model"),
                Tok::Ident("m"),
                Tok::Value("x"),
                Tok::Comma,
                Tok::Value("0"),
                Tok::Assign,
                Tok::Param("layers.0.wq"),
                Tok::LParen,
                Tok::Minus,
                Tok::Int("3"),
                Tok::Comma,
                Tok::Float("1e-5"),
                Tok::Comma,
                Tok::Float("2.5"),
                Tok::Comma,
                Tok::LBracket,
                Tok::Int("1"),
                Tok::RBracket,
                Tok::RParen,
                Tok::Arrow,
                Tok::Le,
                Tok::LBrace,
                Tok::RBrace,
                Tok::Colon,
                Tok::Str("a\"b".into()),
            ]
        );
    }

    #[test]
    fn numbers_and_words() {
        assert_eq!(lex("12").unwrap(), vec![Tok::Int("12")]);
        assert_eq!(lex("1e300").unwrap(), vec![Tok::Float("1e300")]);
        assert_eq!(lex("5E+3").unwrap(), vec![Tok::Float("5E+3")]);
        assert_eq!(lex("1.").unwrap(), vec![Tok::Word("1.")]);
        assert_eq!(lex("0abc").unwrap(), vec![Tok::Word("0abc")]);
        assert_eq!(lex("1.2.3").unwrap(), vec![Tok::Word("1.2.3")]);
        assert_eq!(lex("1e").unwrap(), vec![Tok::Word("1e")]);
        assert_eq!(lex("1e-").unwrap(), vec![Tok::Word("1e"), Tok::Minus]);
        assert_eq!(
            lex("3,4").unwrap(),
            vec![Tok::Int("3"), Tok::Comma, Tok::Int("4")]
        );
    }

    #[test]
    fn strings() {
        assert_eq!(
            lex(r#""\n\t\r\0\\\'\u{1F600}""#).unwrap(),
            vec![Tok::Str("\n\t\r\0\\'\u{1F600}".into())]
        );
        assert_eq!(lex("\"é\"").unwrap(), vec![Tok::Str("é".into())]);
        assert!(matches!(
            lex("\"abc\nx\""),
            Err(ParseError::UnterminatedString { span }) if span == Span::new(0, 4)
        ));
        assert!(matches!(
            lex("x \"abc"),
            Err(ParseError::UnterminatedString { span }) if span == Span::new(2, 6)
        ));
        assert!(matches!(
            lex("\"a\\q\""),
            Err(ParseError::BadEscape { ref escape, span }) if escape == "\\q" && span == Span::new(2, 4)
        ));
        for bad in [
            r#""\u{}""#,
            r#""\u{110000}""#,
            r#""\u{D800}""#,
            r#""\u1234""#,
            r#""\u{1234567}""#,
            "\"\\u{12",
        ] {
            assert!(
                matches!(
                    lex(bad),
                    Err(ParseError::BadEscape { .. } | ParseError::UnterminatedString { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn errors() {
        assert!(matches!(
            lex("a $"),
            Err(ParseError::UnexpectedChar { ch: '$', span }) if span == Span::new(2, 3)
        ));
        assert!(matches!(
            lex("é"),
            Err(ParseError::UnexpectedChar { ch: 'é', span }) if span == Span::new(0, 2)
        ));
        assert!(matches!(
            lex("% x"),
            Err(ParseError::MissingName { sigil: '%', span, .. }) if span == Span::new(0, 1)
        ));
        assert!(matches!(
            lex("@.x"),
            Err(ParseError::MissingName { sigil: '@', .. })
        ));
        assert!(matches!(
            lex("<"),
            Err(ParseError::UnexpectedChar { ch: '<', .. })
        ));
    }

    #[test]
    fn eof_points_after_last_token() {
        let mut l = Lexer::new("ab  # c\n\n");
        assert_eq!(l.next_token().unwrap().span, Span::new(0, 2));
        let eof = l.next_token().unwrap();
        assert_eq!(eof.tok, Tok::Eof);
        assert_eq!(eof.span, Span::at(2));
    }

    #[test]
    fn name_rules() {
        assert!(is_sigil_name("0"));
        assert!(is_sigil_name("0.a"));
        assert!(!is_sigil_name(".a"));
        assert!(!is_sigil_name("a-b"));
        assert_eq!(shorten("abc"), "abc");
        assert_eq!(shorten(&"x".repeat(50)), format!("{}...", "x".repeat(40)));
    }
}
