// Unit tests of the Laplacian kernel ridge prediction against a naive float64 loop (no Python).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <vector>

#include "checks.hpp"
#include "xanesnet/laplacian.hpp"

using xanesnet_test::check;
using xanesnet_test::failures;

namespace {

/// A random model and sites: standardised-like descriptors (some constant features at 0,
/// as x_inv_scale = 0 gives), γ = 1 / median distance, coefficients of both signs.
struct Problem {
    size_t n_sites, n_features, n_centres, n_energies;
    std::vector<float> z, centres, coefficients, y_mean;
    float gamma = 0.0f;

    Problem(size_t sites, size_t features, size_t n_c, size_t energies, unsigned seed = 7)
        : n_sites(sites), n_features(features), n_centres(n_c), n_energies(energies) {
        std::mt19937 rng(seed);
        std::normal_distribution<float> normal(0.0f, 1.0f);
        auto fill = [&](std::vector<float>& v, size_t rows, size_t cols) {
            v.resize(rows * cols);
            for (size_t i = 0; i < rows; ++i)
                for (size_t f = 0; f < cols; ++f)
                    v[i * cols + f] = (f % 7 == 3) ? 0.0f : normal(rng);
        };
        fill(z, n_sites, n_features);
        fill(centres, n_centres, n_features);
        coefficients.resize(n_centres * n_energies);
        for (auto& a : coefficients) a = 3.0f * normal(rng);
        y_mean.resize(n_energies);
        for (size_t e = 0; e < n_energies; ++e) y_mean[e] = 1.0f + 0.01f * static_cast<float>(e);
        // γ ≈ 1 / typical distance, so that the weights spread over (0, 1)
        const double typical = 1.13 * static_cast<double>(n_features) * 6.0 / 7.0;
        gamma = static_cast<float>(n_features ? 1.0 / typical : 1.0);
    }

    std::vector<float> run(int threads) const {
        std::vector<float> out(n_sites * n_energies, -12345.0f);
        xanesnet::laplacian_kernel_predict(z.data(), n_sites, n_features, centres.data(),
                                           n_centres, gamma, coefficients.data(), y_mean.data(),
                                           n_energies, out.data(), threads);
        return out;
    }

    std::vector<double> reference() const {
        std::vector<double> out(n_sites * n_energies);
        for (size_t i = 0; i < n_sites; ++i) {
            for (size_t e = 0; e < n_energies; ++e) out[i * n_energies + e] = y_mean[e];
            for (size_t j = 0; j < n_centres; ++j) {
                double d = 0.0;
                for (size_t f = 0; f < n_features; ++f)
                    d += std::fabs(static_cast<double>(z[i * n_features + f]) -
                                   static_cast<double>(centres[j * n_features + f]));
                const double w = std::exp(-static_cast<double>(gamma) * d);
                for (size_t e = 0; e < n_energies; ++e)
                    out[i * n_energies + e] += w * coefficients[j * n_energies + e];
            }
        }
        return out;
    }
};

/// max |got − want| / max |want| (the error relative to the scale of the spectra).
double scaled_error(const std::vector<float>& got, const std::vector<double>& want) {
    double err = 0.0, scale = 0.0;
    for (size_t k = 0; k < want.size(); ++k) {
        err = std::fmax(err, std::fabs(got[k] - want[k]));
        scale = std::fmax(scale, std::fabs(want[k]));
        if (std::isnan(got[k])) return INFINITY;
    }
    return err / scale;
}

void test_against_reference(size_t sites, size_t features, size_t n_c, size_t energies,
                            const char* what) {
    Problem p(sites, features, n_c, energies);
    const auto got = p.run(2);
    const double err = scaled_error(got, p.reference());
    if (!(err <= 2e-6)) {
        std::printf("FAIL %s: scaled error %.3g\n", what, err);
        ++failures;
    }
}

/// Many centres with large coefficients of both signs whose weighted sum mostly cancels (as a
/// ridge fit gives): the float32 sum over centres must not lose more than a blocked one.
void test_cancelling_coefficients() {
    Problem p(16, 64, 3264, 16, 5);
    std::mt19937 rng(9);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (auto& a : p.coefficients) a = 30.0f * normal(rng);
    p.gamma = 0.2f / 64.0f;  // broad kernel: every centre contributes
    const double err = scaled_error(p.run(2), p.reference());
    if (!(err <= 8e-7)) {  // one running float32 sum over the centres gives ~1.4e-6
        std::printf("FAIL cancelling coefficients: scaled error %.3g\n", err);
        ++failures;
    }
}

void test_threads_and_batching_bitwise() {
    Problem p(75, 513, 200, 226, 11);
    const auto one = p.run(1);
    check(std::memcmp(one.data(), p.run(2).data(), one.size() * sizeof(float)) == 0,
          "2 threads bitwise equal to 1");
    check(std::memcmp(one.data(), p.run(3).data(), one.size() * sizeof(float)) == 0,
          "3 threads bitwise equal to 1");
    // a sub-batch starting mid-task gives the same rows
    Problem q = p;
    const size_t first = 33, n = 5;
    q.n_sites = n;
    q.z.assign(p.z.begin() + first * p.n_features, p.z.begin() + (first + n) * p.n_features);
    const auto part = q.run(1);
    check(std::memcmp(part.data(), one.data() + first * p.n_energies,
                      part.size() * sizeof(float)) == 0,
          "sub-batch bitwise equal to the same rows of the batch");
}

void test_edge_cases() {
    {  // no centres: the mean spectrum
        Problem p(3, 10, 0, 5);
        const auto out = p.run(1);
        bool ok = true;
        for (size_t i = 0; i < 3; ++i)
            for (size_t e = 0; e < 5; ++e) ok = ok && out[i * 5 + e] == p.y_mean[e];
        check(ok, "no centres gives y_mean");
    }
    {  // γ = 0: every weight is 1
        Problem p(2, 20, 9, 4);
        p.gamma = 0.0f;
        const double err = scaled_error(p.run(1), p.reference());
        check(err <= 1e-6, "gamma = 0 sums the coefficients");
    }
    {  // no sites: nothing written, no error
        Problem p(0, 20, 9, 4);
        p.run(1);
    }
    {  // a site equal to a centre has weight 1 for it; one NaN feature gives a NaN row only
        Problem p(3, 30, 5, 3);
        std::memcpy(p.z.data(), p.centres.data() + 2 * 30, 30 * sizeof(float));
        p.z[2 * 30 + 4] = NAN;
        const auto out = p.run(1);
        const auto ref = p.reference();
        check(std::fabs(out[0] - ref[0]) <= 1e-5 * std::fabs(ref[0]) + 1e-5,
              "site on a centre matches the reference");
        check(std::isnan(out[2 * 3]) && std::isnan(out[2 * 3 + 2]), "NaN feature gives NaN row");
        check(!std::isnan(out[3]), "other rows are not NaN");
    }
    for (float bad : {-1.0f, NAN, INFINITY}) {
        Problem p(2, 4, 3, 2);
        p.gamma = bad;
        bool thrown = false;
        try {
            p.run(1);
        } catch (const std::invalid_argument&) {
            thrown = true;
        }
        check(thrown, "invalid gamma throws invalid_argument");
    }
}

}  // namespace

int main() {
    test_against_reference(37, 513, 131, 226, "typical sizes, ragged counts");
    test_against_reference(9, 45, 70, 23, "features and energies not multiples of 16");
    test_against_reference(1, 1, 1, 1, "one of everything");
    test_against_reference(64, 32, 128, 16, "exact multiples");
    test_cancelling_coefficients();
    test_threads_and_batching_bitwise();
    test_edge_cases();
    return xanesnet_test::finish("laplacian");
}
