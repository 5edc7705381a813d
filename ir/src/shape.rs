//! Shapes mixing static and named symbolic dimensions, and tensor types.

use std::fmt;

use seam_core::DType;

/// One dimension of a shape: a static size or a named symbolic size.
///
/// Symbolic dims (`tokens`, `batch`, `kv_len`) are declared in the model header
/// with an upper bound, so one compiled bundle serves every size up to the bound.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dim {
    /// A size known at compile time.
    Static(u64),
    /// A size named in the model header, bound at run time.
    Sym(String),
}

impl Dim {
    /// The static size, if this dim is static.
    pub fn as_static(&self) -> Option<u64> {
        match self {
            Dim::Static(n) => Some(*n),
            Dim::Sym(_) => None,
        }
    }

    /// Whether this is the static dim 1 (the broadcastable dim).
    pub fn is_one(&self) -> bool {
        *self == Dim::Static(1)
    }
}

impl From<u64> for Dim {
    fn from(n: u64) -> Self {
        Dim::Static(n)
    }
}

impl From<&str> for Dim {
    fn from(name: &str) -> Self {
        Dim::Sym(name.to_string())
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Static(n) => write!(f, "{n}"),
            Dim::Sym(s) => f.write_str(s),
        }
    }
}

/// A tensor shape: a list of dims, outermost first (row-major; the last dim is contiguous).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Shape(pub Vec<Dim>);

impl Shape {
    /// The shape of a scalar (rank 0).
    pub fn scalar() -> Self {
        Shape(Vec::new())
    }

    /// Number of dims.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// The dims.
    pub fn dims(&self) -> &[Dim] {
        &self.0
    }

    /// The last dim, if any.
    pub fn last(&self) -> Option<&Dim> {
        self.0.last()
    }

    /// Whether every dim is static.
    pub fn is_static(&self) -> bool {
        self.0.iter().all(|d| d.as_static().is_some())
    }

    /// The sizes of an all-static shape.
    pub fn static_sizes(&self) -> Option<Vec<u64>> {
        self.0.iter().map(Dim::as_static).collect()
    }

    /// Product of the static dims and the symbolic dims (sorted), used to compare
    /// element counts of shapes that mix static and symbolic dims.
    pub fn element_count_parts(&self) -> (u64, Vec<&str>) {
        let mut product = 1u64;
        let mut syms = Vec::new();
        for d in &self.0 {
            match d {
                Dim::Static(n) => product = product.saturating_mul(*n),
                Dim::Sym(s) => syms.push(s.as_str()),
            }
        }
        syms.sort_unstable();
        (product, syms)
    }

    /// Resolves every dim to a concrete size using `lookup` for symbolic dims.
    pub fn resolve(&self, mut lookup: impl FnMut(&str) -> Option<u64>) -> Option<Vec<usize>> {
        self.0
            .iter()
            .map(|d| match d {
                Dim::Static(n) => usize::try_from(*n).ok(),
                Dim::Sym(s) => lookup(s).and_then(|n| usize::try_from(n).ok()),
            })
            .collect()
    }
}

impl<D: Into<Dim>> FromIterator<D> for Shape {
    fn from_iter<I: IntoIterator<Item = D>>(iter: I) -> Self {
        Shape(iter.into_iter().map(Into::into).collect())
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

/// The type of a tensor value: dtype and shape, written `f32[tokens, 256]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorType {
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Shape,
}

impl TensorType {
    /// A tensor type from a dtype and anything that converts into dims.
    pub fn new<D: Into<Dim>>(dtype: DType, dims: impl IntoIterator<Item = D>) -> Self {
        TensorType {
            dtype,
            shape: dims.into_iter().collect(),
        }
    }

    /// Number of dims.
    pub fn rank(&self) -> usize {
        self.shape.rank()
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.dtype, self.shape)
    }
}
