//! NumPy `.npy` files (format versions 1.0, 2.0 and 3.0), read strictly and bounded.
//!
//! Supported: bool, int8–64, uint8–64, float16/32/64 in either byte order, unicode strings
//! (`<U`/`>U`), C or Fortran order. Refused: object arrays (they are pickles), structured dtypes.

use super::{DType, Limits, Tensor, TensorError};

const MAGIC: &[u8] = b"\x93NUMPY";
/// Longest header accepted; numpy itself writes a few hundred bytes.
const MAX_HEADER: usize = 64 * 1024;

fn err(msg: impl Into<String>) -> TensorError {
    TensorError::Format(format!(".npy: {}", msg.into()))
}

/// Reads a `.npy` file's bytes.
pub fn from_npy(bytes: &[u8], limits: &Limits) -> Result<Tensor, TensorError> {
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| err("missing \\x93NUMPY magic"))?;
    let (major, rest) = rest.split_first().ok_or_else(|| err("truncated version"))?;
    let (_minor, rest) = rest.split_first().ok_or_else(|| err("truncated version"))?;
    let (header_len, rest) = match major {
        1 => {
            let (len, rest) = split(rest, 2, "header length")?;
            (u16::from_le_bytes([len[0], len[1]]) as usize, rest)
        }
        2 | 3 => {
            let (len, rest) = split(rest, 4, "header length")?;
            (
                u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize,
                rest,
            )
        }
        v => return Err(err(format!("unsupported format version {v}"))),
    };
    if header_len > MAX_HEADER {
        return Err(err(format!(
            "header of {header_len} bytes is over the {MAX_HEADER}-byte limit"
        )));
    }
    let (header, payload) = split(rest, header_len, "header")?;
    let header = std::str::from_utf8(header).map_err(|_| err("header is not text"))?;
    let h = Header::parse(header)?;
    let (dtype, width, big_endian) = parse_descr(&h.descr)?;
    let count = super::checked_element_count(dtype, &h.shape, limits)? as usize;
    let elem = if dtype == DType::String {
        4 * width
    } else {
        width
    };
    let expected = count
        .checked_mul(elem)
        .ok_or_else(|| err("size overflow"))?;
    if payload.len() != expected {
        return Err(err(format!(
            "shape {:?} of {} needs {expected} data bytes, the file has {}",
            h.shape,
            h.descr,
            payload.len()
        )));
    }
    let order = element_order(&h.shape, h.fortran_order);
    if dtype == DType::String {
        let strings = order
            .map(|i| {
                let cell = &payload[i * elem..(i + 1) * elem];
                let chars: Result<String, _> = cell
                    .chunks_exact(4)
                    .map(|c| {
                        let c: [u8; 4] = c.try_into().expect("4 bytes");
                        if big_endian {
                            u32::from_be_bytes(c)
                        } else {
                            u32::from_le_bytes(c)
                        }
                    })
                    .take_while(|&c| c != 0)
                    .map(|c| {
                        char::from_u32(c).ok_or_else(|| {
                            err(format!("element {i} has invalid code point {c:#x}"))
                        })
                    })
                    .collect();
                chars
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Tensor::from_strings(h.shape, strings, limits);
    }
    let mut data = Vec::with_capacity(expected);
    for i in order {
        let cell = &payload[i * elem..(i + 1) * elem];
        if big_endian {
            data.extend(cell.iter().rev());
        } else {
            data.extend_from_slice(cell);
        }
    }
    Tensor::from_le_bytes(dtype, h.shape, data, limits)
}

/// Writes a tensor as a version 1.0 `.npy` file (C order, little-endian).
pub fn to_npy(t: &Tensor) -> Vec<u8> {
    let (descr, payload) = match t.dtype() {
        DType::String => {
            let strings = t.as_strings().expect("string tensor");
            let width = strings
                .iter()
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
                .max(1);
            let mut p = Vec::with_capacity(strings.len() * width * 4);
            for s in strings {
                let n = s.chars().count();
                s.chars()
                    .for_each(|c| p.extend_from_slice(&(c as u32).to_le_bytes()));
                p.resize(p.len() + 4 * (width - n), 0);
            }
            (format!("<U{width}"), p)
        }
        d => (
            descr_of(d).to_string(),
            t.as_le_bytes().expect("fixed-size").to_vec(),
        ),
    };
    let shape = match t.shape() {
        [] => "()".to_string(),
        [d] => format!("({d},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // Pad so the data starts on a 64-byte boundary, ending the header with a newline.
    let unpadded = MAGIC.len() + 2 + 2 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + header.len() + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&payload);
    out
}

fn descr_of(d: DType) -> &'static str {
    match d {
        DType::F32 => "<f4",
        DType::F64 => "<f8",
        DType::F16 => "<f2",
        DType::I8 => "|i1",
        DType::I16 => "<i2",
        DType::I32 => "<i4",
        DType::I64 => "<i8",
        DType::U8 => "|u1",
        DType::U16 => "<u2",
        DType::U32 => "<u4",
        DType::U64 => "<u8",
        DType::Bool => "|b1",
        DType::String => "<U",
    }
}

fn split<'a>(b: &'a [u8], n: usize, what: &str) -> Result<(&'a [u8], &'a [u8]), TensorError> {
    if b.len() < n {
        return Err(err(format!("truncated {what}")));
    }
    Ok(b.split_at(n))
}

/// Returns (dtype, element width in bytes or characters for strings, big-endian).
fn parse_descr(descr: &str) -> Result<(DType, usize, bool), TensorError> {
    let (order, body) = descr.split_at(descr.chars().next().map_or(0, |c| c.len_utf8()));
    let big = match order {
        "<" | "|" | "=" => false,
        ">" => true,
        _ => return Err(err(format!("dtype {descr:?} has no byte-order mark"))),
    };
    if let Some(width) = body.strip_prefix('U') {
        let width: usize = width
            .parse()
            .map_err(|_| err(format!("bad string dtype {descr:?}")))?;
        return Ok((DType::String, width, big));
    }
    let dtype = match body {
        "f2" => DType::F16,
        "f4" => DType::F32,
        "f8" => DType::F64,
        "i1" => DType::I8,
        "i2" => DType::I16,
        "i4" => DType::I32,
        "i8" => DType::I64,
        "u1" => DType::U8,
        "u2" => DType::U16,
        "u4" => DType::U32,
        "u8" => DType::U64,
        "b1" => DType::Bool,
        "O" => return Err(err("object arrays are pickles and are never loaded")),
        _ => return Err(err(format!("unsupported dtype {descr:?}"))),
    };
    Ok((dtype, dtype.size().expect("fixed-size"), big))
}

/// Row-major element order expressed as indices into the stored order.
fn element_order(shape: &[u64], fortran: bool) -> Box<dyn Iterator<Item = usize>> {
    let count: usize = shape.iter().product::<u64>() as usize;
    if !fortran || shape.len() < 2 {
        return Box::new(0..count);
    }
    let shape: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    // Fortran strides: first axis varies fastest.
    let mut strides = vec![1usize; shape.len()];
    for k in 1..shape.len() {
        strides[k] = strides[k - 1] * shape[k - 1];
    }
    Box::new((0..count).map(move |mut flat| {
        let mut offset = 0;
        for k in (0..shape.len()).rev() {
            offset += (flat % shape[k]) * strides[k];
            flat /= shape[k];
        }
        offset
    }))
}

struct Header {
    descr: String,
    fortran_order: bool,
    shape: Vec<u64>,
}

impl Header {
    /// Parses the Python dict literal numpy writes; only its three keys are accepted.
    fn parse(text: &str) -> Result<Header, TensorError> {
        let mut p = Parser {
            s: text.trim_end_matches(['\n', ' ', '\0']).as_bytes(),
            i: 0,
        };
        p.expect(b'{')?;
        let (mut descr, mut fortran, mut shape) = (None, None, None);
        loop {
            p.ws();
            if p.eat(b'}') {
                break;
            }
            let key = p.string()?;
            p.ws();
            p.expect(b':')?;
            p.ws();
            match key.as_str() {
                "descr" => descr = Some(p.string()?),
                "fortran_order" => fortran = Some(p.boolean()?),
                "shape" => shape = Some(p.tuple()?),
                other => return Err(err(format!("unexpected header key {other:?}"))),
            }
            p.ws();
            if !p.eat(b',') {
                p.ws();
                p.expect(b'}')?;
                break;
            }
        }
        p.ws();
        if p.i != p.s.len() {
            return Err(err("trailing text after header dict"));
        }
        Ok(Header {
            descr: descr.ok_or_else(|| err("header has no 'descr'"))?,
            fortran_order: fortran.ok_or_else(|| err("header has no 'fortran_order'"))?,
            shape: shape.ok_or_else(|| err("header has no 'shape'"))?,
        })
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: u8) -> Result<(), TensorError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(err(format!(
                "malformed header: expected {:?} at byte {}",
                c as char, self.i
            )))
        }
    }
    fn string(&mut self) -> Result<String, TensorError> {
        let quote = *self
            .s
            .get(self.i)
            .ok_or_else(|| err("malformed header: truncated"))?;
        if quote != b'\'' && quote != b'"' {
            return Err(err(format!(
                "malformed header: expected a string at byte {}",
                self.i
            )));
        }
        self.i += 1;
        let start = self.i;
        while self.s.get(self.i).is_some_and(|&c| c != quote) {
            self.i += 1;
        }
        let s = std::str::from_utf8(&self.s[start..self.i])
            .map_err(|_| err("header string is not UTF-8"))?;
        self.expect(quote)?;
        Ok(s.to_string())
    }
    fn boolean(&mut self) -> Result<bool, TensorError> {
        for (word, v) in [(&b"True"[..], true), (&b"False"[..], false)] {
            if self.s[self.i..].starts_with(word) {
                self.i += word.len();
                return Ok(v);
            }
        }
        Err(err("malformed header: fortran_order is not True or False"))
    }
    fn tuple(&mut self) -> Result<Vec<u64>, TensorError> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        loop {
            self.ws();
            if self.eat(b')') {
                return Ok(dims);
            }
            let start = self.i;
            while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
                self.i += 1;
            }
            let digits = std::str::from_utf8(&self.s[start..self.i]).expect("ASCII digits");
            dims.push(
                digits
                    .parse()
                    .map_err(|_| err("malformed header: bad shape entry"))?,
            );
            if dims.len() > 64 {
                return Err(err("shape has more than 64 dimensions"));
            }
            self.ws();
            if !self.eat(b',') {
                self.ws();
                self.expect(b')')?;
                return Ok(dims);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(header: &str, payload: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn round_trips_every_dtype() {
        let l = Limits::DEFAULT;
        for t in [
            Tensor::from_vec(vec![2, 3], vec![1.5f32, -2.0, 0.0, 4.0, 5.0, 6.0]).unwrap(),
            Tensor::from_vec(vec![], vec![7i64]).unwrap(),
            Tensor::from_vec(vec![3], vec![true, false, true]).unwrap(),
            Tensor::from_vec(vec![1, 2], vec![u64::MAX, 0]).unwrap(),
            Tensor::from_strings(vec![2], vec!["hé".into(), "".into()], &l).unwrap(),
        ] {
            let bytes = to_npy(&t);
            let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
            assert_eq!((10 + header_len) % 64, 0, "data is 64-byte aligned");
            assert_eq!(from_npy(&bytes, &l).unwrap(), t);
        }
    }

    #[test]
    fn reads_big_endian_and_fortran_order() {
        let l = Limits::DEFAULT;
        // 2x3 int32 [[1,2,3],[4,5,6]] stored column-major, big-endian.
        let mut payload = Vec::new();
        for v in [1i32, 4, 2, 5, 3, 6] {
            payload.extend_from_slice(&v.to_be_bytes());
        }
        let bytes = npy(
            "{'descr': '>i4', 'fortran_order': True, 'shape': (2, 3), }\n",
            &payload,
        );
        let t = from_npy(&bytes, &l).unwrap();
        assert_eq!(t.shape(), &[2, 3]);
        assert_eq!(t.to_vec::<i32>().unwrap(), vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn refuses_bad_files() {
        let l = Limits::DEFAULT;
        assert!(from_npy(b"not npy", &l).is_err());
        assert!(
            from_npy(
                &npy(
                    "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }",
                    &[0; 8]
                ),
                &l
            )
            .is_err()
        );
        assert!(
            from_npy(
                &npy(
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
                    &[0; 4]
                ),
                &l
            )
            .is_err()
        );
        assert!(
            from_npy(
                &npy(
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999,), }",
                    &[]
                ),
                &l
            )
            .is_err()
        );
        assert!(from_npy(&npy("{'descr': '<f4', 'shape': (1,), }", &[0; 4]), &l).is_err());
        assert!(
            from_npy(
                &npy(
                    "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}",
                    &[0; 4]
                ),
                &l
            )
            .is_err()
        );
        assert!(
            from_npy(
                &npy(
                    "{'descr': '|b1', 'fortran_order': False, 'shape': (1,), }",
                    &[2]
                ),
                &l
            )
            .is_err()
        );
        let good = to_npy(&Tensor::from_vec(vec![4], vec![1u8, 2, 3, 4]).unwrap());
        for cut in 0..good.len() {
            assert!(
                from_npy(&good[..cut], &l).is_err(),
                "truncated at {cut} was accepted"
            );
        }
    }
}
