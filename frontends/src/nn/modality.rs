//! Per-modality weights (Mixture-of-Transformers): every token is projected
//! and normalised with the weights of its own modality, chosen by an integer
//! modality id per token.
//!
//! The weights of `E` modalities are stacked on a leading axis. A projection
//! is written either grouped — one `grouped_matmul(x, modality, w)`, each token
//! reading only its modality's matrix — or in the naive masked form: every
//! modality's dense projection of all tokens, each multiplied by its 0/1 mask
//! `cast(eq(modality, e))` and summed (the form the `masked-to-grouped` rule
//! groups). Norms gather each token's weight row in both forms.

use seam_ir::{DType, Dim, ParamId, TensorType, ValueId};

use super::{Built, Project};
use crate::builder::{BuildError, FunctionBuilder};

/// How one function selects each token's modality weights; emitted once per
/// function ([`ModalitySelect::emit`]) and shared by all its projections.
#[derive(Clone, Debug)]
pub(crate) struct ModalitySelect {
    /// `modality: i32[T]`, each token's modality id.
    modality: ValueId,
    /// `unit_norm: f32[d_model]` of ones, the norms' weight before the gathered
    /// per-token weight is applied.
    unit: ValueId,
    /// How projections select.
    form: Selection,
}

/// The two forms of a per-modality projection.
#[derive(Clone, Debug)]
enum Selection {
    /// One `grouped_matmul`.
    Grouped,
    /// Dense products masked by these `f32[T, 1]` 0/1 masks, one per modality.
    Masked(Vec<ValueId>),
}

impl ModalitySelect {
    /// Emits what the projections share: the unit norm weight `[d_model]` and,
    /// with `masked`, `mask.{e} = reshape(cast(eq(modality, e))) : f32[T, 1]`
    /// for each of the `modalities`.
    pub(crate) fn emit(
        f: &mut FunctionBuilder<'_>,
        modality: ValueId,
        rows: &Dim,
        d_model: u64,
        modalities: u64,
        masked: bool,
    ) -> Result<Self, BuildError> {
        let unit = TensorType::new(DType::F32, [d_model]);
        let unit = f.constant("unit_norm", 1.0, unit)?;
        if modalities == 0 {
            return Err(BuildError::NoModalities);
        }
        let mut masks = Vec::new();
        if masked {
            for e in 0..modalities {
                let scalar = TensorType::new(DType::I32, Vec::<u64>::new());
                let id = f.constant(&format!("modality.{e}"), e as f64, scalar)?;
                let hit = f.eq(&format!("is_modality.{e}"), modality, id)?;
                let hit = f.cast(&format!("mask_flat.{e}"), hit, DType::F32)?;
                let column = vec![rows.clone(), Dim::Static(1)];
                masks.push(f.reshape(&format!("mask.{e}"), hit, column)?);
            }
        }
        let form = if masked {
            Selection::Masked(masks)
        } else {
            Selection::Grouped
        };
        Ok(ModalitySelect {
            modality,
            unit,
            form,
        })
    }
}

/// A projection with one `[in, out]` matrix per modality, stacked `[E, in, out]`.
#[derive(Copy, Clone, Debug)]
pub(crate) struct ModalityLinear<'a> {
    /// `[modalities, in, out]`.
    pub weight: ParamId,
    /// The function's modality selection.
    pub select: &'a ModalitySelect,
}

impl Project for ModalityLinear<'_> {
    /// Grouped: `{name} = grouped_matmul(x, modality, weight)`. Masked:
    /// `{name}.w{e} = reshape(slice(weight, e))`, `{name}.m{e} =
    /// matmul(x, {name}.w{e}) * mask.{e}`, summed into `{name}`.
    fn project(&self, f: &mut FunctionBuilder<'_>, name: &str, x: ValueId) -> Built {
        let s = self.select;
        let masks = match &s.form {
            Selection::Grouped => return f.grouped_matmul(name, x, s.modality, self.weight),
            Selection::Masked(masks) => masks,
        };
        let dims = f.type_of(self.weight).shape.0.clone();
        let last = masks.len().saturating_sub(1);
        let mut sum = None;
        for (e, &mask) in masks.iter().enumerate() {
            let n = |part: &str| format!("{name}.{part}{e}");
            let e = e as u64;
            let w = f.slice(&n("slice"), self.weight, 0, e, e + 1)?;
            let w = f.reshape(&n("w"), w, dims[1..].to_vec())?;
            let y = f.matmul(&n("dense"), x, w)?;
            let term = f.mul(&n("masked"), y, mask)?;
            sum = Some(match sum {
                None => term,
                Some(acc) if e as usize == last => f.add(name, acc, term)?,
                Some(acc) => f.add(&n("sum"), acc, term)?,
            });
        }
        sum.ok_or(BuildError::NoModalities)
    }
}

/// RMSNorm with one `[d_model]` weight per modality, stacked `[E, d_model]`:
/// `rms_norm(x, 1) * gather(weight, modality)`.
#[derive(Copy, Clone, Debug)]
pub(crate) struct ModalityNorm {
    /// `[modalities, d_model]`.
    pub weight: ParamId,
    /// Added to the mean square before the square root.
    pub eps: f32,
}

impl ModalityNorm {
    /// Emits `{name}.unit = rms_norm(x, unit_norm)`, `{name}.weight =
    /// gather(weight, modality)` and `{name}` their product.
    pub(crate) fn emit(
        &self,
        f: &mut FunctionBuilder<'_>,
        name: &str,
        x: ValueId,
        select: &ModalitySelect,
    ) -> Built {
        let normed = f.rms_norm(&format!("{name}.unit"), x, select.unit, self.eps)?;
        let w = f.gather(&format!("{name}.weight"), self.weight, select.modality)?;
        f.mul(name, normed, w)
    }
}
