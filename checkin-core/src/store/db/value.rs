//! The values that cross the engine: parameters in, columns out. Four kinds,
//! the storage classes both backends share (times and flags are integers).

/// A value's kind; a NULL keeps one, since PostgreSQL types its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Int,
    Real,
    Text,
    Blob,
}

/// A parameter or a column value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null(Kind),
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// What can be bound as a parameter.
pub(crate) trait ToValue {
    fn to_value(self) -> Value;
}

/// The kind a NULL of this type binds as.
pub(crate) trait HasKind {
    const KIND: Kind;
}

macro_rules! ints {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(self) -> Value {
                Value::Int(i64::from(self))
            }
        }
        impl ToValue for &$t {
            fn to_value(self) -> Value {
                Value::Int(i64::from(*self))
            }
        }
        impl HasKind for $t {
            const KIND: Kind = Kind::Int;
        }
    )*};
}
ints!(i64, i32, u32, i16, u8, bool);

impl ToValue for f64 {
    fn to_value(self) -> Value {
        Value::Real(self)
    }
}
impl HasKind for f64 {
    const KIND: Kind = Kind::Real;
}

impl ToValue for &str {
    fn to_value(self) -> Value {
        Value::Text(self.to_owned())
    }
}
impl ToValue for String {
    fn to_value(self) -> Value {
        Value::Text(self)
    }
}
impl ToValue for &String {
    fn to_value(self) -> Value {
        Value::Text(self.clone())
    }
}
impl HasKind for String {
    const KIND: Kind = Kind::Text;
}
impl HasKind for &str {
    const KIND: Kind = Kind::Text;
}
impl HasKind for &String {
    const KIND: Kind = Kind::Text;
}

impl ToValue for &[u8] {
    fn to_value(self) -> Value {
        Value::Blob(self.to_vec())
    }
}
impl ToValue for Vec<u8> {
    fn to_value(self) -> Value {
        Value::Blob(self)
    }
}
impl ToValue for &Vec<u8> {
    fn to_value(self) -> Value {
        Value::Blob(self.clone())
    }
}
impl<const N: usize> ToValue for &[u8; N] {
    fn to_value(self) -> Value {
        Value::Blob(self.to_vec())
    }
}
impl HasKind for &[u8] {
    const KIND: Kind = Kind::Blob;
}
impl HasKind for Vec<u8> {
    const KIND: Kind = Kind::Blob;
}
impl HasKind for &Vec<u8> {
    const KIND: Kind = Kind::Blob;
}

impl<T: ToValue + HasKind> ToValue for Option<T> {
    fn to_value(self) -> Value {
        match self {
            Some(v) => v.to_value(),
            None => Value::Null(T::KIND),
        }
    }
}

impl ToValue for Value {
    fn to_value(self) -> Value {
        self
    }
}

/// What a column can be read as.
pub(crate) trait FromValue: Sized {
    fn from_value(value: &Value) -> Result<Self, String>;
}

fn mismatch(want: &str, got: &Value) -> String {
    let got = match got {
        Value::Null(_) => "NULL",
        Value::Int(_) => "an integer",
        Value::Real(_) => "a real",
        Value::Text(_) => "text",
        Value::Blob(_) => "a blob",
    };
    format!("expected {want}, found {got}")
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Int(v) => Ok(*v),
            other => Err(mismatch("an integer", other)),
        }
    }
}

macro_rules! narrow_ints {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(value: &Value) -> Result<Self, String> {
                let wide = i64::from_value(value)?;
                <$t>::try_from(wide).map_err(|_| format!("{wide} is out of range"))
            }
        }
    )*};
}
narrow_ints!(i32, u32, u64, usize);

impl FromValue for bool {
    fn from_value(value: &Value) -> Result<Self, String> {
        Ok(i64::from_value(value)? != 0)
    }
}

impl FromValue for f64 {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Real(v) => Ok(*v),
            // Lossless for the counts and sums this is used for.
            #[allow(clippy::cast_precision_loss)]
            Value::Int(v) => Ok(*v as f64),
            other => Err(mismatch("a number", other)),
        }
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Text(v) => Ok(v.clone()),
            other => Err(mismatch("text", other)),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Blob(v) => Ok(v.clone()),
            other => Err(mismatch("a blob", other)),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Null(_) => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

impl FromValue for Value {
    fn from_value(value: &Value) -> Result<Self, String> {
        Ok(value.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_null_keeps_the_kind_of_its_type() {
        assert_eq!(None::<i64>.to_value(), Value::Null(Kind::Int));
        assert_eq!(None::<String>.to_value(), Value::Null(Kind::Text));
        assert_eq!(None::<&[u8]>.to_value(), Value::Null(Kind::Blob));
        assert_eq!(Some(7_i64).to_value(), Value::Int(7));
    }

    #[test]
    fn columns_read_as_their_kind_and_refuse_others() {
        assert_eq!(i64::from_value(&Value::Int(3)), Ok(3));
        assert_eq!(Option::<i64>::from_value(&Value::Null(Kind::Int)), Ok(None));
        assert!(i64::from_value(&Value::Text("3".into())).is_err());
        assert!(u32::from_value(&Value::Int(-1)).is_err());
        assert_eq!(bool::from_value(&Value::Int(1)), Ok(true));
    }
}
