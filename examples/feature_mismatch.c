/* feature_mismatch.c: what happens when a tensor does not fit the layer.
 *
 * The layer was built for 128 channels, but the input has 64 (a classic
 * mistake after editing a network). bnorm takes the tensor's shape with every
 * call, so instead of reading past the end of gamma or silently normalizing
 * with the wrong statistics, the call fails with BNORM_ERR_FEATURE_MISMATCH,
 * says which numbers disagree, and writes nothing at all.
 *
 * Exits 0 when the library behaved as documented, nonzero otherwise.
 */
#include <bnorm/bnorm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 32, C_INPUT = 64, H = 28, W = 28, C_LAYER = 128 };
#define ELEMENTS ((size_t)N * C_INPUT * H * W)
#define SENTINEL -12345.0f

static int failures = 0;

static void expect(int ok, const char* what) {
  printf("  %-62s %s\n", what, ok ? "ok" : "FAILED");
  if (!ok) ++failures;
}

/* Nonzero if every element of buf still holds `value`. */
static int all_equal(const float* buf, size_t count, float value) {
  for (size_t i = 0; i < count; ++i) {
    if (buf[i] != value) return 0;
  }
  return 1;
}

int main(void) {
  bnorm_desc desc;
  if (bnorm_desc_init(&desc, C_LAYER) != BNORM_OK) return 1;

  /* The input really is 32x64x28x28, channels in dims[1]. */
  const bnorm_shape shape = {4, {N, C_INPUT, H, W}};

  float* x = malloc(ELEMENTS * sizeof(float));
  float* y = malloc(ELEMENTS * sizeof(float));
  if (x == NULL || y == NULL) {
    fprintf(stderr, "out of memory\n");
    return 1;
  }
  for (size_t i = 0; i < ELEMENTS; ++i) x[i] = (float)(i % 17);

  /* Sentinels in every output, so we can prove nothing was written. */
  for (size_t i = 0; i < ELEMENTS; ++i) y[i] = SENTINEL;
  float gamma[C_LAYER], beta[C_LAYER], running_mean[C_LAYER], running_var[C_LAYER];
  float save_mean[C_LAYER], save_invstd[C_LAYER];
  for (int c = 0; c < C_LAYER; ++c) {
    gamma[c] = 1.0f;
    beta[c] = 0.0f;
    running_mean[c] = running_var[c] = save_mean[c] = save_invstd[c] = SENTINEL;
  }

  const bnorm_status status = bnorm_forward_training(&desc, &shape, x, y, gamma, beta, running_mean,
                                                     running_var, save_mean, save_invstd);

  /* What a caller would log. */
  const char* name = bnorm_status_string(status);
  const char* detail = bnorm_last_error();
  printf("bnorm_forward_training returned %d\n", (int)status);
  printf("  bnorm_status_string: %s\n", name);
  printf("  bnorm_last_error:    %s\n", detail);

  printf("checks:\n");
  expect(status == BNORM_ERR_FEATURE_MISMATCH, "status is BNORM_ERR_FEATURE_MISMATCH");
  expect(strstr(name, "FEATURE_MISMATCH") != NULL, "status string names FEATURE_MISMATCH");
  /* The message names both numbers, so the caller knows which side is wrong. */
  expect(strstr(detail, "64") != NULL && strstr(detail, "128") != NULL,
         "last error names the input's 64 and the layer's 128 channels");
  /* Validation happens before any write: no half-normalized output and no
   * half-updated running statistics. */
  expect(all_equal(y, ELEMENTS, SENTINEL), "y untouched");
  expect(all_equal(running_mean, C_LAYER, SENTINEL) && all_equal(running_var, C_LAYER, SENTINEL),
         "running_mean and running_var untouched");
  expect(all_equal(save_mean, C_LAYER, SENTINEL) && all_equal(save_invstd, C_LAYER, SENTINEL),
         "save_mean and save_invstd untouched");

  /* The message documented in bnorm.h; a hint may follow it. Informational
   * only: the contract fixes the numbers, not the wording. */
  if (strstr(detail, "input channel dimension (dim 1) is 64 but num_features is 128") == NULL) {
    printf("note: the message differs from the example in bnorm.h\n");
  }

  free(x);
  free(y);
  if (failures != 0) {
    printf("feature_mismatch: %d check(s) FAILED\n", failures);
    return 1;
  }
  printf("feature_mismatch: the mismatch was reported and nothing was written\n");
  return 0;
}
