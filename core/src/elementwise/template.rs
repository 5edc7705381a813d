//! Filling the tables' WGSL templates.

/// `template` with every `{key}` replaced by its value in `args`, in one pass
/// (a value is never rescanned, so a value that contains braces stays as is).
/// A `{` that opens no known key is copied unchanged.
pub(super) fn fill(template: &str, args: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let hit = args
            .iter()
            .find(|(key, _)| after.starts_with(key) && after[key.len()..].starts_with('}'));
        match hit {
            Some((key, value)) => {
                out.push_str(value);
                rest = &after[key.len() + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::fill;

    #[test]
    fn fills_each_key_once() {
        assert_eq!(
            fill("({a} + {b})", &[("a", "x"), ("b", "{a}")]),
            "(x + {a})"
        );
        assert_eq!(fill("f({x}) {y}", &[("x", "1")]), "f(1) {y}");
    }
}
