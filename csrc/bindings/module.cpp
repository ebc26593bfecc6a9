// xanesnet._core: the compiled backend. Each bind_*.cpp registers one component.
#include <pybind11/pybind11.h>

#include "threading.hpp"

namespace py = pybind11;

void bind_file_block(py::module_& m);
void bind_laplacian(py::module_& m);
void bind_neighbours(py::module_& m);
void bind_wacsf(py::module_& m);

PYBIND11_MODULE(_core, m) {
    m.doc() =
        "Compiled core of xanesnet: neighbour search, wACSF descriptors, Laplacian kernel, "
        "block file reading.";
    m.attr("have_openmp") = xanesnet::have_openmp();
    m.def("default_threads", [] { return xanesnet::resolve_threads(0); },
          "Threads used when n_threads=0 (all cores, or OMP_NUM_THREADS).");
    bind_neighbours(m);
    bind_wacsf(m);
    bind_laplacian(m);
    bind_file_block(m);
}
