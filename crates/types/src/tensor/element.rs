//! Rust types that map to a fixed-size [`DType`].

use super::DType;

/// A fixed-size element type with a little-endian canonical form.
pub trait Element: Copy + Sized {
    /// The matching dtype.
    const DTYPE: DType;
    /// Appends the little-endian bytes.
    fn write_le(&self, out: &mut Vec<u8>);
    /// Reads from exactly `DTYPE.size()` little-endian bytes.
    fn read_le(bytes: &[u8]) -> Self;
}

macro_rules! le_element {
    ($($t:ty => $d:ident),* $(,)?) => {$(
        impl Element for $t {
            const DTYPE: DType = DType::$d;
            fn write_le(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn read_le(bytes: &[u8]) -> Self {
                <$t>::from_le_bytes(bytes.try_into().expect("caller passes DTYPE.size() bytes"))
            }
        }
    )*};
}

le_element!(
    f32 => F32, f64 => F64, half::f16 => F16,
    i8 => I8, i16 => I16, i32 => I32, i64 => I64,
    u8 => U8, u16 => U16, u32 => U32, u64 => U64,
);

impl Element for bool {
    const DTYPE: DType = DType::Bool;
    fn write_le(&self, out: &mut Vec<u8>) {
        out.push(*self as u8);
    }
    fn read_le(bytes: &[u8]) -> Self {
        bytes[0] != 0
    }
}
