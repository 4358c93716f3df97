/* runtime_channels.c: build the descriptor from the tensor, not from a constant.
 *
 * A layer's channel count is often only known at run time (a model loaded from
 * a file, a shape coming from another library). Taking num_features from the
 * tensor's own channel dimension, dims[1] for NCHW or dims[rank - 1] for NHWC,
 * keeps the descriptor and the data in agreement by construction.
 *
 *   runtime_channels                      a few shapes: ranks 2 to 5, both layouts
 *   runtime_channels nchw 8 3 17 17       one shape, dims in memory order
 *   runtime_channels nhwc 4 9 9 16
 *
 * For each shape: a training forward (batch statistics) and an inference
 * forward (running statistics), checked against double precision.
 */
#include <bnorm/bnorm.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keeps a typo on the command line from asking for gigabytes. */
#define MAX_ELEMENTS ((int64_t)1 << 27)

typedef struct example_case {
  bnorm_layout layout;
  bnorm_shape shape;
} example_case;

static const char* layout_name(bnorm_layout layout) {
  return layout == BNORM_LAYOUT_NHWC ? "nhwc" : "nchw";
}

/* The one place that knows where a layout keeps its channels. */
static int channel_dim(bnorm_layout layout, const bnorm_shape* shape) {
  return layout == BNORM_LAYOUT_NHWC ? shape->rank - 1 : 1;
}

static int64_t element_count(const bnorm_shape* shape) {
  int64_t count = 1;
  for (int i = 0; i < shape->rank; ++i) count *= shape->dims[i];
  return count;
}

static double max_d(double a, double b) { return a > b ? a : b; }

/* Both layouts are [outer][C][inner] in memory: NCHW has outer = N and
 * inner = the spatial size, NHWC has outer = N x spatial and inner = 1.
 * Writes the mean and biased variance of channel c, in double. */
static void channel_stats(const float* t, int64_t outer, int64_t channels, int64_t inner, int64_t c,
                          double* mean, double* var) {
  double sum = 0.0, sum_sq = 0.0;
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) sum += t[(o * channels + c) * inner + i];
  }
  *mean = sum / (double)(outer * inner);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const double d = t[(o * channels + c) * inner + i] - *mean;
      sum_sq += d * d;
    }
  }
  *var = sum_sq / (double)(outer * inner);
}

/* Runs one shape; returns 0 on success. */
static int run_case(const example_case* ex) {
  const bnorm_shape* shape = &ex->shape;
  const int cdim = channel_dim(ex->layout, shape);
  const int64_t channels = shape->dims[cdim];
  const int64_t elements = element_count(shape);
  const int64_t per_channel = elements / channels;
  const int64_t inner = ex->layout == BNORM_LAYOUT_NHWC ? 1 : per_channel / shape->dims[0];
  const int64_t outer = per_channel / inner;

  printf("%s ", layout_name(ex->layout));
  for (int i = 0; i < shape->rank; ++i)
    printf(i == 0 ? "%lld" : "x%lld", (long long)shape->dims[i]);
  printf(": num_features = dims[%d] = %lld\n", cdim, (long long)channels);

  /* The descriptor follows the data. */
  bnorm_desc desc;
  bnorm_status status = bnorm_desc_init(&desc, channels);
  if (status != BNORM_OK) {
    printf("  bnorm_desc_init: %s\n  %s\n", bnorm_status_string(status), bnorm_last_error());
    return 1;
  }
  desc.layout = ex->layout;

  float* x = malloc((size_t)elements * sizeof(float));
  float* y = malloc((size_t)elements * sizeof(float));
  float* vectors = malloc((size_t)channels * 6 * sizeof(float));
  if (x == NULL || y == NULL || vectors == NULL) {
    printf("  out of memory\n");
    free(x);
    free(y);
    free(vectors);
    return 1;
  }
  float* gamma = vectors;
  float* beta = gamma + channels;
  float* running_mean = beta + channels;
  float* running_var = running_mean + channels;
  float* save_mean = running_var + channels;
  float* save_invstd = save_mean + channels;
  for (int64_t c = 0; c < channels; ++c) {
    gamma[c] = 1.0f;
    beta[c] = 0.0f;
    running_mean[c] = 0.0f;
    running_var[c] = 1.0f;
  }
  uint32_t state = 2024u;
  for (int64_t i = 0; i < elements; ++i) {
    state = state * 1664525u + 1013904223u;
    x[i] = 3.0f + 2.0f * ((float)(state >> 8) / 16777216.0f - 0.5f);
  }

  int failed = 0;
  if (per_channel < 2) {
    /* Batch statistics need two values per channel: the library would answer
     * BNORM_ERR_TOO_FEW_VALUES, so go straight to inference. */
    printf("  training: skipped, one value per channel\n");
  } else {
    status = bnorm_forward_training(&desc, shape, x, y, gamma, beta, running_mean, running_var,
                                    save_mean, save_invstd);
    if (status != BNORM_OK) {
      printf("  training: %s\n  %s\n", bnorm_status_string(status), bnorm_last_error());
      failed = 1;
    } else {
      /* y has mean 0 and variance var / (var + eps) in every channel. */
      double worst_mean = 0.0, worst_var = 0.0;
      for (int64_t c = 0; c < channels; ++c) {
        double x_mean, x_var, y_mean, y_var;
        channel_stats(x, outer, channels, inner, c, &x_mean, &x_var);
        channel_stats(y, outer, channels, inner, c, &y_mean, &y_var);
        worst_mean = max_d(worst_mean, fabs(y_mean));
        worst_var = max_d(worst_var, fabs(y_var - x_var / (x_var + desc.eps)));
      }
      const int ok = worst_mean <= 1e-3 && worst_var <= 1e-3;
      printf("  training:  max |mean(y)| %.2g, max |var(y) - expected| %.2g  %s\n", worst_mean,
             worst_var, ok ? "ok" : "FAILED");
      failed |= !ok;
    }
  }

  status = bnorm_forward_inference(&desc, shape, x, y, running_mean, running_var, gamma, beta);
  if (status != BNORM_OK) {
    printf("  inference: %s\n  %s\n", bnorm_status_string(status), bnorm_last_error());
    failed = 1;
  } else {
    double worst = 0.0, largest = 0.0;
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t c = 0; c < channels; ++c) {
        const double invstd = 1.0 / sqrt((double)running_var[c] + desc.eps);
        for (int64_t i = 0; i < inner; ++i) {
          const int64_t k = (o * channels + c) * inner + i;
          const double expected = ((double)x[k] - running_mean[c]) * invstd;
          worst = max_d(worst, fabs(y[k] - expected));
          largest = max_d(largest, fabs(expected));
        }
      }
    }
    const int ok = worst <= 1e-4 * max_d(largest, 1.0);
    printf("  inference: max |y - reference| %.2g  %s\n", worst, ok ? "ok" : "FAILED");
    failed |= !ok;
  }

  free(x);
  free(y);
  free(vectors);
  return failed;
}

static int usage(const char* argv0) {
  fprintf(stderr, "usage: %s [nchw|nhwc D0 D1 [D2 [D3 [D4]]]]\n", argv0);
  return 2;
}

/* Reads "nchw|nhwc D0 D1 ..." into *ex; returns 0 on success. */
static int parse_case(int argc, char** argv, example_case* ex) {
  if (strcmp(argv[1], "nchw") == 0) {
    ex->layout = BNORM_LAYOUT_NCHW;
  } else if (strcmp(argv[1], "nhwc") == 0) {
    ex->layout = BNORM_LAYOUT_NHWC;
  } else {
    return 1;
  }
  ex->shape.rank = argc - 2;
  if (ex->shape.rank < 2 || ex->shape.rank > 5) return 1;
  int64_t elements = 1;
  for (int i = 0; i < ex->shape.rank; ++i) {
    char* end;
    const long long d = strtoll(argv[i + 2], &end, 10);
    if (*end != '\0' || d <= 0 || d > MAX_ELEMENTS) return 1;
    ex->shape.dims[i] = d;
    elements *= d;
    if (elements > MAX_ELEMENTS) return 1;
  }
  return 0;
}

int main(int argc, char** argv) {
  static const example_case defaults[] = {
      {BNORM_LAYOUT_NCHW, {4, {8, 3, 17, 17}}},  /* BatchNorm2d */
      {BNORM_LAYOUT_NHWC, {4, {8, 17, 17, 3}}},  /* the same, channels last */
      {BNORM_LAYOUT_NCHW, {2, {16, 10}}},        /* BatchNorm1d on features */
      {BNORM_LAYOUT_NCHW, {3, {4, 6, 50}}},      /* BatchNorm1d on sequences */
      {BNORM_LAYOUT_NHWC, {5, {2, 3, 4, 5, 7}}}, /* BatchNorm3d, channels last */
      {BNORM_LAYOUT_NCHW, {4, {1, 5, 1, 1}}},    /* one value per channel */
  };
  const example_case* cases = defaults;
  int count = (int)(sizeof(defaults) / sizeof(defaults[0]));

  example_case from_argv;
  if (argc > 1) {
    if (parse_case(argc, argv, &from_argv) != 0) return usage(argv[0]);
    cases = &from_argv;
    count = 1;
  }

  int failed = 0;
  for (int i = 0; i < count; ++i) failed |= run_case(&cases[i]);
  printf(failed ? "runtime_channels: FAILED\n" : "runtime_channels: all shapes ok\n");
  return failed;
}
