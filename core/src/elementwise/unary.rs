//! [`UnaryFn`]: the table of unary element-wise functions.

use super::math;
use super::template::fill;

/// Defines [`UnaryFn`] from one table. Per function: `name` (its name in a
/// `fused` expression and in the kernel library), `op` (the IR op that applies
/// it, with the attribute that picks it when several functions share the op),
/// `math` (the `f32` reference), `wgsl` (the kernel expression, `{x}` the
/// argument), and optionally `integers: true` (also defined on integers) and
/// `helper` (a WGSL function the expression calls that is not in
/// [`super::WGSL_ACTIVATIONS`], emitted only by kernels that apply it).
macro_rules! unary_fns {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident {
            name: $name:literal,
            op: $op:literal $([$attr:literal = $value:literal])?,
            math: $math:expr,
            wgsl: $wgsl:literal,
            $(integers: $integers:literal,)?
            $(helper: $helper:literal,)?
        }
    )*) => {
        /// A unary element-wise function (see [`crate::elementwise`]).
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum UnaryFn {
            $($(#[doc = $doc])* $variant,)*
        }

        impl UnaryFn {
            /// Every unary function, in table order.
            pub const ALL: &'static [UnaryFn] = &[$(UnaryFn::$variant),*];

            /// The function's name in a `fused` expression (`gelu_erf`).
            pub fn name(self) -> &'static str {
                match self {
                    $(UnaryFn::$variant => $name,)*
                }
            }

            /// The name of the IR op that applies the function (`gelu`).
            pub fn op_name(self) -> &'static str {
                match self {
                    $(UnaryFn::$variant => $op,)*
                }
            }

            /// The attribute, and its value, that picks this function among
            /// those sharing its op name (`approx=erf` for `gelu_erf`).
            pub fn op_attr(self) -> Option<(&'static str, &'static str)> {
                match self {
                    $(UnaryFn::$variant => [$(($attr, $value))?].first().copied(),)*
                }
            }

            /// Whether the function is also defined on integers (wrapping).
            pub fn takes_integers(self) -> bool {
                match self {
                    $(UnaryFn::$variant => [$($integers,)? false][0],)*
                }
            }

            /// Applies the function to one `f32`: the reference every
            /// implementation of it must match.
            pub fn apply(self, x: f32) -> f32 {
                let f: fn(f32) -> f32 = match self {
                    $(UnaryFn::$variant => $math,)*
                };
                f(x)
            }

            /// The WGSL expression applying the function to the `f32`
            /// expression `x`. It may call the helpers of
            /// [`super::WGSL_ACTIVATIONS`] and [`UnaryFn::wgsl_helper`].
            pub fn wgsl(self, x: &str) -> String {
                let template = match self {
                    $(UnaryFn::$variant => $wgsl,)*
                };
                fill(template, &[("x", x)])
            }

            /// The WGSL function [`UnaryFn::wgsl`] calls beyond those of
            /// [`super::WGSL_ACTIVATIONS`], if any.
            pub fn wgsl_helper(self) -> Option<&'static str> {
                match self {
                    $(UnaryFn::$variant => [$($helper)?].first().copied(),)*
                }
            }
        }
    };
}

unary_fns! {
    /// `-x`.
    Neg {
        name: "neg",
        op: "neg",
        math: |x| -x,
        wgsl: "(-{x})",
        integers: true,
    }
    /// `exp(x)`.
    Exp {
        name: "exp",
        op: "exp",
        math: f32::exp,
        wgsl: "exp({x})",
    }
    /// `x · sigmoid(x)`.
    Silu {
        name: "silu",
        op: "silu",
        math: math::silu,
        wgsl: "seam_silu({x})",
    }
    /// Exact GELU, `0.5·x·(1 + erf(x/√2))` (PyTorch `gelu`).
    GeluErf {
        name: "gelu_erf",
        op: "gelu" ["approx" = "erf"],
        math: math::gelu_erf,
        wgsl: "seam_gelu_erf({x})",
    }
    /// Tanh-approximated GELU, `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`
    /// (PyTorch `gelu(approximate="tanh")`).
    GeluTanh {
        name: "gelu_tanh",
        op: "gelu" ["approx" = "tanh"],
        math: math::gelu_tanh,
        wgsl: "seam_gelu_tanh({x})",
    }
    /// `1 / (1 + exp(-x))`.
    Sigmoid {
        name: "sigmoid",
        op: "sigmoid",
        math: math::sigmoid,
        wgsl: "seam_sigmoid({x})",
    }
    /// `tanh(x)`.
    Tanh {
        name: "tanh",
        op: "tanh",
        math: f32::tanh,
        wgsl: "seam_tanh({x})",
    }
    /// `sqrt(x)`.
    Sqrt {
        name: "sqrt",
        op: "sqrt",
        math: f32::sqrt,
        wgsl: "sqrt({x})",
    }
    /// `1 / x`.
    Recip {
        name: "recip",
        op: "recip",
        math: |x| 1.0 / x,
        wgsl: "(1.0 / {x})",
    }
    /// Squared ReLU, `max(x, 0)²` (Primer, Nemotron).
    Relu2 {
        name: "relu2",
        op: "relu2",
        math: |x| x.max(0.0) * x.max(0.0),
        wgsl: "seam_relu2({x})",
        helper: "fn seam_relu2(x: f32) -> f32 {\n    let r = max(x, 0.0);\n    return r * r;\n}\n",
    }
}

impl UnaryFn {
    /// The function named `name` in a `fused` expression.
    pub fn from_name(name: &str) -> Option<UnaryFn> {
        UnaryFn::ALL.iter().copied().find(|f| f.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::UnaryFn;

    #[test]
    fn names_are_unique_and_read_back() {
        for &f in UnaryFn::ALL {
            assert_eq!(UnaryFn::from_name(f.name()), Some(f));
        }
        assert_eq!(UnaryFn::GeluTanh.op_name(), "gelu");
        assert_eq!(UnaryFn::GeluTanh.op_attr(), Some(("approx", "tanh")));
        assert_eq!(UnaryFn::Silu.op_attr(), None);
        assert!(UnaryFn::Neg.takes_integers() && !UnaryFn::Exp.takes_integers());
    }

    #[test]
    fn wgsl_expressions() {
        assert_eq!(UnaryFn::Neg.wgsl("a"), "(-a)");
        assert_eq!(UnaryFn::GeluErf.wgsl("a"), "seam_gelu_erf(a)");
        assert_eq!(UnaryFn::Recip.wgsl("a"), "(1.0 / a)");
        assert_eq!(UnaryFn::Exp.wgsl_helper(), None);
    }
}
