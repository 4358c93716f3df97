/* How bnorm_desc grows without breaking binaries, tested as such binaries see
 * it: a program compiled against an older, smaller bnorm_desc gets the
 * defaults for the fields it lacks, and a program whose descriptor is larger
 * than this library knows is refused rather than misread. Exits 0 on success. */
#include <bnorm/bnorm.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* bnorm_desc as an older header could have declared it: the same leading
 * fields, fewer of them. */
typedef struct {
  uint32_t struct_size;
  int64_t num_features;
} desc_through_num_features;

typedef struct {
  uint32_t struct_size;
  int64_t num_features;
  float eps;
  float momentum;
} desc_through_momentum;

/* ... and as a newer header might: one more field at the end. */
typedef struct {
  bnorm_desc v1;
  int32_t field_from_the_future;
} desc_from_the_future;

enum { N = 2, C = 3, L = 5, COUNT = N * C * L };

static int checks = 0, failures = 0;
static void check(int ok, const char* what) {
  ++checks;
  if (!ok) {
    fprintf(stderr, "FAILED: %s (last error: \"%s\")\n", what, bnorm_last_error());
    ++failures;
  }
}

static const bnorm_shape shape = {3, {N, C, L}};
static const float mean[C] = {0.5f, -1.0f, 2.0f}, var[C] = {1.0f, 0.5f, 3.0f};
static const float gamma[C] = {1.5f, 1.0f, -0.5f}, beta[C] = {0.0f, 0.25f, 1.0f};

static bnorm_status infer(const void* desc, const float* x, float* y) {
  return bnorm_forward_inference((const bnorm_desc*)desc, &shape, x, y, mean, var, gamma, beta);
}

int main(void) {
  float x[COUNT], want[COUNT], got[COUNT];
  for (int i = 0; i < COUNT; ++i) x[i] = (float)(i % 7) - 3.0f;

  bnorm_desc current;
  check(bnorm_desc_init(&current, C) == BNORM_OK, "bnorm_desc_init");
  check(infer(&current, x, want) == BNORM_OK, "inference with the current descriptor");

  /* The oldest accepted descriptor: defaults (eps 1e-5, AFFINE, NCHW...). */
  desc_through_num_features oldest = {sizeof oldest, C};
  check(infer(&oldest, x, got) == BNORM_OK, "inference with a 16-byte descriptor");
  check(memcmp(got, want, sizeof got) == 0, "16-byte descriptor gives the default result");

  /* Fields it has are read; the rest default. */
  desc_through_momentum older = {sizeof older, C, 0.5f, 0.1f};
  bnorm_desc same = current;
  same.eps = 0.5f;
  check(infer(&same, x, want) == BNORM_OK, "inference with eps 0.5");
  check(infer(&older, x, got) == BNORM_OK, "inference with a 24-byte descriptor");
  check(memcmp(got, want, sizeof got) == 0, "24-byte descriptor's eps is used");

  /* A larger descriptor than this library knows is refused, y untouched. */
  desc_from_the_future newer;
  bnorm_desc_init(&newer.v1, C);
  newer.v1.struct_size = sizeof newer;
  newer.field_from_the_future = 1;
  memset(got, 0x5a, sizeof got);
  check(infer(&newer, x, got) == BNORM_ERR_INVALID_DESCRIPTOR, "larger descriptor refused");
  check(strstr(bnorm_last_error(), "struct_size") != NULL, "refusal names struct_size");
  for (size_t i = 0; i < sizeof got; ++i) {
    if (((unsigned char*)got)[i] != 0x5a) {
      check(0, "refused call wrote y");
      break;
    }
  }

  /* bnorm_desc_init writes the v1.0 descriptor and nothing past it, so an
   * older binary calling a newer library is never written beyond its struct. */
  unsigned char raw[sizeof(bnorm_desc) + 16];
  memset(raw, 0xa5, sizeof raw);
  bnorm_desc_init((bnorm_desc*)(void*)raw, C);
  for (size_t i = sizeof(bnorm_desc); i < sizeof raw; ++i) {
    if (raw[i] != 0xa5) {
      check(0, "bnorm_desc_init wrote past sizeof(bnorm_desc)");
      break;
    }
  }

  printf("struct_size: %d checks, %d failed\n", checks, failures);
  return failures == 0 ? 0 : 1;
}
