//! Generated ids to text, a token at a time: what is safe to send so far,
//! and where a stop string ends the completion. Text is held back while it
//! ends in an incomplete UTF-8 sequence or could be the start of a stop
//! string, so a streamed completion never shows what a stop string removes.

use std::sync::Arc;

use super::super::tokenizer::TextTokenizer;
use super::super::CliError;

/// The text of one completion as its tokens arrive.
pub struct TextTracker {
    tokenizer: Arc<TextTokenizer>,
    stops: Vec<String>,
    ids: Vec<i32>,
    /// Bytes of the decoded text already handed out.
    sent: usize,
}

/// What one token added.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Piece {
    /// New text, safe to send.
    pub text: String,
    /// A stop string was generated: the completion ends (without it).
    pub stopped: bool,
}

impl TextTracker {
    /// A tracker that ends at any of `stops` (none empty).
    pub fn new(tokenizer: Arc<TextTokenizer>, stops: Vec<String>) -> TextTracker {
        TextTracker {
            tokenizer,
            stops,
            ids: Vec::new(),
            sent: 0,
        }
    }

    /// Adds a generated token; returns the text now safe to send.
    pub fn push(&mut self, id: i32) -> Result<Piece, CliError> {
        self.ids.push(id);
        let text = self.tokenizer.decode(&self.ids)?;
        if let Some(at) = self
            .stops
            .iter()
            .filter_map(|s| text.get(self.sent..).and_then(|t| t.find(s.as_str())))
            .min()
        {
            let end = self.sent + at;
            let piece = text[self.sent..end].to_string();
            self.sent = end;
            return Ok(Piece {
                text: piece,
                stopped: true,
            });
        }
        if text.ends_with('\u{FFFD}') {
            return Ok(Piece::default());
        }
        let held = self
            .stops
            .iter()
            .map(|s| longest_prefix_suffix(&text, s))
            .max()
            .unwrap_or(0);
        Ok(Piece {
            text: self.take(&text, text.len() - held),
            stopped: false,
        })
    }

    /// The text held back, when the completion ends without a stop string.
    pub fn finish(&mut self) -> Result<String, CliError> {
        let text = self.tokenizer.decode(&self.ids)?;
        Ok(self.take(&text, text.len()))
    }

    /// The text from what was sent to `end` (nothing if a decoder rewrote
    /// what was sent already).
    fn take(&mut self, text: &str, end: usize) -> String {
        match text.get(self.sent..end) {
            Some(piece) => {
                self.sent = end;
                piece.to_string()
            }
            None => String::new(),
        }
    }
}

/// The length of the longest proper prefix of `stop` that `text` ends with.
fn longest_prefix_suffix(text: &str, stop: &str) -> usize {
    (1..stop.len())
        .rev()
        .filter(|&n| stop.is_char_boundary(n))
        .find(|&n| text.ends_with(&stop[..n]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_of_stop_strings_are_held_back() {
        assert_eq!(longest_prefix_suffix("abc END", "END!"), 3);
        assert_eq!(longest_prefix_suffix("abc EN", "END"), 2);
        assert_eq!(longest_prefix_suffix("abc", "END"), 0);
    }
}
