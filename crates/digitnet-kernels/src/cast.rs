//! Safe run-time downcasts between a generic type and a concrete one (`Any`), used to pick a
//! specialised kernel for a concrete backend inside generic code.

#![cfg_attr(not(any(feature = "flex", feature = "ndarray")), allow(dead_code))]

use std::any::Any;

/// `value` as a `U` if `T` is `U`, else `value` back.
pub(crate) fn cast<T: 'static, U: 'static>(value: T) -> Result<U, T> {
    let mut slot = Some(value);
    match (&mut slot as &mut dyn Any).downcast_mut::<Option<U>>() {
        Some(u) => Ok(u.take().expect("slot was just filled")),
        None => Err(slot.expect("slot was just filled")),
    }
}

#[cfg(test)]
mod tests {
    use super::cast;

    #[test]
    fn casts_only_to_the_same_type() {
        assert_eq!(cast::<u32, u32>(7), Ok(7));
        assert_eq!(cast::<u32, i32>(7), Err(7));
    }
}
