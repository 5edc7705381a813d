//! Binding an entry point's symbolic dims from its inputs' shapes and the
//! session's stored length.

use std::collections::BTreeMap;

use crate::error::Error;
use crate::model::LoadedModel;
use crate::tensor::HostTensor;
use seam_bundle::EntryPoint;
use seam_core::SizeExpr;

/// Sizes of the symbolic dims for one run.
pub(super) type DimValues = BTreeMap<String, u64>;

/// Binds every symbolic dim from the inputs' shapes, and the states' length
/// dim from the `stored` length, and checks all of them. Returns the dims and,
/// for an entry with states, the length after the run.
pub(super) fn bind_dims(
    model: &LoadedModel,
    entry: &EntryPoint,
    inputs: &[HostTensor],
    stored: u64,
) -> Result<(DimValues, Option<u64>), Error> {
    let ios = &entry.inputs;
    if inputs.len() != ios.len() {
        return Err(Error::Input(format!(
            "`{}` takes {} inputs, {} given",
            entry.name,
            ios.len(),
            inputs.len()
        )));
    }
    let mut dims = DimValues::new();
    for (io, t) in ios.iter().zip(inputs) {
        if t.dtype() != io.dtype || t.shape().len() != io.shape.len() {
            return Err(Error::Input(format!(
                "input `{}` must be {:?} of rank {}, found {:?} of rank {}",
                io.name,
                io.dtype,
                io.shape.len(),
                t.dtype(),
                t.shape().len()
            )));
        }
        for (e, &size) in io.shape.iter().zip(t.shape()) {
            if let SizeExpr::Dim(name) = e {
                let max = model.dim_bound(name).unwrap_or(0);
                if size == 0 || size as u64 > max {
                    return Err(Error::Input(format!(
                        "input `{}`: dim `{name}` is {size}, outside 1..={max}",
                        io.name
                    )));
                }
                if let Some(prev) = dims.insert(name.clone(), size as u64) {
                    if prev != size as u64 {
                        return Err(Error::Input(format!(
                            "dim `{name}` is {prev} in one input and {size} in `{}`",
                            io.name
                        )));
                    }
                }
            }
        }
    }
    for (io, t) in ios.iter().zip(inputs) {
        let expected = eval_shape(&io.shape, &dims)?;
        if expected != t.shape() {
            return Err(Error::Input(format!(
                "input `{}` must have shape {expected:?}, found {:?}",
                io.name,
                t.shape()
            )));
        }
    }
    let Some(sl) = &entry.state_length else {
        return Ok((dims, None));
    };
    let adding = sl.advance.eval(&|d| dims.get(d).copied())?;
    let max = model.dim_bound(&sl.dim).unwrap_or(0);
    let length = stored.saturating_add(adding);
    if length > max {
        return Err(Error::SequenceFull {
            dim: sl.dim.clone(),
            stored,
            adding,
            max,
        });
    }
    dims.insert(sl.dim.clone(), length);
    Ok((dims, Some(length)))
}

/// A shape's sizes at `dims`.
pub(super) fn eval_shape(shape: &[SizeExpr], dims: &DimValues) -> Result<Vec<usize>, Error> {
    shape
        .iter()
        .map(|e| Ok(e.eval(&|d| dims.get(d).copied())? as usize))
        .collect()
}

/// Each dispatch's launch sizes at `dims`, in dispatch order.
pub(super) fn dispatch_sizes(
    entry: &EntryPoint,
    dims: &DimValues,
) -> Result<Vec<Vec<(String, u32)>>, Error> {
    let lookup = |d: &str| dims.get(d).copied();
    entry
        .dispatches
        .iter()
        .map(|d| {
            d.sizes
                .iter()
                .map(|(n, e)| Ok((n.clone(), e.eval(&lookup)? as u32)))
                .collect()
        })
        .collect()
}
