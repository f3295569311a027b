//! Serde helpers shared by the partial-update request types: `null` as "clear
//! this field", and fields fixed at creation that an update may not name.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

/// The value of a field fixed at creation (an identity or ownership field):
/// it never deserializes, so an update naming it is a 422 naming the field
/// instead of a success that silently ignores it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Fixed;

/// Refuses any value, `null` included, of a field fixed at creation.
pub fn fixed<'de, D: Deserializer<'de>>(_: D) -> Result<Option<Fixed>, D::Error> {
    Err(D::Error::custom("fixed when the object is created; it cannot be changed"))
}

/// Reads a present optional field as `Some(value)`, `null` as `Some(None)`
/// (clear it); an absent one stays `None` through `#[serde(default)]`.
pub fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}
