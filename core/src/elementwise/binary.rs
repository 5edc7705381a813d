//! [`BinaryFn`]: the table of binary element-wise functions.

use super::template::fill;

/// Defines [`BinaryFn`] from one table. Per function: `name` (its name in the
/// IR, in a `fused` expression and in the kernel library), `math` (the `f32`
/// reference), `wgsl` (the kernel expression: `{a}` and `{b}` the arguments,
/// `{0}` and `{1}` zero and one in their type), and optionally
/// `in_fused: false` (the function may not appear in a `fused` expression).
macro_rules! binary_fns {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident {
            name: $name:literal,
            math: $math:expr,
            wgsl: $wgsl:literal,
            $(in_fused: $in_fused:literal,)?
        }
    )*) => {
        /// A binary element-wise function (see [`crate::elementwise`]). On integers
        /// every function is exact, with wrapping overflow.
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum BinaryFn {
            $($(#[doc = $doc])* $variant,)*
        }

        impl BinaryFn {
            /// Every binary function, in table order.
            pub const ALL: &'static [BinaryFn] = &[$(BinaryFn::$variant),*];

            /// The function's name (`add`), in the IR and in a `fused` expression.
            pub fn name(self) -> &'static str {
                match self {
                    $(BinaryFn::$variant => $name,)*
                }
            }

            /// Whether the function may appear in a `fused` expression.
            pub fn in_fused(self) -> bool {
                match self {
                    $(BinaryFn::$variant => [$($in_fused,)? true][0],)*
                }
            }

            /// Applies the function to two `f32`s: the reference every
            /// implementation of it must match.
            pub fn apply(self, a: f32, b: f32) -> f32 {
                let f: fn(f32, f32) -> f32 = match self {
                    $(BinaryFn::$variant => $math,)*
                };
                f(a, b)
            }

            /// The WGSL expression applying the function to the expressions
            /// `a` and `b`, whose type writes zero as `zero` and one as `one`.
            pub fn wgsl(self, a: &str, b: &str, zero: &str, one: &str) -> String {
                let template = match self {
                    $(BinaryFn::$variant => $wgsl,)*
                };
                fill(template, &[("a", a), ("b", b), ("0", zero), ("1", one)])
            }
        }
    };
}

binary_fns! {
    /// `a + b`.
    Add {
        name: "add",
        math: |a, b| a + b,
        wgsl: "({a} + {b})",
    }
    /// `a - b`.
    Sub {
        name: "sub",
        math: |a, b| a - b,
        wgsl: "({a} - {b})",
    }
    /// `a * b`.
    Mul {
        name: "mul",
        math: |a, b| a * b,
        wgsl: "({a} * {b})",
    }
    /// `a / b` (integers truncate toward zero).
    Div {
        name: "div",
        math: |a, b| a / b,
        wgsl: "({a} / {b})",
    }
    /// 1 where `a == b`, else 0, in the operands' type.
    Eq {
        name: "eq",
        math: |a, b| if a == b { 1.0 } else { 0.0 },
        wgsl: "select({0}, {1}, {a} == {b})",
        in_fused: false,
    }
    /// `max(a, b)`.
    Max {
        name: "max",
        math: f32::max,
        wgsl: "max({a}, {b})",
    }
    /// `min(a, b)`.
    Min {
        name: "min",
        math: f32::min,
        wgsl: "min({a}, {b})",
    }
}

impl BinaryFn {
    /// The function named `name`.
    pub fn from_name(name: &str) -> Option<BinaryFn> {
        BinaryFn::ALL.iter().copied().find(|f| f.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::BinaryFn;

    #[test]
    fn names_read_back_and_math_matches() {
        for &f in BinaryFn::ALL {
            assert_eq!(BinaryFn::from_name(f.name()), Some(f));
        }
        assert_eq!(BinaryFn::Sub.apply(5.0, 2.0), 3.0);
        assert_eq!(BinaryFn::Eq.apply(2.0, 2.0), 1.0);
        assert_eq!(BinaryFn::Min.apply(2.0, -1.0), -1.0);
        assert!(!BinaryFn::Eq.in_fused() && BinaryFn::Div.in_fused());
    }

    #[test]
    fn wgsl_expressions() {
        assert_eq!(BinaryFn::Add.wgsl("x", "y", "0.0", "1.0"), "(x + y)");
        assert_eq!(
            BinaryFn::Eq.wgsl("x", "y", "0i", "1i"),
            "select(0i, 1i, x == y)"
        );
    }
}
