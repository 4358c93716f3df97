// The split phases' exchanged arrays: blocks (one per process) one after
// another, each 3 doubles per channel. The merges and their validation walk
// them the same way, with FoldBlocks.
#ifndef BNORM_SRC_EXCHANGED_BLOCKS_H_
#define BNORM_SRC_EXCHANGED_BLOCKS_H_

#include <stdint.h>

#include <algorithm>

namespace bnorm {

constexpr int64_t kValuesPerChannel = 3;

// Channels folded together. Their accumulators stay on the stack while the
// blocks are read one after another, each tile one contiguous run. (Walking
// one channel through all blocks touches a line per block, a whole block
// apart, which aliases in the cache: 2048 channels x 64 blocks took 1.6 ms.)
constexpr int64_t kChannelTile = 256;

// Per channel, folds the blocks' values into an Acc in block order:
// add(&acc, block, channel, values) for each block, then done(channel, acc)
// in channel order, a tile's done calls after all of its add calls (so done
// may write over the first block). add or done returning false stops the
// walk, which then returns false.
template <class Acc, class Add, class Done>
bool FoldBlocks(int64_t channels, int num_partials, const double* blocks, const Add& add,
                const Done& done) {
  Acc acc[kChannelTile];
  for (int64_t c0 = 0; c0 < channels; c0 += kChannelTile) {
    const int64_t tile = std::min(kChannelTile, channels - c0);
    std::fill_n(acc, tile, Acc{});
    for (int i = 0; i < num_partials; ++i) {
      const double* values = blocks + (i * channels + c0) * kValuesPerChannel;
      for (int64_t j = 0; j < tile; ++j) {
        if (!add(&acc[j], i, c0 + j, values + kValuesPerChannel * j)) return false;
      }
    }
    for (int64_t j = 0; j < tile; ++j) {
      if (!done(c0 + j, acc[j])) return false;
    }
  }
  return true;
}

}  // namespace bnorm

#endif  // BNORM_SRC_EXCHANGED_BLOCKS_H_
