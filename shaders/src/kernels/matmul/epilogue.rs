//! [`Epilogue`]: what a matrix product does with its accumulators before
//! storing them.

use seam_core::GatedAct;

/// What a product does with its accumulators before storing them.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Epilogue {
    /// Store `a·b`.
    #[default]
    None,
    /// Two right operands: store `act(a·b_gate) * (a·b_up)`.
    Gated(GatedAct),
    /// Store `a·b + r[n]` (a bias of `N` values, binding `r`).
    AddBias,
    /// Store `a·b + r[batch?, m, n]` (a residual of the output's shape, binding `r`).
    AddResidual,
}

impl Epilogue {
    /// The gated activation, for a gated epilogue.
    pub fn gated(self) -> Option<GatedAct> {
        match self {
            Epilogue::Gated(act) => Some(act),
            _ => None,
        }
    }

    /// Whether the epilogue reads the addend binding `r`.
    pub fn adds(self) -> bool {
        matches!(self, Epilogue::AddBias | Epilogue::AddResidual)
    }

    /// The right-operand binding names (before any split suffix).
    pub(crate) fn mats(self) -> &'static [&'static str] {
        if self.gated().is_some() {
            &["b_gate", "b_up"]
        } else {
            &["b"]
        }
    }

    /// The kernel-name suffix.
    pub(crate) fn tag(self) -> String {
        match self {
            Epilogue::None => String::new(),
            Epilogue::Gated(act) => format!("_{act:?}").to_lowercase(),
            Epilogue::AddBias => "_bias".into(),
            Epilogue::AddResidual => "_res".into(),
        }
    }

    /// The value stored for one output (a `vec4` of four outputs when `vec4`):
    /// `acc_of(mat)` names the accumulator of right operand `mat`, `r_index` the
    /// addend element (or `vec4`) of this output.
    pub(crate) fn value(
        self,
        acc_of: impl Fn(&str) -> String,
        vec4: bool,
        r_index: &str,
    ) -> String {
        match self {
            Epilogue::None => acc_of("b"),
            Epilogue::Gated(act) => {
                let (gate, up, act) = (acc_of("b_gate"), acc_of("b_up"), act.activation());
                if vec4 {
                    let lanes = ["x", "y", "z", "w"].map(|c| act.wgsl(&format!("{gate}.{c}")));
                    format!("vec4<f32>({}) * {up}", lanes.join(", "))
                } else {
                    format!("{} * {up}", act.wgsl(&gate))
                }
            }
            Epilogue::AddBias | Epilogue::AddResidual => format!("{} + r[{r_index}]", acc_of("b")),
        }
    }
}
