// Unit tests of the wACSF kernel on hand-computed cases (no Python).
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <vector>

#include "checks.hpp"
#include "xanesnet/wacsf.hpp"

using xanesnet_test::check;
using xanesnet_test::failures;

namespace {

void check_close(double got, double want, double rtol, const char* what) {
    if (!(std::fabs(got - want) <= rtol * std::fabs(want) + 1e-300)) {
        std::printf("FAIL %s: got %.17g, want %.17g\n", what, got, want);
        ++failures;
    }
}

double cutoff(double r, double r_max) {
    return r < r_max ? 0.5 * (std::cos(M_PI * r / r_max) + 1.0) : 0.0;
}

struct Setup {
    std::vector<double> positions;
    std::vector<int32_t> numbers;
    std::vector<int64_t> offsets{0, 0};
    std::vector<double> cells = std::vector<double>(9, 0.0);
    std::vector<uint8_t> pbc = std::vector<uint8_t>(3, 0);
    std::vector<int64_t> site_structures{0}, site_atoms{0};
    std::vector<double> weights;
    std::vector<double> g2_eta{0.5}, g2_mu{2.0}, g4_eta{0.1}, g4_mu{0.0};
    std::vector<double> lambdas{1.0, -1.0}, zetas{1.0, 2.0};
    xanesnet::WacsfParams params;
    std::vector<double> out;
    std::vector<int32_t> status{-1};
    std::vector<int64_t> pair{-1, -1};
    std::vector<double> distance{0.0};

    Setup(std::vector<double> pos, std::vector<int32_t> z) : positions(pos), numbers(z) {
        offsets[1] = static_cast<int64_t>(numbers.size());
        for (int k = 0; k < 119; ++k) weights.push_back(0.1 * k);
        params.r_max = 6.0;
        params.g2_eta = g2_eta.data();
        params.g2_mu = g2_mu.data();
        params.n_g2 = 1;
        params.g4_eta = g4_eta.data();
        params.g4_mu = g4_mu.data();
        params.n_g4_radial = 1;
        params.lambdas = lambdas.data();
        params.n_lambdas = 2;
        params.zetas = zetas.data();
        params.n_zetas = 2;
        params.element_weights = weights.data();
        params.n_elements = weights.size();
        params.min_distance = 0.1;
        params.limits = {905, 7240.0, 1e6};
        out.assign(params.n_features(), -1.0);
    }

    void run(int threads = 1) {
        xanesnet::StructureBatch b;
        b.positions = positions.data();
        b.numbers = numbers.data();
        b.atom_offsets = offsets.data();
        b.cells = cells.data();
        b.pbc = pbc.data();
        b.n_structures = 1;
        b.site_structures = site_structures.data();
        b.site_atoms = site_atoms.data();
        b.n_sites = 1;
        xanesnet::wacsf_batch(b, params, out.data(), {status.data(), pair.data(), distance.data()},
                              threads);
    }
};

void test_three_atoms_by_hand() {
    // Fe at the origin, O on x at 2 Å, C on y at 3 Å: angle 90°, r_jk = sqrt(13).
    Setup s({0, 0, 0, 2, 0, 0, 0, 3, 0}, {26, 8, 6});
    s.run();
    check(s.status[0] == xanesnet::SITE_OK, "status ok");
    const double fj = cutoff(2.0, 6.0), fk = cutoff(3.0, 6.0), rjk = std::sqrt(13.0);
    const double fjk = cutoff(rjk, 6.0);
    check_close(s.out[0], fj + fk, 1e-13, "G1");
    check_close(s.out[1],
                0.8 * std::exp(-0.5 * 0.0) * fj + 0.6 * std::exp(-0.5 * 1.0) * fk, 1e-13, "G2");
    const double radial = 0.8 * 0.6 * fj * fk * fjk * std::exp(-0.1 * (4.0 + 9.0 + 13.0));
    // cos θ = 0: (1 ± 0)^ζ = 1 for every λ, ζ; prefactor 2^(1-ζ)
    check_close(s.out[2], radial, 1e-13, "G4 λ=+1 ζ=1");
    check_close(s.out[3], 0.5 * radial, 1e-13, "G4 λ=+1 ζ=2");
    check_close(s.out[4], radial, 1e-13, "G4 λ=-1 ζ=1");
    check_close(s.out[5], 0.5 * radial, 1e-13, "G4 λ=-1 ζ=2");
}

void test_collinear_angle_terms() {
    // Neighbours on opposite sides: cos θ = -1, so λ = +1 terms vanish and λ = -1 gives 2^ζ.
    Setup s({0, 0, 0, 1.5, 0, 0, -2.5, 0, 0}, {26, 8, 8});
    s.run();
    check(s.out[2] == 0.0 && s.out[3] == 0.0, "λ=+1 vanishes for cos θ = -1");
    const double radial = 0.8 * 0.8 * cutoff(1.5, 6.0) * cutoff(2.5, 6.0) * cutoff(4.0, 6.0) *
                          std::exp(-0.1 * (2.25 + 6.25 + 16.0));
    check_close(s.out[4], 2.0 * radial, 1e-13, "λ=-1 ζ=1");
    check_close(s.out[5], 0.5 * 4.0 * radial, 1e-13, "λ=-1 ζ=2");
}

void test_atoms_too_close() {
    Setup s({0, 0, 0, 2, 0, 0, 2.05, 0, 0}, {26, 8, 8});
    s.run();
    check(s.status[0] == xanesnet::SITE_ATOMS_TOO_CLOSE, "too close status");
    check(s.pair[0] == 1 && s.pair[1] == 2, "too close pair");
    check_close(s.distance[0], 0.05, 1e-9, "too close distance");
    check(s.out[0] == 0.0, "failed row is zero");
}

void test_periodic_images_of_centre() {
    // One Fe atom in a 4 Å cube: 6 images at 4 Å, 12 at 4√2 Å (< 6), 8 at 4√3 ≈ 6.93 (> 6).
    Setup s({0, 0, 0}, {26});
    s.cells = {4, 0, 0, 0, 4, 0, 0, 0, 4};
    s.pbc = {1, 1, 1};
    s.run(2);
    check_close(s.out[0], 6 * cutoff(4.0, 6.0) + 12 * cutoff(4.0 * std::sqrt(2.0), 6.0), 1e-12,
                "G1 over images");
}

void test_singular_cell_throws() {
    Setup s({0, 0, 0}, {26});
    s.cells = {4, 0, 0, 8, 0, 0, 0, 0, 4};
    s.pbc = {1, 1, 1};
    bool thrown = false;
    try {
        s.run();
    } catch (const std::invalid_argument&) {
        thrown = true;
    }
    check(thrown, "singular cell throws invalid_argument");
}

void test_limits_give_a_status_per_site() {
    // one Fe atom in a 0.3 Å cube: refused before any neighbour is listed (no bad_alloc)
    Setup tiny({0, 0, 0}, {26});
    tiny.cells = {0.3, 0, 0, 0, 0.3, 0, 0, 0, 0.3};
    tiny.pbc = {1, 1, 1};
    tiny.run(2);
    check(tiny.status[0] == xanesnet::SITE_TOO_MANY_IMAGES, "tiny cell: too many images");
    check(tiny.distance[0] > 7240.0 && tiny.out[0] == 0.0, "tiny cell: images reported");
    // a 3 Å cube passes the image bound, then more than 20 neighbours fail the site
    Setup dense({0, 0, 0}, {26});
    dense.cells = {3, 0, 0, 0, 3, 0, 0, 0, 3};
    dense.pbc = {1, 1, 1};
    dense.params.limits.max_neighbours = 20;
    dense.run();
    check(dense.status[0] == xanesnet::SITE_TOO_MANY_NEIGHBOURS, "dense: too many neighbours");
    check(dense.pair[0] == 0 && dense.out[0] == 0.0, "dense: site named, row zero");
    // an atom beyond max_length
    Setup far({0, 0, 0, 1e20, 0, 0}, {26, 8});
    far.run();
    check(far.status[0] == xanesnet::SITE_TOO_FAR && far.pair[0] == 1, "far atom");
    // a zero minimum distance is refused (two atoms at one place would divide by zero)
    Setup zero({0, 0, 0, 2, 0, 0}, {26, 8});
    zero.params.min_distance = 0.0;
    bool thrown = false;
    try {
        zero.run();
    } catch (const std::invalid_argument&) {
        thrown = true;
    }
    check(thrown, "min_distance 0 throws");
}

}  // namespace

int main() {
    test_three_atoms_by_hand();
    test_collinear_angle_terms();
    test_atoms_too_close();
    test_periodic_images_of_centre();
    test_singular_cell_throws();
    test_limits_give_a_status_per_site();
    return xanesnet_test::finish("wacsf");
}
