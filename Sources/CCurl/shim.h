#ifndef HUME_CCURL_SHIM_H
#define HUME_CCURL_SHIM_H
// libcurl for Swift. curl_easy_setopt and curl_easy_getinfo are variadic, which Swift cannot call,
// so each value type gets a typed wrapper here. Pick the wrapper that matches the option's type
// in the libcurl documentation (CURLOPTTYPE_LONG -> _long, OBJECTPOINT string -> _string, ...).
#include <curl/curl.h>

/// curl_global_init(CURL_GLOBAL_ALL). Call once per process before any other thread uses libcurl.
static inline CURLcode hume_curl_global_init_all(void) { return curl_global_init(CURL_GLOBAL_ALL); }

/// Version and feature information of the libcurl that is loaded (CURLVERSION_NOW).
static inline curl_version_info_data *hume_curl_version_info(void) {
    return curl_version_info(CURLVERSION_NOW);
}

// MARK: curl_easy_setopt

/// Sets an option whose value is a `long` (numbers, booleans, enums such as CURLOPT_HTTP_VERSION).
static inline CURLcode hume_curl_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}
/// Sets an option whose value is a C string (CURLOPT_URL, CURLOPT_USERPWD, ...); libcurl copies it.
/// NULL resets the option to its default.
static inline CURLcode hume_curl_easy_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}
/// Sets an option whose value is an opaque pointer (CURLOPT_WRITEDATA, CURLOPT_READDATA, ...).
static inline CURLcode hume_curl_easy_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}
/// Sets an option whose value is a `curl_off_t` (CURLOPT_INFILESIZE_LARGE, CURLOPT_POSTFIELDSIZE_LARGE, ...).
static inline CURLcode hume_curl_easy_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}
/// Sets an option whose value is a string list (CURLOPT_HTTPHEADER, ...). The list must outlive the transfer.
static inline CURLcode hume_curl_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}
/// Sets a data callback: CURLOPT_WRITEFUNCTION, CURLOPT_HEADERFUNCTION or CURLOPT_READFUNCTION (all
/// share the `size_t (char *, size_t, size_t, void *)` signature).
static inline CURLcode hume_curl_easy_setopt_data_callback(CURL *handle, CURLoption option, curl_write_callback value) {
    return curl_easy_setopt(handle, option, value);
}
/// Sets CURLOPT_XFERINFOFUNCTION (progress; return non-zero to abort the transfer).
static inline CURLcode hume_curl_easy_setopt_xferinfo_callback(CURL *handle, CURLoption option, curl_xferinfo_callback value) {
    return curl_easy_setopt(handle, option, value);
}
/// Sets CURLOPT_SEEKFUNCTION (rewinds an upload body for a retried or redirected request).
static inline CURLcode hume_curl_easy_setopt_seek_callback(CURL *handle, CURLoption option, curl_seek_callback value) {
    return curl_easy_setopt(handle, option, value);
}

// MARK: curl_easy_getinfo

/// Reads a `long` info (CURLINFO_RESPONSE_CODE, CURLINFO_HTTP_VERSION, ...).
static inline CURLcode hume_curl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}
/// Reads a string info (CURLINFO_EFFECTIVE_URL, CURLINFO_CONTENT_TYPE, ...). The string belongs to
/// the handle and may be NULL.
static inline CURLcode hume_curl_easy_getinfo_string(CURL *handle, CURLINFO info, char **value) {
    return curl_easy_getinfo(handle, info, value);
}
/// Reads a `curl_off_t` info (CURLINFO_SIZE_DOWNLOAD_T, CURLINFO_TOTAL_TIME_T, ...).
static inline CURLcode hume_curl_easy_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}
/// Reads a `double` info (the older CURLINFO_*_TIME values).
static inline CURLcode hume_curl_easy_getinfo_double(CURL *handle, CURLINFO info, double *value) {
    return curl_easy_getinfo(handle, info, value);
}
/// Reads a string-list info (CURLINFO_SSL_ENGINES, CURLINFO_COOKIELIST); free it with curl_slist_free_all.
static inline CURLcode hume_curl_easy_getinfo_slist(CURL *handle, CURLINFO info, struct curl_slist **value) {
    return curl_easy_getinfo(handle, info, value);
}
#endif
