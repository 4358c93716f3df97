/* syncbn_mpi.c: data-parallel batch norm (PyTorch's SyncBatchNorm) over MPI,
 * with bnorm's split phases, checked against bnorm on the whole batch.
 *
 * Every rank builds the same whole batch from a fixed seed and owns a
 * contiguous slice of its samples. The slices are unequal on purpose: rank 0
 * holds a single sample (in an (N, C) tensor, one value per channel), and when
 * a batch has fewer samples than there are ranks some slices are empty. One
 * training step runs, per case:
 *
 *   forward:  bnorm_local_stats(slice) -> MPI_Allgather -> bnorm_merge_stats
 *             -> bnorm_forward_normalize(slice)
 *   backward: bnorm_backward_reduce(slice) -> MPI_Allgather
 *             -> bnorm_backward_elementwise(slice)
 *
 * and every rank compares with bnorm_forward_training and bnorm_backward run
 * locally on the whole batch: y and dx of its slice, the merged mean and
 * invstd, the running statistics, and dgamma and dbeta summed over the ranks.
 * The merged statistics and the summed grad sums must also be the same bits on
 * every rank: replicas of a model that disagree in the last bit drift apart.
 *
 * Last, the cost of the exchange for a 2048-channel layer: bnorm_merge_stats
 * and the MPI_Allgather before it, medians on rank 0.
 *
 *   mpiexec -n 4 example_syncbn_mpi
 *
 * Any number of ranks works, 1 included. The exit status is nonzero on every
 * rank if a check failed on any rank.
 */
#include <bnorm/bnorm.h>
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define VALUES_PER_CHANNEL BNORM_SPLIT_VALUES_PER_CHANNEL

/* Every compared value is a float derived from double-precision sums that the
 * split and the whole-batch paths compute in different orders; the sums agree
 * to ~1e-15, so the differences come from the float roundings between the sums
 * and the output (mean, invstd, the normalize or gradient coefficients, the
 * output itself), each 2^-24 = 6e-8 relative. (x - mean) magnifies the mean's
 * rounding by |mean| / std, at most about 11 for this data, so honest
 * agreement is below ~1e-6 of the quantity's scale: its largest magnitude, or
 * for the sums dgamma and dbeta the sum of their terms' magnitudes (a sum that
 * cancels to near 0 keeps the rounding errors of its terms, here also those of
 * the per-rank partial sums, each rounded to float). 1e-5 leaves a margin,
 * while a real mistake, a lost or doubled sample, a block merged twice or a
 * count off by one, shows as 1e-4 or more. */
#define TOLERANCE 1e-5

typedef struct syncbn_case {
  bnorm_layout layout;
  bnorm_shape shape; /* the whole batch, dims in memory order; dims[0] = N */
  uint32_t flags;
} syncbn_case;

#define TRAIN (BNORM_FLAG_AFFINE | BNORM_FLAG_TRACK_RUNNING_STATS)
#define RELU BNORM_FLAG_FUSE_RELU

/* Ranks 2 to 5 in both layouts, odd channel counts, with and without the fused
 * ReLU; cases 7 and 8 have thousands of values per channel. */
static const syncbn_case kCases[] = {
    {BNORM_LAYOUT_NCHW, {2, {13, 17}}, TRAIN},
    {BNORM_LAYOUT_NHWC, {2, {13, 67}}, TRAIN | RELU},
    {BNORM_LAYOUT_NCHW, {2, {4, 3}}, TRAIN}, /* fewer samples than ranks at 5 */
    {BNORM_LAYOUT_NCHW, {3, {11, 3, 29}}, TRAIN | RELU},
    {BNORM_LAYOUT_NHWC, {3, {11, 29, 1}}, TRAIN},
    {BNORM_LAYOUT_NCHW, {4, {12, 67, 5, 7}}, TRAIN},
    {BNORM_LAYOUT_NHWC, {4, {12, 5, 7, 17}}, TRAIN | RELU},
    {BNORM_LAYOUT_NCHW, {4, {9, 17, 24, 24}}, TRAIN | RELU},
    {BNORM_LAYOUT_NHWC, {4, {9, 12, 12, 67}}, TRAIN},
    {BNORM_LAYOUT_NCHW, {5, {11, 1, 3, 4, 5}}, TRAIN | RELU},
    {BNORM_LAYOUT_NHWC, {5, {11, 2, 3, 4, 3}}, TRAIN},
    {BNORM_LAYOUT_NHWC, {4, {13, 3, 3, 17}}, 0}, /* no gamma and beta, no running stats */
};
#define NUM_CASES ((int)(sizeof(kCases) / sizeof(kCases[0])))

/* The compared quantities, in the order they are printed. */
enum { Q_Y, Q_DX, Q_MEAN, Q_INVSTD, Q_RUNNING_MEAN, Q_RUNNING_VAR, Q_DGAMMA, Q_DBETA, NUM_Q };
static const char* const kQuantityNames[NUM_Q] = {
    "y", "dx", "mean", "invstd", "running_mean", "running_var", "dgamma", "dbeta"};

static int my_rank = 0;

/* A failed bnorm call is a bug in this program or the library, not a numeric
 * disagreement; the other ranks would wait in the next collective forever,
 * so the whole job stops. */
static void require_ok(bnorm_status status, const char* call, int case_index) {
  if (status == BNORM_OK) return;
  fprintf(stderr, "syncbn_mpi: rank %d, case %d: %s failed: %s\n  %s\n", my_rank, case_index, call,
          bnorm_status_string(status), bnorm_last_error());
  MPI_Abort(MPI_COMM_WORLD, 2);
}

static void* allocate(size_t count, size_t size) {
  void* p = calloc(count == 0 ? 1 : count, size);
  if (p == NULL) {
    fprintf(stderr, "syncbn_mpi: rank %d: out of memory\n", my_rank);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  return p;
}

static double max_d(double a, double b) { return a > b ? a : b; }

static int channel_dim(const syncbn_case* k) {
  return k->layout == BNORM_LAYOUT_NHWC ? k->shape.rank - 1 : 1;
}

static int64_t element_count(const bnorm_shape* shape) {
  int64_t count = 1;
  for (int i = 0; i < shape->rank; ++i) count *= shape->dims[i];
  return count;
}

static const char* flags_name(uint32_t flags) {
  switch (flags) {
    case 0:
      return "no flags";
    case TRAIN:
      return "AFFINE|TRACK_RUNNING_STATS";
    case TRAIN | RELU:
      return "AFFINE|TRACK_RUNNING_STATS|FUSE_RELU";
    default:
      return "other flags";
  }
}

/* "NCHW (12, 67, 5, 7), AFFINE|TRACK_RUNNING_STATS" */
static void describe_case(const syncbn_case* k, char* text, size_t size) {
  int used = snprintf(text, size, "%s (", k->layout == BNORM_LAYOUT_NHWC ? "NHWC" : "NCHW");
  for (int i = 0; i < k->shape.rank && used > 0 && (size_t)used < size; ++i) {
    used += snprintf(text + used, size - (size_t)used, i == 0 ? "%lld" : ", %lld",
                     (long long)k->shape.dims[i]);
  }
  if (used > 0 && (size_t)used < size)
    snprintf(text + used, size - (size_t)used, "), %s", flags_name(k->flags));
}

/* First sample of rank r's slice of n samples over p ranks; rank r holds
 * [slice_begin(r), slice_begin(r + 1)). Rank 0 gets one sample whenever there
 * are other ranks; the rest get shares that grow with the rank, so the slices
 * are unequal and, when samples are few, some are empty. */
static int64_t slice_begin(int64_t n, int r, int p) {
  if (r == 0) return 0;
  if (r == p) return n;
  return 1 + (n - 1) * (int64_t)(r - 1) * r / ((int64_t)(p - 1) * p);
}

/* Deterministic data, identical on every rank: a linear congruential
 * generator with a per-case seed, uniform in [-1, 1). */
static float next_uniform(uint32_t* state) {
  *state = *state * 1664525u + 1013904223u;
  return (float)(*state >> 8) / 16777216.0f * 2.0f - 1.0f;
}

/* Channel of element i of a tensor in the case's layout. */
static int64_t channel_of(const syncbn_case* k, int64_t i, int64_t channels, int64_t inner) {
  return k->layout == BNORM_LAYOUT_NHWC ? i % channels : (i / inner) % channels;
}

/* max |a - b| / max |reference| over the compared range; `scale` is the
 * reference's largest magnitude, the same on every rank. */
static double scaled_error(const float* a, const float* reference, int64_t n, double scale) {
  double worst = 0.0;
  for (int64_t i = 0; i < n; ++i) worst = max_d(worst, fabs((double)a[i] - (double)reference[i]));
  return worst / (scale > 0.0 ? scale : 1.0);
}

static double largest_magnitude(const float* v, int64_t n) {
  double largest = 0.0;
  for (int64_t i = 0; i < n; ++i) largest = max_d(largest, fabs((double)v[i]));
  return largest;
}

/* Number of bytes of buf that differ between ranks: the bitwise AND and OR
 * over all ranks agree exactly where every rank holds the same bits. The
 * answer is the same on every rank. */
static long differing_bytes(const void* buf, size_t bytes) {
  unsigned char* all_and = allocate(bytes, 1);
  unsigned char* all_or = allocate(bytes, 1);
  MPI_Allreduce(buf, all_and, (int)bytes, MPI_UNSIGNED_CHAR, MPI_BAND, MPI_COMM_WORLD);
  MPI_Allreduce(buf, all_or, (int)bytes, MPI_UNSIGNED_CHAR, MPI_BOR, MPI_COMM_WORLD);
  long differ = 0;
  for (size_t i = 0; i < bytes; ++i) differ += all_and[i] != all_or[i];
  free(all_and);
  free(all_or);
  return differ;
}

/* Runs one case on every rank. Writes the case's largest error of each
 * quantity over all ranks into errors[] and returns the number of failed
 * checks, both the same on every rank. */
static int run_case(int case_index, int num_ranks, double errors[NUM_Q]) {
  const syncbn_case* k = &kCases[case_index];
  char name[160];
  describe_case(k, name, sizeof(name));

  const int64_t channels = k->shape.dims[channel_dim(k)];
  const int64_t n = k->shape.dims[0];
  const int64_t elements = element_count(&k->shape);
  const int64_t per_sample = elements / n;
  const int64_t inner = k->layout == BNORM_LAYOUT_NHWC ? 1 : per_sample / channels;
  const size_t c = (size_t)channels;
  const size_t block = VALUES_PER_CHANNEL * c; /* doubles exchanged per rank */

  bnorm_desc desc;
  require_ok(bnorm_desc_init(&desc, channels), "bnorm_desc_init", case_index);
  desc.layout = k->layout;
  desc.flags = k->flags;

  /* The whole batch and its parameters, the same on every rank. Channel means
   * sit between -2.75 and 3.25 with spreads from 0.5 to 2.5; the upstream
   * gradient has a per-channel offset too, so that dbeta is not a sum of
   * cancelling noise. */
  float* x = allocate((size_t)elements, sizeof(float));
  float* dy = allocate((size_t)elements, sizeof(float));
  uint32_t state = 2024u + 7919u * (uint32_t)case_index;
  for (int64_t i = 0; i < elements; ++i) {
    const int64_t ch = channel_of(k, i, channels, inner);
    x[i] = (float)(ch % 7) - 2.75f + (0.5f + 0.5f * (float)(ch % 5)) * next_uniform(&state);
    dy[i] = 0.2f * (float)(ch % 3) - 0.3f + 0.5f * next_uniform(&state);
  }
  float* gamma = allocate(c, sizeof(float));
  float* beta = allocate(c, sizeof(float));
  float* ref_running_mean = allocate(c, sizeof(float));
  float* ref_running_var = allocate(c, sizeof(float));
  float* running_mean = allocate(c, sizeof(float));
  float* running_var = allocate(c, sizeof(float));
  for (size_t i = 0; i < c; ++i) {
    gamma[i] = 1.25f - 0.25f * (float)(i % 4);
    beta[i] = 0.1f * (float)(i % 3) - 0.1f;
    /* Not PyTorch's (0, 1) start, so that the momentum update shows. */
    ref_running_mean[i] = running_mean[i] = 0.5f * (float)(i % 2);
    ref_running_var[i] = running_var[i] = 1.0f + 0.25f * (float)(i % 3);
  }
  const float* gamma_arg = (k->flags & BNORM_FLAG_AFFINE) ? gamma : NULL;
  const float* beta_arg = (k->flags & BNORM_FLAG_AFFINE) ? beta : NULL;

  /* ---- the reference: one process, the whole batch ---- */
  float* ref_y = allocate((size_t)elements, sizeof(float));
  float* ref_dx = allocate((size_t)elements, sizeof(float));
  float* save_mean = allocate(c, sizeof(float));
  float* save_invstd = allocate(c, sizeof(float));
  float* ref_dgamma = allocate(c, sizeof(float));
  float* ref_dbeta = allocate(c, sizeof(float));
  require_ok(bnorm_forward_training(&desc, &k->shape, x, ref_y, gamma_arg, beta_arg,
                                    ref_running_mean, ref_running_var, save_mean, save_invstd),
             "bnorm_forward_training", case_index);
  require_ok(bnorm_backward(&desc, &k->shape, x, dy, ref_y, gamma_arg, save_mean, save_invstd,
                            ref_dx, ref_dgamma, ref_dbeta),
             "bnorm_backward", case_index);

  /* The scale of dgamma = sum(g * (x - mean)) * invstd and dbeta = sum(g) per
   * channel: the sums of their terms' magnitudes, g being dy masked by the
   * fused ReLU. */
  double* dgamma_terms = allocate(c, sizeof(double));
  double* dbeta_terms = allocate(c, sizeof(double));
  for (int64_t i = 0; i < elements; ++i) {
    const int64_t ch = channel_of(k, i, channels, inner);
    const double g = (k->flags & BNORM_FLAG_FUSE_RELU) && ref_y[i] <= 0.0f ? 0.0 : dy[i];
    dgamma_terms[ch] += fabs(g * ((double)x[i] - save_mean[ch])) * save_invstd[ch];
    dbeta_terms[ch] += fabs(g);
  }
  for (size_t i = 0; i < c; ++i) {
    /* A channel whose gradient is all masked: both sums are exactly 0. */
    if (dgamma_terms[i] == 0.0) dgamma_terms[i] = 1.0;
    if (dbeta_terms[i] == 0.0) dbeta_terms[i] = 1.0;
  }

  /* ---- this rank's slice ---- */
  const int64_t begin = slice_begin(n, my_rank, num_ranks);
  const int64_t count = slice_begin(n, my_rank + 1, num_ranks) - begin;
  bnorm_shape slice_shape = k->shape;
  slice_shape.dims[0] = count;
  const int64_t offset = begin * per_sample; /* the batch is outermost in both layouts */
  const int64_t slice_elements = count * per_sample;
  const float* slice_x = x + offset;
  const float* slice_dy = dy + offset;

  /* ---- forward: local stats, gathered in rank order, merged ---- */
  double* local_stats = allocate(block, sizeof(double));
  double* all_stats = allocate((size_t)num_ranks * block, sizeof(double));
  /* An empty slice takes part with count 0, which the merge skips: every rank
   * must still join each collective. */
  if (count > 0) {
    require_ok(bnorm_local_stats(&desc, &slice_shape, slice_x, local_stats), "bnorm_local_stats",
               case_index);
  }
  MPI_Allgather(local_stats, (int)block, MPI_DOUBLE, all_stats, (int)block, MPI_DOUBLE,
                MPI_COMM_WORLD);
  double* merged_stats = allocate(block, sizeof(double));
  float* mean = allocate(c, sizeof(float));
  float* invstd = allocate(c, sizeof(float));
  require_ok(bnorm_merge_stats(&desc, num_ranks, all_stats, merged_stats, mean, invstd,
                               running_mean, running_var),
             "bnorm_merge_stats", case_index);
  float* y = allocate((size_t)slice_elements, sizeof(float));
  if (count > 0) {
    require_ok(
        bnorm_forward_normalize(&desc, &slice_shape, slice_x, y, gamma_arg, beta_arg, mean, invstd),
        "bnorm_forward_normalize", case_index);
  }

  /* ---- backward: local grad sums, gathered in rank order ---- */
  double* local_grads = allocate(block, sizeof(double));
  double* all_grads = allocate((size_t)num_ranks * block, sizeof(double));
  float* dgamma_local = allocate(c, sizeof(float));
  float* dbeta_local = allocate(c, sizeof(float));
  /* With the fused ReLU, the mask comes from this rank's own forward output. */
  if (count > 0) {
    require_ok(bnorm_backward_reduce(&desc, &slice_shape, slice_x, slice_dy, y, mean, invstd,
                                     local_grads, dgamma_local, dbeta_local),
               "bnorm_backward_reduce", case_index);
  }
  /* Allgather, not Allreduce(MPI_SUM): MPI does not promise that a reduction
   * gives every rank the same bits, while every rank adding the same gathered
   * blocks in the same order does. */
  MPI_Allgather(local_grads, (int)block, MPI_DOUBLE, all_grads, (int)block, MPI_DOUBLE,
                MPI_COMM_WORLD);
  float* dx = allocate((size_t)slice_elements, sizeof(float));
  if (count > 0) {
    require_ok(bnorm_backward_elementwise(&desc, &slice_shape, slice_x, slice_dy, y, gamma_arg,
                                          mean, invstd, num_ranks, all_grads, dx),
               "bnorm_backward_elementwise", case_index);
  }
  /* dgamma and dbeta are parameter gradients: summed like the others, in
   * double so that the order of the ranks hardly matters. */
  double* dparams_local = allocate(2 * c, sizeof(double));
  double* dparams = allocate(2 * c, sizeof(double));
  for (size_t i = 0; i < c; ++i) {
    dparams_local[i] = dgamma_local[i];
    dparams_local[c + i] = dbeta_local[i];
  }
  MPI_Allreduce(dparams_local, dparams, (int)(2 * c), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  float* dgamma = allocate(c, sizeof(float));
  float* dbeta = allocate(c, sizeof(float));
  for (size_t i = 0; i < c; ++i) {
    dgamma[i] = (float)dparams[i];
    dbeta[i] = (float)dparams[c + i];
  }

  /* ---- agreement with the whole-batch reference ---- */
  double local_errors[NUM_Q];
  local_errors[Q_Y] =
      scaled_error(y, ref_y + offset, slice_elements, largest_magnitude(ref_y, elements));
  local_errors[Q_DX] =
      scaled_error(dx, ref_dx + offset, slice_elements, largest_magnitude(ref_dx, elements));
  local_errors[Q_MEAN] =
      scaled_error(mean, save_mean, channels, largest_magnitude(save_mean, channels));
  local_errors[Q_INVSTD] =
      scaled_error(invstd, save_invstd, channels, largest_magnitude(save_invstd, channels));
  local_errors[Q_RUNNING_MEAN] = scaled_error(running_mean, ref_running_mean, channels,
                                              largest_magnitude(ref_running_mean, channels));
  local_errors[Q_RUNNING_VAR] = scaled_error(running_var, ref_running_var, channels,
                                             largest_magnitude(ref_running_var, channels));
  local_errors[Q_DGAMMA] = 0.0;
  local_errors[Q_DBETA] = 0.0;
  for (size_t i = 0; i < c; ++i) {
    local_errors[Q_DGAMMA] =
        max_d(local_errors[Q_DGAMMA], fabs((double)dgamma[i] - ref_dgamma[i]) / dgamma_terms[i]);
    local_errors[Q_DBETA] =
        max_d(local_errors[Q_DBETA], fabs((double)dbeta[i] - ref_dbeta[i]) / dbeta_terms[i]);
  }
  MPI_Allreduce(local_errors, errors, NUM_Q, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);

  int failures = 0;
  for (int q = 0; q < NUM_Q; ++q) {
    /* y and dx differ per rank, so each rank names its own slice; the rest is
     * the same everywhere and rank 0 speaks for all. */
    const int per_rank = q == Q_Y || q == Q_DX;
    if (!(errors[q] <= TOLERANCE)) ++failures;
    if (!(local_errors[q] <= TOLERANCE) && (per_rank || my_rank == 0)) {
      /* One write per line, so that lines from several ranks do not mix. */
      char where[80] = "";
      if (per_rank) {
        snprintf(where, sizeof(where), " on rank %d, samples [%lld, %lld)", my_rank,
                 (long long)begin, (long long)(begin + count));
      }
      fprintf(stderr,
              "syncbn_mpi: FAILED case %d, %s, %d ranks: %s differs from the whole batch's by "
              "%.3g of its scale (tolerance %g)%s\n",
              case_index, name, num_ranks, kQuantityNames[q], local_errors[q], TOLERANCE, where);
    }
  }

  /* ---- the same bits on every rank ---- */
  double* grad_totals = allocate(block, sizeof(double));
  for (int r = 0; r < num_ranks; ++r) {
    for (size_t i = 0; i < block; ++i) grad_totals[i] += all_grads[(size_t)r * block + i];
  }
  const struct {
    const char* name;
    const void* data;
    size_t bytes;
  } shared[] = {
      {"mean", mean, c * sizeof(float)},
      {"invstd", invstd, c * sizeof(float)},
      {"running_mean", running_mean, c * sizeof(float)},
      {"running_var", running_var, c * sizeof(float)},
      {"merged_stats", merged_stats, block * sizeof(double)},
      {"summed grad sums", grad_totals, block * sizeof(double)},
  };
  for (size_t i = 0; i < sizeof(shared) / sizeof(shared[0]); ++i) {
    const long differ = differing_bytes(shared[i].data, shared[i].bytes);
    if (differ != 0) {
      ++failures;
      if (my_rank == 0) {
        fprintf(stderr,
                "syncbn_mpi: FAILED case %d, %s, %d ranks: %s is not the same on every rank "
                "(%ld of %zu bytes differ)\n",
                case_index, name, num_ranks, shared[i].name, differ, shared[i].bytes);
      }
    }
  }

  if (my_rank == 0) {
    printf("case %2d  %-56s samples", case_index, name);
    for (int r = 0; r < num_ranks; ++r) {
      printf(" %lld", (long long)(slice_begin(n, r + 1, num_ranks) - slice_begin(n, r, num_ranks)));
    }
    printf("\n        ");
    for (int q = 0; q < NUM_Q; ++q) printf(" %s %.2g", kQuantityNames[q], errors[q]);
    printf("  %s\n", failures == 0 ? "ok" : "FAILED");
  }

  free(grad_totals);
  free(dgamma);
  free(dbeta);
  free(dparams);
  free(dparams_local);
  free(dx);
  free(dbeta_local);
  free(dgamma_local);
  free(all_grads);
  free(local_grads);
  free(y);
  free(invstd);
  free(mean);
  free(merged_stats);
  free(all_stats);
  free(local_stats);
  free(dbeta_terms);
  free(dgamma_terms);
  free(ref_dbeta);
  free(ref_dgamma);
  free(save_invstd);
  free(save_mean);
  free(ref_dx);
  free(ref_y);
  free(running_var);
  free(running_mean);
  free(ref_running_var);
  free(ref_running_mean);
  free(beta);
  free(gamma);
  free(dy);
  free(x);
  return failures;
}

static int compare_doubles(const void* a, const void* b) {
  const double da = *(const double*)a, db = *(const double*)b;
  return (da > db) - (da < db);
}

static double median(double* v, int n) {
  qsort(v, (size_t)n, sizeof(double), compare_doubles);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The exchange of one forward step of a 2048-channel layer: the allgather of
 * every rank's stats block, then the merge every rank runs on the gathered
 * blocks. Each call is timed on its own and the median taken, which a stray
 * scheduling delay (ranks may share cores) does not move. */
static void time_exchange(int num_ranks) {
  enum { CHANNELS = 2048, REPEATS = 1000, WARMUP = 20 };
  const size_t block = VALUES_PER_CHANNEL * (size_t)CHANNELS;
  bnorm_desc desc;
  require_ok(bnorm_desc_init(&desc, CHANNELS), "bnorm_desc_init", -1);

  /* Plausible blocks: a few thousand values per channel, as from a slice of
   * a (4, 2048, 28, 28) activation. */
  double* local = allocate(block, sizeof(double));
  for (size_t ch = 0; ch < CHANNELS; ++ch) {
    const double count = 3136.0 + 28.0 * my_rank;
    local[3 * ch] = count;
    local[3 * ch + 1] = 0.01 * (double)(ch % 101) - 0.5 + 0.001 * my_rank;
    local[3 * ch + 2] = (count - 1.0) * (0.25 + 0.05 * (double)(ch % 13));
  }
  double* gathered = allocate((size_t)num_ranks * block, sizeof(double));
  double* seconds = allocate(REPEATS, sizeof(double));
  float* mean = allocate(CHANNELS, sizeof(float));
  float* invstd = allocate(CHANNELS, sizeof(float));
  float* running_mean = allocate(CHANNELS, sizeof(float));
  float* running_var = allocate(CHANNELS, sizeof(float));
  for (size_t ch = 0; ch < CHANNELS; ++ch) running_var[ch] = 1.0f;

  for (int i = -WARMUP; i < REPEATS; ++i) {
    /* Lined up first, so that one call's time is not another rank's lateness. */
    MPI_Barrier(MPI_COMM_WORLD);
    const double start = MPI_Wtime();
    MPI_Allgather(local, (int)block, MPI_DOUBLE, gathered, (int)block, MPI_DOUBLE, MPI_COMM_WORLD);
    if (i >= 0) seconds[i] = MPI_Wtime() - start;
  }
  const double allgather_us = 1e6 * median(seconds, REPEATS);

  for (int i = -WARMUP; i < REPEATS; ++i) {
    const double start = MPI_Wtime();
    require_ok(bnorm_merge_stats(&desc, num_ranks, gathered, NULL, mean, invstd, running_mean,
                                 running_var),
               "bnorm_merge_stats", -1);
    if (i >= 0) seconds[i] = MPI_Wtime() - start;
  }
  const double merge_us = 1e6 * median(seconds, REPEATS);

  if (my_rank == 0) {
    printf("merge %d channels, %d blocks: %.1f us (median of %d)\n", CHANNELS, num_ranks, merge_us,
           REPEATS);
    printf("allgather %dx%d doubles, %d ranks: %.1f us (median of %d)\n", CHANNELS,
           VALUES_PER_CHANNEL, num_ranks, allgather_us, REPEATS);
  }
  free(running_var);
  free(running_mean);
  free(invstd);
  free(mean);
  free(seconds);
  free(gathered);
  free(local);
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int num_ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &my_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &num_ranks);

  /* The split phases are new in 1.2: a binary built against this header may
   * load an older library, which lacks them. */
  if (bnorm_version() < BNORM_VERSION_NUMBER) {
    if (my_rank == 0) {
      fprintf(stderr, "syncbn_mpi: header is version %d but the loaded library is %u\n",
              BNORM_VERSION_NUMBER, (unsigned)bnorm_version());
    }
    MPI_Finalize();
    return 1;
  }
  if (my_rank == 0) {
    printf("bnorm %s, SIMD target %s, %d MPI rank(s), tolerance %g of each quantity's scale\n",
           bnorm_version_string(), bnorm_active_target(), num_ranks, TOLERANCE);
  }

  int failures = 0;
  double worst[NUM_Q] = {0};
  for (int i = 0; i < NUM_CASES; ++i) {
    double errors[NUM_Q];
    failures += run_case(i, num_ranks, errors);
    for (int q = 0; q < NUM_Q; ++q) worst[q] = max_d(worst[q], errors[q]);
  }
  if (my_rank == 0) {
    printf("worst of %d cases, %d ranks:", NUM_CASES, num_ranks);
    for (int q = 0; q < NUM_Q; ++q) printf(" %s %.2g", kQuantityNames[q], worst[q]);
    printf("\n");
  }

  time_exchange(num_ranks);

  if (my_rank == 0) {
    if (failures != 0) {
      printf("syncbn_mpi: %d check(s) FAILED with %d ranks\n", failures, num_ranks);
    } else {
      printf("syncbn_mpi: all checks passed with %d ranks\n", num_ranks);
    }
  }
  MPI_Finalize();
  return failures != 0;
}
