//! [`ExpertKey`]: one cache item, an expert of one layer.

use std::fmt;

/// One cache item: expert `expert` of MoE layer `layer`. The cache holds at
/// most its capacity of these per layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExpertKey {
    /// The MoE layer, counted from 0.
    pub layer: u32,
    /// The expert within the layer.
    pub expert: u32,
}

impl ExpertKey {
    /// Expert `expert` of layer `layer`.
    pub fn new(layer: u32, expert: u32) -> Self {
        ExpertKey { layer, expert }
    }
}

impl fmt::Display for ExpertKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "layer {} expert {}", self.layer, self.expert)
    }
}
