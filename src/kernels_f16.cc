// The f16 kernel tables; see compile_kernels.h.
#define BNORM_KERNEL_ELEMENT ::bnorm::f16
#include "src/compile_kernels.h"
