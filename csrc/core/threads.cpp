#include "xanesnet/threads.hpp"

#include "threading.hpp"

namespace xanesnet {

int default_threads() { return resolve_threads(0); }

bool openmp_enabled() { return have_openmp(); }

}  // namespace xanesnet
