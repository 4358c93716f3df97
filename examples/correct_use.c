/* correct_use.c: one BatchNorm2d layer driven through bnorm's C API, the way a
 * framework drives it.
 *
 *   1. Describe the layer once with bnorm_desc_init (64 channels, PyTorch's
 *      defaults: eps 1e-5, momentum 0.1, affine, tracking running statistics).
 *   2. Training step: normalize a 32x64x28x28 NCHW batch with its own
 *      statistics, update the running statistics and keep the batch mean and
 *      1/std for the backward pass.
 *   3. Inference: normalize with the running statistics.
 *
 * Every result is checked against a double-precision computation from the same
 * inputs; the program exits 0 only if all checks pass.
 */
#include <bnorm/bnorm.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 32, C = 64, H = 28, W = 28 };
#define SPATIAL ((size_t)H * W)
#define COUNT ((size_t)N * SPATIAL) /* values per channel */
#define ELEMENTS ((size_t)N * C * SPATIAL)
#define TOLERANCE 1e-3

static int failures = 0;

/* Prints one check; a failing check makes the program exit nonzero. */
static void check(int ok, const char* what, double value) {
  printf("  %-52s %.3g  %s\n", what, value, ok ? "ok" : "FAILED");
  if (!ok) ++failures;
}

/* Stops at the first failing bnorm call, with the library's own explanation. */
static void require_ok(bnorm_status status, const char* call) {
  if (status != BNORM_OK) {
    fprintf(stderr, "%s failed: %s\n  %s\n", call, bnorm_status_string(status), bnorm_last_error());
    exit(1);
  }
}

/* Deterministic inputs: channel c holds values around (c % 7) - 3 with a
 * channel-dependent spread, so normalization has something to undo. */
static void fill_input(float* x) {
  uint32_t state = 12345u;
  for (size_t n = 0; n < N; ++n) {
    for (size_t c = 0; c < C; ++c) {
      const float center = (float)(c % 7) - 3.0f;
      const float spread = 0.5f + 0.5f * (float)(c % 5);
      float* plane = x + (n * C + c) * SPATIAL;
      for (size_t i = 0; i < SPATIAL; ++i) {
        state = state * 1664525u + 1013904223u; /* LCG: the same data on every run */
        const float u = (float)(state >> 8) / 16777216.0f * 2.0f - 1.0f; /* [-1, 1) */
        plane[i] = center + spread * u;
      }
    }
  }
}

/* Mean and biased variance of channel c of an NCHW tensor, in double. */
static void channel_stats(const float* t, size_t c, double* mean, double* var) {
  double sum = 0.0, sum_sq = 0.0;
  for (size_t n = 0; n < N; ++n) {
    const float* plane = t + (n * C + c) * SPATIAL;
    for (size_t i = 0; i < SPATIAL; ++i) sum += plane[i];
  }
  *mean = sum / (double)COUNT;
  for (size_t n = 0; n < N; ++n) {
    const float* plane = t + (n * C + c) * SPATIAL;
    for (size_t i = 0; i < SPATIAL; ++i) {
      const double d = plane[i] - *mean;
      sum_sq += d * d;
    }
  }
  *var = sum_sq / (double)COUNT;
}

static double max_d(double a, double b) { return a > b ? a : b; }

int main(void) {
  /* A binary built against one header may load another library version. */
  if (bnorm_version() != BNORM_VERSION_NUMBER) {
    fprintf(stderr, "header is version %d but the loaded library is %u\n", BNORM_VERSION_NUMBER,
            (unsigned)bnorm_version());
    return 1;
  }

  /* The layer: 64 channels, every other field at its default. */
  bnorm_desc desc;
  require_ok(bnorm_desc_init(&desc, C), "bnorm_desc_init");

  /* dims are in memory order; for NCHW the channel dimension is dims[1]. */
  const bnorm_shape shape = {4, {N, C, H, W}};

  float* x = malloc(ELEMENTS * sizeof(float));
  float* y = malloc(ELEMENTS * sizeof(float));
  if (x == NULL || y == NULL) {
    fprintf(stderr, "out of memory\n");
    return 1;
  }
  fill_input(x);

  /* Per-channel vectors are float[num_features]. gamma = 1 and beta = 0 make
   * the layer a pure normalization, which is easy to check. Running statistics
   * start where PyTorch starts them: mean 0, variance 1. */
  float gamma[C], beta[C], running_mean[C], running_var[C], save_mean[C], save_invstd[C];
  for (int c = 0; c < C; ++c) {
    gamma[c] = 1.0f;
    beta[c] = 0.0f;
    running_mean[c] = 0.0f;
    running_var[c] = 1.0f;
  }

  printf("bnorm %s, SIMD target %s\n", bnorm_version_string(), bnorm_active_target());

  /* ---- training forward: batch statistics ---- */
  require_ok(bnorm_forward_training(&desc, &shape, x, y, gamma, beta, running_mean, running_var,
                                    save_mean, save_invstd),
             "bnorm_forward_training");

  double worst_y_mean = 0.0, worst_y_var = 0.0, worst_save = 0.0, worst_running = 0.0;
  for (int c = 0; c < C; ++c) {
    double x_mean, x_var, y_mean, y_var;
    channel_stats(x, (size_t)c, &x_mean, &x_var);
    channel_stats(y, (size_t)c, &y_mean, &y_var);
    worst_y_mean = max_d(worst_y_mean, fabs(y_mean));
    worst_y_var = max_d(worst_y_var, fabs(y_var - 1.0));

    /* save_mean / save_invstd are the batch's mean and 1/sqrt(biased var + eps). */
    const double invstd = 1.0 / sqrt(x_var + desc.eps);
    worst_save = max_d(worst_save, fabs(save_mean[c] - x_mean) / max_d(1.0, fabs(x_mean)));
    worst_save = max_d(worst_save, fabs(save_invstd[c] - invstd) / invstd);

    /* running = (1 - momentum) * running + momentum * batch, with the batch
     * variance unbiased by count / (count - 1), as in PyTorch. */
    const double m = desc.momentum;
    const double unbiased = x_var * (double)COUNT / (double)(COUNT - 1);
    worst_running = max_d(worst_running, fabs(running_mean[c] - m * x_mean));
    worst_running = max_d(worst_running, fabs(running_var[c] - ((1.0 - m) + m * unbiased)));
  }
  /* var(y) is var / (var + eps), a hair under 1 (1.2e-4 for the narrowest
   * channel here), hence the tolerance. */
  printf("training forward, %dx%dx%dx%d NCHW:\n", N, C, H, W);
  check(worst_y_mean <= TOLERANCE, "max over channels |mean(y)|", worst_y_mean);
  check(worst_y_var <= TOLERANCE, "max over channels |var(y) - 1|", worst_y_var);
  check(worst_save <= 1e-5, "save_mean, save_invstd: max relative error", worst_save);
  check(worst_running <= 1e-5, "running_mean, running_var: max error", worst_running);

  /* ---- inference: the running statistics ---- */
  require_ok(bnorm_forward_inference(&desc, &shape, x, y, running_mean, running_var, gamma, beta),
             "bnorm_forward_inference");

  double worst_error = 0.0, largest = 0.0;
  for (size_t n = 0; n < N; ++n) {
    for (size_t c = 0; c < C; ++c) {
      const double invstd = 1.0 / sqrt((double)running_var[c] + desc.eps);
      const size_t base = (n * C + c) * SPATIAL;
      for (size_t i = 0; i < SPATIAL; ++i) {
        const double expected = ((double)x[base + i] - running_mean[c]) * invstd;
        worst_error = max_d(worst_error, fabs(y[base + i] - expected));
        largest = max_d(largest, fabs(expected));
      }
    }
  }
  printf("inference with the running statistics:\n");
  check(worst_error <= 1e-4 * largest, "max |y - reference| / max |reference|",
        worst_error / largest);

  /* A successful call leaves no error message behind. */
  check(bnorm_last_error()[0] == '\0', "length of bnorm_last_error() after success",
        (double)strlen(bnorm_last_error()));

  free(x);
  free(y);
  if (failures != 0) {
    printf("correct_use: %d check(s) FAILED\n", failures);
    return 1;
  }
  printf("correct_use: all checks passed\n");
  return 0;
}
