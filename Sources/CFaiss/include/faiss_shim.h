#ifndef HUME_FAISS_SHIM_H
#define HUME_FAISS_SHIM_H
// A C interface to FAISS (Debian's libfaiss-dev 1.7.3 ships the C++ library only).
//
// Every function catches every C++ exception. A function that can fail returns a
// `hume_faiss_status` (HUME_FAISS_OK on success); after a failure, hume_faiss_last_error() gives a
// one-sentence reason. The message is per thread, so read it right after the failing call, on the
// same thread (in Swift: with no `await` between the two calls).
//
// Thread safety: searches on one index may run concurrently; train, add, set_* and free need
// exclusive access.
#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// An index owned by the caller; release it with hume_faiss_free.
typedef struct hume_faiss_index hume_faiss_index;

/// Result of a call.
typedef enum hume_faiss_status {
    HUME_FAISS_OK = 0,
    /// An argument was out of range or NULL; nothing was done.
    HUME_FAISS_INVALID_ARGUMENT = 1,
    /// FAISS refused (unparsable factory string, untrained index, unknown parameter, I/O error, ...).
    HUME_FAISS_FAISS_ERROR = 2,
    /// Memory ran out.
    HUME_FAISS_OUT_OF_MEMORY = 3,
    /// Any other C++ exception.
    HUME_FAISS_INTERNAL_ERROR = 4,
} hume_faiss_status;

/// The reason for the last failure on this thread ("" if none). Valid until the next call on this thread.
const char *hume_faiss_last_error(void);

/// Creates an empty inner-product index of dimension `d` from a factory string such as "Flat",
/// "HNSW32" or "IVF1024,PQ48np". On success `*out` owns the index.
hume_faiss_status hume_faiss_index_factory(int d, const char *description, hume_faiss_index **out);

/// Trains the index on `n` vectors (`n * d` floats, row-major). Indexes that need no training accept it.
hume_faiss_status hume_faiss_train(hume_faiss_index *index, int64_t n, const float *x);

/// Adds `n` vectors; they get the labels ntotal, ntotal + 1, ...
hume_faiss_status hume_faiss_add(hume_faiss_index *index, int64_t n, const float *x);

/// Searches the `k` nearest (largest inner product) stored vectors of each of `n` queries.
/// `distances` and `labels` receive `n * k` entries each, best first; missing results have label -1.
hume_faiss_status hume_faiss_search(const hume_faiss_index *index, int64_t n, const float *x, int64_t k,
                                    float *distances, int64_t *labels);

/// Sets HNSW's efSearch (breadth of the search; larger: better recall, slower). Fails on a non-HNSW index.
hume_faiss_status hume_faiss_set_hnsw_ef_search(hume_faiss_index *index, int ef_search);

/// Sets IVF's nprobe (inverted lists visited per query). Fails on a non-IVF index.
hume_faiss_status hume_faiss_set_ivf_nprobe(hume_faiss_index *index, int nprobe);

/// Sets a search parameter by FAISS's ParameterSpace name: "efSearch" (HNSW), "nprobe" (IVF), "k_factor_rf"
/// (a refine stage's re-ranked multiple of k), "quantizer_efSearch" (an IVF's HNSW coarse quantizer). The value
/// must be at least 1. Fails if the name does not apply to this index. FAISS writes these with the index.
hume_faiss_status hume_faiss_set_search_parameter(hume_faiss_index *index, const char *name, double value);

/// Number of stored vectors.
int64_t hume_faiss_ntotal(const hume_faiss_index *index);

/// Vector dimension.
int hume_faiss_dimension(const hume_faiss_index *index);

/// Whether the index is trained (vectors can be added).
int hume_faiss_is_trained(const hume_faiss_index *index);

/// Writes the index to the file at `path` (created or replaced).
hume_faiss_status hume_faiss_write(const hume_faiss_index *index, const char *path);

/// Reads an index written by hume_faiss_write. With `mmap` non-zero the inverted lists of an IVF
/// index are memory-mapped read-only (IO_FLAG_MMAP) so the index can no longer be added to; other
/// index kinds, or a file FAISS cannot map, are read into memory instead. `*used_mmap` (if not NULL)
/// tells which happened.
hume_faiss_status hume_faiss_read(const char *path, int mmap, hume_faiss_index **out, int *used_mmap);

/// Releases an index. NULL is allowed.
void hume_faiss_free(hume_faiss_index *index);

/// Caps the OpenMP threads FAISS uses in this process (a stage scales by replicas, not threads).
void hume_faiss_set_omp_threads(int n);

/// The inner product of x and y (d floats) by each of the shim's kernels, for tests: out[0] the portable loop, out[1]
/// AVX2 + FMA (NaN when this CPU lacks them). Returns 1 when searches use AVX2 + FMA, 0 when the portable loop.
int hume_faiss_inner_product_kernels(const float *x, const float *y, size_t d, float out[2]);

/// Whether one-query HNSW searches take Hume's graph walk (1, the default) or FAISS's own (0), process-wide; for
/// `hume bench retrieve`, which measures both on the same index. Returns the previous value.
int hume_faiss_set_hume_hnsw_walk(int on);

/// Whether one-query IVF-PQ searches take Hume's scan (1, the default) or FAISS's own (0), process-wide; for
/// `hume bench retrieve`. Returns the previous value.
int hume_faiss_set_hume_ivfpq_scan(int on);

/// out[i] = the inner product of `query` and row ids[i] of `vectors` (d floats per row), or -infinity where ids[i]
/// is negative: the exact re-scoring of an IVF-PQ search's candidates, with the shim's kernel.
void hume_faiss_inner_products(const float *query, const float *vectors, const int64_t *ids, int64_t n, int d,
                               float *out);

#ifdef __cplusplus
}
#endif
#endif
