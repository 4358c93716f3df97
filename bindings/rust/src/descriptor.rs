//! A batch-norm layer's fixed configuration: `bnorm_desc` behind a builder.

use std::fmt;
use std::mem::MaybeUninit;
use std::ops::{BitOr, BitOrAssign};

use crate::element::Element;
use crate::error::Error;
use crate::sys;

/// Memory order of a tensor's dimensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Channels first: `(N, C)`, `(N, C, L)`, `(N, C, H, W)`, `(N, C, D, H, W)`.
    Nchw,
    /// Channels last: `(N, C)`, `(N, L, C)`, `(N, H, W, C)`, `(N, D, H, W, C)`.
    Nhwc,
}

impl Layout {
    /// Index of the channel dimension in a shape of rank `rank`.
    pub fn channel_axis(self, rank: usize) -> usize {
        match self {
            Layout::Nchw => 1,
            Layout::Nhwc => rank.saturating_sub(1),
        }
    }

    fn to_raw(self) -> sys::bnorm_layout {
        match self {
            Layout::Nchw => sys::BNORM_LAYOUT_NCHW,
            Layout::Nhwc => sys::BNORM_LAYOUT_NHWC,
        }
    }
}

/// `BNORM_FLAG_*` bits. Combine them with `|`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flags(u32);

impl Flags {
    /// gamma and beta are applied.
    pub const AFFINE: Flags = Flags(sys::BNORM_FLAG_AFFINE);
    /// Training forward updates the running statistics.
    pub const TRACK_RUNNING_STATS: Flags = Flags(sys::BNORM_FLAG_TRACK_RUNNING_STATS);
    /// Forward applies ReLU; backward zeroes dy where the forward output is <= 0.
    pub const FUSE_RELU: Flags = Flags(sys::BNORM_FLAG_FUSE_RELU);
    /// Backward treats mean and invstd as constants (frozen, eval-mode BN).
    pub const USE_GLOBAL_STATS: Flags = Flags(sys::BNORM_FLAG_USE_GLOBAL_STATS);

    pub const fn empty() -> Flags {
        Flags(0)
    }

    /// Any bits, including ones this version does not know: the library
    /// rejects unknown bits with `Status::INVALID_ARGUMENT`.
    pub const fn from_bits(bits: u32) -> Flags {
        Flags(bits)
    }

    pub const fn bits(self) -> u32 {
        self.0
    }

    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Flags::AFFINE, "AFFINE"),
            (Flags::TRACK_RUNNING_STATS, "TRACK_RUNNING_STATS"),
            (Flags::FUSE_RELU, "FUSE_RELU"),
            (Flags::USE_GLOBAL_STATS, "USE_GLOBAL_STATS"),
        ];
        let mut rest = self.0;
        let mut first = true;
        f.write_str("Flags(")?;
        for (flag, name) in names {
            if self.contains(flag) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
                rest &= !flag.0;
            }
        }
        if rest != 0 {
            if !first {
                f.write_str(" | ")?;
            }
            write!(f, "{:#x}", rest)?;
        } else if first {
            f.write_str("empty")?;
        }
        f.write_str(")")
    }
}

/// A batch-norm layer: num_features and the settings below, PyTorch's
/// defaults unless changed (eps 1e-5, momentum 0.1, AFFINE |
/// TRACK_RUNNING_STATS, NCHW, OpenMP's default thread count).
///
/// Field values are not checked here: every call passes the descriptor to the
/// library, which rejects a bad eps, momentum or thread count with
/// `Status::INVALID_ARGUMENT` and says which value is wrong.
///
/// ```
/// use bnorm::{Descriptor, Flags, Layout};
/// let layer = Descriptor::new(64)?
///     .with_layout(Layout::Nhwc)
///     .with_flags(Flags::AFFINE | Flags::FUSE_RELU)
///     .with_eps(1e-3);
/// // Fields not set keep PyTorch's defaults.
/// assert_eq!(layer.momentum(), 0.1);
/// assert_eq!(layer.num_threads(), 0);
/// # Ok::<(), bnorm::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct Descriptor {
    raw: sys::bnorm_desc,
    layout: Layout,
}

impl Descriptor {
    /// A layer of `num_features` channels, through `bnorm_desc_init`.
    /// `num_features <= 0` is `Status::INVALID_DESCRIPTOR`.
    pub fn new(num_features: i64) -> Result<Descriptor, Error> {
        let mut raw = MaybeUninit::<sys::bnorm_desc>::uninit();
        // SAFETY: bnorm_desc_init writes every field of a valid pointer,
        // failing or not.
        let status = unsafe { sys::bnorm_desc_init(raw.as_mut_ptr(), num_features) };
        Error::check(status)?;
        // SAFETY: initialised by the successful call above.
        let raw = unsafe { raw.assume_init() };
        Ok(Descriptor {
            raw,
            layout: Layout::Nchw,
        })
    }

    pub fn with_eps(mut self, eps: f32) -> Descriptor {
        self.raw.eps = eps;
        self
    }

    /// `running = (1 - momentum) * running + momentum * batch`. PyTorch's
    /// cumulative average (`momentum=None`) is `1 / num_batches_tracked`.
    pub fn with_momentum(mut self, momentum: f32) -> Descriptor {
        self.raw.momentum = momentum;
        self
    }

    pub fn with_flags(mut self, flags: Flags) -> Descriptor {
        self.raw.flags = flags.bits();
        self
    }

    pub fn with_layout(mut self, layout: Layout) -> Descriptor {
        self.raw.layout = layout.to_raw();
        self.layout = layout;
        self
    }

    /// 0: OpenMP's default; n > 0: at most n threads. Results do not depend
    /// on it.
    pub fn with_num_threads(mut self, num_threads: i32) -> Descriptor {
        self.raw.num_threads = num_threads;
        self
    }

    pub fn num_features(&self) -> i64 {
        self.raw.num_features
    }

    pub fn eps(&self) -> f32 {
        self.raw.eps
    }

    pub fn momentum(&self) -> f32 {
        self.raw.momentum
    }

    pub fn flags(&self) -> Flags {
        Flags(self.raw.flags)
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    pub fn num_threads(&self) -> i32 {
        self.raw.num_threads
    }

    /// The C struct, e.g. for calling `sys` functions directly. Its dtype is
    /// `BNORM_DTYPE_F32`; the safe calls set it from their slices' type.
    pub fn as_raw(&self) -> &sys::bnorm_desc {
        &self.raw
    }

    /// The C struct for tensors of element type `T`.
    pub(crate) fn raw_for<T: Element>(&self) -> sys::bnorm_desc {
        sys::bnorm_desc {
            dtype: T::DTYPE,
            ..self.raw
        }
    }
}

impl fmt::Debug for Descriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Descriptor")
            .field("num_features", &self.num_features())
            .field("eps", &self.eps())
            .field("momentum", &self.momentum())
            .field("flags", &self.flags())
            .field("layout", &self.layout())
            .field("num_threads", &self.num_threads())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_print_by_name_and_keep_unknown_bits() {
        assert_eq!(format!("{:?}", Flags::empty()), "Flags(empty)");
        assert_eq!(
            format!("{:?}", Flags::AFFINE | Flags::FUSE_RELU),
            "Flags(AFFINE | FUSE_RELU)"
        );
        assert_eq!(
            format!("{:?}", Flags::USE_GLOBAL_STATS | Flags::from_bits(0x30)),
            "Flags(USE_GLOBAL_STATS | 0x30)"
        );
    }
}
