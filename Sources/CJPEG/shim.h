#ifndef HUME_CJPEG_SHIM_H
#define HUME_CJPEG_SHIM_H
// libjpeg-turbo's TurboJPEG API for Swift. It catches libjpeg's errors itself (libjpeg's own API reports them by
// longjmp, which must never cross a Swift frame) and reports them through tjGetErrorStr2 / tjGetErrorCode.
#include <stddef.h>
#include <turbojpeg.h>
#endif
