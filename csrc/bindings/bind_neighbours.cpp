// Binding of the neighbour search (one call per structure; GIL released).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <stdexcept>

#include "arrays.hpp"
#include "xanesnet/neighbours.hpp"

namespace py = pybind11;

namespace {

using xanesnet_bindings::CArray;
using xanesnet_bindings::require_shape;

py::tuple neighbour_list(CArray<double> positions, CArray<double> cell, CArray<bool> pbc,
                         double cutoff, py::object centres, int n_threads,
                         long long max_neighbours, double max_images, double max_length) {
    require_shape(positions, "positions", {-1, 3}, "(n_atoms, 3)");
    require_shape(cell, "cell", {3, 3}, "(3, 3)");
    require_shape(pbc, "pbc", {3}, "(3,)");
    if (max_neighbours < 1) throw std::invalid_argument("max_neighbours must be >= 1");
    if (!(max_images >= 1.0)) throw std::invalid_argument("max_images must be >= 1");
    if (!(max_length > 0.0)) throw std::invalid_argument("max_length must be positive");
    const xanesnet::SearchLimits limits{static_cast<size_t>(max_neighbours), max_images,
                                        max_length};
    CArray<int64_t> centre_array;
    const int64_t* centre_ptr = nullptr;
    size_t n_centres = 0;
    const auto n_atoms = static_cast<int64_t>(positions.shape(0));
    if (!centres.is_none()) {
        centre_array = CArray<int64_t>::ensure(centres);
        if (!centre_array) throw std::invalid_argument("centres: expected integer indices");
        centre_ptr = centre_array.data();
        n_centres = static_cast<size_t>(centre_array.size());
        for (size_t c = 0; c < n_centres; ++c)
            if (centre_ptr[c] < 0 || centre_ptr[c] >= n_atoms)
                throw std::invalid_argument("centres: index out of range");
    }
    // Count (GIL released; bounded by max_neighbours per centre), allocate uninitialised NumPy
    // arrays, fill them in place.
    std::unique_ptr<xanesnet::NeighbourSearch> search;
    {
        py::gil_scoped_release release;
        search = std::make_unique<xanesnet::NeighbourSearch>(
            positions.data(), static_cast<size_t>(n_atoms), cell.data(), pbc.data(), cutoff,
            limits, centre_ptr, n_centres, n_threads);
    }
    const auto n_pairs = static_cast<py::ssize_t>(search->n_pairs());
    py::array_t<int64_t> i(n_pairs), j(n_pairs);
    py::array_t<double> d(n_pairs);
    py::array_t<double> D({n_pairs, py::ssize_t(3)});
    py::array_t<int32_t> S({n_pairs, py::ssize_t(3)});
    {
        int64_t* pi = i.mutable_data();
        int64_t* pj = j.mutable_data();
        double* pd = d.mutable_data();
        double* pD = D.mutable_data();
        int32_t* pS = S.mutable_data();
        py::gil_scoped_release release;
        search->fill(pi, pj, pd, pD, pS);
    }
    return py::make_tuple(i, j, d, D, S);
}

}  // namespace

void bind_neighbours(py::module_& m) {
    m.def("neighbour_list", &neighbour_list, py::arg("positions"), py::arg("cell"),
          py::arg("pbc"), py::arg("cutoff"), py::arg("centres"), py::arg("n_threads"),
          py::arg("max_neighbours"), py::arg("max_images"), py::arg("max_length"),
          "Neighbours within cutoff -> (i, j, d, D, S) as ase.neighborlist.neighbor_list "
          "'ijdDS'. The limits (xanesnet.descriptors.limits) refuse, with ValueError, a "
          "structure too far or with too many periodic images and a centre with more than "
          "max_neighbours neighbours.");
}
