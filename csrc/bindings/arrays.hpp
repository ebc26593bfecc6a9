// Shared by the bindings: NumPy array types and shape checks with messages naming the argument.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <initializer_list>
#include <stdexcept>
#include <string>

namespace xanesnet_bindings {

namespace py = pybind11;

/// A C-contiguous array of T (other dtypes and layouts are converted on the way in).
template <typename T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;

/// "(2, 3)" or "(5,)".
inline std::string shape_of(const py::array& a) {
    std::string s = "(";
    for (py::ssize_t d = 0; d < a.ndim(); ++d) s += (d ? ", " : "") + std::to_string(a.shape(d));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

/// Throws std::invalid_argument (ValueError) unless `a` has the shape `expected`; -1 in
/// `expected` accepts any length. `text` is the expected shape as the message writes it.
inline void require_shape(const py::array& a, const char* name,
                          std::initializer_list<py::ssize_t> expected, const char* text) {
    bool ok = a.ndim() == static_cast<py::ssize_t>(expected.size());
    py::ssize_t d = 0;
    for (const py::ssize_t n : expected) {
        if (!ok) break;
        ok = n < 0 || a.shape(d) == n;
        ++d;
    }
    if (!ok)
        throw std::invalid_argument(std::string(name) + ": expected shape " + text + ", got " +
                                    shape_of(a));
}

}  // namespace xanesnet_bindings
