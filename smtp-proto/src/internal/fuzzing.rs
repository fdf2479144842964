//! Fuzz bodies (filled in below).
