// Binding of the Laplacian kernel ridge prediction: one call per batch of sites, GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "laplacian.hpp"

namespace py = pybind11;

namespace {

template <typename T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;

std::string shape_of(const CArray<float>& a) {
    std::string s = "(";
    for (py::ssize_t d = 0; d < a.ndim(); ++d) s += (d ? ", " : "") + std::to_string(a.shape(d));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

void require_ndim(const CArray<float>& a, const char* name, py::ssize_t ndim,
                  const char* expected) {
    if (a.ndim() != ndim)
        throw std::invalid_argument(std::string(name) + ": expected shape " + expected + ", got " +
                                    shape_of(a));
}

py::array_t<float> laplacian_predict(CArray<float> z, CArray<float> centres, double gamma,
                                     CArray<float> coefficients, CArray<float> y_mean,
                                     int n_threads) {
    require_ndim(z, "z", 2, "(n_sites, n_features)");
    require_ndim(centres, "centres", 2, "(n_centres, n_features)");
    require_ndim(coefficients, "coefficients", 2, "(n_centres, n_energies)");
    require_ndim(y_mean, "y_mean", 1, "(n_energies,)");
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
