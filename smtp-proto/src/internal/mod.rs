//! Not part of the API: fuzz bodies and test support, compiled in every build so that they cannot rot.
#![allow(missing_docs)]

pub mod fuzzing;
