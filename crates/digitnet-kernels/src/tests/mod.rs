//! Tests of the crate as a whole, through its public API (kept in the library's test binary
//! rather than in tests/, so that Burn's generic code is compiled into one test binary per crate).

#[cfg(any(feature = "flex", feature = "ndarray"))]
mod against_burn;
