//! A tensor's dimensions in memory order: `bnorm_shape`.

use std::fmt;

use crate::descriptor::Layout;
use crate::sys;

/// Dimensions in memory order, e.g. `[n, c, h, w]` for NCHW and
/// `[n, h, w, c]` for NHWC. Rank 2 to 5.
///
/// Any dimensions are accepted here; the library rejects a rank outside 2..5,
/// a dimension <= 0 or an overflowing element count with
/// `Status::INVALID_SHAPE`, naming the offending value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    raw: sys::bnorm_shape,
}

impl Shape {
    pub fn new(dims: &[i64]) -> Shape {
        let mut raw = sys::bnorm_shape {
            // A rank above 5 is kept as it is (not truncated to 5 dims) so that
            // the library reports it.
            rank: i32::try_from(dims.len()).unwrap_or(i32::MAX),
            dims: [0; 5],
        };
        for (slot, &dim) in raw.dims.iter_mut().zip(dims) {
            *slot = dim;
        }
        Shape { raw }
    }

    pub fn rank(&self) -> usize {
        self.raw.rank as usize
    }

    /// The stored dimensions (at most 5, even for a longer rank).
    pub fn dims(&self) -> &[i64] {
        let len = (self.raw.rank.max(0) as usize).min(self.raw.dims.len());
        &self.raw.dims[..len]
    }

    /// The channel dimension for `layout`, or `None` if the rank is invalid.
    /// Handy to build a descriptor that fits a tensor known only at run time.
    pub fn channels(&self, layout: Layout) -> Option<i64> {
        if !self.is_valid_rank() {
            return None;
        }
        Some(self.raw.dims[layout.channel_axis(self.rank())])
    }

    /// Number of elements, or `None` for a shape the library rejects with
    /// `Status::INVALID_SHAPE` (bad rank, a dimension <= 0, or a count that
    /// overflows `i64`).
    pub fn element_count(&self) -> Option<usize> {
        if !self.is_valid_rank() {
            return None;
        }
        let mut count: i64 = 1;
        for &dim in self.dims() {
            if dim <= 0 {
                return None;
            }
            count = count.checked_mul(dim)?;
        }
        usize::try_from(count).ok()
    }

    pub fn as_raw(&self) -> &sys::bnorm_shape {
        &self.raw
    }

    fn is_valid_rank(&self) -> bool {
        (2..=5).contains(&self.raw.rank)
    }
}

impl From<&[i64]> for Shape {
    fn from(dims: &[i64]) -> Shape {
        Shape::new(dims)
    }
}

impl<const N: usize> From<[i64; N]> for Shape {
    fn from(dims: [i64; N]) -> Shape {
        Shape::new(&dims)
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Shape(rank {}, {:?})", self.raw.rank, self.dims())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_sit_where_the_layout_puts_them() {
        let shape = Shape::new(&[8, 3, 5, 7]);
        assert_eq!(shape.channels(Layout::Nchw), Some(3));
        assert_eq!(shape.channels(Layout::Nhwc), Some(7));
        // Rank 2 is (N, C) in both layouts.
        let features = Shape::new(&[16, 10]);
        assert_eq!(features.channels(Layout::Nchw), Some(10));
        assert_eq!(features.channels(Layout::Nhwc), Some(10));
    }

    #[test]
    fn element_count_is_none_exactly_where_the_library_refuses() {
        assert_eq!(Shape::new(&[2, 3, 4, 5, 6]).element_count(), Some(720));
        assert_eq!(Shape::new(&[6]).element_count(), None);
        assert_eq!(Shape::new(&[1, 1, 1, 1, 1, 1]).element_count(), None);
        assert_eq!(Shape::new(&[2, 0, 4]).element_count(), None);
        assert_eq!(Shape::new(&[2, -3]).element_count(), None);
        assert_eq!(Shape::new(&[1 << 32, 1 << 32]).element_count(), None);
    }

    #[test]
    fn a_long_shape_keeps_its_rank_for_the_library_to_reject() {
        let shape = Shape::new(&[1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(shape.as_raw().rank, 7);
        assert_eq!(shape.dims(), &[1, 2, 3, 4, 5]);
    }
}
