// Unit tests of the block file reader (no Python): contents and offsets, unreadable and
// oversized files, empty input, read-ahead advice.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "checks.hpp"
#include "xanesnet/file_block.hpp"

using xanesnet_test::check;

namespace {

std::string scratch_path(const std::string& name) {
    const char* dir = std::getenv("TMPDIR");
    return std::string(dir != nullptr ? dir : "/tmp") + "/xanesnet_test_file_block_" + name;
}

void write_file(const std::string& path, const std::string& text) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) {
        std::printf("FAIL cannot write %s\n", path.c_str());
        std::exit(1);
    }
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
}

std::string slice(const std::vector<unsigned char>& bytes, const std::vector<int64_t>& offsets,
                  size_t f) {
    return std::string(bytes.begin() + offsets[f], bytes.begin() + offsets[f + 1]);
}

}  // namespace

int main() {
    const std::string small = "3\nwater\n8 0 0 0\n1 0.96 0 0\n1 -0.24 0.93 0\n";
    std::string large(200000, 'x');  // several read calls
    large[123456] = '\n';
    const std::string a = scratch_path("a.xyz"), b = scratch_path("b.xyz"),
                      empty = scratch_path("empty.xyz"), missing = scratch_path("missing.xyz");
    write_file(a, small);
    write_file(b, large);
    write_file(empty, "");
    std::remove(missing.c_str());

    const char* paths[] = {a.c_str(), missing.c_str(), b.c_str(), empty.c_str(), a.c_str()};
    std::vector<unsigned char> bytes;
    std::vector<int64_t> offsets;
    xanesnet::read_whole_files(paths, 5, size_t(1) << 20, bytes, offsets);
    check(offsets.size() == 6 && offsets[0] == 0, "offsets: n + 1 entries from 0");
    check(slice(bytes, offsets, 0) == small, "first file's bytes");
    check(offsets[2] == offsets[1], "missing file: no bytes");
    check(slice(bytes, offsets, 2) == large, "large file read in several calls");
    check(offsets[4] == offsets[3], "empty file: no bytes");
    check(slice(bytes, offsets, 4) == small, "a file read twice");
    check(bytes.size() == static_cast<size_t>(offsets[5]), "buffer holds exactly the files");

    // over the limit: no bytes, and the files around it are unaffected
    xanesnet::read_whole_files(paths, 5, 100000, bytes, offsets);
    check(offsets[3] == offsets[2], "file over max_bytes: no bytes");
    check(slice(bytes, offsets, 4) == small, "files after an oversized one");
    xanesnet::read_whole_files(paths, 5, small.size(), bytes, offsets);
    check(slice(bytes, offsets, 0) == small, "a file of exactly max_bytes is read");

    xanesnet::read_whole_files(paths, 0, 10, bytes, offsets);
    check(bytes.empty() && offsets.size() == 1 && offsets[0] == 0, "no files");

    const bool advised = xanesnet::advise_will_need(paths, 5);  // missing file skipped
#if defined(__linux__)
    check(advised, "posix_fadvise exists on Linux");
#else
    (void)advised;
#endif

    for (const std::string& p : {a, b, empty}) std::remove(p.c_str());
    return xanesnet_test::finish("file_block");
}
