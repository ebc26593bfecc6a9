// Binding of the batched wACSF kernel: one call per batch of structures, GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "wacsf.hpp"

namespace py = pybind11;

namespace {

template <typename T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;

template <typename T>
void require_shape(const CArray<T>& a, const char* name, std::initializer_list<py::ssize_t> shape) {
    if (a.ndim() != static_cast<py::ssize_t>(shape.size()))
        throw std::invalid_argument(std::string(name) + ": wrong number of dimensions");
    size_t d = 0;
    for (py::ssize_t s : shape) {
        if (s >= 0 && a.shape(d) != s)
            throw std::invalid_argument(std::string(name) + ": wrong shape");
        ++d;
    }
}

py::tuple wacsf_batch(CArray<double> positions, CArray<int32_t> numbers,
                      CArray<int64_t> atom_offsets, CArray<double> cells, CArray<uint8_t> pbc,
                      CArray<int64_t> site_structures, CArray<int64_t> site_atoms,
                      CArray<double> element_weights, double r_max, CArray<double> g2_eta,
                      CArray<double> g2_mu, CArray<double> g4_eta, CArray<double> g4_mu,
                      CArray<double> lambdas, CArray<double> zetas, bool rjk_raw_cosine,
                      double min_distance, int n_threads, CArray<double> channel_weights) {
    const py::ssize_t n_structures = atom_offsets.size() - 1;
    if (n_structures < 0) throw std::invalid_argument("atom_offsets: must not be empty");
    require_shape(positions, "positions", {-1, 3});
    require_shape(numbers, "numbers", {positions.shape(0)});
    require_shape(cells, "cells", {n_structures, 3, 3});
    require_shape(pbc, "pbc", {n_structures, 3});
    require_shape(site_atoms, "site_atoms", {site_structures.size()});
    require_shape(g2_mu, "g2_mu", {g2_eta.size()});
    require_shape(g4_mu, "g4_mu", {g4_eta.size()});
    if (atom_offsets.at(0) != 0 || atom_offsets.at(n_structures) != positions.shape(0))
        throw std::invalid_argument("atom_offsets: must start at 0 and end at n_atoms");
    for (py::ssize_t s = 0; s < n_structures; ++s)
        if (atom_offsets.at(s + 1) < atom_offsets.at(s))
            throw std::invalid_argument("atom_offsets: must not decrease");

    xanesnet::StructureBatch batch;
    batch.positions = positions.data();
    batch.numbers = numbers.data();
    batch.atom_offsets = atom_offsets.data();
    batch.cells = cells.data();
    batch.pbc = pbc.data();
    batch.n_structures = static_cast<size_t>(n_structures);
    batch.site_structures = site_structures.data();
    batch.site_atoms = site_atoms.data();
    batch.n_sites = static_cast<size_t>(site_structures.size());

    xanesnet::WacsfParams p;
    p.r_max = r_max;
    p.g2_eta = g2_eta.data();
    p.g2_mu = g2_mu.data();
    p.n_g2 = static_cast<size_t>(g2_eta.size());
    p.g4_eta = g4_eta.data();
    p.g4_mu = g4_mu.data();
    p.n_g4_radial = static_cast<size_t>(g4_eta.size());
    p.lambdas = lambdas.data();
    p.n_lambdas = static_cast<size_t>(lambdas.size());
    p.zetas = zetas.data();
    p.n_zetas = static_cast<size_t>(zetas.size());
    p.element_weights = element_weights.data();
    p.n_elements = static_cast<size_t>(element_weights.size());
    if (channel_weights.size() > 0) {
        require_shape(channel_weights, "channel_weights", {-1, element_weights.size()});
        p.channel_weights = channel_weights.data();
        p.n_channels = static_cast<size_t>(channel_weights.shape(0));
    }
    p.rjk_raw_cosine = rjk_raw_cosine;
    p.min_distance = min_distance;

    const py::ssize_t n_sites = site_structures.size();
    py::array_t<double> features({n_sites, static_cast<py::ssize_t>(p.n_features())});
    py::array_t<int32_t> status(n_sites);
    py::array_t<int64_t> close_pair({n_sites, py::ssize_t(2)});
    py::array_t<double> close_distance(n_sites);
    xanesnet::SiteReport report{status.mutable_data(), close_pair.mutable_data(),
                                close_distance.mutable_data()};
    std::fill(close_pair.mutable_data(), close_pair.mutable_data() + 2 * n_sites, -1);
    std::fill(close_distance.mutable_data(), close_distance.mutable_data() + n_sites, 0.0);
    double* out = features.mutable_data();
    {
        py::gil_scoped_release release;
        xanesnet::wacsf_batch(batch, p, out, report, n_threads);
    }
    return py::make_tuple(features, status, close_pair, close_distance);
}

}  // namespace

void bind_wacsf(py::module_& m) {
    m.def("wacsf_batch", &wacsf_batch, py::arg("positions"), py::arg("numbers"),
          py::arg("atom_offsets"), py::arg("cells"), py::arg("pbc"), py::arg("site_structures"),
          py::arg("site_atoms"), py::arg("element_weights"), py::arg("r_max"), py::arg("g2_eta"),
          py::arg("g2_mu"), py::arg("g4_eta"), py::arg("g4_mu"), py::arg("lambdas"),
          py::arg("zetas"), py::arg("rjk_raw_cosine"), py::arg("min_distance"),
          py::arg("n_threads"), py::arg("channel_weights") = py::array_t<double>(),
          "wACSF of a packed batch of sites -> (features (n_sites, n_features) float64, "
          "status (n_sites,) int32, close_pair (n_sites, 2) int64, close_distance (n_sites,)).");
}
