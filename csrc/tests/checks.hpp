// Shared by the C++ unit tests: each failed check is printed and counted; finish() turns the
// count into the exit status.
#pragma once

#include <cstdio>

namespace xanesnet_test {

inline int failures = 0;

inline void check(bool ok, const char* what) {
    if (!ok) {
        std::printf("FAIL %s\n", what);
        ++failures;
    }
}

/// Exit status of a test program: 1 (and the count) if any check failed.
inline int finish(const char* name) {
    if (failures) {
        std::printf("%d check(s) failed\n", failures);
        return 1;
    }
    std::printf("all %s checks passed\n", name);
    return 0;
}

}  // namespace xanesnet_test
