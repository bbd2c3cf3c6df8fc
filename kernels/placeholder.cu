// Keeps the kernels library non-empty until the first kernel families land; removed then.
#include "kernels/common.cuh"
