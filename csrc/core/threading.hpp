// Thread-count resolution shared by every parallel kernel.
#pragma once

#ifdef XANESNET_HAVE_OPENMP
#include <omp.h>
#endif

namespace xanesnet {

/// Number of threads a kernel should use: `requested` if > 0, else all available
/// (OpenMP's default, which honours OMP_NUM_THREADS). Never changes process-wide settings.
inline int resolve_threads(int requested) {
#ifdef XANESNET_HAVE_OPENMP
    if (requested > 0) return requested;
    return omp_get_max_threads();
#else
    (void)requested;
    return 1;
#endif
}

/// Whether this build runs kernels on several threads.
inline bool have_openmp() {
#ifdef XANESNET_HAVE_OPENMP
    return true;
#else
    return false;
#endif
}

}  // namespace xanesnet
