// extern "C" bridge over the FAISS C++ library. No exception may leave this file: every entry point
// runs its body through `guarded`, which turns exceptions into a status and a per-thread message.
#include "faiss_shim.h"

#include <faiss/AutoTune.h>
#include <faiss/IVFlib.h>
#include <faiss/Index.h>
#include <faiss/IndexIVF.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <faiss/invlists/OnDiskInvertedLists.h>

#include <cctype>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <utility>

extern "C" void omp_set_num_threads(int);

struct hume_faiss_index {
    std::unique_ptr<faiss::Index> index;
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

} // namespace

extern "C" {

const char *hume_faiss_last_error(void) { return last_error.c_str(); }

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
        std::unique_ptr<faiss::Index> index(faiss::index_factory(d, description, faiss::METRIC_INNER_PRODUCT));
        made = new hume_faiss_index{std::move(index)};
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
    return guarded("add", [&] { index->index->add(n, x); });
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
    return guarded(where, [&] { index->index->search(n, x, k, distances, labels); });
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
    hume_faiss_status status = guarded(where, [&] { made = new hume_faiss_index{std::move(index)}; });
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

} // extern "C"
