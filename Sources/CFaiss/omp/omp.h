// The part of libgomp's <omp.h> that FAISS's HNSW header needs (the lock type in its declarations), with GCC 12's
// layout. Swift's clang does not see GCC's <omp.h>, and putting GCC's include directory on the path would also
// replace clang's own intrinsics headers. Hume calls no OpenMP lock function; only the declarations use the type.
#ifndef HUME_OMP_SHIM_H
#define HUME_OMP_SHIM_H
#ifdef __cplusplus
extern "C" {
#endif
typedef struct {
    unsigned char _x[4] __attribute__((__aligned__(4)));
} omp_lock_t;
void omp_set_num_threads(int);
#ifdef __cplusplus
}
#endif
#endif
