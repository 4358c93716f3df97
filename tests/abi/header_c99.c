/* The public header, compiled as strict C99 with every warning an error: the
 * oldest C a user's project may build with. */
#include <bnorm/bnorm.h>

bnorm_status header_c99_uses_the_header(bnorm_desc* d, bnorm_shape* s);

bnorm_status header_c99_uses_the_header(bnorm_desc* d, bnorm_shape* s) {
  s->rank = 2;
  s->dims[0] = 1;
  s->dims[1] = 1;
  return bnorm_desc_init(d, 1);
}
