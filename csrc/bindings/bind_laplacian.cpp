// Binding of the Laplacian kernel ridge prediction: one call per batch of sites, GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "arrays.hpp"
#include "xanesnet/laplacian.hpp"

namespace py = pybind11;

namespace {

using xanesnet_bindings::CArray;
using xanesnet_bindings::require_shape;
using xanesnet_bindings::shape_of;

py::array_t<float> laplacian_predict(CArray<float> z, CArray<float> centres, double gamma,
                                     CArray<float> coefficients, CArray<float> y_mean,
                                     int n_threads) {
    require_shape(z, "z", {-1, -1}, "(n_sites, n_features)");
    require_shape(centres, "centres", {-1, -1}, "(n_centres, n_features)");
    require_shape(coefficients, "coefficients", {-1, -1}, "(n_centres, n_energies)");
    require_shape(y_mean, "y_mean", {-1}, "(n_energies,)");
    const py::ssize_t n_sites = z.shape(0), n_features = z.shape(1);
    const py::ssize_t n_centres = centres.shape(0), n_energies = coefficients.shape(1);
    if (centres.shape(1) != n_features)
        throw std::invalid_argument("centres: expected " + std::to_string(n_features) +
                                    " features (as z), got shape " + shape_of(centres));
    if (coefficients.shape(0) != n_centres)
        throw std::invalid_argument("coefficients: expected " + std::to_string(n_centres) +
                                    " rows (one per centre), got shape " + shape_of(coefficients));
    if (y_mean.shape(0) != n_energies)
        throw std::invalid_argument("y_mean: expected " + std::to_string(n_energies) +
                                    " values (columns of coefficients), got shape " +
                                    shape_of(y_mean));
    if (n_threads < 0)
        throw std::invalid_argument("n_threads: expected an integer >= 0 (0 = all cores)");
    if (!(gamma >= 0.0) || !std::isfinite(gamma))
        throw std::invalid_argument("gamma: expected a finite value >= 0");
    py::array_t<float> out({n_sites, n_energies});
    float* out_ptr = out.mutable_data();
    {
        py::gil_scoped_release release;
        xanesnet::laplacian_kernel_predict(
            z.data(), static_cast<size_t>(n_sites), static_cast<size_t>(n_features),
            centres.data(), static_cast<size_t>(n_centres), static_cast<float>(gamma),
            coefficients.data(), y_mean.data(), static_cast<size_t>(n_energies), out_ptr,
            n_threads);
    }
    return out;
}

}  // namespace

void bind_laplacian(py::module_& m) {
    m.def("laplacian_predict", &laplacian_predict, py::arg("z"), py::arg("centres"),
          py::arg("gamma"), py::arg("coefficients"), py::arg("y_mean"), py::arg("n_threads") = 0,
          "Laplacian kernel ridge prediction exp(-gamma * cdist(z, centres, p=1)) @ coefficients "
          "+ y_mean -> (n_sites, n_energies) float32. z: (n_sites, n_features) standardised "
          "descriptors; all arrays float32 (others are converted).");
}
