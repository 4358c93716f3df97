// The bf16 kernel tables; see compile_kernels.h.
#define BNORM_KERNEL_ELEMENT ::bnorm::bf16
#include "src/compile_kernels.h"
