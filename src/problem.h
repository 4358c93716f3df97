// A validated batch-norm request, as the drivers see it.
#ifndef BNORM_SRC_PROBLEM_H_
#define BNORM_SRC_PROBLEM_H_

#include "src/plan.h"

namespace bnorm {

struct Problem {
  Plan plan;
  float eps;
  float momentum;
  bool affine;               // gamma/beta given; else 1 and 0
  bool track_running_stats;  // training updates running_mean/var
  bool relu;                 // fused ReLU
  bool global_stats;         // backward with frozen statistics
  int num_threads;           // 0: OpenMP's default
};

}  // namespace bnorm

#endif  // BNORM_SRC_PROBLEM_H_
