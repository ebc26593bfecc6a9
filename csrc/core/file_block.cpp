#include "xanesnet/file_block.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <unistd.h>
#define XANESNET_POSIX_IO 1
#endif

namespace xanesnet {

namespace {

// Bytes asked for per read call; small structure files take one call (plus one that sees EOF).
constexpr size_t kReadStep = size_t(1) << 16;

/// A growing byte buffer whose unused tail is never zero-filled per file.
struct Buffer {
    std::vector<unsigned char>& bytes;
    size_t used = 0;

    unsigned char* room(size_t n) {
        if (bytes.size() < used + n) bytes.resize(std::max(2 * bytes.size(), used + n));
        return bytes.data() + used;
    }
};

#ifdef XANESNET_POSIX_IO
/// Appends the file's bytes; false (nothing appended) if it cannot be read or is too large.
bool append_file(const char* path, size_t max_bytes, Buffer& out) {
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    const size_t start = out.used;
    bool ok = true;
    for (;;) {
        unsigned char* dest = out.room(kReadStep);
        const ssize_t got = ::read(fd, dest, kReadStep);
        if (got == 0) break;
        if (got < 0 && errno == EINTR) continue;  // a signal arrived: read again, as Python does
        if (got < 0) {
            ok = false;
            break;
        }
        out.used += static_cast<size_t>(got);
        if (out.used - start > max_bytes) {
            ok = false;
            break;
        }
    }
    ::close(fd);
    if (!ok) out.used = start;
    return ok;
}
#else
bool append_file(const char* path, size_t max_bytes, Buffer& out) {
    std::FILE* file = std::fopen(path, "rb");
    if (file == nullptr) return false;
    const size_t start = out.used;
    bool ok = true;
    for (;;) {
        unsigned char* dest = out.room(kReadStep);
        const size_t got = std::fread(dest, 1, kReadStep, file);
        out.used += got;
        if (out.used - start > max_bytes) {
            ok = false;
            break;
        }
        if (got < kReadStep) {
            ok = std::ferror(file) == 0;
            break;
        }
    }
    std::fclose(file);
    if (!ok) out.used = start;
    return ok;
}
#endif

}  // namespace

void read_whole_files(const char* const* paths, size_t n_paths, size_t max_bytes,
                      std::vector<unsigned char>& bytes, std::vector<int64_t>& offsets) {
    bytes.clear();
    offsets.assign(n_paths + 1, 0);
    Buffer out{bytes};
    for (size_t f = 0; f < n_paths; ++f) {
        append_file(paths[f], max_bytes, out);
        offsets[f + 1] = static_cast<int64_t>(out.used);
    }
    bytes.resize(out.used);
}

bool advise_will_need(const char* const* paths, size_t n_paths) {
#if defined(XANESNET_POSIX_IO) && defined(POSIX_FADV_WILLNEED)
    for (size_t f = 0; f < n_paths; ++f) {
        const int fd = ::open(paths[f], O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ::posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
        ::close(fd);
    }
    return true;
#else
    (void)paths;
    (void)n_paths;
    return false;
#endif
}

}  // namespace xanesnet
