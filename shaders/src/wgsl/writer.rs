//! [`WgslWriter`], the string builder every generator writes its WGSL with: it
//! owns the source, tracks the indentation of nested blocks, and writes whole
//! lines infallibly (a `String` cannot fail to grow), so generators need neither
//! `writeln!` nor its ignored `Result`.

use std::fmt;

/// One level of indentation.
const INDENT: &str = "    ";

/// Writes one formatted line to a [`WgslWriter`]:
/// `wgsl!(w, "let x_{r} = a[{index}];")`, formatted as by `format!`.
macro_rules! wgsl {
    ($writer:expr, $($format:tt)+) => {
        $writer.line(format_args!($($format)+))
    };
}
pub(crate) use wgsl;

/// WGSL source under construction, written line by line at the current depth.
#[derive(Debug, Default)]
pub(crate) struct WgslWriter {
    src: String,
    depth: usize,
}

impl WgslWriter {
    /// An empty source at depth 0.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Writes `text` as one line, indented to the current depth.
    pub(crate) fn line(&mut self, text: impl fmt::Display) {
        self.indent();
        self.src.push_str(&text.to_string());
        self.src.push('\n');
    }

    /// Writes every line of `text` indented to the current depth; blank lines
    /// stay empty.
    pub(crate) fn lines(&mut self, text: &str) {
        for line in text.lines() {
            if line.trim().is_empty() {
                self.src.push('\n');
            } else {
                self.line(line);
            }
        }
    }

    /// Writes `header` (a line ending in `{`) and indents what follows until
    /// the matching [`WgslWriter::close`].
    pub(crate) fn open(&mut self, header: impl fmt::Display) {
        self.line(header);
        self.depth += 1;
    }

    /// Ends the innermost block opened with [`WgslWriter::open`]: `}` one level out.
    pub(crate) fn close(&mut self) {
        debug_assert!(self.depth > 0, "close without open");
        self.depth = self.depth.saturating_sub(1);
        self.line("}");
    }

    /// The source written so far.
    pub(crate) fn finish(self) -> String {
        debug_assert_eq!(self.depth, 0, "a block left open");
        self.src
    }

    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.src.push_str(INDENT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_indent_their_lines() {
        let mut w = WgslWriter::new();
        let n = 3;
        w.open(format_args!("for (var i = 0u; i < {n}u; i += 1u) {{"));
        wgsl!(w, "x[i] = {}.0;", n);
        w.close();
        assert_eq!(
            w.finish(),
            "for (var i = 0u; i < 3u; i += 1u) {\n    x[i] = 3.0;\n}\n"
        );
    }

    #[test]
    fn lines_keep_blank_lines_empty() {
        let mut w = WgslWriter::new();
        w.open("{");
        w.lines("let a = 1u;\n  \nlet b = a;");
        w.close();
        assert_eq!(w.finish(), "{\n    let a = 1u;\n\n    let b = a;\n}\n");
    }
}
