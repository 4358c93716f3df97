"""BatchNorm layers that own their parameters and statistics, like
torch.nn.BatchNorm1d/2d/3d."""

import numpy as np

from . import _arrays, _lib
from .errors import InvalidArgumentError, InvalidShapeError, NullPointerError, UnsupportedError
from .functional import (_backward_elementwise, _backward_reduce, _forward, _forward_normalize,
                         _local_stats, _merge_stats, batch_norm_backward,
                         batch_norm_backward_residual, fold_into_layer, fold_scale_shift)


class BatchNorm:
    """A batch-norm layer over C = num_features channels, for inputs of rank
    2 to 5 (BatchNorm1d/2d/3d restrict the rank as PyTorch's do).

    Owns ``weight``/``bias`` (with affine), ``running_mean``/``running_var``
    and ``num_batches_tracked`` (with track_running_stats), all NumPy arrays
    the C library updates in place. momentum=None means the cumulative average
    (momentum = 1/num_batches_tracked). Starts in training mode; ``eval()``
    switches to the running statistics. After a forward that used batch
    statistics, ``save_mean``/``save_invstd`` hold them for ``backward``.
    """

    _ranks = (2, 3, 4, 5)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, *, layout="NCHW", fuse_relu=False, num_threads=0):
        # The library is the judge of num_features (<= 0 is its
        # InvalidDescriptorError), as it will be on every call.
        _lib.make_desc(int(num_features), 1e-5, 0.1, 0, _lib.LAYOUT_NCHW, _lib.DTYPE_F32, 0)
        self.num_features = int(num_features)
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        self.layout = layout
        self._layout_value = _arrays.layout_code(layout)
        self.fuse_relu = fuse_relu
        self.num_threads = num_threads
        self.training = True
        self.save_mean = None
        self.save_invstd = None
        if affine:
            self.weight = np.ones(self.num_features, np.float32)
            self.bias = np.zeros(self.num_features, np.float32)
        else:
            self.weight = self.bias = None
        if track_running_stats:
            self.running_mean = np.zeros(self.num_features, np.float32)
            self.running_var = np.ones(self.num_features, np.float32)
            self.num_batches_tracked = 0
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean.fill(0.0)
            self.running_var.fill(1.0)
            self.num_batches_tracked = 0

    def reset_parameters(self):
        self.reset_running_stats()
        if self.affine:
            self.weight.fill(1.0)
            self.bias.fill(0.0)

    def train(self, mode=True):
        self.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    @property
    def uses_batch_stats(self):
        """Whether forward normalizes with the batch's statistics: in training,
        or always without running statistics (as in PyTorch)."""
        return self.training or not self.track_running_stats

    def _check_rank(self, x):
        if x.ndim not in self._ranks:
            raise InvalidShapeError(
                "%s expects an input of rank %s, got rank %d (shape %s)"
                % (type(self).__name__, " or ".join(map(str, self._ranks)), x.ndim, x.shape))

    def forward(self, x, out=None, copy=False, *, residual=None, dtype=None):
        """y for input x (C-contiguous float32 or float16, or bfloat16 bits
        with dtype="bfloat16", as in bnorm.batch_norm; the layer's own vectors
        stay float32); written into ``out`` when given (``out=x`` normalizes
        in place). residual: an array of x's shape and dtype added before the
        ReLU, y = relu(bn(x) + residual) with fuse_relu, in one pass
        (libbnorm >= 1.2); ``out`` may then be residual itself."""
        xa, t = _arrays.as_x(x, copy, dtype)
        self._check_rank(xa)
        if residual is not None:
            # copy applies to the tensors only, not to the layer's own vectors.
            residual = _arrays.as_tensor(residual, "residual", copy, t)
        batch_stats = self.uses_batch_stats
        updates = self.training and self.track_running_stats
        momentum = self.momentum
        if updates and momentum is None:
            momentum = 1.0 / (self.num_batches_tracked + 1)
        if batch_stats:
            save_mean = np.empty(self.num_features, np.float32)
            save_invstd = np.empty(self.num_features, np.float32)
        else:
            save_mean = save_invstd = None
        # Eval with running statistics reads them; training without tracking
        # must not touch them (PyTorch passes None there too).
        use_running = updates or not batch_stats
        y = _forward(xa, t, self.num_features, "the layer's num_features",
                     self.running_mean if use_running else None,
                     self.running_var if use_running else None,
                     self.weight, self.bias, batch_stats,
                     momentum if momentum is not None else 0.0, self.eps, self._layout_value,
                     self.fuse_relu, self.num_threads, out, save_mean, save_invstd, False,
                     residual)
        # Only after success: a failed call changed nothing, nor should we.
        if updates:
            self.num_batches_tracked += 1
        if batch_stats:
            self.save_mean, self.save_invstd = save_mean, save_invstd
        return y

    __call__ = forward

    def backward(self, grad_output, x, y=None, out=None, copy=False, *, dtype=None):
        """(dx, dweight, dbias) for the last forward on x. In batch-statistics
        mode this uses save_mean/save_invstd from the last such forward; in
        eval mode the running statistics, held fixed. With fuse_relu, y (the
        forward's output) is required. dweight/dbias are None without affine.
        dtype: the tensors', as in forward (x's by default).
        """
        xa, t = _arrays.as_x(x, copy, dtype)
        self._check_rank(xa)
        mask = (True, self.affine, self.affine)
        common = dict(y=y, fuse_relu=self.fuse_relu, layout=self.layout, eps=self.eps,
                      num_threads=self.num_threads, out=out, output_mask=mask, copy=copy,
                      dtype=t.name)
        if self.uses_batch_stats:
            if self.save_mean is None:
                raise NullPointerError(
                    "backward in batch-statistics mode needs save_mean/save_invstd from a "
                    "forward in that mode first")
            return batch_norm_backward(grad_output, xa, self.weight, self.save_mean,
                                       self.save_invstd, training=True, **common)
        return batch_norm_backward(grad_output, xa, self.weight, training=False,
                                   running_mean=self.running_mean,
                                   running_var=self.running_var, **common)

    def backward_residual(self, grad_output, x, y=None, out=None, out_residual=None,
                          copy=False, *, dtype=None):
        """(dx, d_residual, dweight, dbias) for the last forward on x with a
        residual (bnorm.batch_norm_backward_residual): d_residual is
        grad_output, zeroed where y <= 0 with fuse_relu (which needs y, the
        forward's output); the rest as in backward. ``out`` takes dx and
        ``out_residual`` d_residual; either (not both) may be grad_output."""
        xa, t = _arrays.as_x(x, copy, dtype)
        self._check_rank(xa)
        mask = (True, True, self.affine, self.affine)
        common = dict(y=y, fuse_relu=self.fuse_relu, layout=self.layout, eps=self.eps,
                      num_threads=self.num_threads, out=out, out_residual=out_residual,
                      output_mask=mask, copy=copy, dtype=t.name)
        if self.uses_batch_stats:
            if self.save_mean is None:
                raise NullPointerError(
                    "backward in batch-statistics mode needs save_mean/save_invstd from a "
                    "forward in that mode first")
            return batch_norm_backward_residual(grad_output, xa, self.weight, self.save_mean,
                                                self.save_invstd, training=True, **common)
        return batch_norm_backward_residual(grad_output, xa, self.weight, training=False,
                                            running_mean=self.running_mean,
                                            running_var=self.running_var, **common)

    def _running_stats_for_folding(self):
        if not self.track_running_stats:
            raise NullPointerError(
                "%s has no running statistics (track_running_stats=False): it normalizes with "
                "each batch's statistics even in eval mode, so there is nothing fixed to fold"
                % type(self).__name__)
        return self.running_mean, self.running_var

    def scale_shift(self):
        """(scale, shift), float32[C] each, of this layer in eval mode, from its
        running statistics, weight, bias and eps (bnorm.fold_scale_shift):
        eval-mode forward is x * scale + shift (bnorm.batch_norm_scale_shift).
        Needs libbnorm >= 1.1."""
        return fold_scale_shift(*self._running_stats_for_folding(), self.weight, self.bias,
                                self.eps)

    def fold_into(self, weight, bias=None, *, out_weight=None, out_bias=None, copy=False):
        """(folded_weight, folded_bias) of the convolution or linear layer
        before this one, with this layer's eval-mode batch norm folded in
        (bnorm.fold_into_layer): weight is output channel first, with this
        layer's num_features output channels. Needs libbnorm >= 1.1."""
        return fold_into_layer(weight, bias, *self._running_stats_for_folding(), self.weight,
                               self.bias, self.eps, out_weight=out_weight, out_bias=out_bias,
                               copy=copy)

    def __repr__(self):
        return ("%s(%d, eps=%g, momentum=%s, affine=%s, track_running_stats=%s, layout=%r%s)"
                % (type(self).__name__, self.num_features, self.eps, self.momentum, self.affine,
                   self.track_running_stats, self.layout,
                   ", fuse_relu=True" if self.fuse_relu else ""))


class SyncBatchNorm(BatchNorm):
    """A BatchNorm for data-parallel training, like torch.nn.SyncBatchNorm:
    each process holds some samples of one batch, and in training mode every
    process normalizes with the statistics of the whole batch (libbnorm's
    split phases; needs libbnorm >= 1.2). In eval mode it is a BatchNorm
    (no communication), as in PyTorch.

    The communication is yours, through two functions of one float64 (C, 3)
    block (this process's statistics or gradient sums):
    - allgather(block): every process's block in rank order, the same on
      every process: a (k, C, 3) array or a list of k (C, 3) blocks.
    - allreduce(block), optional: the (C, 3) sum of every process's block.
      Without it, backward gathers the gradient sums with allgather instead.
    Every process must call forward and backward in the same order, as with
    any collective. backward returns dweight/dbias of this process's part
    only, like PyTorch's: sum them over the processes with the other
    parameter gradients (e.g. DistributedDataParallel does).
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, *, allgather, allreduce=None, layout="NCHW",
                 fuse_relu=False, num_threads=0):
        for name, fn in (("allgather", allgather), ("allreduce", allreduce)):
            if fn is not None and not callable(fn):
                raise InvalidArgumentError(
                    "%s is %r; it must be a function of one float64 (num_features, 3) array"
                    % (name, fn))
        if allgather is None:
            raise InvalidArgumentError(
                "allgather is None; SyncBatchNorm needs a function that returns every "
                "process's (num_features, 3) block in rank order")
        super().__init__(num_features, eps, momentum, affine, track_running_stats, layout=layout,
                         fuse_relu=fuse_relu, num_threads=num_threads)
        self.allgather = allgather
        self.allreduce = allreduce

    _ORIGIN = "the layer's num_features"

    def _no_residual_in_training(self, what):
        raise UnsupportedError(
            "%s with a residual in training mode: libbnorm's split phases have no residual "
            "add; with fuse_relu=False, add the residual (and apply the ReLU) to the layer's "
            "output yourself. In eval mode the residual is fused as in BatchNorm" % what)

    def forward(self, x, out=None, copy=False, *, residual=None, dtype=None):
        """y for this process's samples x; in training mode normalized with the
        whole batch's statistics (one allgather), which also update the
        running statistics. ``out=x`` normalizes in place. residual: eval
        mode only (the split phases have no residual add; UnsupportedError).
        dtype as in BatchNorm.forward."""
        if not self.training:
            return super().forward(x, out, copy, residual=residual, dtype=dtype)
        if residual is not None:
            self._no_residual_in_training("SyncBatchNorm.forward")
        xa, t = _arrays.as_x(x, copy, dtype)
        self._check_rank(xa)
        c = self.num_features
        local = _local_stats(xa, t, c, self._ORIGIN, self._layout_value, self.num_threads, None)
        gathered, _, _ = _arrays.as_blocks(self.allgather(local), "allgather's result", c,
                                           self._ORIGIN, False)
        momentum = self.momentum
        if self.track_running_stats:
            if momentum is None:
                momentum = 1.0 / (self.num_batches_tracked + 1)
            # Merged into copies, stored only once the whole forward succeeded.
            running_mean, running_var = self.running_mean.copy(), self.running_var.copy()
        else:
            running_mean = running_var = None
        mean, invstd = _merge_stats(gathered, c, self._ORIGIN, running_mean, running_var,
                                    momentum if momentum is not None else 0.0, self.eps, None,
                                    None, None)
        y = _forward_normalize(xa, t, c, self._ORIGIN, mean, invstd, self.weight, self.bias,
                               self._layout_value, self.fuse_relu, self.num_threads, out, False)
        if self.track_running_stats:
            self.running_mean[...] = running_mean
            self.running_var[...] = running_var
            self.num_batches_tracked += 1
        self.save_mean, self.save_invstd = mean, invstd
        return y

    __call__ = forward

    def backward(self, grad_output, x, y=None, out=None, copy=False, *, dtype=None):
        """(dx, dweight, dbias) for the last forward on x. In training mode dx
        is this part of the whole batch's gradient (one allreduce, or
        allgather); dweight/dbias cover this process's part only. With
        fuse_relu, y (the forward's output) is required. ``out=grad_output``
        writes dx in place. dtype as in BatchNorm.forward."""
        if not self.training:
            return super().backward(grad_output, x, y, out, copy, dtype=dtype)
        if self.save_mean is None:
            raise NullPointerError(
                "backward in batch-statistics mode needs save_mean/save_invstd from a "
                "forward in that mode first")
        xa, t = _arrays.as_x(x, copy, dtype)
        self._check_rank(xa)
        c = self.num_features
        sums, dweight, dbias = _backward_reduce(
            grad_output, xa, t, c, self._ORIGIN, self.save_mean, self.save_invstd, y,
            self.fuse_relu, self._layout_value, self.num_threads, None,
            (True, self.affine, self.affine), copy)
        if self.allreduce is not None:
            total, name = self.allreduce(sums), "allreduce's result"
        else:
            total, name = self.allgather(sums), "allgather's result"
        total, _, _ = _arrays.as_blocks(total, name, c, self._ORIGIN, False)
        dx = _backward_elementwise(grad_output, xa, t, c, self._ORIGIN, self.save_mean,
                                   self.save_invstd, total, self.weight, y, self.fuse_relu,
                                   True, self._layout_value, self.num_threads, out, copy)
        return dx, dweight, dbias

    def backward_residual(self, grad_output, x, y=None, out=None, out_residual=None,
                          copy=False, *, dtype=None):
        """As BatchNorm.backward_residual, in eval mode only (see forward)."""
        if self.training:
            self._no_residual_in_training("SyncBatchNorm.backward_residual")
        return super().backward_residual(grad_output, x, y, out, out_residual, copy,
                                         dtype=dtype)


class BatchNorm1d(BatchNorm):
    """(N, C) or (N, C, L); (N, L, C) with layout="NHWC"."""
    _ranks = (2, 3)


class BatchNorm2d(BatchNorm):
    """(N, C, H, W); (N, H, W, C) with layout="NHWC"."""
    _ranks = (4,)


class BatchNorm3d(BatchNorm):
    """(N, C, D, H, W); (N, D, H, W, C) with layout="NHWC"."""
    _ranks = (5,)
