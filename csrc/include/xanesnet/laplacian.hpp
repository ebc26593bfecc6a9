// Laplacian (L1) kernel ridge prediction for a batch of standardised descriptors.
// Plain C++17 over raw pointers; no Python headers. Model: xanesnet/model/kernel.py.
#pragma once

#include <cstddef>

namespace xanesnet {

/// out[i, :] = Σ_j exp(−γ · Σ_f |z[i, f] − centres[j, f]|) · coefficients[j, :] + y_mean
///
/// All arrays are row-major float32: z (n_sites, n_features), centres (n_centres, n_features),
/// coefficients (n_centres, n_energies), y_mean (n_energies,), out (n_sites, n_energies).
/// The L1 distances are accumulated in float32 SIMD lanes, the kernel weights are float32 and
/// the weighted sum over centres runs in float32, per chunk of centres then across chunks: the
/// result agrees with torch's float32 ``exp(−γ·cdist(z, c, p=1)) @ coefficients + y_mean`` to
/// float32 rounding (it is closer to the float64 result than torch's) (weights below exp(−87) ≈ 1.6e-38 are taken as that value; a NaN or
/// infinite descriptor gives a NaN row). Each site's arithmetic is independent of n_sites and
/// of the thread count, so results are bitwise reproducible on one machine.
/// Throws std::invalid_argument if gamma is negative or not finite.
/// n_threads: 0 = all available.
void laplacian_kernel_predict(const float* z, size_t n_sites, size_t n_features,
                              const float* centres, size_t n_centres, float gamma,
                              const float* coefficients, const float* y_mean, size_t n_energies,
                              float* out, int n_threads);

}  // namespace xanesnet
