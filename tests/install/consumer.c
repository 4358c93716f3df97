/* A program outside bnorm's tree, built against an installed bnorm the ways a
 * user would (CMake package or pkg-config, shared or static): it checks the
 * library it runs with matches its header, computes one small batch norm and
 * gets the channel-mismatch error a user would. Exits 0 only if all is right. */
#include <bnorm/bnorm.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

enum { N = 2, C = 3, HW = 4 };

static int fail(const char* what) {
  fprintf(stderr, "consumer: %s (last error: \"%s\")\n", what, bnorm_last_error());
  return 1;
}

int main(void) {
  if (bnorm_version() != BNORM_VERSION_NUMBER) return fail("library version differs from header");

  float x[N * C * HW], y[N * C * HW];
  const float mean[C] = {1.0f, 2.0f, 3.0f}, var[C] = {4.0f, 1.0f, 0.25f};
  for (int i = 0; i < N * C * HW; ++i) x[i] = (float)(i % 7);

  bnorm_desc desc;
  if (bnorm_desc_init(&desc, C) != BNORM_OK) return fail("bnorm_desc_init");
  desc.flags = 0; /* no gamma/beta */
  bnorm_shape shape = {3, {N, C, HW}};
  if (bnorm_forward_inference(&desc, &shape, x, y, mean, var, NULL, NULL) != BNORM_OK) {
    return fail("bnorm_forward_inference");
  }
  for (int i = 0; i < N * C * HW; ++i) {
    const int c = (i / HW) % C;
    const double want = (x[i] - mean[c]) / sqrt((double)var[c] + desc.eps);
    if (fabs(y[i] - want) > 1e-5 * (1 + fabs(want))) return fail("wrong inference result");
  }

  /* The layer has 3 channels; an input with 5 is the caller's bug, reported. */
  bnorm_shape wrong = {3, {N, 5, HW}};
  const bnorm_status s = bnorm_forward_inference(&desc, &wrong, x, y, mean, var, NULL, NULL);
  if (s != BNORM_ERR_FEATURE_MISMATCH) return fail("mismatch not reported");
  if (!strstr(bnorm_last_error(), "5") || !strstr(bnorm_last_error(), "3")) {
    return fail("mismatch message lacks the numbers");
  }
  printf("consumer: bnorm %s (%s) ok\n", bnorm_version_string(), bnorm_active_target());
  return 0;
}
