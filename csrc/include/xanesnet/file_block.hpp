// Reading many small files at once: whole files end to end in one buffer, and asking the
// kernel to read files ahead. No Python here; the binding is csrc/bindings/bind_file_block.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace xanesnet {

/// Reads whole files into one buffer, in order. On return `bytes` holds the files end to end
/// and `offsets` (n_paths + 1 entries) where each starts: file f is bytes[offsets[f],
/// offsets[f + 1]). A file that cannot be opened or read, or that holds more than `max_bytes`,
/// contributes no bytes, so that the caller can read it another way (and report its error).
void read_whole_files(const char* const* paths, size_t n_paths, size_t max_bytes,
                      std::vector<unsigned char>& bytes, std::vector<int64_t>& offsets);

/// Asks the kernel to start reading the files into the page cache (posix_fadvise WILLNEED),
/// without waiting; files that cannot be opened are skipped. Returns false, doing nothing,
/// where posix_fadvise does not exist.
bool advise_will_need(const char* const* paths, size_t n_paths);

}  // namespace xanesnet
