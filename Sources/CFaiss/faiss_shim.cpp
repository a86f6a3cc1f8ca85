// extern "C" bridge over the FAISS C++ library. No exception may leave this file: every entry point
// runs its body through `guarded`, which turns exceptions into a status and a per-thread message.
#include "faiss_shim.h"

#include <faiss/AutoTune.h>
#include <faiss/IVFlib.h>
#include <faiss/Index.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/impl/DistanceComputer.h>
#include <faiss/utils/Heap.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <faiss/invlists/OnDiskInvertedLists.h>

#include <cctype>
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <immintrin.h>
#include <limits>
#include <typeinfo>
#include <exception>
#include <memory>
#include <new>
#include <queue>
#include <sys/mman.h>
#include <vector>
#include <string>
#include <utility>

#include <omp.h>  // Sources/CFaiss/omp: the lock type and omp_set_num_threads

struct hume_faiss_index {
    std::unique_ptr<faiss::Index> index;
    /// Whether the arrays an HNSW search reads at random are on huge pages since the last add (`advise_huge_pages`,
    /// done by the first search: tools that build or extend an index and never search it do not pay for it).
    mutable std::atomic<bool> paged{false};
};

namespace {

thread_local std::string last_error;

/// FAISS messages read "Error in <function> at <file>:<line>: <reason>", and a failed check's reason
/// "Error: '<condition>' failed: <explanation>"; keep the explanation when there is one.
std::string reason_of(const faiss::FaissException &e) {
    std::string reason = e.msg;
    if (reason.rfind("Error in ", 0) == 0) {
        size_t at = reason.find(" at ");
        while (at != std::string::npos) {
            size_t colon = reason.find(':', at + 4);
            if (colon == std::string::npos) break;
            size_t digits = colon + 1;
            while (digits < reason.size() && std::isdigit(static_cast<unsigned char>(reason[digits]))) ++digits;
            if (digits > colon + 1 && reason.compare(digits, 2, ": ") == 0) {
                reason = reason.substr(digits + 2);
                break;
            }
            at = reason.find(" at ", at + 4);
        }
    }
    if (reason.rfind("Error: '", 0) == 0) {
        size_t failed = reason.find("' failed: ");
        if (failed != std::string::npos) reason = reason.substr(failed + 10);
    }
    return reason;
}

hume_faiss_status fail(hume_faiss_status status, const std::string &where, const std::string &why) {
    last_error = where + ": " + why;
    return status;
}

/// Runs `body` and maps every exception to a status; `where` names the operation in the message.
template <typename Body>
hume_faiss_status guarded(const char *where, Body &&body) noexcept {
    try {
        last_error.clear();
        body();
        return HUME_FAISS_OK;
    } catch (const faiss::FaissException &e) {
        return fail(HUME_FAISS_FAISS_ERROR, where, reason_of(e));
    } catch (const std::bad_alloc &) {
        return fail(HUME_FAISS_OUT_OF_MEMORY, where, "out of memory");
    } catch (const std::exception &e) {
        return fail(HUME_FAISS_INTERNAL_ERROR, where, e.what());
    } catch (...) {
        return fail(HUME_FAISS_INTERNAL_ERROR, where, "unknown C++ exception");
    }
}

/// Validates the common (index, n, x) arguments.
bool vectors_ok(const hume_faiss_index *index, int64_t n, const float *x, const char *where,
                hume_faiss_status *status) {
    if (index == nullptr || !index->index) {
        *status = fail(HUME_FAISS_INVALID_ARGUMENT, where, "the index is NULL");
        return false;
    }
    if (n < 0) {
        *status = fail(HUME_FAISS_INVALID_ARGUMENT, where, "the vector count is negative (" + std::to_string(n) + ")");
        return false;
    }
    if (n > 0 && x == nullptr) {
        *status = fail(HUME_FAISS_INVALID_ARGUMENT, where, "the vector buffer is NULL");
        return false;
    }
    return true;
}

hume_faiss_status set_parameter(hume_faiss_index *index, const char *name, double value, const char *where) {
    if (index == nullptr || !index->index) return fail(HUME_FAISS_INVALID_ARGUMENT, where, "the index is NULL");
    if (value < 1) {
        return fail(HUME_FAISS_INVALID_ARGUMENT, where,
                    std::string(name) + " must be at least 1, got " + std::to_string(static_cast<long long>(value)));
    }
    hume_faiss_status status =
        guarded(where, [&] { faiss::ParameterSpace().set_index_parameter(index->index.get(), name, value); });
    if (status == HUME_FAISS_FAISS_ERROR && last_error.find("could not set parameter") != std::string::npos) {
        return fail(status, where, std::string(name) + " does not apply to this kind of index");
    }
    return status;
}

// Debian's libfaiss is built for baseline x86-64, so every inner product it computes one pair at a time (HNSW's
// graph walk and build, a flat or IVF coarse search of one query) runs the scalar reference loop, ~1.2 G
// multiply-adds/s here. The flat inner-product storage under Hume's indexes (all of them are inner product) is
// swapped for `FastIndexFlat`, whose inner products use AVX2 + FMA when the CPU has them (chosen once at start) and
// an 8-way unrolled loop otherwise. Files are unchanged: it is an IndexFlat, written and read as one.
using Kernel = float (*)(const float *, const float *, size_t);

/// The sum of a vector's eight floats.
__attribute__((target("avx2,fma"))) inline float horizontal_sum(__m256 v) {
    __m128 half = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    half = _mm_add_ps(half, _mm_movehl_ps(half, half));
    half = _mm_add_ss(half, _mm_shuffle_ps(half, half, 1));
    return _mm_cvtss_f32(half);
}

__attribute__((target("avx2,fma"))) float inner_product_avx2(const float *x, const float *y, size_t d) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), a3);
    }
    for (; i + 8 <= d; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
    float r = horizontal_sum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < d; ++i) r += x[i] * y[i];
    return r;
}

float inner_product_portable(const float *x, const float *y, size_t d) {
    float a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= d; i += 8)
        for (int j = 0; j < 8; ++j) a[j] += x[i + j] * y[i + j];
    float r = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    for (; i < d; ++i) r += x[i] * y[i];
    return r;
}

bool has_avx2_fma() {
    static const bool has = (__builtin_cpu_init(), __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"));
    return has;
}

const Kernel inner_product = has_avx2_fma() ? inner_product_avx2 : inner_product_portable;

/// Frees what std::aligned_alloc gave.
struct FreeDeleter {
    void operator()(float *p) const noexcept { std::free(p); }
};

/// `d` floats on a 64-byte boundary.
std::unique_ptr<float, FreeDeleter> aligned_floats(size_t d) {
    std::unique_ptr<float, FreeDeleter> p(static_cast<float *>(std::aligned_alloc(64, ((d * sizeof(float) + 63) / 64) * 64)));
    if (!p) throw std::bad_alloc();
    return p;
}

/// FAISS's FlatIPDis with the kernel above.
struct FastFlatDistance : faiss::FlatCodesDistanceComputer {
    size_t d;
    /// The query, copied onto a cache-line boundary (it is read once per vector visited).
    std::unique_ptr<float, FreeDeleter> query;

    FastFlatDistance(const faiss::IndexFlat &storage)
        : faiss::FlatCodesDistanceComputer(storage.codes.data(), storage.code_size), d(storage.d),
          query(aligned_floats(storage.d)) {}

    void set_query(const float *x) override { std::copy(x, x + d, query.get()); }
    float distance_to_code(const uint8_t *code) override {
        return inner_product(query.get(), reinterpret_cast<const float *>(code), d);
    }
    float symmetric_dis(faiss::Index::idx_t i, faiss::Index::idx_t j) override {
        const float *base = reinterpret_cast<const float *>(codes);
        return inner_product(base + i * d, base + j * d, d);
    }
};

/// An inner-product IndexFlat whose one-pair products and small searches use `inner_product`; batches of 20 queries or
/// more, and searches with parameters, are FAISS's own (BLAS).
struct FastIndexFlat : faiss::IndexFlat {
    explicit FastIndexFlat(faiss::Index::idx_t d) : faiss::IndexFlat(d, faiss::METRIC_INNER_PRODUCT) {}

    faiss::FlatCodesDistanceComputer *get_FlatCodesDistanceComputer() const override {
        return new FastFlatDistance(*this);
    }

    void search(faiss::Index::idx_t n, const float *x, faiss::Index::idx_t k, float *distances, faiss::Index::idx_t *labels,
                const faiss::SearchParameters *params = nullptr) const override {
        if (n >= 20 || params != nullptr) return faiss::IndexFlat::search(n, x, k, distances, labels, params);
        using Heap = faiss::CMin<float, faiss::Index::idx_t>;  // keeps the k largest products, the smallest on top
        const float *base = get_xb();
        // The query, read once per stored vector, on a cache-line boundary (a Swift array's elements are not).
        std::unique_ptr<float, FreeDeleter> query = aligned_floats(d);
        for (faiss::Index::idx_t q = 0; q < n; ++q) {
            std::copy(x + q * d, x + (q + 1) * d, query.get());
            float *values = distances + q * k;
            faiss::Index::idx_t *ids = labels + q * k;
            faiss::heap_heapify<Heap>(k, values, ids);
            for (faiss::Index::idx_t i = 0; i < ntotal; ++i) {
                float v = inner_product(query.get(), base + i * d, d);
                if (Heap::cmp(values[0], v)) faiss::heap_replace_top<Heap>(k, values, ids, v, i);
            }
            faiss::heap_reorder<Heap>(k, values, ids);
        }
    }
};

/// Σ w[i]·code[i] over `d` bytes of 8-bit codes.
__attribute__((target("avx2,fma"))) float weighted_bytes_avx2(const float *w, const uint8_t *code, size_t d) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i *>(code + i));
        __m256 lo = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes));
        __m256 hi = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(bytes, 8)));
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), lo, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), hi, a1);
    }
    float r = horizontal_sum(_mm256_add_ps(a0, a1));
    for (; i < d; ++i) r += w[i] * float(code[i]);
    return r;
}

float weighted_bytes_portable(const float *w, const uint8_t *code, size_t d) {
    float a[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= d; i += 4)
        for (int j = 0; j < 4; ++j) a[j] += w[i + j] * float(code[i + j]);
    float r = (a[0] + a[1]) + (a[2] + a[3]);
    for (; i < d; ++i) r += w[i] * float(code[i]);
    return r;
}

using BytesKernel = float (*)(const float *, const uint8_t *, size_t);
const BytesKernel weighted_bytes = has_avx2_fma() ? weighted_bytes_avx2 : weighted_bytes_portable;

/// Σ (vmin[i] + (a[i] + 0.5)·step[i]) · (vmin[i] + (b[i] + 0.5)·step[i]): the product of two decoded 8-bit codes.
__attribute__((target("avx2,fma"))) float decoded_product_avx2(const float *vmin, const float *step, const uint8_t *a,
                                                             const uint8_t *b, size_t d) {
    const __m256 half = _mm256_set1_ps(0.5f);
    __m256 acc = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= d; i += 8) {
        __m256 lo = _mm256_loadu_ps(vmin + i), st = _mm256_loadu_ps(step + i);
        __m256 fa = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(a + i))));
        __m256 fb = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(b + i))));
        __m256 xa = _mm256_fmadd_ps(_mm256_add_ps(fa, half), st, lo), xb = _mm256_fmadd_ps(_mm256_add_ps(fb, half), st, lo);
        acc = _mm256_fmadd_ps(xa, xb, acc);
    }
    float r = horizontal_sum(acc);
    for (; i < d; ++i) r += (vmin[i] + (float(a[i]) + 0.5f) * step[i]) * (vmin[i] + (float(b[i]) + 0.5f) * step[i]);
    return r;
}

float decoded_product_portable(const float *vmin, const float *step, const uint8_t *a, const uint8_t *b, size_t d) {
    float r = 0;
    for (size_t i = 0; i < d; ++i) r += (vmin[i] + (float(a[i]) + 0.5f) * step[i]) * (vmin[i] + (float(b[i]) + 0.5f) * step[i]);
    return r;
}

using DecodedKernel = float (*)(const float *, const float *, const uint8_t *, const uint8_t *, size_t);
const DecodedKernel decoded_product = has_avx2_fma() ? decoded_product_avx2 : decoded_product_portable;

/// FAISS's 8-bit scalar quantiser (QT_8bit) decodes component i of code c as vmin[i] + (c[i] + 0.5) / 255 · vdiff[i],
/// so a query's inner product with it is offset + Σ w[i]·c[i], with w[i] = q[i]·vdiff[i] / 255 and
/// offset = Σ q[i]·(vmin[i] + 0.5·vdiff[i] / 255): one multiply-add per byte, the 384 bytes of a vector read instead
/// of its 1,536. FAISS 1.7.3 decodes each component with scalar code.
struct FastSQ8Distance : faiss::FlatCodesDistanceComputer {
    size_t d;
    const float *vmin, *vdiff;
    std::unique_ptr<float, FreeDeleter> weights;
    float offset = 0;
    std::vector<float> step;  // vdiff / 255

    FastSQ8Distance(const faiss::IndexScalarQuantizer &index)
        : faiss::FlatCodesDistanceComputer(index.codes.data(), index.code_size), d(size_t(index.d)),
          vmin(index.sq.trained.data()), vdiff(index.sq.trained.data() + index.d), weights(aligned_floats(size_t(index.d))),
          step(size_t(index.d)) {
        for (size_t i = 0; i < d; ++i) step[i] = vdiff[i] / 255.0f;
    }

    void set_query(const float *x) override {
        double sum = 0;
        for (size_t i = 0; i < d; ++i) {
            weights.get()[i] = x[i] * vdiff[i] / 255.0f;
            sum += double(x[i]) * (double(vmin[i]) + 0.5 * double(vdiff[i]) / 255.0);
        }
        offset = float(sum);
    }
    float distance_to_code(const uint8_t *code) override { return offset + weighted_bytes(weights.get(), code, d); }
    float symmetric_dis(faiss::Index::idx_t i, faiss::Index::idx_t j) override {
        return decoded_product(vmin, step.data(), codes + i * code_size, codes + j * code_size, d);
    }
};

/// An inner-product IndexScalarQuantizer of 8-bit codes (QT_8bit) whose distances are `FastSQ8Distance`'s; written
/// and read as FAISS's own.
struct FastIndexSQ8 : faiss::IndexScalarQuantizer {
    FastIndexSQ8() = default;
    faiss::FlatCodesDistanceComputer *get_FlatCodesDistanceComputer() const override { return new FastSQ8Distance(*this); }
};

/// `to`, given `from`'s stored codes (moved) and the state that goes with them.
template <typename Fast> Fast *take_codes(faiss::IndexFlatCodes &from, Fast *to) {
    to->codes.swap(from.codes);
    to->ntotal = from.ntotal;
    to->is_trained = from.is_trained;
    to->verbose = from.verbose;
    return to;
}

/// A FastIndexSQ8 holding `index`'s codes and quantiser (moved out of it), or nullptr when `index` is not a plain
/// inner-product QT_8bit IndexScalarQuantizer.
faiss::Index *faster_sq8(faiss::Index *index) {
    if (index == nullptr || typeid(*index) != typeid(faiss::IndexScalarQuantizer)) return nullptr;
    auto *sq = static_cast<faiss::IndexScalarQuantizer *>(index);
    if (sq->metric_type != faiss::METRIC_INNER_PRODUCT || sq->sq.qtype != faiss::ScalarQuantizer::QT_8bit) return nullptr;
    auto *fast = new FastIndexSQ8();
    fast->d = sq->d;
    fast->metric_type = sq->metric_type;
    fast->sq = sq->sq;
    fast->code_size = sq->code_size;
    return take_codes(*sq, fast);
}

/// Whether `hnsw_search` and `ivfpq_search` are used (`hume_faiss_set_hume_hnsw_walk`, `hume_faiss_set_hume_ivfpq_scan`).
std::atomic<bool> hume_hnsw_walk{true}, hume_ivfpq_scan{true};

/// `bytes` bytes from `p` on their way into the cache.
inline void prefetch(const void *p, size_t bytes) {
    for (size_t offset = 0; offset < bytes; offset += 64) _mm_prefetch(static_cast<const char *>(p) + offset, _MM_HINT_T0);
}

/// Marks of the nodes one graph walk has visited: a byte per node, cleared by moving to a new mark (FAISS's
/// VisitedTable, one per thread and kept between queries).
struct Visited {
    std::vector<uint8_t> marks;
    uint8_t mark = 0;

    void start(size_t n) {
        if (marks.size() < n) marks.assign(n, 0), mark = 0;
        if (++mark == 0) std::fill(marks.begin(), marks.end(), 0), mark = 1;
    }
    /// Whether `i` was visited; it is from now on.
    bool visit(int i) {
        if (marks[i] == mark) return true;
        marks[i] = mark;
        return false;
    }
};

/// One query's k best matches in an HNSW graph: FAISS's own walk (a greedy descent of the upper layers, then a
/// best-first search of layer 0 keeping the efSearch best seen), written so that it waits on memory less. A graph of a
/// million 384-d vectors is 1.5 GB, and FAISS reads each neighbour's vector only when it computes its distance; here
/// the unvisited neighbours of a node are listed first and the vector after next (`address`, `bytes` long) is
/// prefetched while one is scored (`similarity`, larger is nearer). Results best first, -1 past the found.
template <typename Similarity, typename Address>
void hnsw_search_one(const faiss::IndexHNSW &index, Similarity similarity, Address address, size_t bytes,
                     faiss::Index::idx_t k, float *distances, faiss::Index::idx_t *labels, Visited &visited) {
    const faiss::HNSW &graph = index.hnsw;
    std::fill(distances, distances + k, -std::numeric_limits<float>::max());
    std::fill(labels, labels + k, faiss::Index::idx_t(-1));
    if (index.ntotal == 0 || graph.entry_point < 0) return;
    auto range = [&](int node, int layer, size_t &begin, size_t &end) {
        size_t o = graph.offsets[node];
        begin = o + graph.cum_nneighbor_per_level[layer];
        end = o + graph.cum_nneighbor_per_level[layer + 1];
    };

    int nearest = graph.entry_point;
    float best = similarity(nearest);
    for (int layer = graph.max_level; layer >= 1; --layer) {
        for (bool moved = true; moved;) {
            moved = false;
            size_t begin, end;
            range(nearest, layer, begin, end);
            for (size_t j = begin; j < end; ++j) {
                int v = graph.neighbors[j];
                if (v < 0) break;
                float s = similarity(v);
                if (s > best) best = s, nearest = v, moved = true;
            }
        }
    }

    using Node = std::pair<float, int>;  // (similarity, id)
    const size_t ef = std::max<size_t>(size_t(graph.efSearch), size_t(k));
    std::priority_queue<Node> frontier;                                       // best on top
    std::priority_queue<Node, std::vector<Node>, std::greater<Node>> found;   // worst on top, at most ef
    visited.start(size_t(index.ntotal));
    visited.visit(nearest);
    frontier.emplace(best, nearest);
    found.emplace(best, nearest);
    std::vector<int> fresh;
    fresh.reserve(size_t(graph.nb_neighbors(0)));
    while (!frontier.empty()) {
        Node top = frontier.top();
        if (found.size() >= ef && top.first < found.top().first) break;
        frontier.pop();
        size_t begin, end;
        range(top.second, 0, begin, end);
        fresh.clear();
        for (size_t j = begin; j < end; ++j) {
            int v = graph.neighbors[j];
            if (v < 0) break;
            if (!visited.visit(v)) fresh.push_back(v);
        }
        for (size_t t = 0; t < fresh.size() && t < 2; ++t) prefetch(address(fresh[t]), bytes);
        for (size_t t = 0; t < fresh.size(); ++t) {
            if (t + 2 < fresh.size()) prefetch(address(fresh[t + 2]), bytes);
            float s = similarity(fresh[t]);
            if (found.size() < ef || s > found.top().first) {
                frontier.emplace(s, fresh[t]);
                found.emplace(s, fresh[t]);
                if (found.size() > ef) found.pop();
            }
        }
    }
    while (found.size() > size_t(k)) found.pop();
    for (size_t i = found.size(); i-- > 0;) {
        distances[i] = found.top().first;
        labels[i] = found.top().second;
        found.pop();
    }
}


/// `hnsw_search_one` for each of `n` queries when `index` is an HNSW graph over FastIndexFlat vectors or FastIndexSQ8
/// codes; false (and nothing done) otherwise.
bool hnsw_search(const faiss::Index *index, faiss::Index::idx_t n, const float *x, faiss::Index::idx_t k,
                 float *distances, faiss::Index::idx_t *labels) {
    if (!hume_hnsw_walk.load(std::memory_order_relaxed)) return false;
    const auto *hnsw = dynamic_cast<const faiss::IndexHNSW *>(index);
    if (hnsw == nullptr || hnsw->storage == nullptr) return false;
    thread_local Visited visited;
    const size_t d = size_t(hnsw->d);
    if (typeid(*hnsw->storage) == typeid(FastIndexFlat)) {
        const float *base = static_cast<const FastIndexFlat *>(hnsw->storage)->get_xb();
        std::unique_ptr<float, FreeDeleter> query = aligned_floats(d);
        auto similarity = [&](int i) { return inner_product(query.get(), base + size_t(i) * d, d); };
        auto address = [&](int i) { return static_cast<const void *>(base + size_t(i) * d); };
        for (faiss::Index::idx_t q = 0; q < n; ++q) {
            std::copy(x + q * d, x + (q + 1) * d, query.get());
            hnsw_search_one(*hnsw, similarity, address, d * sizeof(float), k, distances + q * k, labels + q * k, visited);
        }
        return true;
    }
    if (typeid(*hnsw->storage) == typeid(FastIndexSQ8)) {
        const auto &storage = *static_cast<const FastIndexSQ8 *>(hnsw->storage);
        FastSQ8Distance dis(storage);
        auto similarity = [&](int i) { return dis.distance_to_code(storage.codes.data() + size_t(i) * storage.code_size); };
        auto address = [&](int i) { return static_cast<const void *>(storage.codes.data() + size_t(i) * storage.code_size); };
        for (faiss::Index::idx_t q = 0; q < n; ++q) {
            dis.set_query(x + q * d);
            hnsw_search_one(*hnsw, similarity, address, storage.code_size, k, distances + q * k, labels + q * k, visited);
        }
        return true;
    }
    return false;
}

/// One query's k best matches in an inverted-list index with 8-bit product-quantised codes (IVF-PQ, inner product):
/// FAISS's computation for a query, written for one query at a time. FAISS 1.7.3 builds the query's table of
/// sub-vector products with one call of its scalar product per (sub-quantiser, centroid) pair (12,288 calls for 48
/// sub-quantisers) and recomputes each probed list's centre product, which together took about a third of a
/// one-query search. Here the table is one pass of plain loops, the coarse products come from the quantiser's
/// search (they are the same products), and the codes are scanned as FAISS scans them: the list's centre product
/// plus one table entry per sub-quantiser. `query` is on a cache-line boundary. Results best first, -1 past the found.
void ivfpq_search_one(const faiss::IndexIVFPQ &index, const float *query, faiss::Index::idx_t k, float *distances,
                      faiss::Index::idx_t *labels, std::vector<float> &table, std::vector<float> &coarse,
                      std::vector<faiss::Index::idx_t> &lists) {
    using Heap = faiss::CMin<float, faiss::Index::idx_t>;
    const faiss::ProductQuantizer &pq = index.pq;
    const size_t M = pq.M, ksub = pq.ksub, dsub = pq.dsub;
    const size_t nprobe = std::min<size_t>(std::max<size_t>(index.nprobe, 1), index.nlist);
    coarse.resize(nprobe);
    lists.resize(nprobe);
    index.quantizer->search(1, query, faiss::Index::idx_t(nprobe), coarse.data(), lists.data());
    table.resize(M * ksub);
    for (size_t m = 0; m < M; ++m) {
        const float *q = query + m * dsub;
        for (size_t c = 0; c < ksub; ++c) {
            const float *centroid = pq.centroids.data() + (m * ksub + c) * dsub;
            float sum = 0;
            for (size_t t = 0; t < dsub; ++t) sum += q[t] * centroid[t];
            table[m * ksub + c] = sum;
        }
    }
    faiss::heap_heapify<Heap>(k, distances, labels);
    for (size_t p = 0; p < nprobe; ++p) {
        if (lists[p] < 0) continue;
        const size_t list = size_t(lists[p]), size = index.invlists->list_size(list);
        if (size == 0) continue;
        faiss::InvertedLists::ScopedCodes codes(index.invlists, list);
        faiss::InvertedLists::ScopedIds ids(index.invlists, list);
        const float base = index.by_residual ? coarse[p] : 0;
        const uint8_t *code = codes.get();
        for (size_t j = 0; j < size; ++j, code += M) {
            float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
            size_t m = 0;
            for (; m + 4 <= M; m += 4) {
                a0 += table[m * ksub + code[m]];
                a1 += table[(m + 1) * ksub + code[m + 1]];
                a2 += table[(m + 2) * ksub + code[m + 2]];
                a3 += table[(m + 3) * ksub + code[m + 3]];
            }
            for (; m < M; ++m) a0 += table[m * ksub + code[m]];
            const float sim = base + ((a0 + a1) + (a2 + a3));
            if (Heap::cmp(distances[0], sim)) faiss::heap_replace_top<Heap>(k, distances, labels, sim, ids[j]);
        }
    }
    faiss::heap_reorder<Heap>(k, distances, labels);
}

/// `ivfpq_search_one` for each of `n` queries when `index` is an inner-product IVF-PQ index with 8-bit codes and
/// no polysemous filtering; false (and nothing done) otherwise.
bool ivfpq_search(const faiss::Index *index, faiss::Index::idx_t n, const float *x, faiss::Index::idx_t k,
                  float *distances, faiss::Index::idx_t *labels) {
    if (!hume_ivfpq_scan.load(std::memory_order_relaxed)) return false;
    if (index == nullptr || typeid(*index) != typeid(faiss::IndexIVFPQ)) return false;
    const auto &ivfpq = static_cast<const faiss::IndexIVFPQ &>(*index);
    if (ivfpq.metric_type != faiss::METRIC_INNER_PRODUCT || ivfpq.pq.nbits != 8 || ivfpq.polysemous_ht != 0 ||
        ivfpq.pq.code_size != ivfpq.pq.M || ivfpq.invlists == nullptr) {
        return false;
    }
    thread_local std::vector<float> table, coarse;
    thread_local std::vector<faiss::Index::idx_t> lists;
    std::unique_ptr<float, FreeDeleter> query = aligned_floats(size_t(ivfpq.d));
    for (faiss::Index::idx_t q = 0; q < n; ++q) {
        std::copy(x + q * ivfpq.d, x + (q + 1) * ivfpq.d, query.get());
        ivfpq_search_one(ivfpq, query.get(), k, distances + q * k, labels + q * k, table, coarse, lists);
    }
    return true;
}

/// A FastIndexFlat holding `index`'s vectors (moved out of it), or nullptr when `index` is not a plain inner-product
/// IndexFlat.
faiss::Index *faster(faiss::Index *index) {
    if (index == nullptr) return nullptr;
    const std::type_info &type = typeid(*index);
    if (type != typeid(faiss::IndexFlat) && type != typeid(faiss::IndexFlatIP)) return nullptr;
    auto *flat = static_cast<faiss::IndexFlat *>(index);
    if (flat->metric_type != faiss::METRIC_INNER_PRODUCT) return nullptr;
    return take_codes(*flat, new FastIndexFlat(flat->d));
}

/// Replaces `slot` (deleted if `owned`) by what `make` makes of it (by default a FastIndexFlat holding its vectors)
/// when `make` takes it; the replacement is then owned. Returns whether it did.
bool replace_storage(faiss::Index *&slot, bool &owned, faiss::Index *(*make)(faiss::Index *) = faster) {
    faiss::Index *fast = make(slot);
    if (fast == nullptr) return false;
    if (owned) delete slot;
    slot = fast;
    owned = true;
    return true;
}

/// Puts FastIndexFlat where `index` keeps flat vectors inside it (an HNSW index's storage, an IVF index's coarse
/// quantizer, or, for an HNSW quantizer, its storage), and FastIndexSQ8 where an HNSW index keeps 8-bit codes.
void accelerate_parts(faiss::Index *index) {
    if (auto *hnsw = dynamic_cast<faiss::IndexHNSW *>(index)) {
        if (!replace_storage(hnsw->storage, hnsw->own_fields)) replace_storage(hnsw->storage, hnsw->own_fields, faster_sq8);
    } else if (auto *ivf = dynamic_cast<faiss::IndexIVF *>(index)) {
        if (!replace_storage(ivf->quantizer, ivf->own_fields)) accelerate_parts(ivf->quantizer);
    }
}

/// Asks the kernel to back the 2 MB-aligned middle of [p, p + bytes) with huge pages, now (MADV_COLLAPSE, Linux 6.1;
/// on older kernels, or where THP is off, the advice is refused and nothing changes). A graph walk reads a few hundred
/// bytes at random places of an array of hundreds of megabytes: with 4 KB pages nearly every read also misses the TLB.
void advise_huge_pages(const void *p, size_t bytes) {
    const uintptr_t huge = uintptr_t(2) << 20;
    if (bytes < 4 * huge) return;
    uintptr_t start = (reinterpret_cast<uintptr_t>(p) + huge - 1) & ~(huge - 1);
    uintptr_t end = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(huge - 1);
    if (end <= start) return;
    void *at = reinterpret_cast<void *>(start);
    if (madvise(at, end - start, MADV_HUGEPAGE) != 0) return;
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif
    (void)madvise(at, end - start, MADV_COLLAPSE);
}

/// Huge pages for the arrays an HNSW search reads at random: the vectors or codes, and the neighbour lists.
void advise_huge_pages(const faiss::Index *index) {
    const auto *hnsw = dynamic_cast<const faiss::IndexHNSW *>(index);
    if (hnsw == nullptr) return;
    const auto &g = hnsw->hnsw;
    advise_huge_pages(g.neighbors.data(), g.neighbors.size() * sizeof(g.neighbors[0]));
    advise_huge_pages(g.offsets.data(), g.offsets.size() * sizeof(g.offsets[0]));
    if (const auto *codes = dynamic_cast<const faiss::IndexFlatCodes *>(hnsw->storage)) {
        advise_huge_pages(codes->codes.data(), codes->codes.size());
    }
}

/// `index` with FastIndexFlat wherever it keeps flat inner-product vectors: itself, or its parts.
std::unique_ptr<faiss::Index> accelerated(std::unique_ptr<faiss::Index> index) {
    if (faiss::Index *fast = faster(index.get())) return std::unique_ptr<faiss::Index>(fast);
    accelerate_parts(index.get());
    return index;
}

} // namespace

extern "C" {

const char *hume_faiss_last_error(void) { return last_error.c_str(); }

int hume_faiss_set_hume_hnsw_walk(int on) { return hume_hnsw_walk.exchange(on != 0) ? 1 : 0; }

int hume_faiss_set_hume_ivfpq_scan(int on) { return hume_ivfpq_scan.exchange(on != 0) ? 1 : 0; }

void hume_faiss_inner_products(const float *query, const float *vectors, const int64_t *ids, int64_t n, int d,
                               float *out) {
    std::unique_ptr<float, FreeDeleter> q = aligned_floats(size_t(d));
    std::copy(query, query + d, q.get());
    const size_t bytes = size_t(d) * sizeof(float);
    for (int64_t i = 0; i < n && i < 2; ++i) if (ids[i] >= 0) prefetch(vectors + ids[i] * d, bytes);
    for (int64_t i = 0; i < n; ++i) {
        if (i + 2 < n && ids[i + 2] >= 0) prefetch(vectors + ids[i + 2] * d, bytes);
        out[i] = ids[i] < 0 ? -std::numeric_limits<float>::infinity() : inner_product(q.get(), vectors + ids[i] * d, size_t(d));
    }
}

hume_faiss_status hume_faiss_index_factory(int d, const char *description, hume_faiss_index **out) {
    const char *where = "index_factory";
    if (out == nullptr) return fail(HUME_FAISS_INVALID_ARGUMENT, where, "the output pointer is NULL");
    *out = nullptr;
    if (description == nullptr) return fail(HUME_FAISS_INVALID_ARGUMENT, where, "the factory string is NULL");
    if (d <= 0) {
        return fail(HUME_FAISS_INVALID_ARGUMENT, where,
                    "the dimension must be positive, got " + std::to_string(d));
    }
    hume_faiss_index *made = nullptr;
    hume_faiss_status status = guarded(where, [&] {
        made = new hume_faiss_index{
            accelerated(std::unique_ptr<faiss::Index>(faiss::index_factory(d, description, faiss::METRIC_INNER_PRODUCT)))};
    });
    if (status != HUME_FAISS_OK) {
        last_error = std::string("index_factory(\"") + description + "\", d=" + std::to_string(d) + ")" +
                     last_error.substr(std::string(where).size());
        return status;
    }
    *out = made;
    return HUME_FAISS_OK;
}

hume_faiss_status hume_faiss_train(hume_faiss_index *index, int64_t n, const float *x) {
    hume_faiss_status status;
    if (!vectors_ok(index, n, x, "train", &status)) return status;
    return guarded("train", [&] { index->index->train(n, x); });
}

hume_faiss_status hume_faiss_add(hume_faiss_index *index, int64_t n, const float *x) {
    hume_faiss_status status;
    if (!vectors_ok(index, n, x, "add", &status)) return status;
    if (!index->index->is_trained) {
        return fail(HUME_FAISS_FAISS_ERROR, "add", "the index is not trained; train it before adding vectors");
    }
    return guarded("add", [&] {
        index->index->add(n, x);
        index->paged.store(false);  // the arrays may have moved
    });
}

hume_faiss_status hume_faiss_search(const hume_faiss_index *index, int64_t n, const float *x, int64_t k,
                                    float *distances, int64_t *labels) {
    const char *where = "search";
    hume_faiss_status status;
    if (!vectors_ok(index, n, x, where, &status)) return status;
    if (k <= 0) return fail(HUME_FAISS_INVALID_ARGUMENT, where, "k must be positive, got " + std::to_string(k));
    if (n > 0 && (distances == nullptr || labels == nullptr)) {
        return fail(HUME_FAISS_INVALID_ARGUMENT, where, "the result buffers are NULL");
    }
    return guarded(where, [&] {
        if (!index->paged.exchange(true)) advise_huge_pages(index->index.get());
        // A few queries on an HNSW graph or an IVF-PQ index take Hume's search (`hnsw_search`, `ivfpq_search`);
        // batches stay FAISS's, parallel over queries.
        if (n < 20 && hnsw_search(index->index.get(), n, x, k, distances, labels)) return;
        if (n < 20 && ivfpq_search(index->index.get(), n, x, k, distances, labels)) return;
        index->index->search(n, x, k, distances, labels);
    });
}

hume_faiss_status hume_faiss_set_hnsw_ef_search(hume_faiss_index *index, int ef_search) {
    return set_parameter(index, "efSearch", ef_search, "set_hnsw_ef_search");
}

hume_faiss_status hume_faiss_set_ivf_nprobe(hume_faiss_index *index, int nprobe) {
    return set_parameter(index, "nprobe", nprobe, "set_ivf_nprobe");
}

hume_faiss_status hume_faiss_set_search_parameter(hume_faiss_index *index, const char *name, double value) {
    if (name == nullptr) return fail(HUME_FAISS_INVALID_ARGUMENT, "set_search_parameter", "the parameter name is NULL");
    return set_parameter(index, name, value, "set_search_parameter");
}

int64_t hume_faiss_ntotal(const hume_faiss_index *index) {
    return (index != nullptr && index->index) ? index->index->ntotal : 0;
}

int hume_faiss_dimension(const hume_faiss_index *index) {
    return (index != nullptr && index->index) ? index->index->d : 0;
}

int hume_faiss_is_trained(const hume_faiss_index *index) {
    return (index != nullptr && index->index && index->index->is_trained) ? 1 : 0;
}

hume_faiss_status hume_faiss_write(const hume_faiss_index *index, const char *path) {
    const char *where = "write";
    if (index == nullptr || !index->index) return fail(HUME_FAISS_INVALID_ARGUMENT, where, "the index is NULL");
    if (path == nullptr) return fail(HUME_FAISS_INVALID_ARGUMENT, where, "the path is NULL");
    return guarded(where, [&] { faiss::write_index(index->index.get(), path); });
}

hume_faiss_status hume_faiss_read(const char *path, int mmap, hume_faiss_index **out, int *used_mmap) {
    const char *where = "read";
    if (used_mmap != nullptr) *used_mmap = 0;
    if (out == nullptr) return fail(HUME_FAISS_INVALID_ARGUMENT, where, "the output pointer is NULL");
    *out = nullptr;
    if (path == nullptr) return fail(HUME_FAISS_INVALID_ARGUMENT, where, "the path is NULL");

    std::unique_ptr<faiss::Index> index;
    bool mapped = false;
    if (mmap != 0) {
        // IO_FLAG_MMAP only applies to IVF inverted lists; anything FAISS cannot map is read normally below.
        hume_faiss_status status = guarded(where, [&] {
            index.reset(faiss::read_index(path, faiss::IO_FLAG_MMAP));
            const faiss::IndexIVF *ivf = faiss::ivflib::try_extract_index_ivf(index.get());
            mapped = ivf != nullptr && dynamic_cast<const faiss::OnDiskInvertedLists *>(ivf->invlists) != nullptr;
        });
        if (status != HUME_FAISS_OK) index.reset();
    }
    if (!index) {
        hume_faiss_status status = guarded(where, [&] { index.reset(faiss::read_index(path, 0)); });
        if (status != HUME_FAISS_OK) return status;
    }
    hume_faiss_index *made = nullptr;
    hume_faiss_status status = guarded(where, [&] { made = new hume_faiss_index{accelerated(std::move(index))}; });
    if (status != HUME_FAISS_OK) return status;
    *out = made;
    if (used_mmap != nullptr) *used_mmap = mapped ? 1 : 0;
    return HUME_FAISS_OK;
}

void hume_faiss_free(hume_faiss_index *index) {
    // Destructors of FAISS indexes do not throw; delete is noexcept.
    delete index;
}

void hume_faiss_set_omp_threads(int n) {
    if (n >= 1) omp_set_num_threads(n);
}

int hume_faiss_inner_product_kernels(const float *x, const float *y, size_t d, float out[2]) {
    out[0] = inner_product_portable(x, y, d);
    out[1] = has_avx2_fma() ? inner_product_avx2(x, y, d) : std::numeric_limits<float>::quiet_NaN();
    return inner_product == inner_product_avx2 ? 1 : 0;
}

} // extern "C"
