// Binding of the block file reader: one call per block of files, GIL released while reading.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "xanesnet/file_block.hpp"

namespace py = pybind11;

namespace {

/// Paths as the file system wants them (os.fsencode: UTF-8, undecodable bytes kept).
std::vector<std::string> fs_paths(const py::sequence& paths) {
    std::vector<std::string> out;
    out.reserve(paths.size());
    for (const py::handle item : paths) {
        PyObject* encoded = nullptr;
        if (!PyUnicode_FSConverter(item.ptr(), &encoded)) throw py::error_already_set();
        const py::bytes held = py::reinterpret_steal<py::bytes>(encoded);  // freed at scope end
        out.emplace_back(PyBytes_AS_STRING(held.ptr()),
                         static_cast<size_t>(PyBytes_GET_SIZE(held.ptr())));
    }
    return out;
}

std::vector<const char*> c_strings(const std::vector<std::string>& paths) {
    std::vector<const char*> out(paths.size());
    for (size_t i = 0; i < paths.size(); ++i) out[i] = paths[i].c_str();
    return out;
}

/// A 1-D array owning `values` (moved to the heap; freed with the array).
template <typename T>
py::array_t<T> owning_array(std::vector<T>&& values) {
    auto* held = new std::vector<T>(std::move(values));
    py::capsule free_when_done(held, [](void* p) { delete static_cast<std::vector<T>*>(p); });
    return py::array_t<T>({static_cast<py::ssize_t>(held->size())}, held->data(), free_when_done);
}

py::tuple read_whole_files(const py::sequence& paths, py::ssize_t max_bytes) {
    if (max_bytes < 0) throw std::invalid_argument("max_bytes: expected an integer >= 0");
    const std::vector<std::string> owned = fs_paths(paths);
    const std::vector<const char*> pointers = c_strings(owned);
    std::vector<unsigned char> bytes;
    std::vector<int64_t> offsets;
    {
        py::gil_scoped_release release;
        xanesnet::read_whole_files(pointers.data(), pointers.size(),
                                   static_cast<size_t>(max_bytes), bytes, offsets);
    }
    return py::make_tuple(owning_array(std::move(bytes)), owning_array(std::move(offsets)));
}

bool advise_will_need(const py::sequence& paths) {
    const std::vector<std::string> owned = fs_paths(paths);
    const std::vector<const char*> pointers = c_strings(owned);
    py::gil_scoped_release release;
    return xanesnet::advise_will_need(pointers.data(), pointers.size());
}

}  // namespace

void bind_file_block(py::module_& m) {
    m.def("read_whole_files", &read_whole_files, py::arg("paths"), py::arg("max_bytes"),
          "Whole files end to end -> (bytes (n_bytes,) uint8, offsets (n_files + 1,) int64): "
          "file f is bytes[offsets[f]:offsets[f + 1]]; a file that cannot be read or holds "
          "more than max_bytes gives no bytes.");
    m.def("advise_will_need", &advise_will_need, py::arg("paths"),
          "Ask the kernel to read the files into the page cache ahead (posix_fadvise WILLNEED); "
          "False where that call does not exist.");
}
