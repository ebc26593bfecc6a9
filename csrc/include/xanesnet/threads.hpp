// Threads of the compiled kernels, for the Python module's introspection.
#pragma once

namespace xanesnet {

/// Threads a kernel uses when asked for 0 (all cores, or OMP_NUM_THREADS).
int default_threads();

/// Whether this build runs kernels on several threads (OpenMP).
bool openmp_enabled();

}  // namespace xanesnet
