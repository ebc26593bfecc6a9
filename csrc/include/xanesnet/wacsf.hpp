// Weighted atom-centred symmetry functions (G1, G2, G4) for a batch of absorbing sites.
// Plain C++17 over raw pointers; no Python headers. Formulas: shared/spec/wacsf.md.
#pragma once

#include <cstddef>
#include <cstdint>

#include "xanesnet/neighbours.hpp"

namespace xanesnet {

/// Descriptor parameters, every value set by the caller (the Python configuration, WACSF, owns
/// the defaults); arrays are borrowed, not owned.
struct WacsfParams {
    double r_max = 0.0;            // cutoff radius, Å
    const double* g2_eta = nullptr;  // (n_g2,) Å⁻²
    const double* g2_mu = nullptr;   // (n_g2,) Å
    size_t n_g2 = 0;
    const double* g4_eta = nullptr;  // (n_g4_radial,) Å⁻²
    const double* g4_mu = nullptr;   // (n_g4_radial,) Å
    size_t n_g4_radial = 0;
    const double* lambdas = nullptr;  // (n_lambdas,) in [-1, 1]
    size_t n_lambdas = 0;
    const double* zetas = nullptr;    // (n_zetas,) > 0
    size_t n_zetas = 0;
    const double* element_weights = nullptr;  // (n_elements,) weight by atomic number
    size_t n_elements = 0;
    // Extra G2-only channels (e.g. element-resolved): (n_channels, n_elements) weights; their
    // n_channels × n_g2 values follow G4 in the output.
    const double* channel_weights = nullptr;
    size_t n_channels = 0;
    bool rjk_raw_cosine = false;  // true: cosine cutoff on r_jk not zeroed beyond r_max
    double min_distance = 0.0;    // Å; closer atoms in a site's sphere fail the site
    SearchLimits limits{0, 0.0, 0.0};  // bounds on each site's neighbour search

    size_t n_features() const {
        return 1 + n_g2 + n_g4_radial * n_lambdas * n_zetas + n_channels * n_g2;
    }
};

/// A batch of structures packed end to end. Cells are row-major (3, 3), rows = lattice vectors.
struct StructureBatch {
    const double* positions = nullptr;     // (n_atoms_total, 3) Å
    const int32_t* numbers = nullptr;      // (n_atoms_total,)
    const int64_t* atom_offsets = nullptr; // (n_structures + 1,)
    const double* cells = nullptr;         // (n_structures, 3, 3) Å
    const uint8_t* pbc = nullptr;          // (n_structures, 3)
    size_t n_structures = 0;
    const int64_t* site_structures = nullptr;  // (n_sites,) structure of each site
    const int64_t* site_atoms = nullptr;       // (n_sites,) atom index within its structure
    size_t n_sites = 0;
};

/// Per-site outcome (SiteStatus, neighbours.hpp) and what it names: for SITE_ATOMS_TOO_CLOSE
/// the pair (atom indices within the structure) and its distance in Å; for SITE_TOO_FAR the
/// atom (-1: a lattice vector) and its largest |coordinate| in Å; for SITE_TOO_MANY_IMAGES
/// (-1, -1) and the number of images; for SITE_TOO_MANY_NEIGHBOURS (site atom, -1) and 0.
struct SiteReport {
    int32_t* status = nullptr;        // (n_sites,)
    int64_t* close_pair = nullptr;    // (n_sites, 2)
    double* close_distance = nullptr; // (n_sites,)
};

/// Computes the descriptor of every site into `out` ((n_sites, n_features) row-major).
/// Rows of failed sites are zero; a structure or site beyond the limits fails with a status,
/// found before its neighbours or pairs are allocated. Throws std::invalid_argument for
/// malformed batches (indices out of range, singular periodic cell); any other exception
/// (std::bad_alloc) is rethrown after the threads have joined. n_threads: 0 = all available.
void wacsf_batch(const StructureBatch& batch, const WacsfParams& params, double* out,
                 const SiteReport& report, int n_threads);

}  // namespace xanesnet
