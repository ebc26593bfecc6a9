// wACSF kernel. Per site: neighbours from a cell list, then G1/G2 over neighbours and G4 over
// neighbour pairs. G4 is organised so that the innermost loop runs over the second neighbour k
// of a pair with no branches or libm calls, which lets the compiler vectorise it:
//   G4[m, c] += a[m, j] · Σ_k a[m, k] · exp(−η_m (r_jk − μ_m)²) · fc(r_jk) · A_c(cos θ_jk)
// where a[m, j] = w_j fc(r_ij) exp(−η_m (r_ij − μ_m)²) is computed once per neighbour and
// A_c = (1 + λ cos θ)^ζ for each (λ, ζ) combination c. One exp per pair and radial index.
#include "wacsf.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "fastmath.hpp"
#include "neighbours.hpp"
#include "threading.hpp"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    !defined(XANESNET_NO_CLONES) && defined(__linux__)
// One binary for any x86-64, with AVX2/AVX-512 code paths picked at load time.
#define XANESNET_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define XANESNET_CLONES
#endif

namespace xanesnet {

namespace {

/// Scratch space of one thread, reused across sites.
struct Workspace {
    std::vector<Neighbour> found;
    std::vector<double> x, y, z, r, w, fc;  // (n,) per neighbour
    std::vector<double> a;                  // (n_radial, n) per neighbour radial factor
    std::vector<double> rjk, fcjk;          // (n,) pair quantities for the current j
    std::vector<double> base;               // (n_lambdas, n) 1 + λ cos θ
    std::vector<double> ang;                // (n_combos, n) angular factor × fc(r_jk)
    std::vector<double> e;                  // (n,) exp term
    std::vector<double> g4;                 // (n_radial, n_combos) accumulator

    void resize(size_t n, size_t n_radial, size_t n_lambdas, size_t n_combos) {
        for (auto* v : {&x, &y, &z, &r, &w, &fc, &rjk, &fcjk, &e}) v->resize(n);
        a.resize(n_radial * n);
        base.resize(n_lambdas * n);
        ang.resize(n_combos * n);
        g4.assign(n_radial * n_combos, 0.0);
    }
};

struct AngularPlan {
    bool integer_zetas = true;
    std::vector<int> int_zetas;    // (n_zetas,)
    std::vector<double> prefactor; // (n_zetas,) 2^(1 − ζ)
};

/// Sum over k in [begin, n) of pair terms for neighbour j; the hot loop.
XANESNET_CLONES
void pair_terms(size_t j, size_t n, const double* x, const double* y, const double* z,
                const double* r, double r_max, double half_pi_over_rmax, bool zero_beyond,
                const double* g4_eta, const double* g4_mu, size_t n_radial,
                const double* lambdas, size_t n_lambdas, const AngularPlan& plan,
                const double* zetas, size_t n_zetas, const double* a, double* rjk, double* fcjk,
                double* base, double* ang, double* e, double* g4, double min_distance,
                double* min_found, size_t* min_k) {
    const size_t begin = j + 1;
    const double xj = x[j], yj = y[j], zj = z[j], rj = r[j];
    double local_min = 1e300;
    for (size_t k = begin; k < n; ++k) {
        double dx = x[k] - xj, dy = y[k] - yj, dz = z[k] - zj;
        double d = std::sqrt(dx * dx + dy * dy + dz * dz);
        rjk[k] = d;
        fcjk[k] = fastmath::cosine_cutoff(d, half_pi_over_rmax, zero_beyond, r_max);
        double cos_t = (x[k] * xj + y[k] * yj + z[k] * zj) / (r[k] * rj);
        for (size_t l = 0; l < n_lambdas; ++l) {
            double b = 1.0 + lambdas[l] * cos_t;
            base[l * n + k] = b < 0.0 ? 0.0 : b;
        }
        local_min = d < local_min ? d : local_min;
    }
    if (local_min < min_distance) {
        for (size_t k = begin; k < n; ++k)
            if (rjk[k] < *min_found) {
                *min_found = rjk[k];
                *min_k = k;
            }
    }
    // angular factors (1 + λ cos)^ζ · fc(r_jk), combos ordered λ outer, ζ inner
    const size_t n_combos = n_lambdas * n_zetas;
    for (size_t l = 0; l < n_lambdas; ++l) {
        const double* b = base + l * n;
        for (size_t zi = 0; zi < n_zetas; ++zi) {
            double* out = ang + (l * n_zetas + zi) * n;
            if (plan.integer_zetas) {
                const int power = plan.int_zetas[zi];
                for (size_t k = begin; k < n; ++k) {
                    double p = b[k];
                    for (int q = 1; q < power; ++q) p *= b[k];
                    out[k] = p * fcjk[k];
                }
            } else {
                for (size_t k = begin; k < n; ++k) out[k] = std::pow(b[k], zetas[zi]) * fcjk[k];
            }
        }
    }
    for (size_t m = 0; m < n_radial; ++m) {
        const double eta = g4_eta[m], mu = g4_mu[m];
        const double* am = a + m * n;
        for (size_t k = begin; k < n; ++k) {
            double t = rjk[k] - mu;
            e[k] = am[k] * fastmath::exp_neg(-eta * t * t);
        }
        double* acc = g4 + m * n_combos;
        for (size_t c = 0; c < n_combos; ++c) {
            const double* angc = ang + c * n;
            double s = 0.0;
            for (size_t k = begin; k < n; ++k) s += e[k] * angc[k];
            acc[c] += am[j] * s;
        }
    }
    (void)local_min;
}

/// Descriptor of one site; returns its status.
int32_t one_site(const CellList& cells, const double* positions, const int32_t* numbers,
                 size_t centre, const WacsfParams& p, const AngularPlan& plan, Workspace& ws,
                 double* out, int64_t* close_pair, double* close_distance) {
    const size_t n_features = p.n_features();
    std::fill(out, out + n_features, 0.0);
    cells.neighbours(centre, ws.found);
    const size_t n = ws.found.size();
    const size_t n_combos = p.n_lambdas * p.n_zetas;
    ws.resize(n, p.n_g4_radial, p.n_lambdas, n_combos);
    if (n == 0) return SITE_OK;

    const double half_pi_over_rmax = 1.5707963267948966 / p.r_max;
    const bool zero_beyond = !p.rjk_raw_cosine;
    double min_found = 1e300;
    size_t min_j = 0, min_k = 0;
    bool min_with_centre = false;
    for (size_t q = 0; q < n; ++q) {
        const Neighbour& nb = ws.found[q];
        ws.x[q] = nb.vector[0];
        ws.y[q] = nb.vector[1];
        ws.z[q] = nb.vector[2];
        ws.r[q] = nb.distance;
        const int32_t Z = numbers[nb.j];
        ws.w[q] = (Z >= 0 && static_cast<size_t>(Z) < p.n_elements) ? p.element_weights[Z] : 0.0;
        ws.fc[q] = 0.5 * (std::cos(3.141592653589793 * nb.distance / p.r_max) + 1.0);
        if (nb.distance < min_found) {
            min_found = nb.distance;
            min_j = q;
            min_with_centre = true;
        }
    }

    // G1 and G2
    double g1 = 0.0;
    for (size_t q = 0; q < n; ++q) g1 += ws.fc[q];
    out[0] = g1;
    for (size_t m = 0; m < p.n_g2; ++m) {
        const double eta = p.g2_eta[m], mu = p.g2_mu[m];
        double s = 0.0;
        for (size_t q = 0; q < n; ++q) {
            double t = ws.r[q] - mu;
            s += ws.w[q] * std::exp(-eta * t * t) * ws.fc[q];
        }
        out[1 + m] = s;
    }

    // G4 radial factors per neighbour
    for (size_t m = 0; m < p.n_g4_radial; ++m) {
        const double eta = p.g4_eta[m], mu = p.g4_mu[m];
        for (size_t q = 0; q < n; ++q) {
            double t = ws.r[q] - mu;
            ws.a[m * n + q] = ws.w[q] * ws.fc[q] * std::exp(-eta * t * t);
        }
    }
    for (size_t j = 0; j + 1 < n; ++j) {
        double pair_min = min_found;
        size_t k_found = 0;
        pair_terms(j, n, ws.x.data(), ws.y.data(), ws.z.data(), ws.r.data(), p.r_max,
                   half_pi_over_rmax, zero_beyond, p.g4_eta, p.g4_mu, p.n_g4_radial, p.lambdas,
                   p.n_lambdas, plan, p.zetas, p.n_zetas, ws.a.data(), ws.rjk.data(),
                   ws.fcjk.data(), ws.base.data(), ws.ang.data(), ws.e.data(), ws.g4.data(),
                   p.min_distance, &pair_min, &k_found);
        if (pair_min < min_found) {
            min_found = pair_min;
            min_j = j;
            min_k = k_found;
            min_with_centre = false;
        }
    }
    if (min_found < p.min_distance) {
        std::fill(out, out + n_features, 0.0);
        if (min_with_centre) {
            close_pair[0] = static_cast<int64_t>(centre);
            close_pair[1] = ws.found[min_j].j;
        } else {
            close_pair[0] = ws.found[min_j].j;
            close_pair[1] = ws.found[min_k].j;
        }
        *close_distance = min_found;
        return SITE_ATOMS_TOO_CLOSE;
    }
    double* g4_out = out + 1 + p.n_g2;
    for (size_t m = 0; m < p.n_g4_radial; ++m)
        for (size_t l = 0; l < p.n_lambdas; ++l)
            for (size_t zi = 0; zi < p.n_zetas; ++zi) {
                size_t c = l * p.n_zetas + zi;
                g4_out[m * n_combos + c] = plan.prefactor[zi] * ws.g4[m * n_combos + c];
            }
    return SITE_OK;
}

}  // namespace

void wacsf_batch(const StructureBatch& batch, const WacsfParams& p, double* out,
                 const SiteReport& report, int n_threads) {
    if (!(p.r_max > 0.0)) throw std::invalid_argument("r_max must be positive");
    AngularPlan plan;
    for (size_t zi = 0; zi < p.n_zetas; ++zi) {
        const double zeta = p.zetas[zi];
        if (!(zeta > 0.0)) throw std::invalid_argument("zetas must be positive");
        plan.prefactor.push_back(std::pow(2.0, 1.0 - zeta));
        const bool is_int = zeta == std::floor(zeta) && zeta <= 64.0;
        plan.integer_zetas = plan.integer_zetas && is_int;
        plan.int_zetas.push_back(is_int ? static_cast<int>(zeta) : 0);
    }
    for (size_t s = 0; s < batch.n_sites; ++s) {
        const int64_t st = batch.site_structures[s];
        if (st < 0 || static_cast<size_t>(st) >= batch.n_structures)
            throw std::invalid_argument("site " + std::to_string(s) + ": structure index out of range");
        const int64_t n_atoms = batch.atom_offsets[st + 1] - batch.atom_offsets[st];
        if (batch.site_atoms[s] < 0 || batch.site_atoms[s] >= n_atoms)
            throw std::invalid_argument("site " + std::to_string(s) + ": atom index out of range");
    }

    // One cell list per structure that has sites, built in parallel, then parallel over sites.
    std::vector<std::unique_ptr<CellList>> cell_lists(batch.n_structures);
    std::vector<uint8_t> needed(batch.n_structures, 0);
    for (size_t s = 0; s < batch.n_sites; ++s) needed[batch.site_structures[s]] = 1;
    const int threads = resolve_threads(n_threads);
    std::string error;
    const long long n_structures = static_cast<long long>(batch.n_structures);
#pragma omp parallel for schedule(dynamic, 16) num_threads(threads)
    for (long long st = 0; st < n_structures; ++st) {
        if (!needed[st]) continue;
        const int64_t begin = batch.atom_offsets[st];
        const size_t n_atoms = static_cast<size_t>(batch.atom_offsets[st + 1] - begin);
        bool pbc[3] = {batch.pbc[3 * st] != 0, batch.pbc[3 * st + 1] != 0,
                       batch.pbc[3 * st + 2] != 0};
        try {
            cell_lists[st] = std::make_unique<CellList>(batch.positions + 3 * begin, n_atoms,
                                                        batch.cells + 9 * st, pbc, p.r_max);
        } catch (const std::exception& ex) {
#pragma omp critical(xanesnet_error)
            if (error.empty()) error = "structure " + std::to_string(st) + ": " + ex.what();
        }
    }
    if (!error.empty()) throw std::invalid_argument(error);

    const size_t n_features = p.n_features();
    const long long n_sites = static_cast<long long>(batch.n_sites);
#pragma omp parallel num_threads(threads)
    {
        Workspace ws;
#pragma omp for schedule(dynamic, 8)
        for (long long s = 0; s < n_sites; ++s) {
            const int64_t st = batch.site_structures[s];
            const int64_t begin = batch.atom_offsets[st];
            report.status[s] = one_site(
                *cell_lists[st], batch.positions + 3 * begin, batch.numbers + begin,
                static_cast<size_t>(batch.site_atoms[s]), p, plan, ws, out + s * n_features,
                report.close_pair + 2 * s, report.close_distance + s);
        }
    }
}

}  // namespace xanesnet
