#ifndef HUME_CZEROMQ_SHIM_H
#define HUME_CZEROMQ_SHIM_H
#include <zmq.h>
#include <errno.h>
#include <sys/eventfd.h>

/// A non-blocking, close-on-exec eventfd, polled beside sockets to wake a zmq_poll loop.
static inline int hume_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

/// errno as seen by the calling thread (Swift cannot read the errno macro directly).
static inline int hume_zmq_errno(void) { return zmq_errno(); }

/// Typed wrappers for zmq_setsockopt with int and byte-string values.
static inline int hume_zmq_setsockopt_int(void *socket, int option, int value) {
    return zmq_setsockopt(socket, option, &value, sizeof(value));
}
static inline int hume_zmq_getsockopt_int(void *socket, int option, int *value) {
    size_t size = sizeof(*value);
    return zmq_getsockopt(socket, option, value, &size);
}
#endif
