// The public header, compiled as strict C++11 with every warning an error.
#include <bnorm/bnorm.h>

#include <type_traits>

static_assert(std::is_standard_layout<bnorm_desc>::value, "bnorm_desc is a C struct");
static_assert(std::is_standard_layout<bnorm_shape>::value, "bnorm_shape is a C struct");

bnorm_status HeaderCxx11UsesTheHeader(bnorm_desc* d) { return bnorm_desc_init(d, 1); }
