#ifndef HUME_COPENBLAS_SHIM_H
#define HUME_COPENBLAS_SHIM_H
#include <cblas.h>

/// Caps OpenBLAS's own thread pool; a stage's parallelism is its replica count, not BLAS threads.
static inline void hume_openblas_set_threads(int n) { openblas_set_num_threads(n); }
static inline int hume_openblas_get_threads(void) { return openblas_get_num_threads(); }
#endif
