// xanesnet._core: the compiled backend. Each bind_*.cpp registers one component.
#include <pybind11/pybind11.h>

#include "xanesnet/threads.hpp"

namespace py = pybind11;

void bind_file_block(py::module_& m);
void bind_laplacian(py::module_& m);
void bind_neighbours(py::module_& m);
void bind_wacsf(py::module_& m);

PYBIND11_MODULE(_core, m) {
    m.doc() =
        "Compiled core of xanesnet: neighbour search, wACSF descriptors, Laplacian kernel, "
        "block file reading.";
    m.attr("have_openmp") = xanesnet::openmp_enabled();
    m.def("default_threads", &xanesnet::default_threads,
          "Threads used when n_threads=0 (all cores, or OMP_NUM_THREADS).");
    bind_neighbours(m);
    bind_wacsf(m);
    bind_laplacian(m);
    bind_file_block(m);
}
