//! How a projection's snapshot is one type for writing and reading.
//!
//! Each projection's snapshot layout is written once, as a struct whose text and list fields are
//! `Cow`s (and whose bulk, where one cluster may hold a million entries, is a type parameter). A
//! snapshot is *written* borrowed from the live state, so serializing it copies nothing, and
//! *read* owned (`'static`), so restoring it moves the decoded values into the projection. One
//! capture function per snapshot struct, generic over [`Take`], builds both forms: its fields are
//! listed once for both. Serde writes a `Cow` exactly as the value it holds, so the borrowed and
//! the owned form give the same bytes.

use std::borrow::Cow;

/// How a snapshot takes a value from the live state: [`Borrow`] it or [`Own`] a copy.
pub(crate) trait Take<'state, 'snapshot> {
    /// The value, borrowed or copied.
    fn take<T: ToOwned + ?Sized + 'static>(value: &'state T) -> Cow<'snapshot, T>;
}

/// Borrow from the live state: the form serialized when a snapshot is written.
#[derive(Debug)]
pub(crate) enum Borrow {}

impl<'state> Take<'state, 'state> for Borrow {
    fn take<T: ToOwned + ?Sized + 'static>(value: &'state T) -> Cow<'state, T> {
        Cow::Borrowed(value)
    }
}

/// Copy out of the live state: an owned snapshot (`snapshot()`), independent of the projection.
#[derive(Debug)]
pub(crate) enum Own {}

impl<'state> Take<'state, 'static> for Own {
    fn take<T: ToOwned + ?Sized + 'static>(value: &'state T) -> Cow<'static, T> {
        Cow::Owned(value.to_owned())
    }
}
