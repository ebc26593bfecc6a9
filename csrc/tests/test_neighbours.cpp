// Unit tests of the cell-list neighbour search against a brute-force search over periodic images.
// Plain asserts: prints the failed checks and returns non-zero on failure (run by ctest).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <tuple>
#include <vector>

#include "xanesnet/neighbours.hpp"

using namespace xanesnet;

namespace {

// Generous limits for the checks of the search itself; test_limits() checks the limits.
const SearchLimits kLimits{100000, 1e7, 1e6};

int failures = 0;

#define CHECK(cond)                                                             \
    do {                                                                        \
        if (!(cond)) {                                                          \
            std::printf("%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            ++failures;                                                         \
        }                                                                       \
    } while (0)

struct Pair {
    int64_t i, j;
    std::array<int32_t, 3> S;
    std::array<double, 3> D;
    double d;
    bool operator<(const Pair& o) const {
        return std::tie(i, j, S) < std::tie(o.i, o.j, o.S);
    }
};

struct Structure {
    std::vector<double> positions;
    double cell[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
    bool pbc[3] = {false, false, false};
    size_t n() const { return positions.size() / 3; }
};

std::vector<Pair> sorted_pairs(const NeighbourList& nl) {
    std::vector<Pair> out(nl.i.size());
    for (size_t p = 0; p < out.size(); ++p) {
        out[p].i = nl.i[p];
        out[p].j = nl.j[p];
        for (int d = 0; d < 3; ++d) {
            out[p].S[d] = nl.shifts[3 * p + d];
            out[p].D[d] = nl.vectors[3 * p + d];
        }
        out[p].d = nl.distances[p];
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<Pair> cell_list(const Structure& s, double cutoff, int threads = 1) {
    return sorted_pairs(neighbour_list(s.positions.data(), s.n(), s.cell, s.pbc, cutoff, kLimits,
                                       nullptr, 0, threads));
}

/// Every (i, j, S) over a generous range of images, straight from the definition. The image
/// range comes from `range_cell` (default: the cell), which must be invertible.
std::vector<Pair> brute_force(const Structure& s, double cutoff,
                              const double* range_cell = nullptr) {
    const double* c = s.cell;
    const double* rc = range_cell ? range_cell : c;
    int range[3] = {0, 0, 0};
    for (int a = 0; a < 3; ++a) {
        if (!s.pbc[a]) continue;
        const double* u = rc + 3 * ((a + 1) % 3);
        const double* v = rc + 3 * ((a + 2) % 3);
        const double n[3] = {u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2],
                             u[0] * v[1] - u[1] * v[0]};
        const double nn = std::sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
        const double* w = rc + 3 * a;
        const double height = std::fabs(w[0] * n[0] + w[1] * n[1] + w[2] * n[2]) / nn;
        // the positions span at most `spread` cell heights along this axis
        double lo = 1e300, hi = -1e300;
        for (size_t i = 0; i < s.n(); ++i) {
            const double* r = &s.positions[3 * i];
            const double h = (r[0] * n[0] + r[1] * n[1] + r[2] * n[2]) / nn;
            lo = std::min(lo, h);
            hi = std::max(hi, h);
        }
        range[a] = static_cast<int>(std::ceil((cutoff + hi - lo) / height)) + 1;
    }
    std::vector<Pair> out;
    for (size_t i = 0; i < s.n(); ++i)
        for (size_t j = 0; j < s.n(); ++j)
            for (int32_t s0 = -range[0]; s0 <= range[0]; ++s0)
                for (int32_t s1 = -range[1]; s1 <= range[1]; ++s1)
                    for (int32_t s2 = -range[2]; s2 <= range[2]; ++s2) {
                        if (i == j && s0 == 0 && s1 == 0 && s2 == 0) continue;
                        Pair p{static_cast<int64_t>(i), static_cast<int64_t>(j), {s0, s1, s2},
                               {0, 0, 0}, 0};
                        for (int d = 0; d < 3; ++d)
                            p.D[d] = (s.positions[3 * j + d] - s.positions[3 * i + d]) +
                                     ((s0 * c[d] + s1 * c[3 + d]) + s2 * c[6 + d]);
                        p.d = std::sqrt((p.D[0] * p.D[0] + p.D[1] * p.D[1]) + p.D[2] * p.D[2]);
                        if (p.d < cutoff) out.push_back(p);
                    }
    std::sort(out.begin(), out.end());
    return out;
}

bool same(const std::vector<Pair>& a, const std::vector<Pair>& b) {
    if (a.size() != b.size()) {
        std::printf("  %zu pairs, expected %zu\n", a.size(), b.size());
        return false;
    }
    for (size_t p = 0; p < a.size(); ++p) {
        if (a[p].i != b[p].i || a[p].j != b[p].j || a[p].S != b[p].S) {
            std::printf("  pair %zu differs: (%lld, %lld)\n", p, static_cast<long long>(a[p].i),
                        static_cast<long long>(a[p].j));
            return false;
        }
        for (int d = 0; d < 3; ++d)
            if (std::fabs(a[p].D[d] - b[p].D[d]) > 1e-12) return false;
        if (std::fabs(a[p].d - b[p].d) > 1e-12) return false;
    }
    return true;
}

void set_cell(Structure& s, std::initializer_list<double> rows) {
    std::copy(rows.begin(), rows.end(), s.cell);
}

Structure random_structure(std::mt19937& rng, size_t n, const double* cell, const bool* pbc,
                           double frac_lo, double frac_hi) {
    Structure s;
    std::copy(cell, cell + 9, s.cell);
    std::copy(pbc, pbc + 3, s.pbc);
    std::uniform_real_distribution<double> u(frac_lo, frac_hi);
    for (size_t i = 0; i < n; ++i) {
        const double f[3] = {u(rng), u(rng), u(rng)};
        for (int d = 0; d < 3; ++d)
            s.positions.push_back(f[0] * cell[d] + f[1] * cell[3 + d] + f[2] * cell[6 + d]);
    }
    return s;
}

void test_dimer() {
    Structure s;
    s.positions = {0, 0, 0, 1.5, 0, 0};
    auto pairs = cell_list(s, 2.0);
    CHECK(pairs.size() == 2);
    if (pairs.size() == 2) {
        CHECK(pairs[0].i == 0 && pairs[0].j == 1 && pairs[0].d == 1.5 && pairs[0].D[0] == 1.5);
        CHECK(pairs[1].i == 1 && pairs[1].j == 0 && pairs[1].D[0] == -1.5);
    }
    CHECK(cell_list(s, 1.5).empty());  // strict d < cutoff
    // CellList queried directly, as wacsf does
    CellList cells(s.positions.data(), 2, s.cell, s.pbc, 2.0, kLimits);
    std::vector<Neighbour> found{Neighbour{}};
    cells.neighbours(1, found);
    CHECK(found.size() == 1 && found[0].j == 0 && found[0].distance == 1.5);
}

void test_simple_cubic() {
    // one atom per cell: shells of 6, 12, 8, 6, 24 neighbours at a·(1, √2, √3, 2, √5)
    const double a = 2.0;
    const std::pair<double, size_t> shells[] = {
        {2.1, 6}, {2.9, 18}, {3.5, 26}, {4.1, 32}, {4.5, 56}};
    Structure one;
    one.positions = {0.3, -0.2, 0.1};
    set_cell(one, {a, 0, 0, 0, a, 0, 0, 0, a});
    one.pbc[0] = one.pbc[1] = one.pbc[2] = true;
    for (const auto& [cutoff, count] : shells) CHECK(cell_list(one, cutoff).size() == count);
    // a 4x4x4 supercell: binned on several bins per axis, every atom has the same shells
    Structure big;
    set_cell(big, {4 * a, 0, 0, 0, 4 * a, 0, 0, 0, 4 * a});
    big.pbc[0] = big.pbc[1] = big.pbc[2] = true;
    for (int x = 0; x < 4; ++x)
        for (int y = 0; y < 4; ++y)
            for (int z = 0; z < 4; ++z) big.positions.insert(big.positions.end(), {x * a, y * a, z * a});
    for (const auto& [cutoff, count] : shells) CHECK(cell_list(big, cutoff).size() == 64 * count);
    CHECK(cell_list(big, 9.0).size() == 64 * brute_force(one, 9.0).size());  // cutoff > cell
}

void test_triclinic_against_brute_force() {
    std::mt19937 rng(42);
    const bool pbc[3] = {true, true, true};
    const double cells[][9] = {{5.0, 0, 0, 1.2, 4.5, 0, -0.8, 1.1, 6.0},
                               {3.0, 0.4, -0.3, -1.4, 2.8, 0.2, 0.9, -0.7, 3.3},
                               {9.0, 0, 0, 4.4, 7.9, 0, 0, 0, 2.5}};
    for (const auto& cell : cells)
        for (double cutoff : {1.5, 3.7, 8.0})
            for (auto [lo, hi] : {std::pair{0.0, 1.0}, std::pair{-2.5, 3.5}}) {
                Structure s = random_structure(rng, 40, cell, pbc, lo, hi);
                CHECK(same(cell_list(s, cutoff), brute_force(s, cutoff)));
                CHECK(same(cell_list(s, cutoff, 2), brute_force(s, cutoff)));
            }
}

void test_partial_pbc() {
    std::mt19937 rng(7);
    const double cell[9] = {6.0, 0, 0, 1.5, 5.0, 0, 0.5, -0.5, 4.0};
    const bool patterns[][3] = {{true, true, false}, {false, true, false}, {true, false, true}};
    for (const auto& pbc : patterns)
        for (bool zero_vectors : {false, true})
            for (double cutoff : {2.0, 7.0}) {
                // atoms spread beyond the cell, along the non-periodic axes too
                Structure s = random_structure(rng, 150, cell, pbc, -1.0, 2.0);
                if (zero_vectors)
                    for (int a = 0; a < 3; ++a)
                        if (!pbc[a])
                            for (int d = 0; d < 3; ++d) s.cell[3 * a + d] = 0.0;
                auto got = cell_list(s, cutoff);
                for (const auto& p : got)
                    for (int a = 0; a < 3; ++a)
                        if (!pbc[a]) CHECK(p.S[a] == 0);
                CHECK(same(got, brute_force(s, cutoff, cell)));
            }
}

void test_molecules() {
    std::mt19937 rng(3);
    const double box[9] = {12, 0, 0, 0, 9, 0, 0, 0, 15};
    const bool none[3] = {false, false, false};
    for (size_t n : {1, 3, 100, 128, 129, 600}) {  // brute-force path and cell-list path
        Structure s = random_structure(rng, n, box, none, -0.5, 0.5);
        std::fill(s.cell, s.cell + 9, 0.0);
        for (double cutoff : {0.8, 3.0, 40.0}) CHECK(same(cell_list(s, cutoff), brute_force(s, cutoff)));
    }
}

void test_centres_and_threads() {
    std::mt19937 rng(11);
    const double cell[9] = {10, 0, 0, 0, 11, 0, 2, 0, 12};
    const bool pbc[3] = {true, true, true};
    Structure s = random_structure(rng, 1500, cell, pbc, 0.0, 1.0);
    const auto one = neighbour_list(s.positions.data(), s.n(), s.cell, s.pbc, 3.0, kLimits, nullptr, 0, 1);
    const auto two = neighbour_list(s.positions.data(), s.n(), s.cell, s.pbc, 3.0, kLimits, nullptr, 0, 2);
    CHECK(one.i == two.i && one.j == two.j && one.shifts == two.shifts &&
          one.vectors == two.vectors && one.distances == two.distances);
    CHECK(std::is_sorted(one.i.begin(), one.i.end()));
    // per-centre queries agree with the full list, in order
    CellList cells(s.positions.data(), s.n(), s.cell, s.pbc, 3.0, kLimits);
    std::vector<Neighbour> found;
    size_t p = 0;
    bool agree = true;
    for (size_t i = 0; i < s.n(); ++i) {
        cells.neighbours(i, found);
        for (const auto& nb : found) {
            agree = agree && p < one.i.size() && one.i[p] == static_cast<int64_t>(i) &&
                    one.j[p] == nb.j && one.distances[p] == nb.distance;
            ++p;
        }
    }
    CHECK(agree && p == one.i.size());
    const int64_t centres[] = {7, 3, 7};
    const auto sub = neighbour_list(s.positions.data(), s.n(), s.cell, s.pbc, 3.0, kLimits, centres, 3, 2);
    cells.neighbours(7, found);
    const size_t n7 = found.size();
    cells.neighbours(3, found);
    CHECK(sub.i.size() == 2 * n7 + found.size());
    CHECK(sub.i.size() > 0 && sub.i.front() == 7 && sub.i.back() == 7);
}

template <class F>
bool throws_invalid(F f) {
    try {
        f();
    } catch (const std::invalid_argument&) {
        return true;
    }
    return false;
}

void test_errors() {
    std::vector<double> pos = {0, 0, 0, 1, 0, 0};
    double cell[9] = {3, 0, 0, 0, 3, 0, 0, 0, 3};
    bool pbc[3] = {true, true, true};
    for (double cutoff : {0.0, -1.0, double(NAN), double(INFINITY)})
        CHECK(throws_invalid([&] { CellList(pos.data(), 2, cell, pbc, cutoff, kLimits); }));
    double singular[9] = {3, 0, 0, 0, 3, 0, 3, 3, 0};
    CHECK(throws_invalid([&] { CellList(pos.data(), 2, singular, pbc, 2.0, kLimits); }));
    double flat[9] = {3, 0, 0, 0, 3, 0, 0, 0, 0};
    CHECK(throws_invalid([&] { CellList(pos.data(), 2, flat, pbc, 2.0, kLimits); }));
    bool slab[3] = {true, true, false};
    CHECK(!throws_invalid([&] { CellList(pos.data(), 2, flat, slab, 2.0, kLimits); }));
    bool line[3] = {true, false, false};
    double parallel[9] = {3, 0, 0, 6, 0, 0, 0, 0, 0};
    CHECK(!throws_invalid([&] { CellList(pos.data(), 2, parallel, line, 2.0, kLimits); }));
    pos[4] = NAN;
    CHECK(throws_invalid([&] { CellList(pos.data(), 2, cell, pbc, 2.0, kLimits); }));
    pos[4] = 0.0;
    const int64_t bad[] = {2};
    CHECK(throws_invalid([&] { neighbour_list(pos.data(), 2, cell, pbc, 2.0, kLimits, bad, 1, 1); }));
}

void test_limits() {
    // Structures beyond the limits are refused before anything is binned or allocated.
    const SearchLimits limits{905, 7240.0, 1e6};
    std::vector<double> one = {0, 0, 0};
    const bool all[3] = {true, true, true};
    const double short_vector[9] = {1e-3, 0, 0, 0, 10, 0, 0, 0, 10};
    const double tiny_cube[9] = {0.3, 0, 0, 0, 0.3, 0, 0, 0, 0.3};
    const double skewed[9] = {10, 0, 0, 9.9999, 0.001, 0, 0, 0, 10};
    for (const double* cell : {short_vector, tiny_cube, skewed}) {
        CellList cells(one.data(), 1, cell, all, 6.0, limits);
        CHECK(cells.status() == SITE_TOO_MANY_IMAGES);
        CHECK(cells.status_atom() == -1 && cells.status_value() > limits.max_images);
        CHECK(cells.status_message().find("too small or too skewed") != std::string::npos);
        CHECK(throws_invalid([&] { neighbour_list(one.data(), 1, cell, all, 6.0, limits, nullptr, 0, 1); }));
    }
    // a 3 Å cube: 1 + 2·6/3 = 5 layers per axis, 125 images, fine
    const double cube[9] = {3, 0, 0, 0, 3, 0, 0, 0, 3};
    CHECK(CellList(one.data(), 1, cube, all, 6.0, limits).status() == SITE_OK);
    CHECK(CellList(one.data(), 1, cube, all, 6.0, limits).images() == 125.0);
    // too far: a coordinate or a lattice vector beyond max_length, or too many cells away
    std::vector<double> far = {0, 0, 0, 1e20, 0, 0};
    const bool line[3] = {false, true, false};
    const double box[9] = {20, 0, 0, 0, 20, 0, 0, 0, 20};
    CellList far_cells(far.data(), 2, box, line, 6.0, limits);
    CHECK(far_cells.status() == SITE_TOO_FAR && far_cells.status_atom() == 1);
    CHECK(far_cells.status_value() == 1e20);
    const double huge[9] = {1e300, 0, 0, 0, 1e300, 0, 0, 0, 1e300};
    CellList huge_cells(one.data(), 1, huge, all, 6.0, limits);
    CHECK(huge_cells.status() == SITE_TOO_FAR && huge_cells.status_atom() == -1);
    std::vector<double> cells_away = {0, 0, 0, 0, 5e5, 0};
    const double thin[9] = {20, 0, 0, 0, 1e-4, 0, 0, 0, 20};
    const SearchLimits wide{905, 1e9, 1e6};
    CellList away(cells_away.data(), 2, thin, line, 6.0, wide);
    CHECK(away.status() == SITE_TOO_FAR && away.status_atom() == 1);
    // more neighbours than max_neighbours: the query stops at max_neighbours + 1
    const SearchLimits few{10, 7240.0, 1e6};
    CellList dense(one.data(), 1, cube, all, 6.0, few);
    std::vector<Neighbour> found;
    CHECK(!dense.neighbours(0, found) && found.size() == 11);
    CHECK(throws_invalid([&] { neighbour_list(one.data(), 1, cube, all, 6.0, few, nullptr, 0, 1); }));
    CellList enough(one.data(), 1, cube, all, 6.0, limits);
    CHECK(enough.neighbours(0, found) && found.size() > 10);
    // the same bound on the cell-list path (many atoms) and the brute-force path (molecule)
    std::mt19937 rng(5);
    const bool none[3] = {false, false, false};
    for (size_t n : {50, 400}) {
        Structure s = random_structure(rng, n, cube, none, 0.0, 1.0);
        std::fill(s.cell, s.cell + 9, 0.0);
        CellList blob(s.positions.data(), s.n(), s.cell, s.pbc, 6.0, few);
        CHECK(!blob.neighbours(0, found) && found.size() == 11);
        CHECK(throws_invalid([&] { neighbour_list(s.positions.data(), s.n(), s.cell, s.pbc, 6.0, few, nullptr, 0, 1); }));
    }
}

}  // namespace

int main() {
    test_dimer();
    test_simple_cubic();
    test_triclinic_against_brute_force();
    test_partial_pbc();
    test_molecules();
    test_centres_and_threads();
    test_errors();
    test_limits();
    if (failures) std::printf("%d check(s) failed\n", failures);
    else std::printf("all neighbour tests passed\n");
    return failures ? 1 : 0;
}
