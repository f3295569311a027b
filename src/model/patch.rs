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

/// Declares a partial-update request type with, after its own fields, the
/// listed fields fixed at creation (identity, ownership, creation time):
/// each reads through [`fixed`], so naming it is a 422 naming the field,
/// and none appears in the schema. One declaration for every patch type.
macro_rules! patch_type {
    ([$($fixed:ident),* $(,)?] $(#[$meta:meta])* $vis:vis struct $name:ident { $($fields:tt)* }) => {
        $(#[$meta])*
        $vis struct $name {
            $($fields)*
            $(
                /// Fixed at creation: naming it is refused.
                #[serde(default, deserialize_with = "crate::model::patch::fixed")]
                #[schema(ignore)]
                pub $fixed: Option<crate::model::patch::Fixed>,
            )*
        }
    };
}
pub(crate) use patch_type;
