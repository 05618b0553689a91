//! Reader for the IDX format of MNIST-style datasets, raw or gzip'd (detected by magic bytes).
//!
//! Memory stays bounded by what the file really holds: nothing is allocated from the header's
//! counts before the bytes behind them have been read, and item counts are capped.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};

use crate::error::{DataError, Result};

/// Magic number of an IDX file of unsigned-byte 3-D data (images): 2051.
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned-byte 1-D data (labels): 2049.
pub const LABELS_MAGIC: u32 = 0x0000_0801;
/// Side of an image, in pixels.
pub const IMAGE_SIDE: usize = 28;
/// Pixels per image (28 x 28).
pub const IMAGE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;
/// The largest item count a header may announce (10 million, about 7.8 GB of images).
pub const MAX_ITEMS: u64 = 10_000_000;
/// Number of classes every supported dataset has.
pub const NUM_CLASSES: usize = 10;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A SHA-256 digest of a file's decompressed content.
pub type Sha256Digest = [u8; 32];

/// Formats a digest as lowercase hex.
pub fn hex(digest: &Sha256Digest) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The images of an IDX images file: `count` images of 28x28 `u8` pixels, row-major, contiguous.
#[derive(Debug, Clone)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// `count * 784` pixel values, 0 = background, 255 = ink.
    pub pixels: Vec<u8>,
    /// SHA-256 of the decompressed file.
    pub sha256: Sha256Digest,
}

/// The labels of an IDX labels file, each a class in `0..10`.
#[derive(Debug, Clone)]
pub struct IdxLabels {
    /// One class index per item.
    pub labels: Vec<u8>,
    /// SHA-256 of the decompressed file.
    pub sha256: Sha256Digest,
}

/// Reads an IDX images file (raw or gzip'd) from disk.
pub fn read_images(path: &Path) -> Result<IdxImages> {
    parse_images(open(path)?, path)
}

/// Reads an IDX labels file (raw or gzip'd) from disk.
pub fn read_labels(path: &Path) -> Result<IdxLabels> {
    parse_labels(open(path)?, path)
}

/// Parses an IDX images stream (raw or gzip'd); `path` only names the source in errors.
pub fn parse_images(source: impl Read, path: &Path) -> Result<IdxImages> {
    let mut reader = IdxStream::new(source, path)?;
    let header = reader.header::<4>(IMAGES_MAGIC, "images")?;
    let (count, rows, cols) = (header[1], header[2], header[3]);
    if rows as usize != IMAGE_SIDE || cols as usize != IMAGE_SIDE {
        return Err(DataError::BadDims {
            path: path.to_path_buf(),
            rows,
            cols,
        });
    }
    check_count(count, path)?;
    let pixels = reader.body(u64::from(count) * IMAGE_PIXELS as u64, 16)?;
    Ok(IdxImages {
        count: count as usize,
        pixels,
        sha256: reader.finish(),
    })
}

/// Parses an IDX labels stream (raw or gzip'd); `path` only names the source in errors.
pub fn parse_labels(source: impl Read, path: &Path) -> Result<IdxLabels> {
    let mut reader = IdxStream::new(source, path)?;
    let header = reader.header::<2>(LABELS_MAGIC, "labels")?;
    let count = header[1];
    check_count(count, path)?;
    let labels = reader.body(u64::from(count), 8)?;
    if let Some((index, &value)) = labels
        .iter()
        .enumerate()
        .find(|&(_, &v)| usize::from(v) >= NUM_CLASSES)
    {
        return Err(DataError::BadLabel {
            path: path.to_path_buf(),
            index,
            value,
        });
    }
    Ok(IdxLabels {
        labels,
        sha256: reader.finish(),
    })
}

fn open(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| DataError::io(path, "open", e))
}

fn check_count(count: u32, path: &Path) -> Result<()> {
    if u64::from(count) > MAX_ITEMS {
        return Err(DataError::TooLarge {
            path: path.to_path_buf(),
            count: u64::from(count),
            max: MAX_ITEMS,
        });
    }
    Ok(())
}

/// A decompressed byte stream that hashes everything read from it.
struct IdxStream<'p> {
    inner: Box<dyn Read + 'p>,
    gzip: bool,
    hasher: Sha256,
    path: &'p Path,
}

impl<'p> IdxStream<'p> {
    fn new(source: impl Read + 'p, path: &'p Path) -> Result<Self> {
        let mut buffered = BufReader::new(source);
        let head = buffered
            .fill_buf()
            .map_err(|e| DataError::io(path, "read", e))?;
        let gzip = head.starts_with(&GZIP_MAGIC);
        let inner: Box<dyn Read + 'p> = if gzip {
            Box::new(GzDecoder::new(buffered))
        } else {
            Box::new(buffered)
        };
        Ok(Self {
            inner,
            gzip,
            hasher: Sha256::new(),
            path,
        })
    }

    fn read_error(&self, source: std::io::Error) -> DataError {
        if self.gzip {
            DataError::Gzip {
                path: self.path.to_path_buf(),
                source,
            }
        } else {
            DataError::io(self.path, "read", source)
        }
    }

    /// Reads up to `limit` bytes, stopping early only at end of stream.
    fn read_up_to(&mut self, limit: u64) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut limited = (&mut self.inner).take(limit);
        if let Err(e) = limited.read_to_end(&mut out) {
            return Err(self.read_error(e));
        }
        self.hasher.update(&out);
        Ok(out)
    }

    /// Reads the magic number and `N - 1` dimension sizes (big-endian u32 each).
    fn header<const N: usize>(&mut self, magic: u32, what: &'static str) -> Result<[u32; N]> {
        let bytes = self.read_up_to(4 * N as u64)?;
        if bytes.len() >= 4 {
            let found = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            if found != magic {
                return Err(DataError::BadMagic {
                    path: self.path.to_path_buf(),
                    found,
                    expected: magic,
                    what,
                });
            }
        }
        if bytes.len() < 4 * N {
            return Err(DataError::BadLength {
                path: self.path.to_path_buf(),
                problem: "truncated header",
                expected: 4 * N as u64,
                actual: bytes.len() as u64,
            });
        }
        let mut fields = [0u32; N];
        for (field, chunk) in fields.iter_mut().zip(bytes.chunks_exact(4)) {
            *field = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        Ok(fields)
    }

    /// Reads exactly `len` body bytes and checks that the stream ends right after them.
    fn body(&mut self, len: u64, header_len: u64) -> Result<Vec<u8>> {
        let data = self.read_up_to(len)?;
        let expected = header_len + len;
        if (data.len() as u64) < len {
            return Err(DataError::BadLength {
                path: self.path.to_path_buf(),
                problem: "truncated",
                expected,
                actual: header_len + data.len() as u64,
            });
        }
        // Reading on to the end also makes the gzip decoder check its CRC trailer.
        let extra = self.read_up_to(1 << 16)?;
        if !extra.is_empty() {
            return Err(DataError::BadLength {
                path: self.path.to_path_buf(),
                problem: "trailing bytes after the data",
                expected,
                actual: expected + extra.len() as u64,
            });
        }
        Ok(data)
    }

    fn finish(self) -> Sha256Digest {
        self.hasher.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images_file(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for v in [IMAGES_MAGIC, count, rows, cols] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(pixels);
        out
    }

    fn labels_file(labels: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
        out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
        out.extend_from_slice(labels);
        out
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    const P: &str = "fixture.idx";

    #[test]
    fn parses_raw_and_gzip_images_identically() {
        let pixels: Vec<u8> = (0..2 * IMAGE_PIXELS).map(|i| (i % 251) as u8).collect();
        let raw = images_file(2, 28, 28, &pixels);
        let a = parse_images(&raw[..], Path::new(P)).unwrap();
        let b = parse_images(&gzip(&raw)[..], Path::new(P)).unwrap();
        assert_eq!(a.count, 2);
        assert_eq!(a.pixels, pixels);
        assert_eq!(b.pixels, pixels);
        // The digest is of the decompressed content, so both agree and match a direct hash.
        assert_eq!(a.sha256, b.sha256);
        assert_eq!(hex(&a.sha256), hex(&Sha256::digest(&raw).into()));
    }

    #[test]
    fn parses_labels() {
        let raw = labels_file(&[0, 9, 3]);
        let l = parse_labels(&gzip(&raw)[..], Path::new(P)).unwrap();
        assert_eq!(l.labels, vec![0, 9, 3]);
    }

    #[test]
    fn rejects_wrong_magic_naming_the_file() {
        let raw = labels_file(&[1]);
        let err = parse_images(&raw[..], Path::new("x/labels.gz")).unwrap_err();
        assert!(matches!(
            err,
            DataError::BadMagic {
                found: LABELS_MAGIC,
                ..
            }
        ));
        let msg = err.to_string();
        assert!(
            msg.contains("x/labels.gz") && msg.contains("wrong magic"),
            "{msg}"
        );
    }

    #[test]
    fn rejects_wrong_dims() {
        let raw = images_file(1, 32, 32, &[0; 1024]);
        let err = parse_images(&raw[..], Path::new(P)).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::BadDims {
                    rows: 32,
                    cols: 32,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn rejects_truncated_body_and_header() {
        let raw = images_file(2, 28, 28, &[7; IMAGE_PIXELS + 5]);
        let err = parse_images(&raw[..], Path::new(P)).unwrap_err();
        assert!(
            matches!(err, DataError::BadLength { expected, actual, .. }
                if expected == 16 + 2 * IMAGE_PIXELS as u64 && actual == 16 + IMAGE_PIXELS as u64 + 5),
            "{err}"
        );
        for cut in [0, 3, 7, 15] {
            let err = parse_images(&raw[..cut], Path::new(P)).unwrap_err();
            assert!(
                matches!(err, DataError::BadLength { .. }),
                "cut {cut}: {err}"
            );
        }
    }

    #[test]
    fn rejects_trailing_bytes() {
        let mut raw = labels_file(&[1, 2]);
        raw.push(0);
        let err = parse_labels(&raw[..], Path::new(P)).unwrap_err();
        assert!(
            matches!(err, DataError::BadLength { problem, .. } if problem.contains("trailing"))
        );
    }

    #[test]
    fn rejects_out_of_range_label() {
        let raw = labels_file(&[1, 10]);
        let err = parse_labels(&raw[..], Path::new(P)).unwrap_err();
        assert!(matches!(
            err,
            DataError::BadLabel {
                index: 1,
                value: 10,
                ..
            }
        ));
    }

    #[test]
    fn rejects_corrupt_and_truncated_gzip() {
        let gz = gzip(&labels_file(&[1, 2, 3, 4]));
        let mut corrupt = gz.clone();
        let n = corrupt.len();
        corrupt[n - 6] ^= 0xff; // CRC / length trailer
        assert!(parse_labels(&corrupt[..], Path::new(P)).is_err());
        let err = parse_labels(&gz[..gz.len() - 10], Path::new(P)).unwrap_err();
        assert!(
            matches!(err, DataError::Gzip { .. } | DataError::BadLength { .. }),
            "{err}"
        );
        let garbage = [0x1f, 0x8b, 0, 1, 2, 3, 4, 5, 6, 7];
        assert!(parse_labels(&garbage[..], Path::new(P)).is_err());
    }

    #[test]
    fn huge_header_count_is_refused_without_allocating() {
        let mut raw = Vec::new();
        for v in [IMAGES_MAGIC, u32::MAX, 28, 28] {
            raw.extend_from_slice(&v.to_be_bytes());
        }
        let err = parse_images(&raw[..], Path::new(P)).unwrap_err();
        assert!(matches!(err, DataError::TooLarge { .. }), "{err}");
        // Within the cap but far beyond the data: a plain truncation error, no big allocation.
        let mut raw = Vec::new();
        for v in [IMAGES_MAGIC, 9_000_000, 28, 28] {
            raw.extend_from_slice(&v.to_be_bytes());
        }
        let err = parse_images(&raw[..], Path::new(P)).unwrap_err();
        assert!(
            matches!(err, DataError::BadLength { actual: 16, .. }),
            "{err}"
        );
    }

    #[test]
    fn empty_input_is_an_error() {
        assert!(matches!(
            parse_labels(&[][..], Path::new(P)).unwrap_err(),
            DataError::BadLength { actual: 0, .. }
        ));
    }
}
