//! HRESULT codes (`data/hresults.csv`): name, origin, meaning, cause, what to check.
//! Filled in by the catalog work; see issue 2 item 4.
