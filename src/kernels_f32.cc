// The f32 kernel tables; see compile_kernels.h.
#define BNORM_KERNEL_ELEMENT float
#include "src/compile_kernels.h"
