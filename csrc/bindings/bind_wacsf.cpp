// Binding of the batched wACSF kernel: one call per batch of structures, GIL released. The
// descriptor parameters arrive as one dict (WACSF.kernel_params()) converted here once into
// the core's WacsfParams.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "arrays.hpp"
#include "xanesnet/wacsf.hpp"

namespace py = pybind11;

namespace {

using xanesnet_bindings::CArray;
using xanesnet_bindings::require_shape;

const char* const kParamKeys[] = {
    "r_max",        "g2_eta",          "g2_mu",          "g4_eta",       "g4_mu",
    "lambdas",      "zetas",           "element_weights", "channel_weights", "rjk_raw_cosine",
    "min_distance", "max_neighbours",  "max_images",     "max_length",
};

/// The params dict as the core's struct, with the arrays it borrows kept alive.
struct Params {
    CArray<double> g2_eta, g2_mu, g4_eta, g4_mu, lambdas, zetas, element_weights,
        channel_weights;
    xanesnet::WacsfParams core;

    explicit Params(const py::dict& d) {
        for (const auto& item : d) {
            const std::string key = py::str(item.first);
            if (std::none_of(std::begin(kParamKeys), std::end(kParamKeys),
                             [&](const char* k) { return key == k; }))
                throw std::invalid_argument("params: unknown key '" + key + "'");
        }
        for (const char* key : kParamKeys)
            if (!d.contains(key))
                throw std::invalid_argument(std::string("params: missing '") + key + "'");
        auto array = [&](const char* key) { return CArray<double>::ensure(d[key]); };
        g2_eta = array("g2_eta");
        g2_mu = array("g2_mu");
        g4_eta = array("g4_eta");
        g4_mu = array("g4_mu");
        lambdas = array("lambdas");
        zetas = array("zetas");
        element_weights = array("element_weights");
        channel_weights = array("channel_weights");
        for (const auto* a : {&g2_eta, &g2_mu, &g4_eta, &g4_mu, &lambdas, &zetas,
                              &element_weights, &channel_weights})
            if (!*a) throw std::invalid_argument("params: arrays must hold numbers");
        require_shape(g2_eta, "g2_eta", {-1}, "(n_g2,)");
        require_shape(g2_mu, "g2_mu", {g2_eta.size()}, "(n_g2,)");
        require_shape(g4_eta, "g4_eta", {-1}, "(n_g4_radial,)");
        require_shape(g4_mu, "g4_mu", {g4_eta.size()}, "(n_g4_radial,)");
        require_shape(lambdas, "lambdas", {-1}, "(n_lambdas,)");
        require_shape(zetas, "zetas", {-1}, "(n_zetas,)");
        require_shape(element_weights, "element_weights", {-1}, "(n_elements,)");
        require_shape(channel_weights, "channel_weights", {-1, element_weights.size()},
                      "(n_channels, n_elements)");
        core.r_max = d["r_max"].cast<double>();
        core.g2_eta = g2_eta.data();
        core.g2_mu = g2_mu.data();
        core.n_g2 = static_cast<size_t>(g2_eta.size());
        core.g4_eta = g4_eta.data();
        core.g4_mu = g4_mu.data();
        core.n_g4_radial = static_cast<size_t>(g4_eta.size());
        core.lambdas = lambdas.data();
        core.n_lambdas = static_cast<size_t>(lambdas.size());
        core.zetas = zetas.data();
        core.n_zetas = static_cast<size_t>(zetas.size());
        core.element_weights = element_weights.data();
        core.n_elements = static_cast<size_t>(element_weights.size());
        core.channel_weights = channel_weights.size() ? channel_weights.data() : nullptr;
        core.n_channels = static_cast<size_t>(channel_weights.shape(0));
        core.rjk_raw_cosine = d["rjk_raw_cosine"].cast<bool>();
        core.min_distance = d["min_distance"].cast<double>();
        const auto max_neighbours = d["max_neighbours"].cast<long long>();
        if (max_neighbours < 1) throw std::invalid_argument("max_neighbours must be >= 1");
        core.limits.max_neighbours = static_cast<size_t>(max_neighbours);
        core.limits.max_images = d["max_images"].cast<double>();
        core.limits.max_length = d["max_length"].cast<double>();
    }
};

py::tuple wacsf_batch(CArray<double> positions, CArray<int32_t> numbers,
                      CArray<int64_t> atom_offsets, CArray<double> cells, CArray<uint8_t> pbc,
                      CArray<int64_t> site_structures, CArray<int64_t> site_atoms,
                      const py::dict& params, int n_threads) {
    const py::ssize_t n_structures = atom_offsets.size() - 1;
    if (n_structures < 0) throw std::invalid_argument("atom_offsets: must not be empty");
    require_shape(positions, "positions", {-1, 3}, "(n_atoms, 3)");
    require_shape(numbers, "numbers", {positions.shape(0)}, "(n_atoms,)");
    require_shape(cells, "cells", {n_structures, 3, 3}, "(n_structures, 3, 3)");
    require_shape(pbc, "pbc", {n_structures, 3}, "(n_structures, 3)");
    require_shape(site_atoms, "site_atoms", {site_structures.size()}, "(n_sites,)");
    const Params p(params);
    if (atom_offsets.at(0) != 0 || atom_offsets.at(n_structures) != positions.shape(0))
        throw std::invalid_argument("atom_offsets: must start at 0 and end at n_atoms");
    for (py::ssize_t s = 0; s < n_structures; ++s)
        if (atom_offsets.at(s + 1) < atom_offsets.at(s))
            throw std::invalid_argument("atom_offsets: must not decrease");
    if (n_threads < 0)
        throw std::invalid_argument("n_threads: expected an integer >= 0 (0 = all cores), got " +
                                    std::to_string(n_threads));

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

    const py::ssize_t n_sites = site_structures.size();
    py::array_t<double> features({n_sites, static_cast<py::ssize_t>(p.core.n_features())});
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
        xanesnet::wacsf_batch(batch, p.core, out, report, n_threads);
    }
    return py::make_tuple(features, status, close_pair, close_distance);
}

}  // namespace

void bind_wacsf(py::module_& m) {
    m.def("wacsf_batch", &wacsf_batch, py::arg("positions"), py::arg("numbers"),
          py::arg("atom_offsets"), py::arg("cells"), py::arg("pbc"), py::arg("site_structures"),
          py::arg("site_atoms"), py::arg("params"), py::arg("n_threads"),
          "wACSF of a packed batch of sites -> (features (n_sites, n_features) float64, "
          "status (n_sites,) int32, close_pair (n_sites, 2) int64, close_distance (n_sites,)). "
          "params: the dict of WACSF.kernel_params(). A site that fails has a non-zero status "
          "(xanesnet.descriptors.limits) and a zero row.");
}
