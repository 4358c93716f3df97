// The bf16 kernel tables; see compile_kernels.h.
#define BNORM_KERNEL_ELEMENT ::bnorm::bf16
#define BNORM_CPU_ROUNDED_BF16_KERNELS
#include "src/compile_kernels.h"
