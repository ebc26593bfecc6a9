// Neighbour search within a cutoff, for molecules and (partially) periodic triclinic cells.
// Plain C++17; no Python headers. Matches ase.neighborlist.neighbor_list: the same pairs
// (i, j, shift S), distances and vectors D = r_j + S·cell − r_i, with d < cutoff (strict), the
// centre itself at zero shift excluded (its periodic images are included). Shifts refer to the
// positions as given (they need not lie inside the cell) and are zero along non-periodic axes.
//
// Work and memory are bounded before anything is allocated: the caller's SearchLimits refuse a
// structure whose search would cross too many periodic images or whose coordinates are too
// large, and a centre with too many neighbours (see xanesnet/descriptors/limits.py for the
// physics behind the numbers the Python package passes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace xanesnet {

/// Outcome for a structure or a site; the wACSF kernel reports it per site (the numbers are
/// part of the Python interface: xanesnet/descriptors/limits.py).
enum SiteStatus : int32_t {
    SITE_OK = 0,
    SITE_ATOMS_TOO_CLOSE = 1,      // two atoms of the site's sphere closer than min_distance
    SITE_TOO_MANY_NEIGHBOURS = 2,  // more than max_neighbours atoms within the cutoff
    SITE_TOO_MANY_IMAGES = 3,      // the cell is too small or skewed: too many periodic images
    SITE_TOO_FAR = 4,              // a coordinate or lattice vector beyond max_length, or an
                                   // atom too many cells away from the origin
};

/// Bounds on one search, checked before any allocation that depends on the input.
struct SearchLimits {
    size_t max_neighbours;  // a centre with more neighbours than this is refused
    double max_images;      // a structure whose search crosses more images than this is refused
    double max_length;      // Å; larger |coordinate| or |lattice vector component| is refused
};

/// Atoms further than this many cells from the origin along a periodic axis are refused
/// (their integer shifts would not fit the int32 of the result).
constexpr double kMaxCellsAway = 1e9;

/// One neighbour of a centre atom: atom j seen through the periodic image `shift`.
struct Neighbour {
    int64_t j;
    int32_t shift[3];
    double vector[3];  // r_j + shift·cell − r_i, Å
    double distance;   // |vector|, Å
};

/// Spatial index over one structure, built once, queried per centre (thread-safe queries).
class CellList {
public:
    /// positions: (n_atoms, 3) row-major, Å. cell: (3, 3) row-major, rows are lattice vectors
    /// (rows of non-periodic axes may be zero). pbc: periodicity per axis. cutoff > 0, Å.
    /// Throws std::invalid_argument for a cutoff <= 0 or non-finite, singular periodic lattice
    /// vectors, or non-finite positions or periodic lattice vectors. A structure beyond
    /// `limits` (too far, too many images) is not binned: status() says why, and it must not be
    /// queried. `positions` must outlive the CellList (it is not copied).
    CellList(const double* positions, size_t n_atoms, const double* cell, const bool* pbc,
             double cutoff, const SearchLimits& limits);

    /// Clears `out` and appends every neighbour of atom `centre` (d < cutoff). Returns false
    /// (and stops, `out` then holding max_neighbours + 1 entries) when there are more than
    /// limits.max_neighbours.
    bool neighbours(size_t centre, std::vector<Neighbour>& out) const;

    /// SITE_OK, SITE_TOO_FAR or SITE_TOO_MANY_IMAGES.
    SiteStatus status() const { return status_; }
    /// For SITE_TOO_FAR: the atom (-1: a lattice vector) and its largest |coordinate| in Å (or
    /// its cells from the origin); for SITE_TOO_MANY_IMAGES: -1 and the number of images.
    int64_t status_atom() const { return status_atom_; }
    double status_value() const { return status_value_; }
    /// Periodic images a search crosses, prod over periodic axes of (1 + 2 cutoff / height).
    double images() const { return images_; }
    /// Message for a status other than SITE_OK (no structure name).
    std::string status_message() const;

    size_t n_atoms() const { return n_atoms_; }
    double cutoff() const { return cutoff_; }
    size_t max_neighbours() const { return limits_.max_neighbours; }

private:
    friend class NeighbourSearch;

    /// One binned atom: its position wrapped into the home cell (periodic axes), and index.
    struct Slot {
        double x, y, z;
        int64_t atom;
    };

    /// Calls visit(j, shift, vector, distance) for every neighbour of `centre`, always in the
    /// same order, until visit returns false. Defined (and only instantiated) in neighbours.cpp.
    template <class Visit>
    void for_each_neighbour(size_t centre, Visit&& visit) const;
    /// Number of neighbours of `centre` (what for_each_neighbour visits), found faster;
    /// max_neighbours + 1 as soon as there are more than max_neighbours.
    size_t count_neighbours(size_t centre) const;
    /// Calls segment(begin, end, t, q) for each run [begin, end) of slots_ to scan, seen through
    /// the periodic image t, where q is the centre's wrapped position minus t·cell; stops when
    /// segment returns false.
    template <class Segment>
    void for_each_segment(size_t centre, Segment&& segment) const;
    void refuse(SiteStatus status, int64_t atom, double value);
    /// Shift S = t + w_centre − w_j and vector D = r_j + S·cell − r_centre from the caller's
    /// positions, and |D|.
    void exact(size_t centre, size_t j, const int64_t* t, int32_t* S, double* D,
               double& distance) const;

    const double* positions_;  // caller's array, not copied
    size_t n_atoms_;
    double cell_[9];
    bool pbc_[3];
    double cutoff_;
    SearchLimits limits_;
    SiteStatus status_ = SITE_OK;
    int64_t status_atom_ = -1;
    double status_value_ = 0.0;
    double images_ = 1.0;
    bool brute_force_ = false;  // small molecule: scan every atom, nothing binned
    // Squared distances on wrapped positions: below inner2_ a pair is certainly within the
    // cutoff, at or above search2_ certainly not; in between the exact test decides.
    double search2_ = 0.0;
    double inner2_ = 0.0;

    // Bin coordinate of a point on axis a: u_a = (f_a − origin_a) · scale_a, where f are its
    // coordinates in a basis B (the cell, with non-periodic rows replaced by unit vectors
    // orthogonal to the periodic ones), wrapped into [0, 1) on periodic axes.
    double inverse_[9];      // B^{-1}: f = r · B^{-1}
    double origin_[3];       // bounding-box minimum on non-periodic axes, 0 on periodic ones
    double scale_[3];        // bins per unit of f
    double reach_[3];        // search radius in bin units
    int64_t n_bins_[3];
    std::vector<size_t> bin_start_;  // (n_bins + 1,) offsets into slots_
    std::vector<Slot> slots_;        // atoms sorted by bin
    std::vector<double> atom_u_;     // (n_atoms, 3) bin coordinates
    std::vector<int32_t> atom_wrap_; // (n_atoms, 3) image of the wrapped position: r = r' + w·cell
    std::vector<size_t> atom_slot_;  // (n_atoms,) where each atom is in slots_
};

/// A full neighbour list in flat arrays (ase's "ijdDS").
struct NeighbourList {
    std::vector<int64_t> i, j;
    std::vector<int32_t> shifts;   // (n_pairs, 3)
    std::vector<double> distances; // (n_pairs,)
    std::vector<double> vectors;   // (n_pairs, 3)
};

/// Full neighbour list in two passes without intermediate buffers: the constructor builds the
/// cell list and counts the neighbours of every centre, fill() writes them straight into
/// caller-owned arrays (the Python binding fills NumPy arrays this way). Both passes use
/// `n_threads` threads (0 = all available); pairs come grouped by centre in the order given.
class NeighbourSearch {
public:
    /// Arguments as for neighbour_list(); `positions` and `centres` must outlive the object.
    /// Throws std::invalid_argument as CellList does, for a centre index out of range, for a
    /// structure beyond the limits and for a centre with more than max_neighbours neighbours
    /// (found before anything per pair is allocated).
    NeighbourSearch(const double* positions, size_t n_atoms, const double* cell, const bool* pbc,
                    double cutoff, const SearchLimits& limits, const int64_t* centres,
                    size_t n_centres, int n_threads);

    size_t n_pairs() const { return offsets_.back(); }

    /// Writes every pair: i, j, distances (n_pairs,); vectors, shifts (n_pairs, 3) row-major.
    void fill(int64_t* i, int64_t* j, double* distances, double* vectors,
              int32_t* shifts) const;

private:
    size_t centre(size_t c) const { return centres_ ? static_cast<size_t>(centres_[c]) : c; }

    CellList cells_;
    const int64_t* centres_;
    size_t n_centres_;
    int threads_;
    std::vector<size_t> offsets_;  // (n_centres + 1,) first pair of each centre
};

/// Neighbours of `centres` (all atoms when centres == nullptr), sorted by centre in the
/// order given. n_threads: 0 = all available.
NeighbourList neighbour_list(const double* positions, size_t n_atoms, const double* cell,
                             const bool* pbc, double cutoff, const SearchLimits& limits,
                             const int64_t* centres, size_t n_centres, int n_threads);

}  // namespace xanesnet
